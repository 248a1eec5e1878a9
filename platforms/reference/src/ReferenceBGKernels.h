#ifndef OPENMMBG_REFERENCEBGKERNELS_H_
#define OPENMMBG_REFERENCEBGKERNELS_H_

#include "openmmbg/BGKernels.h"
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

} // namespace OpenMMBG

#endif
