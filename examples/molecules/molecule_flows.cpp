// Boltzmann generators for molecules other than alanine dipeptide: capped
// proline, capped phenylalanine and alanine tetrapeptide (data/), or any
// molecule given as a System XML and a PDB.
//   1. Langevin MD at 300 K (training data);
//   2. a spline flow on internal coordinates (automatic z-matrix; a ring bond
//      outside the z-matrix is held by the force field), trained by maximum
//      likelihood, then mixed ML + KL;
//   3. flow samples at 300 K and their Kish ESS;
//   4. LatentMetropolisIntegrator at 300 K and TSFParallelTemperingIntegrator
//      on 300 ... 450 K, with their acceptance rates;
//   5. summary.json / summary.txt and the flow (flow.pt) in the output folder.
//
//   molecule_flows --molecule NAME [--preset default|smoke] [--output DIR] [--data DIR]
// NAME is capped_proline, capped_phenylalanine, alanine_tetrapeptide or the
// name of NAME.pdb and NAME_system.xml in --data.

#include "AlanineDipeptide.h"

#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>

#include <chrono>
#include <cmath>
#include <cstdio>

using namespace OpenMMBG;
using namespace OpenMMBG::alanine;

namespace {

const double TEMPERATURE = 300.0;                              // K
const std::vector<double> LADDER = {300.0, 350.0, 400.0, 450.0};  // K

struct Options {
    std::string molecule;
    std::string preset = "default";
    std::string output;  // results/molecules/NAME if empty
    std::string data = std::string(BG_SOURCE_DIR) + "/examples/molecules/data";
};

Options parse(int argc, char** argv) {
    const std::string usage = "usage: molecule_flows --molecule NAME [--preset default|smoke] [--output DIR] [--data DIR]";
    Options options;
    forEachOption(argc, argv, [&](const std::string& arg, const std::function<std::string()>& value) {
        if (arg == "--molecule")
            options.molecule = value();
        else if (arg == "--preset")
            options.preset = value();
        else if (arg == "--output")
            options.output = value();
        else if (arg == "--data")
            options.data = value();
        else if (arg == "--help" || arg == "-h")
            throw UsageError(usage);
        else
            throw UsageError("unknown option '" + arg + "' (see --help)");
    });
    if (options.molecule.empty())
        throw UsageError("--molecule is required; " + usage);
    if (options.preset != "default" && options.preset != "smoke")
        throw UsageError("unknown preset '" + options.preset + "' (use default or smoke)");
    if (options.output.empty())
        options.output = "results/molecules/" + options.molecule;
    return options;
}

/** This program's presets (smoke: seconds, for tests of the program; its numbers mean nothing). */
Preset presetOf(const std::string& name) {
    const bool smoke = name == "smoke";
    Preset p;
    p.replicas = (int) LADDER.size();
    p.mdSteps = smoke ? 10000 : 2000000;
    p.mdInterval = 100;
    p.plan.flowType = "spline";
    p.plan.temperature = TEMPERATURE;
    p.plan.flow.numBlocks = 4;
    p.plan.flow.hiddenLayers = 2;
    p.plan.flow.hiddenWidth = smoke ? 32 : 128;
    p.plan.batchSize = smoke ? 64 : 256;
    p.plan.mlSteps = smoke ? 30 : 2000;
    p.plan.mixedSteps = smoke ? 10 : 500;
    p.flowSamples = smoke ? 200 : 20000;
    for (ChainOptions* chain : {&p.chain, &p.pt}) {
        chain->latentStepSize = 0.05;
        chain->independenceProbability = 0.1;
        chain->interval = 10;
        chain->warmUpSteps = smoke ? 100 : 1000;
    }
    p.chain.steps = smoke ? 300 : 20000;
    p.chain.seed = 31;
    p.pt.steps = smoke ? 200 : 10000;
    p.pt.seed = 41;
    return p;
}

void run(const Options& options) {
    const std::string base = options.data + "/" + options.molecule;
    if (!pathExists(base + ".pdb") || !pathExists(base + "_system.xml"))
        throw UsageError("no molecule '" + options.molecule + "' in " + options.data + " (need " + options.molecule
                         + ".pdb and " + options.molecule + "_system.xml)");
    const Molecule molecule = loadMolecule(base + "_system.xml", base + ".pdb", "");
    const Preset preset = presetOf(options.preset);
    const auto begin = std::chrono::steady_clock::now();
    makeDirectories(options.output);
    Summary summary;
    summary.text("molecule", options.molecule);
    summary.text("preset", options.preset);
    summary.number("atoms", molecule.system->getNumParticles());
    std::printf("%s: %d atoms, preset %s, results in %s\n", options.molecule.c_str(),
                molecule.system->getNumParticles(), options.preset.c_str(), options.output.c_str());

    std::printf("1. MD at %.0f K (%.2f ns)\n", TEMPERATURE, preset.mdSteps * 1e-6);
    MDOptions md;
    md.temperature = TEMPERATURE;
    md.steps = preset.mdSteps;
    md.interval = preset.mdInterval;
    md.equilibrationSteps = options.preset == "smoke" ? 1000 : 20000;
    double cpu = threadCpuSeconds();
    const Samples data = runMD(molecule, md, progressPrinter("MD 300 K"));
    summary.number("md_frames", (double) data.x.size(0));
    summary.number("cpu_seconds_md", threadCpuSeconds() - cpu);
    const Estimate mdEnergy = blockAverage(data.energy);
    summary.estimate("md_mean_energy_kJ_mol", mdEnergy.value, mdEnergy.error);

    std::printf("2. spline flow: %lld ML steps, %lld mixed steps\n", preset.plan.mlSteps, preset.plan.mixedSteps);
    cpu = processCpuSeconds();
    auto progress = [](const TrainingProgress& p) {
        std::printf("  %s\n", describeProgress(p).c_str());
        std::fflush(stdout);
    };
    const FlowModel model = trainFlow(molecule, data.x, preset.plan, "", progress);
    summary.number("cpu_seconds_training", processCpuSeconds() - cpu);
    model.save(options.output + "/flow.pt");

    std::printf("3. %d flow samples at %.0f K\n", preset.flowSamples, TEMPERATURE);
    const Samples flow = sampleFlow(molecule, model, TEMPERATURE, preset.flowSamples, 21);
    summary.number("flow300_ess", kishEffectiveSampleSize(flow.logWeight));
    summary.number("flow300_ess_clipped", kishEffectiveSampleSize(flow.logWeight, 1e-4));
    summary.number("flow300_finite_energy_fraction", at::isfinite(flow.energy).to(at::kDouble).mean().item<double>());

    std::printf("4a. LatentMetropolisIntegrator at %.0f K, %lld steps\n", TEMPERATURE, preset.chain.steps);
    const ChainResult chain = runLatentMetropolis(molecule, model, TEMPERATURE, preset.chain,
                                                  progressPrinter("Metropolis 300 K"));
    summary.number("mcmc_random_walk_acceptance", chain.acceptance[0]);
    summary.number("mcmc_independence_acceptance", chain.independence[0]);
    summary.number("mcmc_latent_step_size", chain.latentStepSize);
    const Estimate chainEnergy = blockAverage(chain.samples.energy);
    summary.estimate("mcmc_mean_energy_kJ_mol", chainEnergy.value, chainEnergy.error);

    std::printf("4b. TSFParallelTemperingIntegrator on 300 ... 450 K, %lld steps\n", preset.pt.steps);
    const ChainResult pt = runParallelTempering(molecule, model, LADDER, preset.pt, progressPrinter("parallel tempering"));
    summary.list("pt_random_walk_acceptance", pt.acceptance);
    summary.list("pt_independence_acceptance", pt.independence);
    summary.list("pt_exchange_acceptance", pt.exchangeAcceptance);
    summary.number("pt_round_trips", (double) pt.roundTrips);
    const Estimate ptEnergy = blockAverage(pt.samples.energy);
    summary.estimate("pt_mean_energy_300K_kJ_mol", ptEnergy.value, ptEnergy.error);

    summary.number("wall_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    summary.write(options.output);
    std::printf("summary: %s/summary.txt\n", options.output.c_str());
}

} // namespace

int main(int argc, char** argv) {
    return runReportingErrors([&] {
        const Options options = parse(argc, argv);
        // The integrators' kernels come from the installed plugin, as in any OpenMM program.
        OpenMM::Platform::loadPluginsFromDirectory(OpenMM::Platform::getDefaultPluginsDirectory());
        run(options);
    });
}
