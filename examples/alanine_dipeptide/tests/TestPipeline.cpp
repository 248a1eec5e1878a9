// The alanine dipeptide pipeline as a user runs it: a smoke run, a rerun that
// reuses every finished stage, an interrupted training that resumes from its
// checkpoint and keeps its log, and user mistakes answered by one clear line
// and an exit code; and a short run of the reference program's umbrella
// sampling.

#include "AlanineDipeptide.h"
#include "ProgramRun.h"
#include "TestSupport.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/tools/DCDFile.h"
#include "openmmbg/tools/ToySystems.h"

#include <openmm/OpenMMException.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

using PipelineRun = ProgramRun;

PipelineRun runPipeline(const std::string& arguments) {
    return runProgram(BG_PIPELINE_EXECUTABLE, arguments);
}

bool fileExists(const std::string& path) {
    struct stat info;
    return stat(path.c_str(), &info) == 0;
}

int occurrences(const std::string& text, const std::string& word) {
    int count = 0;
    for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1))
        count++;
    return count;
}

void copyFile(const std::string& from, const std::string& to) {
    std::ofstream(to, std::ios::binary) << fileContents(from);
}

/** The files of a preset's MD stage: md<T>.csv and md<T>.dcd of every rung, and md.summary. */
std::vector<std::string> mdFiles(const std::string& preset) {
    std::vector<std::string> files = {"md.summary"};
    for (double temperature : alanine::presetNamed(preset).mdLadder)
        for (const char* extension : {".csv", ".dcd"})
            files.push_back("md" + std::to_string(std::lround(temperature)) + extension);
    return files;
}

/** A smoke run's folder, made once per test program. */
const std::string& smokeRun() {
    static const std::string folder = [] {
        const std::string path = temporaryPath("_smoke");
        PipelineRun run = runPipeline("--preset smoke --no-plots --output " + path);
        EXPECT_EQ(run.status, 0) << run.output << run.errors;
        return path;
    }();
    return folder;
}

} // namespace

TEST(Workflow, ReplicaExchangeInWorkerProcessesIsTheSameRun) {
    // Without friction Langevin dynamics draws no noise, so the trajectory
    // does not depend on which process's generator a replica uses: split
    // over processes, the run must give the very frames of one process, and
    // so checks that configurations and velocities cross between processes
    // to the right rungs.
    const alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    alanine::ReplicaExchangeOptions options;
    options.temperatures = {300.0, 380.0, 480.0, 600.0};
    options.friction = 0;
    options.equilibrationSteps = 200;
    options.steps = 3000;
    options.interval = 20;
    options.seed = 5;
    options.keepPositions = true;
    const alanine::ReplicaExchangeResult one = alanine::runReplicaExchangeMD(molecule, options);
    for (double acceptance : one.exchangeAcceptance)
        EXPECT_GT(acceptance, 0.05) << "too few exchanges for a check";
    for (int processes : {2, 4}) {
        options.processes = processes;
        const alanine::ReplicaExchangeResult split = alanine::runReplicaExchangeMD(molecule, options);
        ASSERT_EQ(split.rungs.size(), one.rungs.size());
        for (size_t k = 0; k < one.rungs.size(); k++) {
            EXPECT_TRUE(at::equal(split.rungs[k].x, one.rungs[k].x)) << processes << " processes, rung " << k;
            EXPECT_TRUE(at::equal(split.rungs[k].energy, one.rungs[k].energy)) << processes << " processes, rung " << k;
        }
        EXPECT_EQ(split.exchangeAcceptance, one.exchangeAcceptance);
        EXPECT_GT(split.cpuSeconds, 0);
    }
    for (int processes : {0, 5}) {
        options.processes = processes;
        EXPECT_THROW(alanine::runReplicaExchangeMD(molecule, options), OpenMM::OpenMMException) << processes;
    }
}

