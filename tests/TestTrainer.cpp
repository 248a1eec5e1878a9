// FlowTrainer on the double well against exact answers from quadrature, and
// its bookkeeping: tempering, skipped steps, checkpoints, data input.

#include "TestSupport.h"
#include "openmmbg/tools/DCDFile.h"
#include "openmmbg/FlowAnnealing.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/tools/ToySystems.h"

#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <tuple>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;
using OpenMM::OpenMMException;

namespace {

const double T = 300.0;  // the double well's unit temperature: kT = 1

FlowConfig smallFlow() {
    FlowConfig config;
    config.numBlocks = 4;
    config.hiddenLayers = 2;
    config.hiddenWidth = 64;
    return config;
}

TrainerOptions quietOptions() {
    TrainerOptions options;
    options.numThreads = 1;
    options.logInterval = 100;
    return options;
}

std::shared_ptr<OpenMMEnergy> bridgeFor(const OpenMM::System& system) {
    OpenMMEnergy::Options options;
    options.platform = "Reference";
    options.numWorkers = 2;
    options.energyCut = 1000.0;
    return std::make_shared<OpenMMEnergy>(system, T, options);
}

/** Unweighted and importance-weighted -ln(P(x > 0) / P(x < 0)) of flow samples at T. */
struct WellEstimate {
    double unweighted, weighted, fractionRight, ess;
};

WellEstimate estimateWells(const FlowModel& model, OpenMMEnergy& bridge, int64_t count, uint64_t seed) {
    at::NoGradGuard noGrad;
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    bridge.setTemperature(T);
    FlowSample sample = model.sample(count, T, generator);
    EnergyBatch energy = bridge.evaluate(sample.x);
    at::Tensor logWeights = model.logImportanceWeights(sample, energy.reducedEnergy, T);
    at::Tensor right = (sample.x.select(2, 0).select(1, 0) > 0).to(at::kDouble);
    at::Tensor w = at::exp(logWeights - logWeights.max());
    double p = right.mean().item<double>();
    double pw = (w * right).sum().item<double>() / w.sum().item<double>();
    return {-std::log(p / (1 - p)), -std::log(pw / (1 - pw)), p, kishEffectiveSampleSize(logWeights)};
}

} // namespace

TEST(FlowTrainer, MaximumLikelihoodThenMixedMatchesExactWells) {
    DoubleWell well;
    auto system = well.createSystem();
    const double exact = well.freeEnergyDifference(T);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
    at::Tensor data = well.sampleExact(20000, T, generator);
    at::Tensor test = well.sampleExact(5000, T, generator);
    FlowModel model = FlowModel::createCartesian(*system, {0, 1}, data, "realnvp", smallFlow(), T);
    FlowTrainer trainer(model, quietOptions());
    trainer.setData(data, T);
    auto bridge = bridgeFor(*system);
    trainer.setEnergy(bridge);

    TrainingStage ml;
    ml.name = "ml";
    ml.steps = 1000;
    trainer.train(ml);
    // Both wells learned from data: the flow alone is within 0.5 kT.
    WellEstimate afterML = estimateWells(model, *bridge, 100000, 7);
    EXPECT_NEAR(afterML.unweighted, exact, 0.5) << "fraction right " << afterML.fractionRight;
    // Test NLL is bounded below by the exact entropy and should come close to it.
    double nll = trainer.testNLL(test, T), entropy = well.entropy(T);
    EXPECT_GT(nll, entropy - 0.05);  // 5000 test frames: statistical error ~0.02 nats
    EXPECT_LT(nll, entropy + 0.15);

    TrainingStage mixed;
    mixed.name = "mixed";
    mixed.steps = 1000;
    mixed.learningRate = 5e-4;
    mixed.lambdaStart = mixed.lambdaEnd = 0.1;
    TrainingSummary summary = trainer.train(mixed);
    EXPECT_FALSE(std::isnan(summary.last.lossKL));
    EXPECT_EQ(summary.last.temperature, T);
    // 400000 samples: the weighted estimate's statistical error is about 0.02 kT.
    WellEstimate afterMixed = estimateWells(model, *bridge, 400000, 8);
    EXPECT_NEAR(afterMixed.weighted, exact, 0.1) << "ESS " << afterMixed.ess;
    EXPECT_NEAR(afterMixed.unweighted, exact, 0.5) << "fraction right " << afterMixed.fractionRight;
    EXPECT_GT(afterMixed.ess, 0.5);
}

