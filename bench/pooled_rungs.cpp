// Does a flow for 300 K learn more from every rung of replica-exchange MD,
// reweighted to 300 K by MBAR, than from the 300 K rung alone? Runs the
// pipeline's replica-exchange MD (default preset: 4 rungs 300 ... 600 K,
// 5 ns each), then trains the pipeline's flow by maximum likelihood with
// early stopping twice, in the same run and from the same initial weights:
//   (a) on the 300 K rung (the pipeline's training data),
//   (b) on all rungs, each frame weighted by its MBAR weight at 300 K
//       (FlowTrainer's weighted data: batches drawn with those weights).
// Both hold out the last 10% of every rung's frames; the 300 K rung's
// held-out frames are the validation and test set. Printed per variant: the
// test NLL, and over --seeds independent sets of flow samples at 300 K the
// Kish ESS, the clipped ESS and dF_phi of the reweighted samples.
//
//   build/bench/pooled_rungs [--flow-type spline|tsf] [--md-ns 5] [--ml-steps 1000] [--samples 20000] [--seeds 3]
// With the default --md-ns the MD is the pipeline's own (same seed, same processes).

#include "AlanineDipeptide.h"
#include "BenchSupport.h"

#include <ATen/ATen.h>
#include <cmath>
#include <cstdio>
#include <functional>

using namespace OpenMMBG;
using namespace OpenMMBG::bench;

namespace {

struct Variant {
    std::string name;
    alanine::TrainingSet data;
};

void run(int argc, char** argv) {
    alanine::Preset preset = alanine::presetNamed("default");
    double mdNs = preset.mdSteps * 1e-6;
    long long mlSteps = preset.plan.mlSteps;
    int samples = 20000, seeds = 3;
    preset.plan.flowType = "spline";  // the pipeline's default
    alanine::forEachOption(argc, argv, [&](const std::string& option, const std::function<std::string()>& value) {
        if (option == "--md-ns") mdNs = std::stod(value());
        else if (option == "--flow-type") preset.plan.flowType = value();
        else if (option == "--ml-steps") mlSteps = std::stoll(value());
        else if (option == "--samples") samples = std::stoi(value());
        else if (option == "--seeds") seeds = std::stoi(value());
        else throw alanine::UsageError("unknown option " + option);
    });
    preset.mdSteps = (long long) std::llround(mdNs * 1e6);
    loadPlugins();
    alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    const alanine::TrainingPlan& plan = preset.plan;
    const double temperature = plan.temperature;

    std::printf("replica-exchange MD: %zu rungs %.0f ... %.0f K, %.2f ns each\n", preset.mdLadder.size(),
                preset.mdLadder.front(), preset.mdLadder.back(), mdNs);
    std::fflush(stdout);
    const alanine::ReplicaExchangeResult remd =
        alanine::runReplicaExchangeMD(molecule, alanine::replicaExchangeOf(preset, 11));

    // Every rung's first 90% for training, its last 10% held out (the pipeline's split).
    const alanine::TrainingSet rung = alanine::heldOutSplit(remd.rungs.front().x, plan.validationFraction);
    const alanine::TrainingSet pooled =
        alanine::pooledRungs(remd.rungs, preset.mdLadder, plan.validationFraction, temperature);
    const at::Tensor& test = rung.validation;
    std::printf("MBAR over %lld frames: Kish ESS of the pooled frames at %.0f K %.0f (the 300 K rung alone: %lld)\n",
                (long long) pooled.frames.size(0), temperature, pooled.effectiveFrames, (long long) rung.frames.size(0));

    const std::vector<Variant> variants = {{"300 K rung", rung}, {"all rungs, MBAR weights", pooled}};
    std::printf("\n%s flow, maximum likelihood at %.0f K\n", plan.flowType.c_str(), temperature);
    std::printf("%-26s %8s %10s %9s %10s %16s\n", "training data", "steps", "NLL test", "ESS/N", "ESS/N clip",
                "dF_phi (kT)");
    for (const Variant& variant : variants) {
        // The same coordinates, normalisation and initial weights for both: made from the 300 K rung.
        FlowModel model = FlowModel::createForMolecule(*molecule.system, variant.data.setupFrames, plan.flowType,
                                                       plan.flow, temperature);
        TrainerOptions options;
        options.seed = plan.seed;
        options.numThreads = plan.threads;
        options.logInterval = 1000000;
        FlowTrainer trainer(model, options);
        if (variant.data.logWeights.defined())
            trainer.setData(variant.data.frames, temperature, variant.data.logWeights);
        else
            trainer.setData(variant.data.frames, temperature);
        trainer.setValidationData(test);
        TrainingStage ml = TrainingStage::maximumLikelihood("ml", mlSteps, plan.batchSize, plan.learningRate,
                                                            plan.mlFinalLearningRate);
        ml.validationInterval = plan.validationInterval;
        ml.validationPatience = plan.validationPatience;
        const TrainingSummary summary = trainer.train(ml);
        const double nll = trainer.testNLL(test, temperature);
        for (int seed = 0; seed < seeds; seed++) {
            const alanine::Samples s = alanine::sampleFlow(molecule, model, temperature, samples, 7 + seed);
            const Estimate dF = weightedPhiFreeEnergyDifference(s.phi, s.logWeight);
            std::printf("%-26s %8lld %10.3f %8.2f%% %9.2f%% %9.2f +- %.2f\n", seed == 0 ? variant.name.c_str() : "",
                        (long long) summary.last.step, nll, 100 * kishEffectiveSampleSize(s.logWeight),
                        100 * kishEffectiveSampleSize(s.logWeight, 1e-4), dF.value, dF.error);
            std::fflush(stdout);
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    return alanine::runReportingErrors([&] { run(argc, argv); });
}