TEST(Workflow, PooledRungsWeighEveryFrameByMBARAtTheLowestRung) {
    // Two rungs of 20 frames: at 300 K with energies 0, at 600 K with energies
    // 1000 kJ/mol, frames that 300 K weighs next to nothing (the Boltzmann
    // factors' ratio between the temperatures is exp(-200)). Frames are marked
    // by their index, so the order of frames and weights can be checked.
    const int64_t frames = 20, atoms = 3;
    std::vector<alanine::Samples> rungs(2);
    for (int k = 0; k < 2; k++) {
        rungs[k].x = (at::arange(frames, at::kDouble) + 100 * k).reshape({frames, 1, 1}).expand({frames, atoms, 3}).contiguous();
        rungs[k].energy = at::full({frames}, k == 0 ? 0.0 : 1000.0, at::kDouble);
    }
    const alanine::TrainingSet data = alanine::pooledRungs(rungs, {300.0, 600.0}, 0.1, 300.0);
    ASSERT_EQ(data.frames.size(0), 36);  // 18 of each rung train, 2 of each are held out
    EXPECT_TRUE(at::equal(data.frames.narrow(0, 0, 18), rungs[0].x.narrow(0, 0, 18)));
    EXPECT_TRUE(at::equal(data.frames.narrow(0, 18, 18), rungs[1].x.narrow(0, 0, 18)));
    EXPECT_TRUE(at::equal(data.validation, rungs[0].x.narrow(0, 18, 2)));  // the lowest rung's last frames
    EXPECT_TRUE(at::equal(data.setupFrames, rungs[0].x.narrow(0, 0, 18)));
    for (int64_t i = 0; i < 18; i++) {
        EXPECT_NEAR(data.logWeights[i].item<double>(), -std::log(18.0), 1e-9) << i;
        EXPECT_LT(data.logWeights[18 + i].item<double>(), -100) << i;
    }
    EXPECT_NEAR(data.effectiveFrames, 18.0, 1e-6);
    // For 550 K the 600 K rung validates and sets the normalisation.
    const alanine::TrainingSet hot = alanine::pooledRungs(rungs, {300.0, 600.0}, 0.1, 550.0);
    EXPECT_TRUE(at::equal(hot.validation, rungs[1].x.narrow(0, 18, 2)));
    EXPECT_TRUE(at::equal(hot.setupFrames, rungs[1].x.narrow(0, 0, 18)));
    EXPECT_THROW(alanine::pooledRungs(rungs, {300.0}, 0.1, 300.0), OpenMM::OpenMMException);  // one temperature per rung
    EXPECT_THROW(alanine::heldOutSplit(rungs[0].x, 1.0), OpenMM::OpenMMException);
}

TEST(Workflow, FlowSamplesOfTheOtherHandednessWeighZero) {
    // MD keeps the handedness of every stereocentre: C-alpha and the
    // labelled hydrogens of the three methyl groups. Swapping two hydrogens
    // of a methyl group (or C-alpha's H and CB) makes the other stereoisomer
    // at the same energy, which the samplers' target excludes.
    const alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    const alanine::Samples md = alanine::readRung(molecule, alanine::rungPath(smokeRun(), 300.0));
    ASSERT_GT(md.x.size(0), 10);
    EXPECT_FALSE(alanine::otherHandedness(molecule, md.x).any().item<bool>());
    const std::vector<std::array<std::pair<const char*, const char*>, 2>> swaps = {
        {{{"ACE", "HH31"}, {"ACE", "HH32"}}}, {{{"ALA", "HB2"}, {"ALA", "HB3"}}},
        {{{"NME", "HH32"}, {"NME", "HH33"}}}, {{{"ALA", "HA"}, {"ALA", "CB"}}}};
    for (const auto& swap : swaps) {
        const int a = molecule.structure.findAtom(swap[0].first, swap[0].second);
        const int b = molecule.structure.findAtom(swap[1].first, swap[1].second);
        ASSERT_TRUE(a >= 0 && b >= 0) << swap[0].second << " " << swap[1].second;
        at::Tensor swapped = md.x.clone();
        swapped.select(1, a).copy_(md.x.select(1, b));
        swapped.select(1, b).copy_(md.x.select(1, a));
        EXPECT_TRUE(alanine::otherHandedness(molecule, swapped).all().item<bool>()) << swap[0].second << " " << swap[1].second;
    }

    // Flow samples of the other handedness weigh 0. The smoke flow, trained
    // for seconds, puts most of its samples there (1351 of 2000 when this
    // test was written), so the check does not pass for want of any.
    const FlowModel model = FlowModel::load(smokeRun() + "/flow.bgflow", *molecule.system);
    const alanine::Samples flow = alanine::sampleFlow(molecule, model, 300.0, 2000, 3);
    ASSERT_TRUE(flow.otherHandedness.defined());
    EXPECT_TRUE(at::equal(flow.otherHandedness, alanine::otherHandedness(molecule, flow.x)));
    EXPECT_GT(flow.otherHandedness.sum().item<int64_t>(), 100);
    const at::Tensor zeroWeight = ~at::isfinite(flow.logWeight);
    EXPECT_EQ((flow.otherHandedness & ~zeroWeight).sum().item<int64_t>(), 0);
}

