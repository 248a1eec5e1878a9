// Benchmark of flow training on alanine dipeptide: training steps per second
// of a TSF (batch 256, mixed ML + KL loss) and where the time goes (flow
// forward/backward against the energy bridge), with 1 and 2 LibTorch threads.
//
//   build/bench/train [--steps 30] [--width 128] [--layers 2] [--blocks 4]

#include "AlanineDipeptide.h"
#include "BenchSupport.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/ComputeSettings.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstdio>
#include <cstring>

using namespace OpenMMBG;
using namespace OpenMMBG::bench;

namespace {

/** Seconds per call of `work`, best of `repeats` rounds of `calls` calls. */
double secondsPerCall(int repeats, int calls, const std::function<void()>& work) {
    return 1.0 / bestRate(repeats, calls, [&] {
        for (int i = 0; i < calls; i++)
            work();
    });
}

} // namespace

int main(int argc, char** argv) {
    int steps = 30;
    FlowConfig config;
    config.numBlocks = 4;
    config.hiddenLayers = 2;
    config.hiddenWidth = 128;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--steps"))
            steps = std::stoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--width"))
            config.hiddenWidth = std::stoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--layers"))
            config.hiddenLayers = std::stoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--blocks"))
            config.numBlocks = std::stoi(argv[i + 1]);
    }
    loadPlugins();
    alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    const double temperature = 600.0;
    alanine::MDOptions md;
    md.temperature = temperature;
    md.equilibrationSteps = 5000;
    md.steps = 100000;
    md.interval = 50;
    at::Tensor frames = alanine::runMD(molecule, md).x;  // 2000 frames, 100 ps at 600 K
    const int64_t batch = 256;
    OpenMMEnergy::Options bridgeOptions;
    bridgeOptions.platform = "Reference";
    bridgeOptions.numWorkers = 2;
    bridgeOptions.energyCut = 1000.0;
    auto bridge = std::make_shared<OpenMMEnergy>(*molecule.system, temperature, bridgeOptions);

    std::printf("TSF training on alanine dipeptide: %d blocks, %d hidden layers of %d, batch %lld, "
                "energy bridge: Reference, 2 workers\n\n",
                config.numBlocks, config.hiddenLayers, config.hiddenWidth, (long long) batch);
    std::printf("%-8s %12s %12s %12s %12s %12s %12s\n", "threads", "ML fwd+bwd", "KL flow fwd", "bridge",
                "KL bwd", "mixed step", "steps/s");
    std::vector<double> rates;
    for (int threads : {1, 2}) {
        setComputeThreads(threads);
        keepFreedMemoryInHeap();
        FlowModel model = FlowModel::createForMolecule(*molecule.system, frames, "tsf", config, temperature);
        at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
        at::Tensor x = frames.narrow(0, 0, batch);
        // The parts of a mixed step, timed one by one.
        double ml = secondsPerCall(3, 5, [&] {
            at::Tensor loss = -model.logProb(x, temperature, generator).mean();
            loss.backward();
        });
        const double tau = 1.0;
        at::Tensor v = at::randn({batch, model.getLatentDim()}, generator, at::kDouble) * std::sqrt(tau);
        double flowForward = secondsPerCall(3, 5, [&] { model.decode(v, temperature); });
        FlowSample sample = model.decode(v, temperature);
        at::Tensor positions = sample.x.detach();
        double bridgeTime = secondsPerCall(3, 5, [&] { bridge->evaluate(positions); });
        double klBackward = secondsPerCall(3, 5, [&] {
            FlowSample s = model.decode(v, temperature);
            at::Tensor u = bridge->reducedEnergy(s.x);
            at::Tensor loss = (s.logq + u - s.logJ).mean();
            loss.backward();
        }) - flowForward - bridgeTime;
        // The trainer itself, mixed stage.
        TrainerOptions options;
        options.numThreads = threads;
        options.logInterval = 1000000;
        FlowTrainer trainer(model, options);
        trainer.setData(frames, temperature);
        trainer.setEnergy(bridge);
        TrainingStage stage;
        stage.name = "mixed";
        stage.steps = steps;
        stage.batchSize = batch;
        stage.lambdaStart = stage.lambdaEnd = 0.5;
        TrainingSummary summary = trainer.train(stage);
        double rate = steps / summary.seconds;
        rates.push_back(rate);
        std::printf("%-8d %10.1f ms %10.1f ms %10.1f ms %10.1f ms %10.1f ms %12.2f\n", threads, 1e3 * ml,
                    1e3 * flowForward, 1e3 * bridgeTime, 1e3 * klBackward, 1e3 * summary.seconds / steps, rate);
    }
    std::printf("\ntraining steps/s, 2 threads vs 1: %.2fx\n", rates[1] / rates[0]);
    return 0;
}
