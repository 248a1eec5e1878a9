// LatentMetropolisIntegrator on the Reference platform: exactness on the
// double well with untrained and trained flows of both types (stationarity
// from exact starts, convergence from one well, next to Langevin MD), the
// power of the stationarity check, failures inside OpenMM, warm-up, bad
// input, and alanine dipeptide. What every platform must pass is in
// FlowMoveIntegratorTests.cpp.

#include "SamplerChecks.h"
#include "TestSupport.h"
#include "ThrowingForce.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/Stereochemistry.h"
#include "openmmbg/tools/ToySystems.h"
#include "openmmbg/Topology.h"
#include "openmmbg/Positions.h"
#include "openmmbg/internal/LatentMoveEngine.h"

#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <openmm/CompoundIntegrator.h>
#include <openmm/Context.h>
#include <openmm/CustomExternalForce.h>
#include <openmm/LangevinMiddleIntegrator.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/State.h>
#include <openmm/VerletIntegrator.h>

#include <cmath>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

const double T_REF = 300.0;  // the double well's unit temperature (kT = 1)

FlowModel untrainedRealNVP(const System& system) {
    return untrainedDoubleWellFlow(system);
}

FlowModel trainedFlow(const System& system, const std::string& type) {
    return trainedDoubleWellFlow(system, type);
}

double xOf(Context& context) {
    return context.getState(State::Positions).getPositions()[0][0];
}

void expectStationary(const FlowModel& model, double sigma, double independence, int seed) {
    expectStationaryLatentMetropolis(model, sigma, independence, seed, "Reference");
}

} // namespace

TEST(LatentMetropolisStationarity, UntrainedFlowRandomWalk) {
    DoubleWell well;
    expectStationary(untrainedRealNVP(*well.createSystem()), 0.5, 0.0, 1);
}

TEST(LatentMetropolisStationarity, UntrainedFlowIndependence) {
    DoubleWell well;
    expectStationary(untrainedRealNVP(*well.createSystem()), 0.5, 1.0, 2);
}

TEST(LatentMetropolisStationarity, UntrainedFlowMixture) {
    DoubleWell well;
    expectStationary(untrainedRealNVP(*well.createSystem()), 0.5, 0.3, 3);
}

// Trained TSFs mix both kinds of move on every platform (FlowMoveIntegratorTests.cpp);
// here each kind alone, with a trained RealNVP flow.
TEST(LatentMetropolisStationarity, TrainedFlowRandomWalk) {
    DoubleWell well;
    expectStationary(trainedFlow(*well.createSystem(), "realnvp"), 0.5, 0.0, 4);
}

TEST(LatentMetropolisStationarity, TrainedFlowIndependence) {
    DoubleWell well;
    expectStationary(trainedFlow(*well.createSystem(), "realnvp"), 0.5, 1.0, 5);
}

// A TSF with spline couplings (non-affine, volume-preserving), both kinds of move mixed.
TEST(LatentMetropolisStationarity, TrainedTSFWithSplineCouplingsMixture) {
    DoubleWell well;
    expectStationary(trainedDoubleWellFlow(*well.createSystem(), "tsf", true), 0.5, 0.3, 6);
}

TEST(LatentMetropolisStationarity, DetectsABrokenSampler) {
    // The same check on a kernel that accepts every proposal (no Metropolis
    // test) must fail: the check has the power to see a biased sampler.
    DoubleWell well;
    FlowModel model = untrainedRealNVP(*well.createSystem());
    LatentMoveEngine engine(model, false, at::kCPU);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(7);
    const double temperature = 2 * T_REF;
    StratifiedStarts starts = stratifiedStarts(well, temperature, 6, 1007);
    std::vector<std::vector<double>> chains(starts.positions.size(0));
    at::NoGradGuard noGrad;
    for (size_t k = 0; k < chains.size(); k++) {
        ChainState state = engine.encode(starts.positions.narrow(0, k, 1), at::zeros({1}, at::kDouble));
        for (int t = 0; t < 300; t++) {
            LatentProposal proposal = engine.propose(state, at::full({1}, temperature, at::kDouble), 0.5, 0.0, generator);
            engine.update(state, proposal, at::zeros({1}, at::kDouble), proposal.valid);
            chains[k].push_back(state.x[0][0][0].item<double>());
        }
    }
    StationarityCheck check = checkStationarity(chains, starts, well, temperature);
    EXPECT_GT(check.maxAbsZ, 4.5) << check.describe();
}