TEST(Pipeline, SmokeRunWritesTheResultsAndARerunReusesThem) {
    std::string folder = temporaryPath("_pipeline") + "/results";  // a nested folder that does not exist yet
    PipelineRun first = runPipeline("--preset smoke --output " + folder);
    ASSERT_EQ(first.status, 0) << first.output << first.errors;
    std::vector<std::string> files = mdFiles("smoke");  // every rung: md300, md424, md600
    files.insert(files.end(), {"flow.bgflow", "training.csv", "flow600.csv", "flow300.csv", "mcmc300.csv", "pt300.csv",
                               "summary.json", "summary.txt", "ramachandran.png", "phi_histograms.png",
                               "energy_histograms.png"});
    for (const std::string& file : files)
        EXPECT_TRUE(fileExists(folder + "/" + file)) << file;
    std::string summary = fileContents(folder + "/summary.json");
    for (const char* key : {"dF_phi_md300", "dF_phi_pt300", "pt_exchange_acceptance", "mcmc_random_walk_acceptance",
                            "flow300_ess", "flow300_ess_sets", "flow300_ess_median", "rama_kl_pt300_vs_md300", "seconds_training", "md_exchange_acceptance",
                            "dF_alpha_L_mcmc300", "dF_alpha_R_pt300", "dF_C7eq_beta_flow300_reweighted",
                            "\"mcmc_chains\": 2", "\"pt_chains\": 2", "dF_phi_mcmc300_chains_agreement",
                            "dF_alpha_R_pt300_chains_agreement", "dF_phi_flow300_reweighted_sets_agreement",
                            "dF_alpha_L_flow300_reweighted_sets_agreement"})
        EXPECT_NE(summary.find(key), std::string::npos) << key;
    // Independent chains: each one's dF, two of them; five sets of flow samples at 300 K.
    const size_t chains = summary.find("\"dF_phi_mcmc300_chains\": [");
    ASSERT_NE(chains, std::string::npos) << summary;
    EXPECT_EQ(occurrences(summary.substr(chains, summary.find(']', chains) - chains), ","), 1) << summary;
    const size_t sets = summary.find("\"dF_phi_flow300_reweighted_sets\": [");
    ASSERT_NE(sets, std::string::npos) << summary;
    EXPECT_EQ(occurrences(summary.substr(sets, summary.find(']', sets) - sets), ","), 4) << summary;
    // The flow trains on every rung's first 90%, reweighted to 300 K by MBAR: fewer effective frames than frames.
    const double frames = jsonNumber(summary, "training_frames"), effective = jsonNumber(summary, "training_effective_frames");
    const double rung = 0.9 * (double) (alanine::presetNamed("smoke").mdSteps / alanine::presetNamed("smoke").mdInterval);
    EXPECT_EQ(frames, 3 * rung) << summary;
    EXPECT_TRUE(effective > 0 && effective < frames) << summary;
    EXPECT_NE(summary.find("\"training_data\": \"all 3 replica-exchange rungs, MBAR weights at 300 K\""), std::string::npos);
    std::string flow = fileContents(folder + "/flow.bgflow");

    PipelineRun second = runPipeline("--preset smoke --no-plots --output " + folder);
    ASSERT_EQ(second.status, 0) << second.output << second.errors;
    EXPECT_EQ(occurrences(second.output, "reused"), 4) << second.output;  // MD, flow, Metropolis, PT
    EXPECT_EQ(fileContents(folder + "/flow.bgflow"), flow);
    // The reused stages report the same statistics, and the CPU time of the run that made them.
    std::string again = fileContents(folder + "/summary.json");
    for (const char* key : {"\"pt_exchange_acceptance\"", "\"mcmc_random_walk_acceptance\"", "\"cpu_seconds_md\"",
                            "\"cpu_seconds_training\""}) {
        size_t a = summary.find(key), b = again.find(key);
        ASSERT_NE(b, std::string::npos) << key;
        EXPECT_EQ(summary.substr(a, summary.find('\n', a) - a), again.substr(b, again.find('\n', b) - b));
    }
}