TEST(FlowTrainer, WeightedDataFromAnotherTemperatureTeachesTheTarget) {
    // Exact samples at 2T, weighted to T: w = exp(-u (1/tau_T - 1/tau_2T)) = exp(-u / 2),
    // u in kT at T. Maximum likelihood on them must learn the wells at T, not at 2T.
    DoubleWell well;
    auto system = well.createSystem();
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(3);
    at::Tensor data = well.sampleExact(20000, 2 * T, generator);
    at::Tensor x = data.select(1, 0).select(1, 0), y = data.select(1, 0).select(1, 1);
    at::Tensor u = at::zeros_like(x);
    for (int64_t i = 0; i < x.size(0); i++)
        u[i] = well.xEnergy(x[i].item<double>());
    u = u + 0.5 * well.d * y * y;
    FlowModel model = FlowModel::createCartesian(*system, {0, 1}, data, "realnvp", smallFlow(), T);
    FlowTrainer trainer(model, quietOptions());
    trainer.setData(data, T, -0.5 * u);
    TrainingStage ml;
    ml.name = "ml";
    ml.steps = 1000;
    trainer.train(ml);
    auto bridge = bridgeFor(*system);
    WellEstimate learned = estimateWells(model, *bridge, 100000, 9);
    // As for unweighted data at T (the test above): within 0.5 kT; the 2T answer is over 2 kT away.
    EXPECT_NEAR(learned.unweighted, well.freeEnergyDifference(T), 0.5) << "fraction right " << learned.fractionRight;
    EXPECT_GT(std::abs(well.freeEnergyDifference(2 * T) - well.freeEnergyDifference(T)), 2.0);

    // Weights that cannot describe a distribution are refused; the trainer keeps its data.
    at::Tensor bad = -0.5 * u;
    bad[5] = NAN;
    expectMessage([&] { trainer.setData(data, T, bad); }, "NaN or +inf");
    expectMessage([&] { trainer.setData(data, T, at::full({20000}, -INFINITY, at::kDouble)); }, "every weight is zero");
    expectMessage([&] { trainer.setData(data, T, u.narrow(0, 0, 10)); }, "one log-weight per frame");
}

