// The alanine dipeptide pipeline (paper 001, Fig. 3), end to end:
//   1. replica-exchange MD on 4 rungs from 300 to 600 K (training data: every
//      rung, reweighted by MBAR to 330 K, to 300 K for the smoke preset; the
//      300 and 600 K rungs for comparison);
//   2. a flow (spline by default, conditioned level by level) trained at
//      300 K: maximum likelihood stopped early on held-out 300 K frames, then
//      (smoke preset) mixed ML + KL;
//   3. flow samples at both temperatures, and sampling at 300 K with
//      LatentMetropolisIntegrator and TSFParallelTemperingIntegrator (300 ... 600 K);
//   4. a results folder: series (CSV), trajectories (DCD), the flow, a JSON and
//      text summary, and PNG plots (plot_results.py).
// Every stage writes its outputs when it finishes; a rerun skips finished
// stages and resumes an interrupted training from its checkpoint.
//
//   alanine_dipeptide_pipeline [--preset default|long|smoke] [--output DIR]
//                              [--flow FILE] [--flow-type spline|tsf] [--data DIR]
//                              [--reference FILE[,FILE...]|none] [--no-plots]
// Every dF_phi is compared with the reference (alanine_dipeptide_reference's
// summary.json; with several, the estimate of smallest error for each basin
// and temperature; by default the three committed ones): its difference in
// combined error bars.

#include "AlanineDipeptide.h"

#include "openmmbg/ComputeSettings.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/tools/DCDFile.h"

#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

using namespace OpenMMBG;
using namespace OpenMMBG::alanine;