TEST(Pipeline, TrainsATSFAndRefusesAFolderOfAnotherFlowType) {
    // The smoke run made a spline flow (the default); --flow-type tsf makes a TSF.
    EXPECT_EQ(FlowModel::load(smokeRun() + "/flow.bgflow").getFlow().getTypeName(), "spline");
    const std::string folder = temporaryPath("_tsf");
    ASSERT_EQ(mkdir(folder.c_str(), 0755), 0);
    for (const std::string& name : mdFiles("smoke"))
        copyFile(smokeRun() + "/" + name, folder + "/" + name);
    PipelineRun run = runPipeline("--preset smoke --no-plots --flow-type tsf --output " + folder);
    ASSERT_EQ(run.status, 0) << run.output << run.errors;
    EXPECT_EQ(FlowModel::load(folder + "/flow.bgflow").getFlow().getTypeName(), "tsf");
    EXPECT_NE(fileContents(folder + "/summary.json").find("\"flow_type\": \"tsf\""), std::string::npos)
        << fileContents(folder + "/summary.json");
    // The same folder without --flow-type asks for a spline flow: refused, nothing overwritten.
    PipelineRun other = runPipeline("--preset smoke --no-plots --output " + folder);
    EXPECT_EQ(other.status, 2) << other.output << other.errors;
    EXPECT_NE(other.errors.find("is a tsf flow where this run trains a spline flow"), std::string::npos) << other.errors;
    EXPECT_EQ(FlowModel::load(folder + "/flow.bgflow").getFlow().getTypeName(), "tsf");
}

