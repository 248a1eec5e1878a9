// How flow quality grows with training: a flow on alanine dipeptide trained by
// maximum likelihood on MD frames, with the Kish ESS of its importance weights
// and its train and test NLL printed every --eval-every steps. The learning
// rate follows one cosine decay over all --steps; the baseline is the same
// flow before training (step 0).
//
//   build/bench/flow_quality --data md600.dcd [--temperature 600] [--flow-type spline|tsf|realnvp]
//       [--steps 6000] [--eval-every 1000] [--batch 256] [--lr 1e-3] [--final-lr 1e-5]
//       [--blocks 4] [--layers 2] [--width 128] [--bins 8] [--tsf-splines 0|1] [--samples 5000] [--threads 1]
//       [--mixed-steps 0] [--lambda 0.2] [--mixed-lr 3e-4]
//
// With --mixed-steps, a mixed stage follows (L = (1 - lambda) L_ML + lambda L_KL,
// lambda ramped from 0 to --lambda, the KL part through the energy bridge at
// --temperature, learning rate decaying from --mixed-lr to a tenth of it).
// The last 10% of the frames are held out for the test NLL.

#include "AlanineDipeptide.h"
#include "BenchSupport.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/tools/DCDFile.h"

#include <cmath>
#include <cstdio>
#include <functional>

using namespace OpenMMBG;
using namespace OpenMMBG::bench;

namespace {

void run(int argc, char** argv) {
    std::string dataPath, flowType = "spline";
    double temperature = 600.0, learningRate = 1e-3, finalLearningRate = 1e-5;
    long long steps = 6000, evalEvery = 1000, batch = 256, mixedSteps = 0;
    double lambda = 0.2, mixedLearningRate = 3e-4;
    int samples = 5000, threads = 1;
    FlowConfig config;
    config.numBlocks = 4;
    config.hiddenLayers = 2;
    config.hiddenWidth = 128;
    alanine::forEachOption(argc, argv, [&](const std::string& option, const std::function<std::string()>& value) {
        if (option == "--data") dataPath = value();
        else if (option == "--temperature") temperature = std::stod(value());
        else if (option == "--flow-type") flowType = value();
        else if (option == "--steps") steps = std::stoll(value());
        else if (option == "--eval-every") evalEvery = std::stoll(value());
        else if (option == "--batch") batch = std::stoll(value());
        else if (option == "--lr") learningRate = std::stod(value());
        else if (option == "--final-lr") finalLearningRate = std::stod(value());
        else if (option == "--blocks") config.numBlocks = std::stoi(value());
        else if (option == "--layers") config.hiddenLayers = std::stoi(value());
        else if (option == "--width") config.hiddenWidth = std::stoi(value());
        else if (option == "--bins") config.splineBins = std::stoi(value());
        else if (option == "--tsf-splines") config.tsfSplineCouplings = value() == "1";
        else if (option == "--samples") samples = std::stoi(value());
        else if (option == "--threads") threads = std::stoi(value());
        else if (option == "--mixed-steps") mixedSteps = std::stoll(value());
        else if (option == "--lambda") lambda = std::stod(value());
        else if (option == "--mixed-lr") mixedLearningRate = std::stod(value());
        else throw alanine::UsageError("unknown option " + option);
    });
    if (dataPath.empty())
        throw alanine::UsageError("--data FILE.dcd is required (MD frames at --temperature)");
    loadPlugins();
    alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    at::Tensor frames = readDcd(dataPath, molecule.system->getNumParticles());
    const int64_t numFrames = frames.size(0), numTest = numFrames / 10;
    at::Tensor train = frames.narrow(0, 0, numFrames - numTest);
    at::Tensor test = frames.narrow(0, numFrames - numTest, numTest);
    at::Tensor trainSubset = train.narrow(0, 0, std::min<int64_t>(numTest, train.size(0)));

    FlowModel model = FlowModel::createForMolecule(*molecule.system, train, flowType, config, temperature);
    TrainerOptions options;
    options.seed = 1;
    options.numThreads = threads;
    options.logInterval = 1000000;
    FlowTrainer trainer(model, options);
    trainer.setData(train, temperature);
    OpenMMEnergy::Options bridgeOptions;
    bridgeOptions.platform = "Reference";
    bridgeOptions.energyCut = 1000.0;
    trainer.setEnergy(std::make_shared<OpenMMEnergy>(*molecule.system, temperature, bridgeOptions));
    std::printf("%s flow (%d blocks, %d x %d, %d bins), ML on %lld frames at %.0f K, batch %lld, lr %.1e -> %.1e "
                "(cosine over %lld steps); %lld test frames, %d flow samples per ESS\n",
                flowType.c_str(), config.numBlocks, config.hiddenLayers, config.hiddenWidth, config.splineBins,
                (long long) train.size(0), temperature, batch, learningRate, finalLearningRate, steps,
                (long long) numTest, samples);
    std::printf("%8s %10s %10s %10s %12s %10s\n", "step", "NLL train", "NLL test", "ESS/N", "ESS/N clip", "CPU s");
    const double begin = alanine::processCpuSeconds();
    auto report = [&](long long step) {
        alanine::Samples s = alanine::sampleFlow(molecule, model, temperature, samples, 7);
        std::printf("%8lld %10.3f %10.3f %9.3f%% %11.3f%% %10.0f\n", step, trainer.testNLL(trainSubset, temperature),
                    trainer.testNLL(test, temperature), 100 * kishEffectiveSampleSize(s.logWeight),
                    100 * kishEffectiveSampleSize(s.logWeight, 1e-4), alanine::processCpuSeconds() - begin);
        std::fflush(stdout);
    };
    report(0);
    // One cosine decay over all steps, cut into stages of evalEvery steps.
    auto rateAt = [&](long long step) {
        return finalLearningRate + 0.5 * (learningRate - finalLearningRate) * (1 + std::cos(M_PI * step / steps));
    };
    for (long long done = 0; done < steps;) {
        long long chunk = std::min(evalEvery, steps - done);
        trainer.train(TrainingStage::maximumLikelihood("ml" + std::to_string(done), chunk, batch, rateAt(done),
                                                       rateAt(done + chunk)));
        done += chunk;
        report(done);
    }
    // The mixed stage: lambda ramped linearly, the learning rate decaying by cosine, cut into chunks.
    auto mixedRateAt = [&](long long step) {
        return mixedLearningRate * (0.1 + 0.45 * (1 + std::cos(M_PI * step / mixedSteps)));
    };
    for (long long done = 0; done < mixedSteps;) {
        long long chunk = std::min(evalEvery, mixedSteps - done);
        TrainingStage stage = TrainingStage::maximumLikelihood("mixed" + std::to_string(done), chunk, batch,
                                                               mixedRateAt(done), mixedRateAt(done + chunk));
        stage.lambdaStart = lambda * done / mixedSteps;
        stage.lambdaEnd = lambda * (done + chunk) / mixedSteps;
        trainer.train(stage);
        done += chunk;
        std::printf("mixed, lambda %.2f:\n", stage.lambdaEnd);
        report(steps + done);
    }
}

} // namespace

int main(int argc, char** argv) {
    return alanine::runReportingErrors([&] { run(argc, argv); });
}
