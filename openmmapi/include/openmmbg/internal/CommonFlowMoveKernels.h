#ifndef OPENMMBG_COMMONFLOWMOVEKERNELS_H_
#define OPENMMBG_COMMONFLOWMOVEKERNELS_H_

// The kernels of both flow-move integrators for every platform. A platform's
// kernel factory creates them with its ContextAccess; all the rest (chains,
// statistics, replicas, exchanges, checkpoints) is here, once.

#include "openmmbg/BGKernels.h"
#include "openmmbg/ReplicaExchange.h"
#include "openmmbg/internal/FlowMoveRunner.h"

#include <openmm/KernelFactory.h>

#include <functional>
#include <memory>
#include <vector>

namespace OpenMMBG {

class CommonIntegrateLatentMetropolisStepKernel : public IntegrateLatentMetropolisStepKernel {
public:
    CommonIntegrateLatentMetropolisStepKernel(const std::string& name, const OpenMM::Platform& platform,
                                              std::unique_ptr<ContextAccess> access);
    void initialize(const OpenMM::System& system, const LatentMetropolisIntegrator& integrator) override;
    double execute(OpenMM::ContextImpl& context, int steps, std::optional<double> warmUpTarget) override;
    MoveStatistics getStatistics() const override { return runner.getStatistics().at(0); }
    void resetStatistics() override { runner.resetStatistics(); }
    void createCheckpoint(std::ostream& stream) const override { runner.writeState(stream); }
    void loadCheckpoint(std::istream& stream) override { runner.readState(stream); }

private:
    FlowMoveRunner runner;
    const LatentMetropolisIntegrator* integrator = nullptr;
    std::vector<std::vector<OpenMM::Vec3>> positions;  // the chain, as of the last step
    std::vector<double> energies;
};

class CommonIntegrateTSFParallelTemperingStepKernel : public IntegrateTSFParallelTemperingStepKernel {
public:
    CommonIntegrateTSFParallelTemperingStepKernel(const std::string& name, const OpenMM::Platform& platform,
                                                  std::unique_ptr<ContextAccess> access);
    void initialize(const OpenMM::System& system, const TSFParallelTemperingIntegrator& integrator) override;
    double execute(OpenMM::ContextImpl& context, int steps, std::optional<double> warmUpTarget) override;
    std::vector<OpenMM::Vec3> getReplicaPositions(OpenMM::ContextImpl& context, int replica) const override;
    void setReplicaPositions(OpenMM::ContextImpl& context, int replica,
                             const std::vector<OpenMM::Vec3>& positions) override;
    double getReplicaPotentialEnergy(int replica) const override;
    int getWalkerAtReplica(int replica) const override { return exchange->getWalker(replica); }
    MoveStatistics getMoveStatistics(int replica) const override { return runner.getStatistics().at(replica); }
    ExchangeStatistics getExchangeStatistics() const override { return exchange->getStatistics(); }
    void resetStatistics() override;
    void createCheckpoint(std::ostream& stream) const override;
    void loadCheckpoint(std::istream& stream) override;

private:
    /** One round of exchanges, applied to the chains' rows. */
    void exchangeReplicas(ChainState& state);

    FlowMoveRunner runner;
    const TSFParallelTemperingIntegrator* integrator = nullptr;
    std::unique_ptr<ReplicaExchange> exchange;
    std::vector<std::vector<OpenMM::Vec3>> positions;  // [replica][particle] nm; replica 0 lives in the Context
    std::vector<double> energies;                      // kJ/mol, as of the last step
    std::vector<bool> setByUser;                       // replicas given before the first step
    bool started = false;                              // the replicas hold configurations
};

/** The kernel factory of a platform: the common kernels with the ContextAccess it makes for each Context. */
class FlowMoveKernelFactory : public OpenMM::KernelFactory {
public:
    using AccessMaker = std::function<std::unique_ptr<ContextAccess>(OpenMM::ContextImpl& context)>;
    explicit FlowMoveKernelFactory(AccessMaker makeAccess) : makeAccess(std::move(makeAccess)) {}
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                         OpenMM::ContextImpl& context) const override;
    /** Registers a factory for both kernels with `platform` (which then owns it). */
    static void registerWith(OpenMM::Platform& platform, AccessMaker makeAccess);

private:
    AccessMaker makeAccess;
};

} // namespace OpenMMBG

#endif
