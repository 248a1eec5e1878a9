#include "CudaBGKernels.h"

#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"

#include <openmm/cuda/CudaContext.h>
#include <openmm/internal/ContextImpl.h>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

/**
 * Positions were written straight into the device arrays, and the force
 * buffer holds whatever the last energy evaluation left there. OpenMM
 * integrators that keep forces from one step to the next must recompute
 * them: ContextImpl::systemChanged() reaches CustomIntegrator (through
 * stateChanged), the atoms-reordered flag NoseHooverIntegrator's kernel.
 * ContextImpl::setPositions would do both at the cost of a host round trip.
 */
void invalidateCachedForces(ContextImpl& context, CudaContext& cu) {
    context.systemChanged();
    cu.setAtomsWereReordered(true);
}

/** Runs `body` with LibTorch's context current and tells OpenMM afterwards (even on an exception) if positions changed. */
template <class Body>
void runOnDevice(ContextImpl& context, CudaContext& cu, const TorchCudaDevice& torch,
                 CudaContextConfiguration& configuration, Body body) {
    try {
        TorchCudaDevice::Scope scope(torch);
        body();
    } catch (...) {
        if (configuration.takeChanged())
            invalidateCachedForces(context, cu);
        throw;
    }
    if (configuration.takeChanged())
        invalidateCachedForces(context, cu);
}

} // namespace

void CudaIntegrateLatentMetropolisStepKernel::initialize(const System&, LatentMetropolisIntegrator& integrator) {
    torch = std::make_unique<TorchCudaDevice>(cu, "LatentMetropolisIntegrator");
    TorchCudaDevice::Scope scope(*torch);
    moves = std::make_unique<LatentMetropolisMoves>(integrator, torch->getDevice());
    configuration = std::make_unique<CudaContextConfiguration>(cu, *torch);
}

void CudaIntegrateLatentMetropolisStepKernel::execute(ContextImpl& context, LatentMetropolisIntegrator& integrator,
                                                      int steps, bool warmUp) {
    runOnDevice(context, cu, *torch, *configuration,
                [&] { moves->run(context, integrator, *configuration, steps, warmUp); });
}

void CudaIntegrateTSFParallelTemperingStepKernel::initialize(const System&, TSFParallelTemperingIntegrator& integrator) {
    torch = std::make_unique<TorchCudaDevice>(cu, "TSFParallelTemperingIntegrator");
    TorchCudaDevice::Scope scope(*torch);
    steps = std::make_unique<ParallelTemperingSteps>(integrator, torch->getDevice());
    configuration = std::make_unique<CudaContextConfiguration>(cu, *torch);
}

void CudaIntegrateTSFParallelTemperingStepKernel::execute(ContextImpl& context,
                                                          TSFParallelTemperingIntegrator& integrator, int count,
                                                          bool warmUp) {
    runOnDevice(context, cu, *torch, *configuration, [&] {
        SequentialContextEnergies energies(context, *configuration, integrator.getIntegrationForceGroups());
        steps->run(context, integrator, *configuration, energies, count, warmUp);
    });
}

} // namespace OpenMMBG
