#ifndef OPENMMBG_REFERENCEBGKERNELS_H_
#define OPENMMBG_REFERENCEBGKERNELS_H_

#include "openmmbg/BGKernels.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/internal/LatentMoveEngine.h"

#include <memory>
#include <vector>

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
    std::unique_ptr<LatentMoveEngine> engine;
    long long warmUpSteps = 0;
};

/**
 * TSFParallelTemperingIntegrator on the Reference and CPU platforms: the
 * replicas' flow moves go through the shared engine in one batch, their
 * energies through an OpenMMEnergy worker pool on the Context's platform
 * (one Context per thread), exchanges through decideExchanges().
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
    /** Potential energies (kJ/mol) of configurations [B, N, 3]; +inf where OpenMM fails or they are not finite. */
    at::Tensor energies(const at::Tensor& x);

    std::unique_ptr<LatentMoveEngine> engine;
    std::unique_ptr<OpenMMEnergy> bridge;
    long long warmUpSteps = 0;
};

} // namespace OpenMMBG

#endif
