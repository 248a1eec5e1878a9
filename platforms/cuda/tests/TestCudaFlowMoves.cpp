// The flow-move integrators' shared tests (FlowMoveIntegratorTests.cpp) on
// OpenMM's CUDA platform, plus the plugin's own checks. The CUDA platform and this build's kernels are
// registered through registerBGCudaKernelFactories(). Every test is skipped,
// with the reason, where no GPU can be used or LibTorch has no CUDA.

#include "CudaBGKernelFactory.h"
#include "FlowMoveIntegratorTests.h"
#include "SamplerChecks.h"
#include "TestSupport.h"
#include "openmmbg/BGKernels.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/tools/ToySystems.h"

#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <openmm/Context.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/VerletIntegrator.h>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

class CudaEnvironment : public ::testing::Environment {
public:
    void SetUp() override { registerBGCudaKernelFactories(); }
};
::testing::Environment* const cudaEnvironment = ::testing::AddGlobalTestEnvironment(new CudaEnvironment);

/** Why no CUDA Context can be created (no GPU, no driver), or "" if one can. */
std::string gpuMissing() {
    try {
        System system;
        system.addParticle(1.0);
        VerletIntegrator integrator(0.001);
        Context context(system, integrator, Platform::getPlatformByName("CUDA"));
    } catch (const std::exception& e) {
        std::string reason = std::string("no usable GPU: OpenMM cannot create a CUDA Context (") + e.what() + ")";
        if (reason.find("CUDA error (34)") != std::string::npos)
            reason += "; error 34 means the toolkit's stub libcuda.so.1 was loaded: no CUDA driver is installed";
        return reason;
    }
    return "";
}

/** Why the flow-move kernels cannot run on the GPU here, or "" if they can. */
std::string kernelsCannotRun() {
    std::string missing = gpuMissing();
    if (missing.empty() && !at::hasCUDA())
        missing = "this LibTorch has no CUDA (at::hasCUDA() is false)";
    return missing;
}

} // namespace

const TestPlatform& OpenMMBG::testing::testPlatform() {
    // Each precision stores positions differently (float4, float4 + corrections, double4).
    static const TestPlatform platform{"CUDA",
                                       {{"Precision", "mixed"}},
                                       {{{"Precision", "single"}}, {{"Precision", "mixed"}}, {{"Precision", "double"}}},
                                       kernelsCannotRun};
    return platform;
}

TEST(CudaPlugin, RegistersBothKernelsOnTheCudaPlatform) {
    const Platform& cuda = Platform::getPlatformByName("CUDA");
    EXPECT_TRUE(cuda.supportsKernels({IntegrateLatentMetropolisStepKernel::Name()}));
    EXPECT_TRUE(cuda.supportsKernels({IntegrateTSFParallelTemperingStepKernel::Name()}));
}

TEST(CudaPlugin, LibTorchWithoutCudaIsRefusedClearly) {
    const std::string missing = gpuMissing();
    if (!missing.empty())
        GTEST_SKIP() << missing;
    if (at::hasCUDA())
        GTEST_SKIP() << "this LibTorch has CUDA: nothing to refuse";
    DoubleWell well;
    auto system = well.createSystem();
    LatentMetropolisIntegrator integrator(untrainedDoubleWellFlow(*system), 300.0, 0.5);
    expectMessage([&] { Context context(*system, integrator, Platform::getPlatformByName("CUDA")); }, "LibTorch");
}