TEST(Pipeline, ComparesEveryEstimateWithTheReference) {
    const std::string folder = temporaryPath("_reference");
    ASSERT_EQ(mkdir(folder.c_str(), 0755), 0);
    std::vector<std::string> files = mdFiles("smoke");
    files.insert(files.end(), {"flow.bgflow", "training.csv"});
    for (const std::string& name : files)
        copyFile(smokeRun() + "/" + name, folder + "/" + name);
    const std::string reference = folder + "/reference.json";
    std::ofstream(reference) << "{\n  \"estimates\": [\n"
                                "    {\"region\": \"phi > 0\", \"temperature_K\": 300, \"dF_kT\": 3.5, \"error_kT\": 0.1},\n"
                                "    {\"region\": \"alpha_L\", \"temperature_K\": 600, \"dF_kT\": 9, \"error_kT\": 1},\n"
                                "    {\"region\": \"alpha_R\", \"temperature_K\": 300, \"dF_kT\": 0.5, \"error_kT\": 0.05},\n"
                                "    {\"region\": \"phi > 0\", \"temperature_K\": 600, \"dF_kT\": 2.25, \"error_kT\": 0.2}\n"
                                "  ]\n}\n";
    PipelineRun run = runPipeline("--preset smoke --no-plots --reference " + reference + " --output " + folder);
    ASSERT_EQ(run.status, 0) << run.output << run.errors;
    const std::string summary = fileContents(folder + "/summary.json");
    EXPECT_NE(summary.find("\"reference_dF_phi_300\": {\"value\": 3.5, \"error\": 0.1}"), std::string::npos) << summary;
    EXPECT_NE(summary.find("\"reference_dF_phi_600\": {\"value\": 2.25, \"error\": 0.2}"), std::string::npos) << summary;
    // Each difference is the estimate's distance from the reference at its temperature in combined error bars.
    // (The smoke run's flow samples see both signs of phi; its short MD may not.)
    const size_t flow600 = summary.find("\"dF_phi_flow600\": ");
    ASSERT_NE(flow600, std::string::npos);
    const std::string entry = summary.substr(flow600, summary.find('\n', flow600) - flow600);
    const double value = jsonNumber(entry, "value"), error = jsonNumber(entry, "error");
    ASSERT_TRUE(std::isfinite(value) && std::isfinite(error)) << entry;
    EXPECT_NEAR(jsonNumber(summary, "dF_phi_flow600_vs_reference_errors"), (value - 2.25) / std::hypot(error, 0.2),
                1e-4 * (1 + std::abs(value)));
    for (const char* name : {"md300", "flow300", "flow300_reweighted", "mcmc300", "pt300", "md600", "flow600_reweighted"})
        EXPECT_NE(summary.find(std::string("\"dF_phi_") + name + "_vs_reference_errors\""), std::string::npos) << name;
    // Basins are estimated at 300 K, so compared where the reference has them there (alpha_R), not elsewhere.
    // Which estimates the smoke run's short chains make finite depends on the run (a chain that stays
    // in alpha_R gives -inf); every one is compared, and the finite ones are checked number for number.
    int finiteBasins = 0;
    for (const char* name : {"md300", "mcmc300", "pt300", "flow300_reweighted"}) {
        const std::string key = std::string("dF_alpha_R_") + name;
        const size_t alphaR = summary.find("\"" + key + "\": ");
        ASSERT_NE(alphaR, std::string::npos) << key << "\n" << summary;
        const std::string basin = summary.substr(alphaR, summary.find('\n', alphaR) - alphaR);
        const double basinValue = jsonNumber(basin, "value"), basinError = jsonNumber(basin, "error");
        const double compared = jsonNumber(summary, key + "_vs_reference_errors");
        if (std::isfinite(basinValue) && std::isfinite(basinError)) {
            finiteBasins++;
            EXPECT_NEAR(compared, (basinValue - 0.5) / std::hypot(basinError, 0.05),
                        1e-4 * (1 + std::abs(basinValue))) << key;
        } else {
            EXPECT_TRUE(std::isinf(compared) && (compared > 0) == (basinValue > 0)) << basin << "\n" << compared;
        }
    }
    EXPECT_GE(finiteBasins, 1) << summary;
    EXPECT_EQ(summary.find("reference_dF_alpha_L"), std::string::npos) << summary;
    EXPECT_EQ(summary.find("dF_C7eq_beta_mcmc300_vs_reference_errors"), std::string::npos) << summary;

    // Without a readable reference the comparison is left out, with a note.
    PipelineRun without = runPipeline("--preset smoke --no-plots --reference " + folder + "/none.json --output " + folder);
    ASSERT_EQ(without.status, 0) << without.output << without.errors;
    EXPECT_NE(without.output.find("no comparison with the reference: cannot open the reference"), std::string::npos);
    EXPECT_EQ(fileContents(folder + "/summary.json").find("vs_reference"), std::string::npos);
}