namespace {

/** Refuses a file of an earlier run that holds `found` samples (or frames) where this preset makes `expected`. */
void checkSameRun(const std::string& path, int64_t found, int64_t expected, const std::string& what) {
    if (found != expected)
        throw UsageError("'" + path + "' has " + std::to_string(found) + " " + what + " where this preset makes "
                         + std::to_string(expected) + ": it belongs to another run; use another --output or the "
                         "same --preset");
}

/** A stage's series from an earlier run, refused if another preset made it. */
Samples reuseSeries(const std::string& path, long long expectedRows) {
    Samples samples = readSeries(path);
    checkSameRun(path, samples.phi.size(0), expectedRows, "samples");
    return samples;
}

/**
 * The rows of an interrupted run's training.csv that its checkpoint covers
 * (the reports after it are made again).
 */
std::string rowsBefore(const std::vector<std::string>& rows, const FlowTrainer& trainer) {
    std::string kept;
    for (const std::string& row : rows) {
        size_t comma = row.find(',');
        if (comma == std::string::npos)
            continue;
        long long step = std::atoll(row.c_str() + comma + 1);
        if (step > 0 && step <= trainer.getCompletedSteps(row.substr(0, comma)))
            kept += row + "\n";
    }
    return kept;
}

struct Options {
    std::string preset = "default";
    std::string output = "results/alanine_dipeptide";
    std::string data = BG_DATA_DIR;
    std::string flow;
    // Of a flow this run trains. The spline flow: at 300 K its importance
    // weights and independence proposals are far better than the TSF's (README).
    std::string flowType = "spline";
    std::string reference = committedReferencePaths(BG_SOURCE_DIR);
    bool plots = true;
};

Options parse(int argc, char** argv) {
    Options options;
    forEachOption(argc, argv, [&](const std::string& arg, const std::function<std::string()>& value) {
        if (arg == "--preset")
            options.preset = value();
        else if (arg == "--output")
            options.output = value();
        else if (arg == "--data")
            options.data = value();
        else if (arg == "--flow")
            options.flow = value();
        else if (arg == "--flow-type")
            options.flowType = value();
        else if (arg == "--reference")
            options.reference = value();
        else if (arg == "--no-plots")
            options.plots = false;
        else if (arg == "--help" || arg == "-h")
            throw UsageError("usage: alanine_dipeptide_pipeline [--preset default|long|smoke] [--output DIR] "
                             "[--flow FILE] [--flow-type spline|tsf] [--data DIR] [--reference FILE[,FILE...]|none] [--no-plots]");
        else
            throw UsageError("unknown option '" + arg + "' (see --help)");
    });
    if (options.flowType != "tsf" && options.flowType != "spline")
        throw UsageError("--flow-type must be tsf or spline, got '" + options.flowType + "'");
    return options;
}

Preset presetOf(const Options& options) {
    try {
        return presetNamed(options.preset);
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
}

/** The stages of one run; each writes its files into the output folder when it finishes. */
class Pipeline {
public:
    explicit Pipeline(const Options& options)
        : options(options), preset(presetOf(options)), out(options.output), molecule(loadMolecule(options.data)) {
        // The inputs, a flow given on the command line included, are checked before anything is made.
        if (!options.flow.empty())
            model = std::make_unique<FlowModel>(FlowModel::load(options.flow, *molecule.system));
        makeDirectories(out);
        summary.text("preset", options.preset);
        summary.text("flow_type", model ? model->getFlow().getTypeName() : options.flowType);
    }

    void run() {
        timed("md", [this] { runMD(); });
        timed("training", [this] { trainFlow(); });
        std::printf("== 3. flow samples, Metropolis chains at %.0f K, parallel tempering %.0f ... %.0f K\n", COLD, COLD,
                    HOT);
        timed("flow_samples", [this] { sampleFlow(); });
        timed("chains", [this] { runChains(); });
        analyse();
        if (options.plots)
            plot();
        std::printf("results in %s\n", out.c_str());
    }

private:
    static constexpr double HOT = 600.0, COLD = 300.0;  // K
    static constexpr int FLOW300_SETS = 5;  // independent sets of flow samples at COLD

    void timed(const std::string& stage, const std::function<void()>& body) {
        const auto begin = std::chrono::steady_clock::now();
        body();
        seconds[stage] = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    }

    /**
     * 1. Replica-exchange MD from 300 to 600 K, or the frames of an earlier
     * run. Every rung is kept (md<T>.csv, md<T>.dcd): the flow trains on all
     * of them; the rungs at 300 K and 600 K are also the comparison.
     */
    void runMD() {
        const std::vector<double>& ladder = preset.mdLadder;
        std::printf("== 1. replica-exchange MD, %zu replicas %.0f ... %.0f K (%.1f ns each, 1 fs steps, exchanges "
                    "every %.1f ps)\n", ladder.size(), ladder.front(), ladder.back(), preset.mdSteps * 1e-6,
                    preset.mdInterval * 1e-3);
        std::vector<std::string> names;
        for (double temperature : ladder)
            names.push_back(rungPath(out, temperature));
        const long long frames = preset.mdSteps / preset.mdInterval;
        if (pathExists(out + "/md.summary")) {
            // md.summary is written last: every rung's files must be there.
            for (const std::string& name : names)
                for (const char* extension : {".csv", ".dcd"})
                    if (!pathExists(name + extension))
                        throw UsageError("'" + out + "' has md.summary but no '" + name + extension + "': it belongs "
                                         "to another run; use another --output or the same --preset");
            std::printf("  found in %s, reused\n", out.c_str());
            summary.load(out + "/md.summary");  // the exchange statistics and CPU time of the run that made them
        } else {
            const ReplicaExchangeResult result = runReplicaExchangeMD(molecule, replicaExchangeOf(preset, 11),
                                                                      progressPrinter("replica-exchange MD"));
            for (size_t k = 0; k < ladder.size(); k++) {
                DcdWriter dcd(names[k] + ".dcd", molecule.system->getNumParticles(), preset.mdInterval);
                dcd.write(result.rungs[k].x);
                writeSeries(result.rungs[k], names[k] + ".csv");
            }
            const size_t mark = summary.mark();
            summary.list("md_temperatures", ladder);
            summary.list("md_exchange_acceptance", result.exchangeAcceptance);
            summary.number("md_round_trips", (double) result.roundTrips);
            summary.number("cpu_seconds_md", result.cpuSeconds);
            summary.saveSince(mark, out + "/md.summary");
        }
        // Train on the frames and energies as stored, so that a rerun that reuses them trains on the same data.
        rungs.clear();
        for (const std::string& name : names) {
            Samples rung = reuseSeries(name + ".csv", frames);
            rung.x = readDcd(name + ".dcd", molecule.system->getNumParticles());
            checkSameRun(name + ".dcd", rung.x.size(0), frames, "frames");
            rungs.push_back(rung);
        }
        md[0] = rungs.back();
        md[1] = rungs.front();
    }

    /** 2. The flow: given, found, or trained (resuming an interrupted training). */
    void trainFlow() {
        std::printf("== 2. %s flow trained at %.0f K\n", options.flowType.c_str(), preset.plan.temperature);
        const std::string flowPath = out + "/flow.bgflow";
        if (model) {
            std::printf("  using %s\n", options.flow.c_str());
        } else if (pathExists(flowPath)) {
            model = std::make_unique<FlowModel>(FlowModel::load(flowPath, *molecule.system));
            if (model->getFlow().getTypeName() != options.flowType)
                throw UsageError("'" + flowPath + "' is a " + model->getFlow().getTypeName() + " flow where this run "
                                 "trains a " + options.flowType + " flow: use another --output or the same --flow-type");
            std::printf("  found %s, reused\n", flowPath.c_str());
            summary.load(out + "/training.summary");  // the CPU time of the run that trained it
        } else {
            const double cpuBegin = processCpuSeconds();
            model = std::make_unique<FlowModel>(trainWithLog());
            model->setMetadata("alanine dipeptide " + options.flowType + " flow, trained at "
                               + std::to_string((int) preset.plan.temperature) + " K on replica-exchange MD ("
                               + (preset.trainOnAllRungs ? "every rung, MBAR weights" : "the lowest rung")
                               + "), preset " + options.preset);
            model->save(flowPath + ".part");
            if (std::rename((flowPath + ".part").c_str(), flowPath.c_str()) != 0)
                throw OpenMM::OpenMMException("cannot rename '" + flowPath + ".part' to '" + flowPath + "'");
            std::remove((out + "/training.checkpoint").c_str());
            // A resumed training counts only what this run did.
            trainingSummary.number("cpu_seconds_training", processCpuSeconds() - cpuBegin);
            trainingSummary.saveSince(0, out + "/training.summary");
            summary.load(out + "/training.summary");
        }
        summary.number("flow_parameters", (double) model->getFlow().getNumParameters());
    }

    /** Trains with a progress log (training.csv) that an interrupted run continues. */
    FlowModel trainWithLog() {
        const std::string checkpointPath = out + "/training.checkpoint", logPath = out + "/training.csv";
        std::vector<std::string> earlierRows;  // of an interrupted run, kept up to its checkpoint
        if (pathExists(checkpointPath)) {
            std::ifstream earlier(logPath);
            std::string row;
            std::getline(earlier, row);  // header
            while (std::getline(earlier, row))
                earlierRows.push_back(row);
        }
        std::ofstream log(logPath);
        log << "stage,step,loss,loss_ml,loss_kl,lambda,mean_reduced_energy,ess,validation_nll\n";
        auto resumed = [&](const FlowTrainer& trainer) {
            std::printf("  resuming from %s\n", checkpointPath.c_str());
            log << rowsBefore(earlierRows, trainer);
            log.flush();
        };
        auto progress = [&](const TrainingProgress& p) {
            std::printf("  %s\n", describeProgress(p).c_str());
            std::fflush(stdout);
            log << p.stage << "," << p.step << "," << p.loss << "," << p.lossML << "," << p.lossKL << "," << p.lambda
                << "," << p.meanReducedEnergy << "," << p.essFraction << "," << p.validationNLL << "\n";
            log.flush();
        };
        alanine::TrainingPlan plan = preset.plan;
        plan.flowType = options.flowType;
        const TrainingSet data = trainingSetOf(preset, rungs);
        const std::string source = preset.trainOnAllRungs
                                       ? "all " + std::to_string(rungs.size()) + " replica-exchange rungs, MBAR weights at "
                                             + std::to_string((int) std::lround(preset.dataTemperature())) + " K"
                                       : "the " + std::to_string((int) plan.temperature) + " K replica-exchange rung";
        std::printf("  training data: %s, %lld frames (%.0f effective), %lld held out\n", source.c_str(),
                    (long long) data.frames.size(0), data.effectiveFrames, (long long) data.validation.size(0));
        trainingSummary.text("training_data", source);
        trainingSummary.number("training_frames", (double) data.frames.size(0));
        trainingSummary.number("training_effective_frames", data.effectiveFrames);
        return alanine::trainFlow(molecule, data, plan, checkpointPath, progress, resumed);
    }

    /**
     * 3a. Flow samples at both temperatures, with importance weights. The
     * Kish ESS of one set moves by a factor of a few from seed to seed
     * (heavy-tailed weights), so five sets at 300 K give its spread; the
     * estimates at 300 K take the mean of the sets' weighted fractions with
     * the error of their spread (independentSetsPhiFreeEnergyDifference).
     */
    void sampleFlow() {
        flow600 = alanine::sampleFlow(molecule, *model, HOT, preset.flowSamples, 21);
        const std::vector<Samples> sets = alanine::sampleFlowSets(molecule, *model, COLD, preset.flowSamples, FLOW300_SETS);
        for (const Samples& set : sets)
            flow300EssSets.push_back(kishEffectiveSampleSize(set.logWeight));
        flow300 = alanine::concatenated(sets);
        writeSeries(flow600, out + "/flow600.csv");
        writeSeries(flow300, out + "/flow300.csv");
    }

    /**
     * A sampling stage's series: reused from an earlier run if its series and
     * summary fragment exist, else made by `run` (which adds its summary
     * entries to the stage's own Summary) and saved. The fragment is added to
     * the run's summary afterwards (runChains), so that stages may run at once.
     */
    Samples samplingStage(const std::string& name, const std::string& label, const ChainOptions& chainOptions,
                          const std::string& chainsKey, const std::function<Samples(Summary&)>& run) {
        const std::string series = out + "/" + name + ".csv", fragment = out + "/" + name + ".summary";
        if (pathExists(series) && pathExists(fragment)) {
            std::printf("  %s found, reused\n", label.c_str());
            return reuseSeries(series, recordedSamples(chainOptions));
        }
        Summary stage;
        stage.number(chainsKey, chainOptions.chains);
        Samples samples = run(stage);
        writeSeries(samples, series);
        stage.saveSince(0, fragment);
        return samples;
    }

    /**
     * A sampling stage's series of an earlier run holds its chains one after
     * the other: it is refused (before any stage runs) if their number is
     * not this preset's (runs before independent chains recorded none: one).
     */
    void refuseOtherChains(const std::string& name, const ChainOptions& chainOptions, const std::string& chainsKey) const {
        const std::string fragment = out + "/" + name + ".summary";
        if (!pathExists(out + "/" + name + ".csv") || !pathExists(fragment))
            return;
        Summary earlier;
        earlier.load(fragment);
        const std::string found = earlier.valueOf(chainsKey).empty() ? "1" : earlier.valueOf(chainsKey);
        if (found != std::to_string(chainOptions.chains))
            throw UsageError("'" + fragment + "' holds " + found + " chains where this preset runs "
                             + std::to_string(chainOptions.chains)
                             + ": it belongs to another run; use another --output or the same --preset");
    }

    /** Energy evaluations, phi-sign changes (within each chain) per 1000 of them, and sampling seconds of chains. */
    static void recordCost(Summary& stage, const std::string& prefix, const ChainResult& result, int chains) {
        long long transitions = 0;
        for (const at::Tensor& phi : result.samples.phi.chunk(chains))
            transitions += phiTransitions(phi);
        stage.number(prefix + "_energy_evaluations", (double) result.energyEvaluations);
        stage.number(prefix + "_phi_transitions_per_1000_evaluations",
                     1000.0 * transitions / (double) result.energyEvaluations);
        stage.number(prefix + "_seconds_sampling", result.seconds);
    }

    /**
     * 3b and 3c at once, one thread each: the chains are independent, each
     * runs on one core (LibTorch on one thread) with random numbers of its
     * own, so they give the same results as one after the other.
     */
    void runChains() {
        refuseOtherChains("mcmc300", preset.chain, "mcmc_chains");
        refuseOtherChains("pt300", preset.pt, "pt_chains");
        setComputeThreads(1);
        auto metropolis = std::async(std::launch::async, [this] { runMetropolis(); });
        auto tempering = std::async(std::launch::async, [this] { runParallelTempering(); });
        metropolis.get();
        tempering.get();
        summary.load(out + "/mcmc300.summary");
        summary.load(out + "/pt300.summary");
    }

    /** 3b. LatentMetropolisIntegrator at 300 K: preset.chain.chains independent chains. */
    void runMetropolis() {
        chain = samplingStage("mcmc300", "Metropolis chains", preset.chain, "mcmc_chains", [this](Summary& stage) {
            ChainOptions chainOptions = preset.chain;
            chainOptions.seed = 31;
            ChainResult result =
                runLatentMetropolis(molecule, *model, COLD, chainOptions, progressPrinter("Metropolis 300 K"));
            stage.number("mcmc_random_walk_acceptance", result.acceptance[0]);
            stage.number("mcmc_independence_acceptance", result.independence[0]);
            stage.number("mcmc_latent_step_size", result.latentStepSize);
            recordCost(stage, "mcmc", result, chainOptions.chains);
            return result.samples;
        });
    }

    /** 3c. TSFParallelTemperingIntegrator on a geometric ladder from 300 to 600 K, preset.pt.chains independent runs. */
    void runParallelTempering() {
        pt = samplingStage("pt300", "parallel tempering", preset.pt, "pt_chains", [this](Summary& stage) {
            const std::vector<double> ladder = TSFParallelTemperingIntegrator::geometricLadder(COLD, HOT, preset.replicas);
            ChainOptions ptOptions = preset.pt;
            ptOptions.seed = 41;
            ChainResult result =
                alanine::runParallelTempering(molecule, *model, ladder, ptOptions, progressPrinter("parallel tempering"));
            stage.list("pt_temperatures", ladder);
            stage.list("pt_random_walk_acceptance", result.acceptance);
            stage.list("pt_independence_acceptance", result.independence);
            stage.list("pt_exchange_acceptance", result.exchangeAcceptance);
            stage.number("pt_round_trips", (double) result.roundTrips);
            recordCost(stage, "pt", result, ptOptions.chains);
            return result.samples;
        });
    }

    /** 4. ESS, dF_phi and Ramachandran KL of every method; the summary files. */
    void analyse() {
        summary.number("flow600_ess", kishEffectiveSampleSize(flow600.logWeight));
        summary.number("flow600_ess_clipped", kishEffectiveSampleSize(flow600.logWeight, 1e-4));
        summary.number("flow300_ess", kishEffectiveSampleSize(flow300.logWeight));
        summary.number("flow300_ess_clipped", kishEffectiveSampleSize(flow300.logWeight, 1e-4));
        summary.list("flow300_ess_sets", flow300EssSets);
        std::vector<double> sorted = flow300EssSets;
        std::sort(sorted.begin(), sorted.end());
        summary.number("flow300_ess_median", sorted[sorted.size() / 2]);
        // Samples with a stereocentre of the other handedness weigh 0 (sampleFlow).
        summary.number("flow300_other_handedness", flow300.otherHandedness.to(at::kDouble).mean().item<double>());
        // dF_phi of every method, with the temperature it estimates.
        std::vector<std::tuple<std::string, double, Estimate>> dF = {
            {"md600", 600.0, phiFreeEnergyDifference(md[0].phi)},
            {"md300", 300.0, phiFreeEnergyDifference(md[1].phi)},
            {"flow600", 600.0, weightedPhiFreeEnergyDifference(flow600.phi)},
            {"flow600_reweighted", 600.0, weightedPhiFreeEnergyDifference(flow600.phi, flow600.logWeight)},
            {"flow300", 300.0, weightedPhiFreeEnergyDifference(flow300.phi)},
            {"flow300_reweighted", 300.0,
             chainsEstimate("phi", "flow300_reweighted", flow300.phi, FLOW300_SETS, flow300.logWeight)},
            {"mcmc300", 300.0, chainsEstimate("phi", "mcmc300", chain.phi, preset.chain.chains)},
            {"pt300", 300.0, chainsEstimate("phi", "pt300", pt.phi, preset.pt.chains)}};
        for (const auto& [name, temperature, estimate] : dF)
            summary.estimate("dF_phi_" + name, estimate.value, estimate.error);
        const std::vector<ReferenceEstimate> reference = loadReference();
        for (const RamachandranRegion& region : ramachandranRegions())
            compareWithReference(region, region.key == "phi" ? dF : basinEstimates(region), reference);
        // Every replica's steps count: the 300 K rung crosses by exchanges.
        summary.number("md300_phi_transitions_per_1000_evaluations",
                       1000.0 * phiTransitions(md[1].phi) / (double) (preset.mdSteps * preset.mdLadder.size()));
        const Samples &md600 = md[0], &md300 = md[1];
        summary.number("rama_kl_flow600_vs_md600", ramachandranKL(md600.phi, md600.psi, flow600.phi, flow600.psi));
        summary.number("rama_kl_flow600_reweighted_vs_md600",
                       ramachandranKL(md600.phi, md600.psi, flow600.phi, flow600.psi, flow600.logWeight));
        summary.number("rama_kl_flow300_vs_md300", ramachandranKL(md300.phi, md300.psi, flow300.phi, flow300.psi));
        summary.number("rama_kl_flow300_reweighted_vs_md300",
                       ramachandranKL(md300.phi, md300.psi, flow300.phi, flow300.psi, flow300.logWeight));
        summary.number("rama_kl_mcmc300_vs_md300", ramachandranKL(md300.phi, md300.psi, chain.phi, chain.psi));
        summary.number("rama_kl_pt300_vs_md300", ramachandranKL(md300.phi, md300.psi, pt.phi, pt.psi));
        for (const auto& entry : seconds)
            summary.number("seconds_" + entry.first, entry.second);
        summary.write(out);
        std::printf("== 4. summary\n");
        std::ifstream text(out + "/summary.txt");
        std::printf("%s", std::string((std::istreambuf_iterator<char>(text)), std::istreambuf_iterator<char>()).c_str());
    }

    using Estimates = std::vector<std::tuple<std::string, double, Estimate>>;  // method, its temperature (K), dF

    /**
     * dF = -ln(P / (1 - P)) of a basin of the reference (alpha_L, alpha_R,
     * C7eq/beta) for every method at 300 K, added to the summary.
     */
    Estimates basinEstimates(const RamachandranRegion& region) {
        // How each method's samples are estimated: weighted, or the number of independent chains.
        const std::vector<std::tuple<std::string, const Samples*, bool, int>> methods = {
            {"md300", &md[1], false, 1}, {"mcmc300", &chain, false, preset.chain.chains},
            {"pt300", &pt, false, preset.pt.chains}, {"flow300_reweighted", &flow300, true, FLOW300_SETS}};
        Estimates estimates;
        for (const auto& [name, samples, weighted, chains] : methods) {
            // +1 inside, -1 outside: the estimators take the sign of their coordinate.
            const at::Tensor sign = region.inside(samples->phi, samples->psi).to(at::kDouble) * 2 - 1;
            const Estimate e = chainsEstimate(region.key, name, sign, chains, weighted ? samples->logWeight : at::Tensor());
            summary.estimate("dF_" + region.key + "_" + name, e.value, e.error);
            estimates.emplace_back(name, COLD, e);
        }
        return estimates;
    }

    /**
     * dF from the sign of `coordinate` along a sampler's series: one chain by
     * block averages; `chains` independent chains (equal consecutive parts
     * of the series) from their spread, with each chain's own value and
     * their agreement added to the summary (`..._chains`), and a note where
     * they disagree beyond their block errors. With `logWeights`, the parts
     * are independent sets of weighted samples instead (`..._sets`; each
     * set's error by the delta method).
     */
    Estimate chainsEstimate(const std::string& key, const std::string& name, const at::Tensor& coordinate, int chains,
                            const at::Tensor& logWeights = at::Tensor()) {
        const bool weighted = logWeights.defined();
        if (chains <= 1)
            return weighted ? weightedPhiFreeEnergyDifference(coordinate, logWeights) : phiFreeEnergyDifference(coordinate);
        const ChainsEstimate e = weighted
            ? independentSetsPhiFreeEnergyDifference(coordinate.chunk(chains), logWeights.chunk(chains))
            : independentChainsPhiFreeEnergyDifference(coordinate.chunk(chains));
        const std::string prefix = "dF_" + key + "_" + name, parts = weighted ? "sets" : "chains";
        summary.list(prefix + "_" + parts, e.perChain);
        summary.number(prefix + "_" + parts + "_agreement", e.agreement);
        if (e.agreement < 0.01)
            std::printf("  note: the %d %s of %s disagree on dF_%s beyond their own errors (p = %.2g);"
                        " its error comes from their spread\n", chains, parts.c_str(), name.c_str(), key.c_str(),
                        e.agreement);
        return e.estimate;
    }

    /** The reference's estimates; none (with a note) for --reference none or a file that cannot be read. */
    std::vector<ReferenceEstimate> loadReference() const {
        if (options.reference == "none")
            return {};
        try {
            return readReferences(options.reference);
        } catch (const OpenMM::OpenMMException& e) {
            std::printf("  (no comparison with the reference: %s)\n", e.what());
            return {};
        }
    }

    /**
     * The reference's dF of `region` at 300 and 600 K (where a method
     * estimates it), and every estimate's signed difference from it in
     * combined error bars (inf where a method saw one side only).
     */
    void compareWithReference(const RamachandranRegion& region, const Estimates& estimates,
                              const std::vector<ReferenceEstimate>& reference) {
        for (double temperature : {COLD, HOT}) {
            bool estimated = false;
            for (const auto& entry : estimates)
                estimated |= std::get<1>(entry) == temperature;
            for (const ReferenceEstimate& r : reference)
                if (estimated && r.region == region.name && std::abs(r.temperature - temperature) < 0.01) {
                    const std::string suffix = "_" + std::to_string((int) temperature);
                    summary.estimate("reference_dF_" + region.key + suffix, r.dF.value, r.dF.error);
                    const std::string folder = r.source.substr(0, r.source.find_last_of('/'));
                    summary.text("reference_source_" + region.key + suffix, folder.substr(folder.find_last_of('/') + 1));
                    for (const auto& [name, t, estimate] : estimates)
                        if (t == temperature)
                            summary.number("dF_" + region.key + "_" + name + "_vs_reference_errors",
                                           std::isfinite(estimate.value) ? (estimate.value - r.dF.value)
                                                   / std::hypot(estimate.error, r.dF.error) : estimate.value);
                }
        }
    }

    void plot() {
        std::fflush(stdout);  // keep our lines before the plotting script's
        const std::string command = std::string(BG_PYTHON_EXECUTABLE) + " " + BG_SOURCE_DIR
                                    + "/examples/alanine_dipeptide/plot_results.py " + out;
        if (std::system(command.c_str()) != 0)
            throw OpenMM::OpenMMException("plotting failed: " + command);
    }

    const Options options;
    const Preset preset;
    const std::string out;
    Molecule molecule;
    std::unique_ptr<FlowModel> model;
    Summary summary;
    std::map<std::string, double> seconds;  // wall seconds per stage
    Summary trainingSummary;                // what the training stage adds (training.summary)
    std::vector<Samples> rungs;             // replica-exchange MD, per rung of preset.mdLadder
    Samples md[2];                          // its rungs at 600 K and 300 K
    Samples flow600, flow300, chain, pt;
    std::vector<double> flow300EssSets;     // Kish ESS/N of five independent sets of flow samples at 300 K
};

} // namespace

int main(int argc, char** argv) {
    return runReportingErrors([&] {
        const Options options = parse(argc, argv);
        OpenMM::Platform::loadPluginsFromDirectory(OpenMM::Platform::getDefaultPluginsDirectory());
        Pipeline(options).run();
    });
}