TEST(LatentMetropolis, TrainedFlowConvergesFromOneWell) {
    // One long chain started in the left well: flow moves carry it across the
    // 9 kT barrier, and the free energy of the wells converges to the exact
    // value within the block-averaged error. (The TSF at tau = 2 runs on every
    // platform: FlowMoveIntegratorTests.cpp.)
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel realnvp = trainedFlow(*system, "realnvp");
    expectDoubleWellFreeEnergy(realnvp, T_REF, 8, "Reference");
    expectDoubleWellFreeEnergy(realnvp, 2 * T_REF, 8, "Reference");
}

TEST(LatentMetropolis, CompoundWithLangevinKeepsTheBoltzmannDistribution) {
    // Alternating Langevin MD and flow moves from exact starts stays exact.
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = untrainedRealNVP(*system);
    const double temperature = 2 * T_REF;
    CompoundIntegrator compound;
    auto* md = new LangevinMiddleIntegrator(temperature, 5.0, 0.004);
    md->setRandomNumberSeed(9);
    auto* mc = new LatentMetropolisIntegrator(model, temperature, 0.5, 0.3);
    mc->setRandomNumberSeed(10);
    compound.addIntegrator(md);
    compound.addIntegrator(mc);
    Context context(*system, compound, Platform::getPlatformByName("Reference"));
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(12);
    // 12 chains of 150 steps per stratum, as in expectStationaryLatentMetropolis
    // (12 seeds: max |z| at most 2.8 with this design, 3.0 with 6 chains of 300).
    StratifiedStarts starts = stratifiedStarts(well, temperature, 12, 12);
    std::vector<std::vector<double>> chains(starts.positions.size(0));
    for (size_t k = 0; k < chains.size(); k++) {
        // z starts at its own equilibrium too: a Gaussian of variance T / (T_unit d).
        double z = at::randn({1}, generator, at::kDouble).item<double>() * std::sqrt(temperature / T_REF);
        at::Tensor start = starts.positions[k][0];
        context.setPositions({Vec3(start[0].item<double>(), start[1].item<double>(), z)});
        context.setVelocitiesToTemperature(temperature, 100 + (int) k);
        for (int t = 0; t < 150; t++) {
            compound.setCurrentIntegrator(0);
            compound.step(5);
            compound.setCurrentIntegrator(1);
            compound.step(1);
            chains[k].push_back(xOf(context));
        }
    }
    StationarityCheck check = checkStationarity(chains, starts, well, temperature);
    EXPECT_GT(mc->getAcceptanceRate(), 0.02);
    EXPECT_LT(check.maxAbsZ, 4.5) << check.describe();
    EXPECT_LT(check.meanSquaredZ, 2.5) << check.describe();
}

TEST(LatentMetropolis, FailuresInsideOpenMMAreRejectedAndCounted) {
    registerThrowingForceProxy();
    DoubleWell well;
    auto system = well.createSystem();
    system->addForce(new ThrowingForce(-1.0));  // throws for every x >= -1 nm
    // Independence moves reach the right well, where every evaluation throws.
    LatentMetropolisIntegrator integrator(untrainedRealNVP(*system), 2 * T_REF, 1.0, 0.5);
    integrator.setRandomNumberSeed(14);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(-2.4, 0.0, 0.0)});
    integrator.step(300);
    EXPECT_GT(integrator.getStatistics().failedEnergies, 0);
    EXPECT_LT(xOf(context), -1.0);  // never moved where OpenMM failed
    EXPECT_NO_THROW(context.getState(State::Energy));
}