TEST(Pipeline, TheCommittedReferenceHoldsDFPhiAt300And600K) {
    const std::vector<alanine::ReferenceEstimate> reference =
        alanine::readReference(std::string(BG_SOURCE_DIR) + "/examples/alanine_dipeptide/results/reference/summary.json");
    for (double temperature : {300.0, 600.0}) {
        int found = 0;
        for (const alanine::ReferenceEstimate& r : reference)
            if (r.region == "phi > 0" && r.temperature == temperature) {
                found++;
                EXPECT_TRUE(r.dF.value > 0 && r.dF.value < 10) << r.dF.value;
                EXPECT_TRUE(r.dF.error > 0 && r.dF.error < 1) << r.dF.error;
            }
        EXPECT_EQ(found, 1) << temperature;
    }
}

TEST(Pipeline, SeveralReferencesGiveTheEstimateOfSmallestErrorForEachBasinAndTemperature) {
    const std::string folder = temporaryPath("_references");
    const std::string first = folder + "_a.json", second = folder + "_b.json";
    auto write = [](const std::string& path, double phi300, double error300, double phi600, double error600) {
        std::ofstream(path) << "{\n  \"estimates\": [\n"
                            << "    {\"region\": \"phi > 0\", \"temperature_K\": 300, \"dF_kT\": " << phi300
                            << ", \"error_kT\": " << error300 << "},\n"
                            << "    {\"region\": \"phi > 0\", \"temperature_K\": 600, \"dF_kT\": " << phi600
                            << ", \"error_kT\": " << error600 << "}\n  ]\n}\n";
    };
    write(first, 3.6, 0.4, 2.5, 0.1);
    write(second, 3.9, 0.1, 2.8, 0.2);
    const std::vector<alanine::ReferenceEstimate> best = alanine::readReferences(first + "," + second);
    ASSERT_EQ(best.size(), 2u);
    for (const alanine::ReferenceEstimate& r : best) {
        EXPECT_EQ(r.region, "phi > 0");
        EXPECT_DOUBLE_EQ(r.dF.value, r.temperature == 300 ? 3.9 : 2.5);
        EXPECT_DOUBLE_EQ(r.dF.error, 0.1);
        EXPECT_EQ(r.source, r.temperature == 300 ? second : first);
    }
    expectMessage([&] { alanine::readReferences(first + "," + folder + "_missing.json"); }, "cannot open the reference");
    // The committed references: every basin at 300 K from the one of smallest error.
    const std::vector<alanine::ReferenceEstimate> committed =
        alanine::readReferences(alanine::committedReferencePaths(BG_SOURCE_DIR));
    for (const alanine::ReferenceEstimate& r : committed)
        if (r.region == "phi > 0" && r.temperature == 300)
            EXPECT_LE(r.dF.error, 0.1) << r.source;
}