TEST(FlowAnnealing, CarriesAFlowFittedHotDownToTheTargetWithoutData) {
    // The flow's density at T is first fitted to exact samples at 3T, then
    // annealed on its own weighted samples through 2T and 1.4T to T (and T
    // once more): its wells must move to T's, over 2 kT from 3T's.
    DoubleWell well;
    auto system = well.createSystem();
    const double exact = well.freeEnergyDifference(T), hot = well.freeEnergyDifference(3 * T);
    ASSERT_GT(std::abs(exact - hot), 2.0);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(5);
    at::Tensor data = well.sampleExact(20000, 3 * T, generator);
    FlowModel model = FlowModel::createCartesian(*system, {0, 1}, data, "realnvp", smallFlow(), T);
    FlowTrainer trainer(model, quietOptions());
    trainer.setData(data, T);  // the density at T fitted to the 3T frames
    TrainingStage ml;
    ml.name = "ml";
    ml.steps = 1000;
    trainer.train(ml);
    auto bridge = bridgeFor(*system);
    const WellEstimate before = estimateWells(model, *bridge, 100000, 11);
    EXPECT_NEAR(before.unweighted, hot, 0.5);

    AnnealingSchedule schedule;
    schedule.temperatures = {2 * T, 1.4 * T, T, T};
    schedule.samples = 20000;
    schedule.stage.name = "anneal";
    schedule.stage.steps = 200;
    schedule.stage.learningRate = 5e-4;
    schedule.seed = 6;
    std::vector<double> reported;
    const std::vector<AnnealingStep> steps =
        annealFlow(trainer, *bridge, schedule, [&](const AnnealingStep& step) { reported.push_back(step.temperature); });
    ASSERT_EQ(steps.size(), 4u);
    EXPECT_EQ(reported, schedule.temperatures);
    for (const AnnealingStep& step : steps) {
        EXPECT_GT(step.essFraction, 0.2) << step.temperature;  // small steps keep the weights usable
        EXPECT_EQ(step.training.last.step, 200);
        EXPECT_NE(step.training.last.stage.find("anneal@"), std::string::npos);
    }
    const WellEstimate after = estimateWells(model, *bridge, 100000, 12);
    EXPECT_NEAR(after.unweighted, exact, 0.5) << "fraction right " << after.fractionRight;
    EXPECT_GT(after.ess, before.ess);
    EXPECT_GT(after.ess, 0.5);

    // Bad schedules are refused before anything changes.
    AnnealingSchedule bad = schedule;
    bad.temperatures = {};
    expectMessage([&] { annealFlow(trainer, *bridge, bad); }, "no temperatures");
    bad.temperatures = {T, -T};
    expectMessage([&] { annealFlow(trainer, *bridge, bad); }, "positive");
    bad.temperatures = {T};
    bad.samples = 1;
    expectMessage([&] { annealFlow(trainer, *bridge, bad); }, "at least 2 samples");
    bad.samples = 100;
    bad.stereoReference = at::zeros({3, 3}, at::kDouble);
    expectMessage([&] { annealFlow(trainer, *bridge, bad); }, "stereo reference has 3 particles");
}

TEST(FlowTrainer, DataFreeTemperingReachesTheTargetAndLearnsIt) {
    // A single, anisotropic and skewed well: reverse KL alone can learn it.
    DoubleWell well;
    well.b = -2;  // u = x^4/4 + x^2 + x: one minimum
    well.d = 4;
    auto system = well.createSystem();
    FlowModel model = FlowModel::createCartesian(*system, {0, 1}, at::Tensor(), "realnvp", smallFlow(), T);
    std::vector<double> temperatures;
    TrainerOptions options = quietOptions();
    options.logInterval = 25;
    options.progress = [&](const TrainingProgress& p) { temperatures.push_back(p.temperature); };
    FlowTrainer trainer(model, options);
    auto bridge = bridgeFor(*system);
    trainer.setEnergy(bridge);
    TrainingStage stage;
    stage.name = "data-free";
    stage.steps = 1500;
    stage.lambdaStart = stage.lambdaEnd = 1.0;
    stage.temperingStart = 10 * T;
    TrainingSummary summary = trainer.train(stage);
    ASSERT_GT(temperatures.size(), 10u);
    EXPECT_GT(temperatures.front(), 2 * T);  // it started hot
    for (size_t i = 1; i < temperatures.size(); i++)
        EXPECT_LE(temperatures[i], temperatures[i - 1]);
    EXPECT_EQ(summary.finalTemperature, T);
    EXPECT_EQ(temperatures.back(), T);
    WellEstimate estimate = estimateWells(model, *bridge, 50000, 3);
    EXPECT_GT(estimate.ess, 0.9);
    // Importance-weighted mean of x against quadrature: the flow's samples, reweighted, are exact.
    std::vector<double> edges;
    for (int i = 0; i <= 4000; i++)
        edges.push_back(-8.0 + 16.0 * i / 4000);
    std::vector<double> p = well.marginalBinProbabilities(T, edges);
    double exactMean = 0;
    for (int i = 0; i < 4000; i++)
        exactMean += p[i] * 0.5 * (edges[i] + edges[i + 1]);
    at::NoGradGuard noGrad;
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(4);
    FlowSample sample = model.sample(50000, T, generator);
    at::Tensor u = bridge->evaluate(sample.x).reducedEnergy;
    at::Tensor lw = model.logImportanceWeights(sample, u, T);
    at::Tensor w = at::exp(lw - lw.max());
    double mean = (w * sample.x.select(2, 0).select(1, 0)).sum().item<double>() / w.sum().item<double>();
    EXPECT_NEAR(mean, exactMean, 0.02);  // x has standard deviation ~0.6: error ~0.003
}

