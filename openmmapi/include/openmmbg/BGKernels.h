#ifndef OPENMMBG_BGKERNELS_H_
#define OPENMMBG_BGKERNELS_H_

#include <openmm/KernelImpl.h>
#include <openmm/Platform.h>
#include <openmm/System.h>
#include <openmm/internal/ContextImpl.h>

#include <string>

namespace OpenMMBG {

class LatentMetropolisIntegrator;
class TSFParallelTemperingIntegrator;

/**
 * Performs Monte Carlo moves of a LatentMetropolisIntegrator. Platforms
 * differ only in how positions move between the Context and LibTorch tensors
 * and where those tensors live; the move logic is LatentMoveEngine's.
 */
class IntegrateLatentMetropolisStepKernel : public OpenMM::KernelImpl {
public:
    static std::string Name() {
        return "IntegrateLatentMetropolisStep";
    }
    IntegrateLatentMetropolisStepKernel(const std::string& name, const OpenMM::Platform& platform)
        : OpenMM::KernelImpl(name, platform) {}
    /** Called once the integrator is bound to a Context. */
    virtual void initialize(const OpenMM::System& system, LatentMetropolisIntegrator& integrator) = 0;
    /** Performs `steps` moves (warm-up moves adapt the latent step size). */
    virtual void execute(OpenMM::ContextImpl& context, LatentMetropolisIntegrator& integrator, int steps,
                         bool warmUp) = 0;
    /** The Context's positions were changed from outside (MD, setPositions): re-read them before the next move. */
    virtual void invalidate() = 0;
};

/** Performs steps of a TSFParallelTemperingIntegrator: flow moves in every replica, then exchanges. */
class IntegrateTSFParallelTemperingStepKernel : public OpenMM::KernelImpl {
public:
    static std::string Name() {
        return "IntegrateTSFParallelTemperingStep";
    }
    IntegrateTSFParallelTemperingStepKernel(const std::string& name, const OpenMM::Platform& platform)
        : OpenMM::KernelImpl(name, platform) {}
    virtual void initialize(const OpenMM::System& system, TSFParallelTemperingIntegrator& integrator) = 0;
    virtual void execute(OpenMM::ContextImpl& context, TSFParallelTemperingIntegrator& integrator, int steps,
                         bool warmUp) = 0;
    virtual void invalidate() = 0;
};

} // namespace OpenMMBG

#endif
