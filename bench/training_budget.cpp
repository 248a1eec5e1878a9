// How the pipeline's 300 K flow gains from a larger training budget: trains
// the default preset's spline flow on the replica-exchange MD of a finished
// pipeline run (its md<T>.csv and .dcd, every rung reweighted by MBAR to
// the preset's training-data temperature, the pipeline's split and early
// stopping) with each combination of
// ML and mixed stage lengths and seeds (a seed sets the initial weights and
// the trainer's random numbers), and prints per flow the held-out NLL, the
// Kish ESS of --sets independent sets of flow samples at 300 K with their
// median, and the training CPU seconds. One training run is one draw of a
// flow's quality: compare lengths over several seeds.
//
//   build/bench/training_budget --md DIR [--ml-steps 1000] [--mixed-steps 0] [--seeds 1]
//       [--samples 20000] [--sets 5] [--lambda 0.5] [--mixed-lr 3e-4] [--batch 256]
//       [--blocks 4] [--layers 2] [--width 64] [--bins 8] [--by-level 0|1] [--frames F] [--data-temperature K]
//       [--flow-type spline|tsf] [--tsf-splines 0|1] [--train-temperature 300] [--eval-temperatures 300]
// (defaults: the default preset's)
// --ml-steps, --mixed-steps and --seeds take comma-separated lists; the other
// options change the preset's training plan for every flow. --frames keeps
// the first F frames of each rung (a shorter MD run of the same kind);
// --data-temperature the temperature the rungs are reweighted to for training,
// --train-temperature the flow's reference temperature (its NLL is printed there).
// --eval-temperatures (K, a list) gives the ESS at each of them, and for a
// temperature of the MD ladder the Ramachandran KL of the (unweighted) flow
// samples to that rung: a TSF is steered there, a spline flow's prior scaled.

#include "AlanineDipeptide.h"
#include "BenchSupport.h"
#include "openmmbg/tools/Metrics.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

using namespace OpenMMBG;
using namespace OpenMMBG::bench;

