// The OpenMM-BG kernels on OpenMM's CUDA platform: the common kernels with
// positions moved on the GPU (CudaContextAccess).

#include "CudaBGKernelFactory.h"

#include "CudaContextAccess.h"
#include "openmmbg/internal/CommonFlowMoveKernels.h"

#include <openmm/OpenMMException.h>
#include <openmm/cuda/CudaContext.h>
#include <openmm/cuda/CudaPlatform.h>
#include <openmm/internal/ContextImpl.h>

using namespace OpenMM;

namespace {

std::unique_ptr<OpenMMBG::ContextAccess> cudaAccess(ContextImpl& context) {
    // With several devices OpenMM keeps the positions in the first context and copies them to the others.
    auto& data = *static_cast<CudaPlatform::PlatformData*>(context.getPlatformData());
    return std::make_unique<OpenMMBG::CudaContextAccess>(context, *data.contexts[0]);
}

} // namespace

extern "C" OPENMM_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    for (int i = 0; i < Platform::getNumPlatforms(); i++) {
        Platform& platform = Platform::getPlatform(i);
        if (dynamic_cast<CudaPlatform*>(&platform) != nullptr)
            OpenMMBG::FlowMoveKernelFactory::registerWith(platform, cudaAccess);
    }
}

extern "C" OPENMM_EXPORT void registerBGCudaKernelFactories() {
    try {
        Platform::getPlatformByName("CUDA");
    } catch (const OpenMMException&) {
        Platform::registerPlatform(new CudaPlatform());
    }
    registerKernelFactories();
}