TEST(FlowTrainer, SkipsAndCountsNonFiniteSteps) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(molecule.positions(), 50, 0.01, 1);
    FlowModel model = FlowModel::createForMolecule(*molecule.system, frames, "realnvp", smallFlow(), 600.0);
    // Frames with two atoms on top of each other: a bond of length 0, log J = -inf.
    at::Tensor degenerate = frames.clone();
    degenerate.select(1, 1).copy_(degenerate.select(1, 0));
    FlowTrainer trainer(model, quietOptions());
    trainer.setData(degenerate, 600.0);
    std::vector<at::Tensor> before;
    for (const at::Tensor& p : model.getFlow().parameters())
        before.push_back(p.detach().clone());
    TrainingStage stage;
    stage.steps = 5;
    stage.batchSize = 8;
    TrainingSummary summary = trainer.train(stage);
    EXPECT_EQ(trainer.getSkippedSteps(), 5);
    EXPECT_EQ(summary.last.skippedSteps, 5);
    for (size_t i = 0; i < before.size(); i++)
        EXPECT_TRUE(at::equal(before[i], model.getFlow().parameters()[i]));
    // With good data the same trainer takes its steps.
    trainer.setData(frames, 600.0);
    stage.name = "good";
    trainer.train(stage);
    EXPECT_EQ(trainer.getSkippedSteps(), 5);
    EXPECT_FALSE(at::equal(before[1], model.getFlow().parameters()[1]));
}

TEST(FlowTrainer, CheckpointResumesExactly) {
    DoubleWell well;
    auto system = well.createSystem();
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(2);
    at::Tensor data = well.sampleExact(2000, T, generator);
    auto bridge = bridgeFor(*system);
    TrainingStage stage;
    stage.name = "mixed";
    stage.steps = 40;
    stage.batchSize = 64;
    stage.lambdaStart = 0.0;
    stage.lambdaEnd = 0.5;
    stage.finalLearningRate = 1e-4;
    auto newModel = [&](uint64_t seed) {
        FlowConfig config = smallFlow();
        config.seed = seed;
        return FlowModel::createCartesian(*system, {0, 1}, data, "tsf", config, T);
    };

    FlowModel straight = newModel(1);
    FlowTrainer reference(straight, quietOptions());
    reference.setData(data, T);
    reference.setEnergy(bridge);
    reference.train(stage);

    // The same run, stopped at step 20 as by a crash, after its checkpoint.
    std::string checkpoint = temporaryPath(".ckpt");
    {
        TrainerOptions options = quietOptions();
        options.checkpointPath = checkpoint;
        options.checkpointInterval = 20;
        options.logInterval = 20;
        options.progress = [](const TrainingProgress& p) {
            if (p.step == 20)
                throw std::runtime_error("interrupted");
        };
        FlowModel interrupted = newModel(1);
        FlowTrainer trainer(interrupted, options);
        trainer.setData(data, T);
        trainer.setEnergy(bridge);
        EXPECT_THROW(trainer.train(stage), std::runtime_error);
    }
    // Resumed into a model with other initial weights: the checkpoint supplies them.
    FlowModel resumedModel = newModel(99);
    FlowTrainer resumed(resumedModel, quietOptions());
    resumed.setData(data, T);
    resumed.setEnergy(bridge);
    resumed.loadCheckpoint(checkpoint);
    EXPECT_EQ(resumed.getCompletedSteps("mixed"), 20);
    resumed.train(stage);
    EXPECT_EQ(resumed.getCompletedSteps("mixed"), 40);
    std::vector<at::Tensor> a = straight.getFlow().parameters(), b = resumedModel.getFlow().parameters();
    for (size_t i = 0; i < a.size(); i++)
        EXPECT_TRUE(at::equal(a[i], b[i])) << "parameter " << i;
    // A finished stage is not run again.
    EXPECT_EQ(resumed.train(stage).seconds < 1.0, true);
    EXPECT_TRUE(at::equal(a[1], b[1]));

    // Another architecture is refused.
    FlowConfig other = smallFlow();
    other.hiddenWidth = 32;
    FlowTrainer mismatched(FlowModel::createCartesian(*system, {0, 1}, data, "tsf", other, T), quietOptions());
    EXPECT_THROW(mismatched.loadCheckpoint(checkpoint), OpenMMException);
    EXPECT_THROW(mismatched.loadCheckpoint("/nonexistent.ckpt"), OpenMMException);
    std::remove(checkpoint.c_str());
}

