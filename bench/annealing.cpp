// Temperature annealing on the flow's own samples (annealFlow, after TA-BG)
// for the pipeline's 300 K spline flow, measured by the Kish ESS of the
// pipeline's five sets of flow samples at 300 K. The flow starts either
//   --from-rung T  fitted by the default preset's maximum likelihood to the
//                  frames of one replica-exchange rung at T (the flow's 300 K
//                  density fitted to T's frames: no 300 K data), or
//   --flow FILE    as a trained flow (e.g. a pipeline run's flow.bgflow),
// and is then annealed down --ladder (K; the last is the target, 300 K;
// repeating it refines there), each temperature with --samples flow
// samples and --steps weighted-ML steps. Samples whose stereocentres have
// the other handedness than the minimized structure weigh 0.
//
//   build/bench/annealing --md DIR --from-rung 600 [--ladder 520,450,390,340,300,300]
//   build/bench/annealing --md DIR --flow FILE --ladder 300,300
//       [--samples 20000] [--steps 200] [--batch 512] [--lr 3e-4] [--seeds 1] [--sets 5]
// --md is the output folder of a default pipeline run (its md<T>.csv/.dcd).

#include "AlanineDipeptide.h"
#include "BenchSupport.h"

#include "openmmbg/FlowAnnealing.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/Positions.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdio>
#include <functional>

using namespace OpenMMBG;
using namespace OpenMMBG::bench;

namespace {

/** "ESS median%  set, set, ..." of the pipeline's sets at 300 K. */
std::string describeSets(const alanine::Molecule& molecule, const FlowModel& model, int samples, int sets) {
    std::vector<double> ess;
    std::string list;
    for (const alanine::Samples& s : alanine::sampleFlowSets(molecule, model, 300.0, samples, sets)) {
        ess.push_back(100 * kishEffectiveSampleSize(s.logWeight));
        char entry[32];
        std::snprintf(entry, sizeof(entry), "%s%.2f", list.empty() ? "" : ", ", ess.back());
        list += entry;
    }
    std::sort(ess.begin(), ess.end());
    char head[64];
    std::snprintf(head, sizeof(head), "median %.2f%% (", ess[ess.size() / 2]);
    return head + list + ")";
}

void run(int argc, char** argv) {
    alanine::Preset preset = alanine::presetNamed("default");
    std::string mdFolder, flowPath;
    double fromRung = 0;
    std::vector<int> ladder = {520, 450, 390, 340, 300, 300}, seeds = {1};
    AnnealingSchedule schedule;
    schedule.stage.name = "anneal";
    schedule.stage.steps = 200;
    schedule.stage.batchSize = preset.plan.batchSize;
    schedule.stage.learningRate = 3e-4;
    int sets = 5, setSamples = 20000;
    alanine::forEachOption(argc, argv, [&](const std::string& option, const std::function<std::string()>& value) {
        if (option == "--md") mdFolder = value();
        else if (option == "--from-rung") fromRung = std::stod(value());
        else if (option == "--flow") flowPath = value();
        else if (option == "--ladder") ladder = parseList(value());
        else if (option == "--samples") schedule.samples = std::stoll(value());
        else if (option == "--steps") schedule.stage.steps = std::stoll(value());
        else if (option == "--batch") schedule.stage.batchSize = std::stoll(value());
        else if (option == "--lr") schedule.stage.learningRate = std::stod(value());
        else if (option == "--seeds") seeds = parseList(value());
        else if (option == "--sets") sets = std::stoi(value());
        else throw alanine::UsageError("unknown option " + option);
    });
    if ((fromRung > 0) == !flowPath.empty())
        throw alanine::UsageError("give either --from-rung T (with --md DIR) or --flow FILE");
    if (fromRung > 0 && mdFolder.empty())
        throw alanine::UsageError("--from-rung needs --md DIR, the output folder of a default pipeline run");
    if (ladder.empty() || sets < 1)
        throw alanine::UsageError("--ladder needs at least one temperature and --sets at least 1");
    loadPlugins();
    const alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    schedule.temperatures.assign(ladder.begin(), ladder.end());
    schedule.stereoReference = positionsToTensor(molecule.structure.positions);
    OpenMMEnergy::Options bridgeOptions;
    bridgeOptions.platform = "Reference";
    bridgeOptions.numWorkers = 1;
    for (int seed : seeds) {
        const double cpuBegin = alanine::processCpuSeconds();
        alanine::TrainingPlan plan = preset.plan;
        plan.seed = plan.flow.seed = seed;
        FlowModel model = [&] {
            if (!flowPath.empty())
                return FlowModel::load(flowPath, *molecule.system);
            const alanine::Samples rung = alanine::readRung(molecule, alanine::rungPath(mdFolder, fromRung));
            std::printf("seed %d: maximum likelihood on the %.0f K rung (%lld frames) for the 300 K density\n", seed,
                        fromRung, (long long) rung.x.size(0));
            return alanine::trainFlow(molecule, rung.x, plan, "", nullptr);
        }();
        const double cpuStart = alanine::processCpuSeconds() - cpuBegin;
        std::printf("seed %d start (%.0f CPU s): ESS at 300 K %s\n", seed, cpuStart,
                    describeSets(molecule, model, setSamples, sets).c_str());
        std::fflush(stdout);
        TrainerOptions options;
        options.numThreads = 1;
        options.seed = seed;
        options.logInterval = schedule.stage.steps;
        FlowTrainer trainer(model, options);
        OpenMMEnergy energy(*molecule.system, 300.0, bridgeOptions);
        schedule.seed = seed;
        const double annealBegin = alanine::processCpuSeconds();
        annealFlow(trainer, energy, schedule, [&](const AnnealingStep& step) {
            std::printf("  %5.0f K: ESS of the flow's samples %6.2f%%, zero weight %.2f%%, then %lld steps (%.0f CPU s so far)\n",
                        step.temperature, 100 * step.essFraction, 100 * step.zeroWeightFraction,
                        (long long) step.training.last.step, alanine::processCpuSeconds() - annealBegin);
            std::fflush(stdout);
        });
        std::printf("seed %d annealed (%.0f CPU s): ESS at 300 K %s\n", seed, alanine::processCpuSeconds() - annealBegin,
                    describeSets(molecule, model, setSamples, sets).c_str());
        std::fflush(stdout);
    }
}

} // namespace

int main(int argc, char** argv) {
    return alanine::runReportingErrors([&] { run(argc, argv); });
}