namespace {

void run(int argc, char** argv) {
    alanine::Preset preset = alanine::presetNamed("default");
    preset.plan.flowType = "spline";  // the pipeline's default
    std::string mdFolder;
    std::vector<int> mlSteps = {(int) preset.plan.mlSteps}, mixedSteps = {(int) preset.plan.mixedSteps}, seeds = {1};
    int samples = 20000, sets = 5;
    long long framesPerRung = 0;
    std::vector<int> evalTemperatures = {300};
    alanine::forEachOption(argc, argv, [&](const std::string& option, const std::function<std::string()>& value) {
        if (option == "--md") mdFolder = value();
        else if (option == "--ml-steps") mlSteps = parseList(value());
        else if (option == "--mixed-steps") mixedSteps = parseList(value());
        else if (option == "--seeds") seeds = parseList(value());
        else if (option == "--samples") samples = std::stoi(value());
        else if (option == "--sets") sets = std::stoi(value());
        else if (option == "--frames") framesPerRung = std::stoll(value());
        else if (option == "--data-temperature") preset.trainingDataTemperature = std::stod(value());
        else if (option == "--lambda") preset.plan.mixedLambda = std::stod(value());
        else if (option == "--mixed-lr") preset.plan.mixedLearningRate = std::stod(value());
        else if (option == "--batch") preset.plan.batchSize = std::stoll(value());
        else if (option == "--blocks") preset.plan.flow.numBlocks = std::stoi(value());
        else if (option == "--layers") preset.plan.flow.hiddenLayers = std::stoi(value());
        else if (option == "--width") preset.plan.flow.hiddenWidth = std::stoi(value());
        else if (option == "--bins") preset.plan.flow.splineBins = std::stoi(value());
        else if (option == "--by-level") preset.plan.flow.conditionByLevel = value() == "1";
        else if (option == "--flow-type") preset.plan.flowType = value();
        else if (option == "--tsf-splines") preset.plan.flow.tsfSplineCouplings = value() == "1";
        else if (option == "--train-temperature") preset.plan.temperature = std::stod(value());
        else if (option == "--eval-temperatures") evalTemperatures = parseList(value());
        else throw alanine::UsageError("unknown option " + option);
    });
    if (mdFolder.empty())
        throw alanine::UsageError("--md DIR is required: the output folder of a default pipeline run");
    if (sets < 1 || samples < 2)
        throw alanine::UsageError("--sets must be at least 1 and --samples at least 2");
    loadPlugins();
    const alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    std::vector<alanine::Samples> rungs;
    for (double temperature : preset.mdLadder) {
        alanine::Samples rung = alanine::readRung(molecule, alanine::rungPath(mdFolder, temperature));
        if (framesPerRung > 0 && framesPerRung < rung.x.size(0)) {
            for (at::Tensor* series : {&rung.x, &rung.energy, &rung.phi, &rung.psi})
                if (series->defined())
                    *series = series->narrow(0, 0, framesPerRung);
        }
        rungs.push_back(rung);
    }
    const alanine::TrainingSet data = alanine::trainingSetOf(preset, rungs);
    const double temperature = preset.plan.temperature;
    std::printf("training data: %lld frames (%.0f effective at %.0f K) from %s\n", (long long) data.frames.size(0),
                data.effectiveFrames, preset.dataTemperature(), mdFolder.c_str());
    const alanine::TrainingPlan& base = preset.plan;
    std::printf("%s flow: %d blocks%s, %d x %d, %d bins; batch %lld; mixed stage lambda 0 -> %.2f, lr %.1e\n",
                (base.flowType + (base.flowType == "tsf" && base.flow.tsfSplineCouplings ? " with spline couplings" : ""))
                    .c_str(),
                base.flow.numBlocks, base.flow.conditionByLevel && base.flowType == "spline" ? " per level" : "",
                base.flow.hiddenLayers, base.flow.hiddenWidth, base.flow.splineBins, (long long) base.batchSize,
                base.mixedLambda, base.mixedLearningRate);
    std::printf("%8s %8s %5s %10s %8s %6s %10s %8s  %s\n", "ML", "mixed", "seed", "NLL test", "CPU s", "T (K)",
                "median ESS", "rama KL", "ESS/N % of each sample set");
    for (int ml : mlSteps)
        for (int mixed : mixedSteps)
            for (int seed : seeds) {
                alanine::TrainingPlan plan = base;
                plan.mlSteps = ml;
                plan.mixedSteps = mixed;
                plan.seed = seed;
                plan.flow.seed = seed;
                const double cpuBegin = alanine::processCpuSeconds();
                const FlowModel model = alanine::trainFlow(molecule, data, plan, "", nullptr);
                const double cpu = alanine::processCpuSeconds() - cpuBegin;
                at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(5);
                const double nll = -model.logProb(data.validation, temperature, generator).mean().item<double>();
                for (int evalTemperature : evalTemperatures) {
                    std::vector<double> ess;
                    std::string list;
                    // The pipeline's sets of flow samples (the same seeds).
                    const std::vector<alanine::Samples> flowSets =
                        alanine::sampleFlowSets(molecule, model, evalTemperature, samples, sets);
                    for (const alanine::Samples& s : flowSets) {
                        ess.push_back(100 * kishEffectiveSampleSize(s.logWeight));
                        char entry[32];
                        std::snprintf(entry, sizeof(entry), "%s%.2f", list.empty() ? "" : ", ", ess.back());
                        list += entry;
                    }
                    std::vector<double> sorted = ess;
                    std::sort(sorted.begin(), sorted.end());
                    double kl = NAN;
                    for (size_t r = 0; r < preset.mdLadder.size(); r++)
                        if (std::abs(preset.mdLadder[r] - evalTemperature) < 0.5) {
                            const alanine::Samples all = alanine::concatenated(flowSets);
                            kl = ramachandranKL(rungs[r].phi, rungs[r].psi, all.phi, all.psi);
                        }
                    std::printf("%8d %8d %5d %10.3f %8.0f %6d %9.2f%% %8.3f  %s\n", ml, mixed, seed, nll, cpu,
                                evalTemperature, sorted[sorted.size() / 2], kl, list.c_str());
                    std::fflush(stdout);
                }
            }
}

} // namespace

int main(int argc, char** argv) {
    return alanine::runReportingErrors([&] { run(argc, argv); });
}
