#ifndef OPENMMBG_BGKERNELS_H_
#define OPENMMBG_BGKERNELS_H_

// The kernel interfaces of the flow-move integrators, as OpenMM's
// RpmdKernels.h for RPMDIntegrator. A kernel is created per Context; it
// reads its integrator's parameters (const) and owns everything that changes
// while the simulation runs: the random generator, move statistics and, for
// parallel tempering, the replicas. Every platform uses one implementation of
// them (internal/CommonFlowMoveKernels.h), given how that platform moves
// positions between its Context and LibTorch tensors.

#include "openmmbg/MoveStatistics.h"
#include "openmmbg/ReplicaExchange.h"

#include <openmm/KernelImpl.h>
#include <openmm/Platform.h>
#include <openmm/System.h>
#include <openmm/Vec3.h>
#include <openmm/internal/ContextImpl.h>

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace OpenMMBG {

class LatentMetropolisIntegrator;
class TSFParallelTemperingIntegrator;

/** What both flow-move kernels do. */
class FlowMoveKernel : public OpenMM::KernelImpl {
public:
    FlowMoveKernel(const std::string& name, const OpenMM::Platform& platform) : OpenMM::KernelImpl(name, platform) {}
    /**
     * Performs `steps` steps on what the Context holds now (nothing is cached
     * between calls: MD or setPositions may have moved it). With a warm-up
     * target the latent step size adapts towards that acceptance rate.
     *
     * @return the latent step size after the steps (unchanged without warm-up)
     */
    virtual double execute(OpenMM::ContextImpl& context, int steps, std::optional<double> warmUpTarget) = 0;
    virtual void resetStatistics() = 0;
    /** The kernel's state (random generator, statistics, replicas) for a Context checkpoint. */
    virtual void createCheckpoint(std::ostream& stream) const = 0;
    virtual void loadCheckpoint(std::istream& stream) = 0;
};

/** Monte Carlo moves of a LatentMetropolisIntegrator. */
class IntegrateLatentMetropolisStepKernel : public FlowMoveKernel {
public:
    static std::string Name() {
        return "IntegrateLatentMetropolisStep";
    }
    IntegrateLatentMetropolisStepKernel(const std::string& name, const OpenMM::Platform& platform)
        : FlowMoveKernel(name, platform) {}
    /** Called once the integrator is bound to a Context; the integrator outlives the kernel. */
    virtual void initialize(const OpenMM::System& system, const LatentMetropolisIntegrator& integrator) = 0;
    virtual MoveStatistics getStatistics() const = 0;
};

/** Steps of a TSFParallelTemperingIntegrator: flow moves in every replica, then exchanges. */
class IntegrateTSFParallelTemperingStepKernel : public FlowMoveKernel {
public:
    static std::string Name() {
        return "IntegrateTSFParallelTemperingStep";
    }
    IntegrateTSFParallelTemperingStepKernel(const std::string& name, const OpenMM::Platform& platform)
        : FlowMoveKernel(name, platform) {}
    virtual void initialize(const OpenMM::System& system, const TSFParallelTemperingIntegrator& integrator) = 0;
    /** Positions (nm) of the replica at temperature index `replica`; replica 0 is the Context's. */
    virtual std::vector<OpenMM::Vec3> getReplicaPositions(OpenMM::ContextImpl& context, int replica) const = 0;
    /** Replica 0 is written to the Context; replicas not set start from the Context's positions at the first step. */
    virtual void setReplicaPositions(OpenMM::ContextImpl& context, int replica,
                                     const std::vector<OpenMM::Vec3>& positions) = 0;
    /** kJ/mol, as of the last step; throws before the first. */
    virtual double getReplicaPotentialEnergy(int replica) const = 0;
    virtual int getWalkerAtReplica(int replica) const = 0;
    virtual MoveStatistics getMoveStatistics(int replica) const = 0;
    virtual ExchangeStatistics getExchangeStatistics() const = 0;
};

} // namespace OpenMMBG

#endif