TEST(FlowTrainer, EarlyStoppingKeepsTheWeightsOfTheBestValidationNLL) {
    // 48 training samples and a flow that can memorise them: the NLL of
    // held-out samples rises again as training goes on.
    DoubleWell well;
    auto system = well.createSystem();
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(4);
    at::Tensor data = well.sampleExact(48, T, generator), validation = well.sampleExact(2000, T, generator);
    TrainingStage stage = TrainingStage::maximumLikelihood("ml", 600, 64, 3e-3);
    auto train = [&](const TrainingStage& s, const std::string& checkpoint, std::vector<TrainingProgress>* reports,
                     int64_t interruptAt) {
        FlowModel model = FlowModel::createCartesian(*system, {0, 1}, data, "realnvp", smallFlow(), T);
        TrainerOptions options = quietOptions();
        options.checkpointPath = checkpoint;
        options.checkpointInterval = 100;
        options.progress = [&](const TrainingProgress& p) {
            if (reports)
                reports->push_back(p);
            if (p.step == interruptAt)
                throw std::runtime_error("interrupted");
        };
        FlowTrainer trainer(model, options);
        trainer.setData(data, T);
        trainer.setValidationData(validation);
        if (!checkpoint.empty() && interruptAt < 0)
            trainer.loadCheckpoint(checkpoint);
        TrainingSummary summary = trainer.train(s);
        return std::make_tuple(model, summary, trainer.testNLL(validation, T), trainer.getCompletedSteps(s.name));
    };

    auto [plain, plainSummary, plainNLL, plainSteps] = train(stage, "", nullptr, -1);
    TrainingStage checked = stage;
    checked.validationInterval = 25;
    std::vector<TrainingProgress> reports;
    auto [kept, keptSummary, keptNLL, keptSteps] = train(checked, "", &reports, -1);
    double best = INFINITY;
    int checks = 0;
    for (const TrainingProgress& p : reports)
        if (!std::isnan(p.validationNLL)) {
            best = std::min(best, p.validationNLL);
            checks++;
        }
    EXPECT_EQ(checks, 600 / 25);
    EXPECT_DOUBLE_EQ(keptSummary.last.bestValidationNLL, best);
    // The model ends with the best weights (RealNVP: testNLL is deterministic).
    EXPECT_NEAR(keptNLL, best, 1e-9);
    // Training overfits, or this test would prove nothing.
    EXPECT_GT(plainNLL, best + 0.05) << "plain " << plainNLL << ", best " << best;
    EXPECT_EQ(keptSteps, 600);

    // Patience: the stage ends after 3 checks without improvement, with the best weights.
    TrainingStage patient = checked;
    patient.validationPatience = 3;
    auto [stopped, stoppedSummary, stoppedNLL, stoppedSteps] = train(patient, "", nullptr, -1);
    EXPECT_TRUE(stoppedSummary.last.stoppedEarly);
    EXPECT_LT(stoppedSummary.last.step, 600);
    EXPECT_EQ(stoppedSteps, 600);  // the stage counts as finished
    EXPECT_NEAR(stoppedNLL, stoppedSummary.last.bestValidationNLL, 1e-9);

    // Interrupted after a checkpoint and resumed: the same weights as in one go (the best ones are checkpointed).
    std::string checkpoint = temporaryPath(".ckpt");
    EXPECT_THROW(train(checked, checkpoint, nullptr, 300), std::runtime_error);
    auto [resumed, resumedSummary, resumedNLL, resumedSteps] = train(checked, checkpoint, nullptr, -1);
    std::vector<at::Tensor> a = kept.getFlow().parameters(), b = resumed.getFlow().parameters();
    for (size_t i = 0; i < a.size(); i++)
        EXPECT_TRUE(at::equal(a[i], b[i])) << "parameter " << i;
    std::remove(checkpoint.c_str());
}

