// Registers the OpenMM-BG kernels for OpenMM's CUDA platform.

#include "CudaBGKernels.h"

#include <openmm/KernelFactory.h>
#include <openmm/OpenMMException.h>
#include <openmm/cuda/CudaContext.h>
#include <openmm/cuda/CudaPlatform.h>
#include <openmm/internal/ContextImpl.h>
#include <openmm/internal/windowsExport.h>

using namespace OpenMM;

namespace OpenMMBG {

class CudaBGKernelFactory : public KernelFactory {
public:
    KernelImpl* createKernelImpl(std::string name, const Platform& platform, ContextImpl& context) const override {
        // With several devices OpenMM keeps the positions in the first context and copies them to the others.
        auto& data = *static_cast<CudaPlatform::PlatformData*>(context.getPlatformData());
        CudaContext& cu = *data.contexts[0];
        if (name == IntegrateLatentMetropolisStepKernel::Name())
            return new CudaIntegrateLatentMetropolisStepKernel(name, platform, cu);
        if (name == IntegrateTSFParallelTemperingStepKernel::Name())
            return new CudaIntegrateTSFParallelTemperingStepKernel(name, platform, cu);
        throw OpenMMException("OpenMM-BG: the CUDA plugin has no kernel named '" + name + "'");
    }
};

} // namespace OpenMMBG

extern "C" OPENMM_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    for (int i = 0; i < Platform::getNumPlatforms(); i++) {
        Platform& platform = Platform::getPlatform(i);
        if (dynamic_cast<CudaPlatform*>(&platform) != nullptr) {
            auto* factory = new OpenMMBG::CudaBGKernelFactory();
            platform.registerKernelFactory(OpenMMBG::IntegrateLatentMetropolisStepKernel::Name(), factory);
            platform.registerKernelFactory(OpenMMBG::IntegrateTSFParallelTemperingStepKernel::Name(), factory);
        }
    }
}
