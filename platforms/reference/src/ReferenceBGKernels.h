#ifndef OPENMMBG_REFERENCEBGKERNELS_H_
#define OPENMMBG_REFERENCEBGKERNELS_H_

#include "openmmbg/BGKernels.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/internal/FlowMoveRunner.h"

#include <memory>

namespace OpenMMBG {

/**
 * LatentMetropolisIntegrator on the Reference and CPU platforms: positions
 * move through the ContextImpl on the host, tensors live on the CPU.
 */
class ReferenceIntegrateLatentMetropolisStepKernel : public IntegrateLatentMetropolisStepKernel {
public:
    ReferenceIntegrateLatentMetropolisStepKernel(const std::string& name, const OpenMM::Platform& platform)
        : IntegrateLatentMetropolisStepKernel(name, platform) {}
    void initialize(const OpenMM::System& system, LatentMetropolisIntegrator& integrator) override;
    void execute(OpenMM::ContextImpl& context, LatentMetropolisIntegrator& integrator, int steps,
                 bool warmUp) override;
    void invalidate() override {}

private:
    std::unique_ptr<LatentMetropolisMoves> moves;
};

/** Replica energies from an OpenMMEnergy worker pool (one Context per thread). */
class BridgeReplicaEnergies : public ReplicaEnergies {
public:
    BridgeReplicaEnergies(const OpenMM::System& system, double temperature, const OpenMMEnergy::Options& options)
        : bridge(system, temperature, options) {}
    at::Tensor evaluate(const at::Tensor& x) override { return bridge.evaluate(x).potentialEnergy; }

private:
    OpenMMEnergy bridge;
};

/**
 * TSFParallelTemperingIntegrator on the Reference and CPU platforms: the
 * replicas' flow moves go through the shared engine in one batch, their
 * energies through an OpenMMEnergy worker pool on the Context's platform
 * (one Context per thread, so the CPU platform evaluates replicas in
 * parallel), exchanges through decideExchanges().
 */
class ReferenceIntegrateTSFParallelTemperingStepKernel : public IntegrateTSFParallelTemperingStepKernel {
public:
    ReferenceIntegrateTSFParallelTemperingStepKernel(const std::string& name, const OpenMM::Platform& platform)
        : IntegrateTSFParallelTemperingStepKernel(name, platform) {}
    void initialize(const OpenMM::System& system, TSFParallelTemperingIntegrator& integrator) override;
    void execute(OpenMM::ContextImpl& context, TSFParallelTemperingIntegrator& integrator, int steps,
                 bool warmUp) override;
    void invalidate() override {}

private:
    std::unique_ptr<ParallelTemperingSteps> steps;
    std::unique_ptr<BridgeReplicaEnergies> energies;
};

} // namespace OpenMMBG

#endif
