// The OpenMM-BG kernels on every platform built on the Reference platform:
// Reference itself and CPU. Both store double positions that ContextImpl
// reads and writes exactly, so the kernels reach them on the host.

#include "ReferenceBGKernelFactory.h"

#include "openmmbg/internal/CommonFlowMoveKernels.h"

#include <openmm/reference/ReferencePlatform.h>

using namespace OpenMM;

extern "C" OPENMM_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    for (int i = 0; i < Platform::getNumPlatforms(); i++) {
        Platform& platform = Platform::getPlatform(i);
        if (dynamic_cast<ReferencePlatform*>(&platform) != nullptr)
            OpenMMBG::FlowMoveKernelFactory::registerWith(
                platform, [](ContextImpl& context) { return std::make_unique<OpenMMBG::HostContextAccess>(context); });
    }
}

extern "C" OPENMM_EXPORT void registerBGReferenceKernelFactories() {
    registerKernelFactories();
}
