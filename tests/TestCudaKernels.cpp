// The integrators' kernels on OpenMM's CUDA platform: the Reference suites'
// checks (IntegratorChecks.h) run on the GPU. Every test is skipped, with
// the reason, where the CUDA platform is not registered, no GPU can be used,
// or LibTorch has no CUDA.

#include "IntegratorChecks.h"
#include "SamplerChecks.h"
#include "TestSupport.h"
#include "openmmbg/BGKernels.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/ToySystems.h"

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

const double T_REF = 300.0;

/** Why the CUDA platform cannot be used here, or "" if it can. */
std::string cudaPlatformMissing() {
    try {
        Platform::getPlatformByName("CUDA");
    } catch (const OpenMMException&) {
        return "the CUDA platform is not registered: OpenMM's libOpenMMCUDA is not in the plugin folder or did "
               "not load (see Platform::getPluginLoadFailures())";
    }
    return "";
}

/** Why no CUDA Context can be created (no GPU, no driver), or "" if one can. */
std::string gpuMissing() {
    std::string missing = cudaPlatformMissing();
    if (!missing.empty())
        return missing;
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

TEST(CudaKernels, PluginRegistersBothKernelsOnTheCudaPlatform) {
    std::string missing = cudaPlatformMissing();
    if (!missing.empty())
        GTEST_SKIP() << missing;
    const Platform& cuda = Platform::getPlatformByName("CUDA");
    EXPECT_TRUE(cuda.supportsKernels({IntegrateLatentMetropolisStepKernel::Name()}));
    EXPECT_TRUE(cuda.supportsKernels({IntegrateTSFParallelTemperingStepKernel::Name()}));
}

TEST(CudaKernels, LibTorchWithoutCudaIsRefusedClearly) {
    std::string missing = gpuMissing();
    if (!missing.empty())
        GTEST_SKIP() << missing;
    if (at::hasCUDA())
        GTEST_SKIP() << "this LibTorch has CUDA: nothing to refuse";
    DoubleWell well;
    auto system = well.createSystem();
    LatentMetropolisIntegrator integrator(untrainedDoubleWellFlow(*system), T_REF, 0.5);
    try {
        Context context(*system, integrator, Platform::getPlatformByName("CUDA"));
        ADD_FAILURE() << "a CUDA Context was created with a LibTorch that has no CUDA";
    } catch (const OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find("LibTorch"), std::string::npos) << e.what();
    }
}

TEST(CudaKernels, RejectedMovesLeaveTheContextExactly) {
    std::string missing = kernelsCannotRun();
    if (!missing.empty())
        GTEST_SKIP() << missing;
    // Each precision stores positions differently (float4, float4 + corrections, double4).
    for (const std::string precision : {"single", "mixed", "double"}) {
        SCOPED_TRACE("precision " + precision);
        checkRejectedMovesLeaveTheContextExactly("CUDA", {{"Precision", precision}});
    }
}

TEST(CudaKernels, DoubleWellFreeEnergyFromOneWell) {
    std::string missing = kernelsCannotRun();
    if (!missing.empty())
        GTEST_SKIP() << missing;
    DoubleWell well;
    auto system = well.createSystem();
    checkDoubleWellFreeEnergy(trainedDoubleWellFlow(*system, "tsf"), 2 * T_REF, 8, "CUDA", {{"Precision", "mixed"}});
}

TEST(CudaKernels, ExchangeAcceptanceMatchesClosedForm) {
    std::string missing = kernelsCannotRun();
    if (!missing.empty())
        GTEST_SKIP() << missing;
    checkExchangeAcceptanceMatchesClosedForm("CUDA", {{"Precision", "mixed"}});
}
