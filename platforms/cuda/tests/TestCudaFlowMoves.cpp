// The flow-move integrators' shared tests (FlowMoveIntegratorTests.cpp) on
// OpenMM's CUDA platform, plus the plugin's own checks. The CUDA platform and this build's kernels are
// registered through registerBGCudaKernelFactories(). Every test is skipped,
// with the reason, where no GPU can be used or LibTorch has no CUDA.

#include "CudaBGKernelFactory.h"
#include "FlowMoveIntegratorTests.h"
#include "SamplerChecks.h"
#include "TestSupport.h"
#include "openmmbg/BGKernels.h"
#include "openmmbg/ComputeSettings.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/tools/ToySystems.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <openmm/Context.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>

#include <cstdio>

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
    const std::string failure = cudaContextUnavailable();
    if (failure.empty())
        return "";
    std::string reason = "no usable GPU: OpenMM cannot create a CUDA Context (" + failure + ")";
    if (reason.find("CUDA error (34)") != std::string::npos)
        reason += "; error 34 means the toolkit's stub libcuda.so.1 was loaded: no CUDA driver is installed";
    return reason;
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

// Training with the flow's weights on the GPU: batches, latents and TSF
// momenta are drawn on the CPU and moved there, energies come from the CPU
// bridge. The same seed must give the same losses and weights as training on
// the CPU, up to the rounding of a different summation order (1e-8 relative
// after 30 steps; a batch or momentum drawn differently changes the loss at
// the 1e-2 level).
TEST(CudaTraining, StepsOnTheGpuFollowTheStepsOnTheCpu) {
    if (!at::hasCUDA())
        GTEST_SKIP() << "this LibTorch has no CUDA or sees no GPU";
    const double T = 300.0;
    DoubleWell well;
    auto system = well.createSystem();
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(3);
    const at::Tensor data = well.sampleExact(2000, T, generator);
    const at::Tensor validation = well.sampleExact(500, T, generator);
    FlowConfig config;
    config.numBlocks = 2;
    config.hiddenLayers = 2;
    config.hiddenWidth = 32;
    OpenMMEnergy::Options bridgeOptions;
    bridgeOptions.platform = "Reference";
    bridgeOptions.numWorkers = 1;
    for (const std::string flowType : {"realnvp", "tsf"}) {
        SCOPED_TRACE(flowType);
        const FlowModel start = FlowModel::createCartesian(*system, {0, 1}, data, flowType, config, T);
        std::vector<std::vector<double>> losses(2);
        std::vector<FlowModel> trained;
        for (const at::Device device : {at::Device(at::kCPU), at::Device(at::kCUDA, 0)}) {
            FlowModel model = start.clone().to(device);
            TrainerOptions options;
            options.seed = 9;
            options.logInterval = 1;
            std::vector<double>& record = losses[device.is_cuda()];
            options.progress = [&](const TrainingProgress& p) {
                record.insert(record.end(), {p.loss, p.lossML, p.lossKL});
                if (!std::isnan(p.validationNLL))
                    record.push_back(p.validationNLL);
            };
            FlowTrainer trainer(model, options);
            trainer.setData(data, T);
            trainer.setValidationData(validation);
            trainer.setEnergy(std::make_shared<OpenMMEnergy>(*system, T, bridgeOptions));
            TrainingStage stage;
            stage.steps = 30;
            stage.batchSize = 128;
            stage.lambdaStart = 0;
            stage.lambdaEnd = 0.5;
            stage.validationInterval = 10;
            trainer.train(stage);
            EXPECT_EQ(trainer.getModel().getDevice(), device);
            trained.push_back(model);
        }
        ASSERT_EQ(losses[0].size(), losses[1].size());
        for (size_t i = 0; i < losses[0].size(); i++)
            if (!std::isnan(losses[0][i]))
                EXPECT_NEAR(losses[1][i], losses[0][i], 1e-8 * (1 + std::abs(losses[0][i]))) << "entry " << i;
        std::vector<at::Tensor> cpu = trained[0].getFlow().parameters(), gpu = trained[1].getFlow().parameters();
        ASSERT_EQ(cpu.size(), gpu.size());
        for (size_t i = 0; i < cpu.size(); i++)
            EXPECT_TRUE(at::allclose(gpu[i].to(at::kCPU), cpu[i], 1e-8, 1e-10)) << "parameter " << i;
        // A flow trained on the GPU is saved with CPU tensors and loads on the CPU, weights unchanged.
        const std::string path = temporaryPath(".bgflow");
        trained[1].save(path);
        const FlowModel loaded = FlowModel::load(path);
        std::remove(path.c_str());
        EXPECT_TRUE(loaded.getDevice().is_cpu());
        std::vector<at::Tensor> reloaded = loaded.getFlow().parameters();
        ASSERT_EQ(reloaded.size(), gpu.size());
        for (size_t i = 0; i < gpu.size(); i++)
            EXPECT_TRUE(at::equal(reloaded[i], gpu[i].to(at::kCPU))) << "parameter " << i;
        EXPECT_EQ(trained[1].clone().getDevice(), trained[1].getDevice());
    }
}