TEST(FlowTrainer, RejectsBadInput) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(molecule.positions(), 10, 0.01, 1);
    FlowModel model = FlowModel::createForMolecule(*molecule.system, frames, "tsf", smallFlow(), 600.0);
    FlowTrainer trainer(model, quietOptions());
    expectMessage([&] { trainer.setData(frames.narrow(1, 0, 20), 600.0); }, "20 particles but the System has 22");
    at::Tensor withNaN = frames.clone();
    withNaN[0][0][0] = std::nan("");
    expectMessage([&] { trainer.setData(withNaN, 600.0); }, "NaN");
    expectMessage([&] { trainer.setData(frames, -3.0); }, "temperature");
    TrainingStage stage;
    expectMessage([&] { trainer.train(stage); }, "no data was set");
    trainer.setData(frames, 600.0);
    stage.lambdaEnd = 0.5;
    expectMessage([&] { trainer.train(stage); }, "no energy bridge was set");
    stage.lambdaEnd = 1.5;
    expectMessage([&] { trainer.train(stage); }, "lambda must lie in [0, 1]");
    DoubleWell well;
    auto other = well.createSystem();
    expectMessage([&] { trainer.setEnergy(std::make_shared<OpenMMEnergy>(*other, 300.0)); }, "particles");
    expectMessage([&] { trainer.setData("/nonexistent/trajectory.dcd", 600.0); }, "cannot open");
    stage.lambdaEnd = 0.0;
    stage.validationInterval = 10;
    expectMessage([&] { trainer.train(stage); }, "no validation frames were set");
    expectMessage([&] { trainer.setValidationData(frames.narrow(1, 0, 20)); }, "20 particles but the System has 22");
    expectMessage([&] { trainer.setValidationData(withNaN); }, "NaN");
    trainer.setValidationData(frames);
    stage.validationPatience = -1;
    expectMessage([&] { trainer.train(stage); }, "must not be negative");
}

TEST(DCDFile, ReadsWhatOpenMMWrites) {
    // OpenMM's own Python DCDFile writes a trajectory; readDcd must read it.
    AlanineDipeptide molecule = loadAlanineDipeptide();
    std::string path = temporaryPath(".dcd");
    std::string script =
        "import numpy as np, openmm\n"
        "from openmm import app, unit\n"
        "pdb = app.PDBFile('" + dataFile("alanine_dipeptide.pdb") + "')\n"
        "f = open('" + path + "', 'wb')\n"
        "dcd = app.DCDFile(f, pdb.topology, 0.001*unit.picoseconds)\n"
        "x = np.array(pdb.getPositions(asNumpy=True)._value)\n"
        "for i in range(3):\n"
        "    dcd.writeModel((x + 0.01*i)*unit.nanometer)\n"
        "f.close()\n";
    std::string scriptPath = temporaryPath(".py");
    std::ofstream(scriptPath) << script;
    ASSERT_EQ(std::system((std::string(BG_PYTHON_EXECUTABLE) + " " + scriptPath).c_str()), 0);
    at::Tensor frames = readDcd(path, 22);
    ASSERT_EQ(frames.size(0), 3);
    ASSERT_EQ(frames.size(1), 22);
    for (int i = 0; i < 3; i++)
        EXPECT_LT((frames[i] - molecule.positions()[0] - 0.01 * i).abs().max().item<double>(), 1e-5);
    EXPECT_THROW(readDcd(path, 21), OpenMMException);
    std::remove(path.c_str());
    std::remove(scriptPath.c_str());
}