TEST(LatentMetropolis, WarmUpAdaptsTheStepSizeAndThenKeepsIt) {
    DoubleWell well;
    auto system = well.createSystem();
    LatentMetropolisIntegrator integrator(untrainedRealNVP(*system), T_REF, 5.0, 0.0);
    integrator.setRandomNumberSeed(15);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(-2.4, 0.0, 0.0)});
    integrator.warmUp(2000, 0.4);
    double sigma = integrator.getLatentStepSize();
    EXPECT_LT(sigma, 2.0);  // from a far too large 5
    EXPECT_EQ(integrator.getStatistics().getProposed(MoveKind::RandomWalk), 0);  // reset after warm-up
    integrator.step(2000);
    EXPECT_EQ(integrator.getLatentStepSize(), sigma);
    EXPECT_NEAR(integrator.getAcceptanceRate(MoveKind::RandomWalk), 0.4, 0.1);
}

TEST(LatentMetropolis, BadInputIsRefusedClearly) {
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = untrainedRealNVP(*system);
    expectMessage([&] { LatentMetropolisIntegrator(model, 0.0, 0.5); }, "temperature");
    expectMessage([&] { LatentMetropolisIntegrator(model, -3.0, 0.5); }, "temperature");
    expectMessage([&] { LatentMetropolisIntegrator(model, 300.0, -0.1); }, "latent step size");
    expectMessage([&] { LatentMetropolisIntegrator(model, 300.0, 0.5, 1.5); }, "independence probability");
    expectMessage([&] { LatentMetropolisIntegrator("/nonexistent.flow", 300.0, 0.5); }, "cannot open");
    {
        // A flow whose weights diverged is refused, and so is a file of it.
        FlowModel diverged = model.clone();
        at::NoGradGuard noGrad;
        diverged.getFlow().parameters()[0].view(-1)[0].fill_(std::nan(""));
        expectMessage([&] { LatentMetropolisIntegrator(diverged, 300.0, 0.5); }, "NaN or infinite");
        const std::string path = temporaryPath(".bgflow");
        diverged.save(path);
        expectMessage([&] { FlowModel::load(path); }, "not finite");
        std::remove(path.c_str());
    }
    LatentMetropolisIntegrator integrator(model, 300.0, 0.5);
    expectMessage([&] { integrator.setTemperature(-1); }, "temperature");
    EXPECT_EQ(integrator.getTemperature(), 300.0);
    expectMessage([&] { integrator.step(1); }, "not bound to a Context");
    expectMessage([&] { integrator.warmUp(10, 1.5); }, "target acceptance");
    EXPECT_EQ(integrator.getStatistics().getProposed(MoveKind::RandomWalk), 0);  // no Context yet: no moves

    // A flow for another System: the Context is refused.
    AlanineDipeptide molecule = loadAlanineDipeptide();
    expectMessage([&] {
        LatentMetropolisIntegrator wrong(model, 300.0, 0.5);
        Context context(*molecule.system, wrong, Platform::getPlatformByName("Reference"));
    }, "another System");
    // Constraints, virtual sites, periodic boxes.
    System constrained;
    constrained.addParticle(1.0);
    constrained.addParticle(1.0);
    constrained.addConstraint(0, 1, 0.1);
    FlowModel pair = FlowModel::createCartesian(constrained, {}, at::Tensor(), "realnvp", FlowConfig(), 300.0);
    expectMessage([&] {
        LatentMetropolisIntegrator mc(pair, 300.0, 0.5);
        Context context(constrained, mc, Platform::getPlatformByName("Reference"));
    }, "constraints");
    System periodic;
    periodic.addParticle(1.0);
    periodic.setDefaultPeriodicBoxVectors(Vec3(2, 0, 0), Vec3(0, 2, 0), Vec3(0, 0, 2));
    auto* force = new CustomExternalForce("periodicdistance(x, y, z, 0, 0, 0)^2");
    force->addParticle(0);
    periodic.addForce(force);
    FlowModel single = FlowModel::createCartesian(periodic, {}, at::Tensor(), "realnvp", FlowConfig(), 300.0);
    expectMessage([&] {
        LatentMetropolisIntegrator mc(single, 300.0, 0.5);
        Context context(periodic, mc, Platform::getPlatformByName("Reference"));
    }, "periodic");
    // NaN positions: a clear error, the Context unchanged.
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    expectMessage([&] { integrator.step(-1); }, "number of steps");
    expectMessage([&] { integrator.setCheckStereochemistry(false); }, "before creating the Context");
    context.setPositions({Vec3(std::nan(""), 0.0, 0.0)});
    expectMessage([&] { integrator.step(1); }, "not finite");
    EXPECT_TRUE(std::isnan(xOf(context)));
}