TEST(Pipeline, InterruptedTrainingResumesAndKeepsItsLog) {
    // An interrupted run as it is left on disk: the MD files, a checkpoint after
    // 20 maximum-likelihood steps, and a training.csv with one report from
    // before the checkpoint and two from after it (made again on resuming).
    const std::string folder = temporaryPath("_interrupted");
    ASSERT_EQ(mkdir(folder.c_str(), 0755), 0);
    for (const std::string& name : mdFiles("smoke"))
        copyFile(smokeRun() + "/" + name, folder + "/" + name);
    const alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    const alanine::TrainingPlan plan = alanine::presetNamed("smoke").plan;
    const at::Tensor frames = readDcd(folder + "/md300.dcd", molecule.system->getNumParticles());
    FlowModel model = FlowModel::createForMolecule(*molecule.system, frames, "spline", plan.flow, plan.temperature);
    TrainerOptions options;
    options.seed = plan.seed;
    options.numThreads = 1;
    FlowTrainer trainer(model, options);
    trainer.setData(frames, plan.temperature);
    TrainingStage ml;
    ml.name = "ml";
    ml.steps = 20;
    ml.batchSize = plan.batchSize;
    trainer.train(ml);
    trainer.saveCheckpoint(folder + "/training.checkpoint");
    const std::string header = "stage,step,loss,loss_ml,loss_kl,lambda,mean_reduced_energy,ess,validation_nll";
    std::ofstream(folder + "/training.csv")
        << header << "\nml,10,1,1,nan,0,nan,nan,nan\nml,30,2,2,nan,0,nan,nan,nan\nmixed,5,3,3,3,0,3,0.5,nan\n";

    PipelineRun run = runPipeline("--preset smoke --no-plots --output " + folder);
    ASSERT_EQ(run.status, 0) << run.output << run.errors;
    EXPECT_NE(run.output.find("resuming from"), std::string::npos) << run.output;
    std::istringstream log(fileContents(folder + "/training.csv"));
    std::vector<std::string> rows;
    for (std::string row; std::getline(log, row);)
        rows.push_back(row);
    ASSERT_EQ(rows.size(), 4u) << fileContents(folder + "/training.csv");
    EXPECT_EQ(rows[0], header);
    EXPECT_EQ(rows[1], "ml,10,1,1,nan,0,nan,nan,nan");  // before the checkpoint: kept
    EXPECT_EQ(rows[2].substr(0, 6), "ml,40,");      // made again after resuming
    EXPECT_EQ(rows[3].substr(0, 9), "mixed,20,");
    EXPECT_FALSE(fileExists(folder + "/training.checkpoint"));  // removed once the flow is saved
    EXPECT_FALSE(fileExists(folder + "/flow.bgflow.part"));
}

TEST(Pipeline, UserMistakesGetOneClearLineAndAnExitCode) {
    struct Case {
        std::string arguments;
        int status;
        std::string message;
    };
    DoubleWell well;
    auto system = well.createSystem();
    const std::string otherFlow = temporaryPath(".bgflow");
    FlowModel::createCartesian(*system, {0, 1}, at::Tensor(), "tsf", FlowConfig(), 300.0).save(otherFlow);
    const std::string output = temporaryPath("_mistakes");
    const std::string aFile = temporaryPath("_a_file");
    std::ofstream(aFile) << "";
    // A results folder whose MD series have fewer frames than --preset long makes.
    const std::string otherPreset = temporaryPath("_other_preset");
    mkdir(otherPreset.c_str(), 0755);
    for (const std::string& name : mdFiles("long"))
        std::ofstream(otherPreset + "/" + name)
            << (name.find(".csv") != std::string::npos ? "phi,psi,energy\n-1.5,1.2,3.0\n-1.4,1.1,4.0\n" : "");
    // An MD stage that lacks a rung's files (made by an earlier version, which kept two rungs).
    const std::string twoRungs = temporaryPath("_two_rungs");
    mkdir(twoRungs.c_str(), 0755);
    for (const std::string& name : mdFiles("smoke"))
        if (name.find("md424") == std::string::npos)
            copyFile(smokeRun() + "/" + name, twoRungs + "/" + name);
    // Chains of an earlier version, which ran one Metropolis chain and recorded no number of chains.
    const std::string oneChain = temporaryPath("_one_chain");
    mkdir(oneChain.c_str(), 0755);
    for (const std::string& name : mdFiles("smoke"))
        copyFile(smokeRun() + "/" + name, oneChain + "/" + name);
    for (const std::string name : {"flow.bgflow", "training.summary", "mcmc300.csv"})
        copyFile(smokeRun() + "/" + name, oneChain + "/" + name);
    std::ofstream(oneChain + "/mcmc300.summary") << "mcmc_random_walk_acceptance\t0.3\n";
    const std::vector<Case> cases = {
        {"--frobnicate", 2, "unknown option '--frobnicate'"},
        {"--preset huge", 2, "unknown preset 'huge'"},
        {"--flow-type glow", 2, "--flow-type must be tsf or spline, got 'glow'"},
        {"--output", 2, "needs a value"},
        {"--output " + output + " --preset", 2, "option --preset needs a value"},
        {"--output /proc/not-here", 2, "cannot create the output folder"},
        {"--output " + aFile + "/results", 2, "cannot create the output folder"},
        {"--preset long --no-plots --output " + otherPreset, 2, "belongs to another run"},
        {"--preset smoke --no-plots --output " + twoRungs, 2, "has md.summary but no '" + twoRungs + "/md424.csv'"},
        {"--preset smoke --no-plots --output " + oneChain, 2, "mcmc300.summary' holds 1 chains where this preset runs 2"},
        {"--preset smoke --data /nonexistent --output " + output, 1, "cannot open '/nonexistent/"},
        {"--preset smoke --no-plots --flow /nonexistent.bgflow --output " + output, 1, "cannot open '/nonexistent.bgflow'"},
        {"--preset smoke --no-plots --flow " + otherFlow + " --output " + output, 1, "made for another System"},
    };
    for (const Case& c : cases) {
        PipelineRun run = runPipeline(c.arguments);
        EXPECT_EQ(run.status, c.status) << c.arguments << "\n" << run.output << run.errors;
        // One line on stderr, no crash.
        EXPECT_EQ(run.errors.rfind("error: ", 0), 0u) << c.arguments << "\n" << run.errors;
        EXPECT_EQ(occurrences(run.errors, "\n"), 1) << c.arguments << "\n" << run.errors;
        EXPECT_NE(run.errors.find(c.message), std::string::npos) << c.arguments << "\n" << run.errors;
        EXPECT_EQ(run.errors.find("terminate called"), std::string::npos) << run.errors;
    }
    // Inputs are checked before the results folder is made.
    EXPECT_FALSE(fileExists(output)) << output;
}

