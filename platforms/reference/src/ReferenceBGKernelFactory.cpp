// Registers the OpenMM-BG kernels for every platform built on the Reference
// platform: Reference itself and CPU.

#include "ReferenceBGKernels.h"

#include <openmm/KernelFactory.h>
#include <openmm/OpenMMException.h>
#include <openmm/internal/windowsExport.h>
#include <openmm/reference/ReferencePlatform.h>

using namespace OpenMM;

namespace OpenMMBG {

class ReferenceBGKernelFactory : public KernelFactory {
public:
    KernelImpl* createKernelImpl(std::string name, const Platform& platform, ContextImpl& context) const override {
        if (name == IntegrateLatentMetropolisStepKernel::Name())
            return new ReferenceIntegrateLatentMetropolisStepKernel(name, platform);
        if (name == IntegrateTSFParallelTemperingStepKernel::Name())
            return new ReferenceIntegrateTSFParallelTemperingStepKernel(name, platform);
        throw OpenMMException("OpenMM-BG: the Reference/CPU plugin has no kernel named '" + name + "'");
    }
};

} // namespace OpenMMBG

extern "C" OPENMM_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    for (int i = 0; i < Platform::getNumPlatforms(); i++) {
        Platform& platform = Platform::getPlatform(i);
        if (dynamic_cast<ReferencePlatform*>(&platform) != nullptr) {
            auto* factory = new OpenMMBG::ReferenceBGKernelFactory();
            platform.registerKernelFactory(OpenMMBG::IntegrateLatentMetropolisStepKernel::Name(), factory);
            platform.registerKernelFactory(OpenMMBG::IntegrateTSFParallelTemperingStepKernel::Name(), factory);
        }
    }
}