TEST(DCDFile, WriterRoundTripAndDamage) {
    at::Tensor frames = at::randn({5, 4, 3}, at::kDouble);
    std::string path = temporaryPath(".dcd");
    {
        DcdWriter writer(path, 4);
        writer.write(frames.narrow(0, 0, 2));
        writer.write(frames[2]);
        writer.write(frames.narrow(0, 3, 2));
        EXPECT_EQ(writer.getNumFrames(), 5);
    }
    at::Tensor back = readDcd(path);
    EXPECT_LT((back - frames).abs().max().item<double>(), 1e-6);  // float32 Angstrom
    // A truncated file and a file that is no DCD are refused with the file named.
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string truncated = temporaryPath(".dcd");
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() - 10);
    expectMessage([&] { readDcd(truncated); }, "frame 4");
    std::string garbage = temporaryPath(".dcd");
    std::ofstream(garbage, std::ios::binary) << "not a trajectory";
    EXPECT_THROW(readDcd(garbage), OpenMMException);
    EXPECT_THROW(readDcd("/nonexistent.dcd"), OpenMMException);
    for (const std::string& file : {path, truncated, garbage})
        std::remove(file.c_str());
}

TEST(FlowTrainer, TSFLearnsCorrelationsFromItsDefaultStart) {
    // A correlated 20-dimensional Gaussian, standardised per coordinate by the
    // normalisation: only the correlations are left to learn. A TSF started as
    // the exact identity sits on a saddle of the maximum-likelihood loss and
    // stays at the NLL of a diagonal Gaussian; the default start must learn.
    const int d = 20, particles = 7;
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(41);
    at::Tensor mixing = at::randn({d, d}, generator, at::kDouble) / std::sqrt((double) d) + at::eye(d, at::kDouble);
    at::Tensor q = at::randn({12000, d}, generator, at::kDouble).matmul(mixing.t());
    at::Tensor frames = at::zeros({12000, 3 * particles}, at::kDouble);
    frames.narrow(1, 0, d).copy_(q);
    frames = frames.reshape({12000, particles, 3});
    OpenMM::System system;
    for (int i = 0; i < particles; i++)
        system.addParticle(1.0);
    std::vector<int> coordinates(d);
    for (int i = 0; i < d; i++)
        coordinates[i] = i;
    const double entropy = 0.5 * d * std::log(2 * M_PI * M_E) + std::log(std::abs(at::det(mixing).item<double>()));
    const double diagonal = 0.5 * d * std::log(2 * M_PI * M_E) + 0.5 * at::log(q.var(0)).sum().item<double>();
    auto trainedNLL = [&](double outputInitScale) {
        FlowConfig config;
        config.numBlocks = 4;
        config.hiddenLayers = 2;
        config.hiddenWidth = 64;
        config.outputInitScale = outputInitScale;
        FlowModel model = FlowModel::createCartesian(system, coordinates, frames, "tsf", config, 300.0);
        FlowTrainer trainer(model, quietOptions());
        trainer.setData(frames.narrow(0, 0, 10000), 300.0);
        TrainingStage stage;
        stage.steps = 800;
        stage.finalLearningRate = 1e-5;
        trainer.train(stage);
        return trainer.testNLL(frames.narrow(0, 10000, 2000), 300.0);
    };
    const double fromDefault = trainedNLL(-1.0), fromIdentity = trainedNLL(0.0);
    // The correlations are worth 10.3 nats here; the default start must win most of them.
    EXPECT_LT(fromDefault, entropy + 3.0) << "entropy " << entropy << ", diagonal Gaussian " << diagonal;
    EXPECT_GT(fromIdentity, diagonal - 1.0) << "the identity start learned: the test lost its point";
}