TEST(Reference, AShortUmbrellaRunWritesASummaryThePipelineReads) {
    // 2 runs of 4 windows, 20 ps of frames each, at 300 K: the numbers mean
    // nothing; the files, the reuse of finished runs and the summary's form do.
    const std::string folder = temporaryPath("_umbrella");
    const std::string arguments = "--method umbrella --runs 2 --windows 4 --ns 0.02 --temperatures 300 --output " + folder;
    ProgramRun first = runProgram(BG_REFERENCE_EXECUTABLE, arguments);
    ASSERT_EQ(first.status, 0) << first.output << first.errors;
    EXPECT_TRUE(fileExists(folder + "/run_0_300K.csv") && fileExists(folder + "/run_1_300K.csv"));
    EXPECT_NE(first.output.find("windows visited towards larger phi"), std::string::npos) << first.output;
    EXPECT_NE(first.output.find("windows visited towards smaller phi"), std::string::npos) << first.output;
    const std::vector<alanine::ReferenceEstimate> estimates = alanine::readReference(folder + "/summary.json");
    EXPECT_EQ(estimates.size(), 4u);  // four regions at one temperature
    for (const alanine::ReferenceEstimate& e : estimates)
        EXPECT_EQ(e.temperature, 300.0) << e.region;
    // A rerun reuses both runs; other settings in the same folder are refused.
    ProgramRun again = runProgram(BG_REFERENCE_EXECUTABLE, arguments);
    ASSERT_EQ(again.status, 0) << again.errors;
    EXPECT_EQ(again.output.find("window 1/4 done"), std::string::npos) << again.output;
    ProgramRun other = runProgram(BG_REFERENCE_EXECUTABLE,
                                  "--method umbrella --runs 2 --windows 6 --ns 0.02 --temperatures 300 --output " + folder);
    EXPECT_EQ(other.status, 2);
    EXPECT_NE(other.errors.find("was made with other settings"), std::string::npos) << other.errors;
    for (const std::string& bad : {std::string("--method metadynamics"), std::string("--method umbrella --windows 1"),
                                   std::string("--method umbrella --temperatures 300,-5")}) {
        ProgramRun run = runProgram(BG_REFERENCE_EXECUTABLE, bad + " --output " + folder);
        EXPECT_EQ(run.status, 2) << bad << "\n" << run.errors;
        EXPECT_EQ(occurrences(run.errors, "\n"), 1) << bad << "\n" << run.errors;
    }
}