TEST(LatentMetropolisAlanine, TrainedFlowKeepsChiralityAndReportsTrueEnergies) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    const double temperature = 600.0;
    // Training data: 100 ps of MD at 600 K.
    LangevinMiddleIntegrator md(temperature, 1.0, 0.001);
    md.setRandomNumberSeed(17);
    Context mdContext(*molecule.system, md, Platform::getPlatformByName("Reference"));
    mdContext.setPositions(molecule.structure.positions);
    mdContext.setVelocitiesToTemperature(temperature, 17);
    md.step(2000);
    std::vector<double> flat;
    for (int f = 0; f < 1000; f++) {
        md.step(100);
        State state = mdContext.getState(State::Positions);  // keep the State alive while reading it
        for (const Vec3& p : state.getPositions())
            flat.insert(flat.end(), {p[0], p[1], p[2]});
    }
    at::Tensor frames = at::tensor(flat, at::kDouble).reshape({1000, 22, 3});
    FlowConfig config;
    config.numBlocks = 3;
    config.hiddenLayers = 2;
    config.hiddenWidth = 64;
    FlowModel model = FlowModel::createForMolecule(*molecule.system, frames, "tsf", config, temperature);
    TrainerOptions options;
    options.numThreads = 1;
    options.logInterval = 1000;
    FlowTrainer trainer(model, options);
    trainer.setData(frames, temperature);
    TrainingStage stage;
    stage.steps = 400;
    stage.batchSize = 128;
    trainer.train(stage);

    LatentMetropolisIntegrator integrator(model, temperature, 0.05, 0.1);
    integrator.setRandomNumberSeed(18);
    Context context(*molecule.system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(mdContext.getState(State::Positions).getPositions());
    Stereochemistry stereo(22, bondsOfSystem(*molecule.system));
    at::Tensor reference = stereo.signs(positionsToTensor(context.getState(State::Positions).getPositions()))[0];
    VerletIntegrator verlet(0.001);
    Context fresh(*molecule.system, verlet, Platform::getPlatformByName("Reference"));
    long long lastAccepted = 0, checkedEnergies = 0;
    for (int block = 0; block < 100; block++) {
        integrator.step(100);
        State state = context.getState(State::Positions | State::Energy);
        EXPECT_TRUE(at::equal(stereo.signs(positionsToTensor(state.getPositions()))[0], reference)) << "block " << block;
        const MoveStatistics s = integrator.getStatistics();
        long long accepted = s.accepted[0] + s.accepted[1];
        if (accepted > lastAccepted) {
            fresh.setPositions(state.getPositions());
            EXPECT_EQ(fresh.getState(State::Energy).getPotentialEnergy(), state.getPotentialEnergy());
            checkedEnergies++;
        }
        lastAccepted = accepted;
    }
    const MoveStatistics s = integrator.getStatistics();
    EXPECT_EQ(s.proposed[0] + s.proposed[1], 10000);
    EXPECT_GT(integrator.getAcceptanceRate(MoveKind::RandomWalk), 0.05);
    EXPECT_GT(checkedEnergies, 10);
    std::cout << "alanine dipeptide, 10^4 moves at 600 K: random-walk acceptance "
              << integrator.getAcceptanceRate(MoveKind::RandomWalk) << ", independence acceptance "
              << integrator.getAcceptanceRate(MoveKind::Independence) << ", stereo rejections " << s.stereoFlips
              << ", out of domain " << s.outOfDomain << "\n";
}
