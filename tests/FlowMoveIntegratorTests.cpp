// The tests of LatentMetropolisIntegrator and TSFParallelTemperingIntegrator
// that every platform must pass, as OpenMM's TestRpmd.h: compiled once and
// linked into each platform's test program, which defines testPlatform().
// Exactness on the double well, exchange rates against their closed form,
// replica bookkeeping, the Context left exactly as it was by rejected moves,
// checkpoints that continue a run bit for bit, and the rules every platform
// follows: energies of the integration force groups with the Context's
// parameters, and the integrator's own copy of the flow.

#include "FlowMoveIntegratorTests.h"

#include "SamplerChecks.h"
#include "TestSupport.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/tools/ToySystems.h"

#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <openmm/CompoundIntegrator.h>
#include <openmm/Context.h>
#include <openmm/CustomExternalForce.h>
#include <openmm/LangevinMiddleIntegrator.h>
#include <openmm/Platform.h>
#include <openmm/State.h>
#include <openmm/VerletIntegrator.h>

#include <cmath>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace OpenMMBG {
namespace testing {



class FlowMoveIntegratorTest : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string reason = testPlatform().unusable ? testPlatform().unusable() : "";
        if (!reason.empty())
            GTEST_SKIP() << reason;
    }
    static OpenMM::Platform& platform() { return OpenMM::Platform::getPlatformByName(testPlatform().name); }
    static const PlatformProperties& properties() { return testPlatform().properties; }
    static double xOf(OpenMM::Context& context) {
        return context.getState(OpenMM::State::Positions).getPositions()[0][0];
    }
    static constexpr double T_REF = 300.0;  // the double well's unit temperature (kT = 1)
};

using LatentMetropolisOnPlatform = FlowMoveIntegratorTest;
using ParallelTemperingOnPlatform = FlowMoveIntegratorTest;

TEST_F(LatentMetropolisOnPlatform, RejectedMovesLeaveTheContextExactly) {
    DoubleWell well;
    auto system = well.createSystem();
    // Each storage of positions (CUDA: float4, float4 + corrections, double4) must be restored bit for bit.
    for (const PlatformProperties& variant : testPlatform().storageVariants) {
        SCOPED_TRACE(testPlatform().name + (variant.empty() ? "" : " " + variant.begin()->second));
        // Proposals a latent step of 50 away have energies far beyond exp(-700): always rejected.
        LatentMetropolisIntegrator integrator(untrainedDoubleWellFlow(*system), T_REF, 50.0, 0.0);
        integrator.setRandomNumberSeed(13);
        OpenMM::Context context(*system, integrator, platform(), variant);
        context.setPositions({OpenMM::Vec3(-2.3, 0.4, 0.1)});
        context.setVelocities({OpenMM::Vec3(0.5, -0.25, 1.5)});
        context.setTime(7.0);
        const int all = OpenMM::State::Positions | OpenMM::State::Velocities | OpenMM::State::Energy
                        | OpenMM::State::Forces;
        OpenMM::State before = context.getState(all);
        integrator.step(20);
        OpenMM::State after = context.getState(all);
        EXPECT_EQ(integrator.getStatistics().getAccepted(MoveKind::RandomWalk), 0);
        EXPECT_EQ(integrator.getStatistics().getProposed(MoveKind::RandomWalk), 20);
        for (int k = 0; k < 3; k++) {
            EXPECT_EQ(before.getPositions()[0][k], after.getPositions()[0][k]);
            EXPECT_EQ(before.getVelocities()[0][k], after.getVelocities()[0][k]);
            EXPECT_EQ(before.getForces()[0][k], after.getForces()[0][k]);
        }
        EXPECT_EQ(before.getPotentialEnergy(), after.getPotentialEnergy());
        EXPECT_EQ(before.getKineticEnergy(), after.getKineticEnergy());
        EXPECT_EQ(after.getTime(), 7.0);
        // Accepted moves change positions but never velocities or time.
        integrator.setLatentStepSize(0.5);
        integrator.step(50);
        OpenMM::State moved = context.getState(all);
        EXPECT_GT(integrator.getStatistics().getAccepted(MoveKind::RandomWalk), 0);
        EXPECT_NE(moved.getPositions()[0][0], before.getPositions()[0][0]);
        EXPECT_EQ(moved.getPositions()[0][2], before.getPositions()[0][2]);  // z is external: kept
        EXPECT_EQ(moved.getVelocities()[0][1], before.getVelocities()[0][1]);
        EXPECT_EQ(moved.getTime(), 7.0);
        // Steps count like MD steps (app.Simulation counts its steps by them); warm-up moves do not.
        EXPECT_EQ(context.getStepCount(), 70);
        integrator.warmUp(5);
        EXPECT_EQ(context.getStepCount(), 70);
        // The reported energy is the current configuration's.
        OpenMM::VerletIntegrator verlet(0.001);
        OpenMM::Context fresh(*system, verlet, platform(), variant);
        fresh.setPositions(moved.getPositions());
        EXPECT_EQ(fresh.getState(OpenMM::State::Energy).getPotentialEnergy(), moved.getPotentialEnergy());
    }
}

TEST_F(LatentMetropolisOnPlatform, TrainedFlowIsStationaryFromExactStarts) {
    DoubleWell well;
    expectStationaryLatentMetropolis(trainedDoubleWellFlow(*well.createSystem(), "tsf"), 0.5, 0.5, 6,
                                     testPlatform().name, properties());
}

TEST_F(LatentMetropolisOnPlatform, TrainedFlowConvergesFromOneWell) {
    DoubleWell well;
    expectDoubleWellFreeEnergy(trainedDoubleWellFlow(*well.createSystem(), "tsf"), 2 * T_REF, 8, testPlatform().name,
                               properties());
}

TEST_F(LatentMetropolisOnPlatform, SplineFlowIsExactOnATorsionChain) {
    expectExactTorsionMarginalWithSplineMoves(testPlatform().name, properties());
}

TEST_F(LatentMetropolisOnPlatform, FixedSeedReproducesARun) {
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = untrainedDoubleWellFlow(*system);
    auto run = [&](int seed) {
        LatentMetropolisIntegrator integrator(model, T_REF, 0.5, 0.3);
        integrator.setRandomNumberSeed(seed);
        OpenMM::Context context(*system, integrator, platform(), properties());
        context.setPositions({OpenMM::Vec3(-2.4, 0.0, 0.0)});
        std::vector<double> xs;
        for (int i = 0; i < 100; i++) {
            integrator.step(1);
            xs.push_back(xOf(context));
        }
        return xs;
    };
    EXPECT_EQ(run(21), run(21));
    EXPECT_NE(run(21), run(22));
}

TEST_F(LatentMetropolisOnPlatform, CheckpointContinuesARunBitForBit) {
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = untrainedDoubleWellFlow(*system);
    LatentMetropolisIntegrator integrator(model, T_REF, 5.0, 0.3);
    integrator.setRandomNumberSeed(23);
    integrator.setIndependenceBlockSize(4);  // the checkpoint lands inside a block; later ones are drawn after it
    OpenMM::Context context(*system, integrator, platform(), properties());
    context.setPositions({OpenMM::Vec3(-2.4, 0.0, 0.0)});
    integrator.warmUp(30);  // the adapted step size is part of the state
    integrator.step(30);
    std::stringstream checkpoint;
    context.createCheckpoint(checkpoint);
    auto record = [&](LatentMetropolisIntegrator& chain, OpenMM::Context& chainContext) {
        std::vector<double> xs;
        for (int i = 0; i < 40; i++) {
            chain.step(1);
            xs.push_back(xOf(chainContext));
        }
        return xs;
    };
    const std::vector<double> first = record(integrator, context);
    const MoveStatistics statistics = integrator.getStatistics();
    const double sigma = integrator.getLatentStepSize();
    // The same Context, back to the checkpoint.
    checkpoint.seekg(0);
    context.loadCheckpoint(checkpoint);
    EXPECT_EQ(record(integrator, context), first);
    // A new Context with a new integrator of the same definition (another seed: the checkpoint has the generator).
    LatentMetropolisIntegrator other(model, T_REF, 0.1, 0.3);
    other.setRandomNumberSeed(99);
    other.setIndependenceBlockSize(4);
    OpenMM::Context otherContext(*system, other, platform(), properties());
    checkpoint.seekg(0);
    otherContext.loadCheckpoint(checkpoint);
    EXPECT_EQ(other.getLatentStepSize(), sigma);
    EXPECT_EQ(record(other, otherContext), first);
    EXPECT_EQ(other.getStatistics().proposed[0], statistics.proposed[0]);
    EXPECT_EQ(other.getStatistics().accepted[1], statistics.accepted[1]);
    // Another integrator's checkpoint is refused with a clear message.
    TSFParallelTemperingIntegrator tempering(model, {300.0, 600.0}, 0.5);
    OpenMM::Context temperingContext(*system, tempering, platform(), properties());
    checkpoint.seekg(0);
    expectMessage([&] { temperingContext.loadCheckpoint(checkpoint); }, "another integrator");
}

/**
 * A harmonic oscillator (group 0) plus a stiff force in group 1 that the
 * integrators must leave out when told to: with the exact flow, independence
 * moves on group 0 alone are always accepted.
 */
std::unique_ptr<OpenMM::System> harmonicSystemWithAnotherGroup() {
    auto system = harmonicSystem();
    auto* stiff = new OpenMM::CustomExternalForce("50*x^2");
    stiff->addParticle(0);
    stiff->setForceGroup(1);
    system->addForce(stiff);
    return system;
}

TEST_F(LatentMetropolisOnPlatform, EnergiesAreTheIntegrationForceGroupsWithTheContextsParameters) {
    auto system = harmonicSystemWithAnotherGroup();
    LatentMetropolisIntegrator integrator(exactHarmonicFlow(*system), 450.0, 0.0, 1.0);
    integrator.setRandomNumberSeed(24);
    integrator.setIntegrationForceGroups(1 << 0);
    OpenMM::Context context(*system, integrator, platform(), properties());
    context.setPositions({OpenMM::Vec3(0.1, -0.2, 0.0)});
    integrator.step(300);
    EXPECT_EQ(integrator.getAcceptanceRate(MoveKind::Independence), 1.0);  // exact for group 0 alone
    integrator.resetStatistics();
    integrator.setIntegrationForceGroups(-1);  // both groups: the flow is no longer exact
    integrator.step(300);
    EXPECT_LT(integrator.getAcceptanceRate(MoveKind::Independence), 0.5);
    // A new value of the Context's global parameter (the oscillator's unit) is seen too.
    integrator.resetStatistics();
    integrator.setIntegrationForceGroups(1 << 0);
    context.setParameter("unit", 4 * context.getParameter("unit"));
    integrator.step(300);
    EXPECT_LT(integrator.getAcceptanceRate(MoveKind::Independence), 0.8);
}

TEST_F(LatentMetropolisOnPlatform, IndependenceBlocksFollowTheChainsTemperatureAndPlacement) {
    // A flow exact at every temperature accepts every independence move, so
    // the chain's samples are its proposals: i.i.d. from the Boltzmann
    // density, if the proposals drawn ahead at 3000 K are dropped when the
    // temperature becomes 300 K (54 left over would inflate <x^2 + y^2> by
    // about 100 %), and placed at the molecule's current z.
    auto system = harmonicSystem();
    const double unitTemperature = DoubleWell().unitTemperature;  // x^2 + y^2 has mean 2 T / unitTemperature
    LatentMetropolisIntegrator integrator(exactHarmonicFlow(*system), 10 * unitTemperature, 0.0, 1.0);
    EXPECT_EQ(integrator.getIndependenceBlockSize(), 64);
    integrator.setRandomNumberSeed(31);
    OpenMM::Context context(*system, integrator, platform(), properties());
    context.setPositions({OpenMM::Vec3(0.1, -0.2, 0.3)});
    integrator.step(10);
    integrator.setTemperature(unitTemperature);
    const int samples = 500;
    double sum = 0;
    for (int i = 0; i < samples; i++) {
        if (i == samples / 2)
            context.setPositions({OpenMM::Vec3(0.1, -0.2, -0.75)});  // z exact in single precision (CUDA)
        integrator.step(1);
        const OpenMM::Vec3 x = context.getState(OpenMM::State::Positions).getPositions()[0];
        sum += x[0] * x[0] + x[1] * x[1];
    }
    EXPECT_EQ(integrator.getAcceptanceRate(MoveKind::Independence), 1.0);
    // (x^2 + y^2) / (T / unitTemperature) is chi-squared with 2 degrees of freedom: mean 2, variance 4.
    EXPECT_NEAR(sum / samples, 2.0, 5 * 2.0 / std::sqrt((double) samples));
    EXPECT_EQ(context.getState(OpenMM::State::Positions).getPositions()[0][2], -0.75);
    expectMessage([&] { integrator.setIndependenceBlockSize(0); }, "block size");
}

TEST_F(LatentMetropolisOnPlatform, TwoContextsOnTwoThreadsMatchSequentialRuns) {
    // Both integrators, each in its own Context (made on this thread: OpenMM
    // 7.7's CPU platform registers Contexts without a lock), stepped on two
    // threads at once, give bit for bit the runs made one after the other.
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = untrainedDoubleWellFlow(*system);
    struct Run {
        std::unique_ptr<FlowMoveIntegrator> integrator;
        std::unique_ptr<OpenMM::Context> context;
        std::vector<double> xs;
        std::string error;
    };
    auto makeRuns = [&] {
        std::vector<Run> runs(2);
        runs[0].integrator = std::make_unique<LatentMetropolisIntegrator>(model, T_REF, 0.5, 0.3);
        runs[1].integrator = std::make_unique<TSFParallelTemperingIntegrator>(
            model, std::vector<double>{300.0, 420.0, 600.0}, 0.5, 0.3);
        for (int k = 0; k < 2; k++) {
            runs[k].integrator->setRandomNumberSeed(61 + k);
            runs[k].integrator->setIndependenceBlockSize(8);
            runs[k].context = std::make_unique<OpenMM::Context>(*system, *runs[k].integrator, platform(), properties());
            runs[k].context->setPositions({OpenMM::Vec3(-2.4, 0.0, 0.0)});
        }
        return runs;
    };
    auto advance = [](Run& run) {
        try {
            for (int i = 0; i < 150; i++) {
                run.integrator->step(1);
                run.xs.push_back(xOf(*run.context));
            }
        } catch (const std::exception& e) {
            run.error = e.what();
        }
    };
    std::vector<Run> sequential = makeRuns(), concurrent = makeRuns();
    for (Run& run : sequential)
        advance(run);
    std::thread first([&] { advance(concurrent[0]); }), second([&] { advance(concurrent[1]); });
    first.join();
    second.join();
    for (int k = 0; k < 2; k++) {
        EXPECT_EQ(concurrent[k].error, "");
        EXPECT_EQ(concurrent[k].xs, sequential[k].xs) << "integrator " << k;
        EXPECT_EQ(concurrent[k].xs.size(), 150u);
    }
}

TEST_F(LatentMetropolisOnPlatform, KeepsItsOwnCopyOfTheFlow) {
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = untrainedDoubleWellFlow(*system);
    const FlowModel pristine = model.clone();
    LatentMetropolisIntegrator integrator(model, T_REF, 0.5, 0.3);
    integrator.setRandomNumberSeed(25);
    {
        // Changing the caller's model after construction must not reach the integrator.
        at::NoGradGuard noGrad;
        for (at::Tensor parameter : model.getFlow().parameters())
            parameter.mul_(-3.0).add_(0.5);
    }
    LatentMetropolisIntegrator reference(pristine, T_REF, 0.5, 0.3);
    reference.setRandomNumberSeed(25);
    OpenMM::Context context(*system, integrator, platform(), properties());
    OpenMM::Context referenceContext(*system, reference, platform(), properties());
    for (OpenMM::Context* c : {&context, &referenceContext})
        c->setPositions({OpenMM::Vec3(-2.4, 0.0, 0.0)});
    for (int i = 0; i < 50; i++) {
        integrator.step(1);
        reference.step(1);
        ASSERT_EQ(xOf(context), xOf(referenceContext)) << "step " << i;
    }
}

TEST_F(ParallelTemperingOnPlatform, ExchangeAcceptanceMatchesClosedForm) {
    // With a flow exact at every temperature, independence moves are always
    // accepted and replicas are independent Boltzmann samples every step. For
    // a 2D harmonic oscillator beta U is exponential, and an exchange between
    // T_i < T_j is accepted with probability 2 rho / (1 + rho), rho = T_i / T_j.
    auto system = harmonicSystem();
    const std::vector<double> ladder = {300.0, 400.0, 600.0};
    TSFParallelTemperingIntegrator integrator(exactHarmonicFlow(*system), ladder, 0.0, 1.0);
    integrator.setRandomNumberSeed(32);
    OpenMM::Context context(*system, integrator, platform(), properties());
    context.setPositions({OpenMM::Vec3(0.1, -0.2, 0.0)});
    integrator.step(20000);
    for (int r = 0; r < 3; r++)
        EXPECT_NEAR(integrator.getMoveStatistics(r).acceptanceRate(MoveKind::Independence), 1.0, 1e-3) << "replica " << r;
    for (int pair = 0; pair < 2; pair++) {
        const double rho = ladder[pair] / ladder[pair + 1];
        const double expected = 2 * rho / (1 + rho);
        const double attempts = (double) integrator.getExchangeAttempts(pair);
        const double error = std::sqrt(expected * (1 - expected) / attempts);  // independent attempts
        EXPECT_NEAR(integrator.getExchangeAcceptanceRate(pair), expected, 4 * error)
            << "pair " << pair << ": " << attempts << " attempts";
    }
}

TEST_F(ParallelTemperingOnPlatform, ReplicasFollowExchangesWithoutLossOrDuplication) {
    // Exchanges only: configurations must be permuted between temperatures, unchanged.
    auto system = harmonicSystem();
    TSFParallelTemperingIntegrator integrator(exactHarmonicFlow(*system),
                                              TSFParallelTemperingIntegrator::geometricLadder(300.0, 450.0, 4), 0.5, 0.0);
    integrator.setFlowMovesPerStep(0);
    integrator.setRandomNumberSeed(33);
    OpenMM::Context context(*system, integrator, platform(), properties());
    // Coordinates exact in single precision: the CUDA platform stores the
    // Context's positions in floats, the other replicas in doubles, and a
    // configuration must cross between the two unchanged.
    std::vector<std::vector<OpenMM::Vec3>> initial;
    for (int r = 0; r < 4; r++) {
        initial.push_back({OpenMM::Vec3(0.25 * r - 0.375, 0.125 * r, 0.0)});
        integrator.setReplicaPositions(r, initial.back());
    }
    EXPECT_EQ(xOf(context), initial[0][0][0]);
    std::vector<int> bottoms, tops;
    for (int step = 0; step < 2000; step++) {
        integrator.step(1);
        std::set<int> walkers;
        for (int r = 0; r < 4; r++) {
            const int walker = integrator.getWalkerAtReplica(r);
            walkers.insert(walker);
            const std::vector<OpenMM::Vec3> positions = integrator.getReplicaPositions(r);
            ASSERT_EQ(positions[0][0], initial[walker][0][0]) << "step " << step;
            ASSERT_EQ(positions[0][1], initial[walker][0][1]) << "step " << step;
        }
        ASSERT_EQ(walkers.size(), 4u);
        bottoms.push_back(integrator.getWalkerAtReplica(0));
        tops.push_back(integrator.getWalkerAtReplica(3));
    }
    // Round trips, counted independently: a walker at T_1 after having been at T_4 since its last visit to T_1.
    std::vector<int> heading(4, 0);
    heading[0] = +1;
    long long trips = 0;
    for (size_t i = 0; i < bottoms.size(); i++) {
        if (heading[bottoms[i]] == -1)
            trips++;
        heading[bottoms[i]] = +1;
        if (heading[tops[i]] == +1)
            heading[tops[i]] = -1;
    }
    EXPECT_GT(trips, 10);
    EXPECT_EQ(integrator.getNumRoundTrips(), trips);
    // Energies are those of the replicas' configurations.
    OpenMM::VerletIntegrator verlet(0.001);
    OpenMM::Context fresh(*system, verlet, platform(), properties());
    for (int r = 0; r < 4; r++) {
        fresh.setPositions(integrator.getReplicaPositions(r));
        EXPECT_EQ(fresh.getState(OpenMM::State::Energy).getPotentialEnergy(), integrator.getReplicaPotentialEnergy(r));
    }
}

TEST_F(ParallelTemperingOnPlatform, MDMovesOnlyTheContextReplica) {
    DoubleWell well;
    auto system = well.createSystem();
    OpenMM::CompoundIntegrator compound;
    auto* md = new OpenMM::LangevinMiddleIntegrator(T_REF, 5.0, 0.004);
    md->setRandomNumberSeed(34);
    auto* pt = new TSFParallelTemperingIntegrator(untrainedDoubleWellFlow(*system), {300.0, 450.0, 600.0}, 0.5, 0.3);
    pt->setRandomNumberSeed(35);
    compound.addIntegrator(md);
    compound.addIntegrator(pt);
    OpenMM::Context context(*system, compound, platform(), properties());
    context.setPositions({OpenMM::Vec3(-2.4, 0.0, 0.0)});
    context.setVelocitiesToTemperature(T_REF, 36);
    compound.setCurrentIntegrator(1);
    compound.step(20);
    std::vector<OpenMM::Vec3> others[2] = {pt->getReplicaPositions(1), pt->getReplicaPositions(2)};
    compound.setCurrentIntegrator(0);
    compound.step(50);
    std::vector<OpenMM::Vec3> moved = context.getState(OpenMM::State::Positions).getPositions();
    EXPECT_EQ(pt->getReplicaPositions(0)[0][0], moved[0][0]);
    EXPECT_EQ(pt->getReplicaPositions(1)[0][0], others[0][0][0]);
    EXPECT_EQ(pt->getReplicaPositions(2)[0][0], others[1][0][0]);
    // The next PT step starts replica 0 from where MD left it.
    compound.setCurrentIntegrator(1);
    pt->setFlowMovesPerStep(0);
    const long long attempts = pt->getExchangeAttempts(0) + pt->getExchangeAttempts(1);
    const int walker = pt->getWalkerAtReplica(0);
    compound.step(1);
    EXPECT_EQ(pt->getExchangeAttempts(0) + pt->getExchangeAttempts(1), attempts + 1);
    const bool replica0Kept = pt->getWalkerAtReplica(0) == walker && pt->getReplicaPositions(0)[0][0] == moved[0][0];
    const bool replica0Swapped = pt->getWalkerAtReplica(1) == walker && pt->getReplicaPositions(1)[0][0] == moved[0][0];
    EXPECT_TRUE(replica0Kept || replica0Swapped);
    // Each integrator's steps advance the Context's step count: 20 + 50 + 1.
    EXPECT_EQ(context.getStepCount(), 71);
}

TEST_F(ParallelTemperingOnPlatform, CheckpointContinuesARunBitForBit) {
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = untrainedDoubleWellFlow(*system);
    const std::vector<double> ladder = {300.0, 420.0, 600.0};
    TSFParallelTemperingIntegrator integrator(model, ladder, 0.4, 0.3);
    integrator.setRandomNumberSeed(37);
    integrator.setFlowMovesPerStep(2);
    integrator.setIndependenceBlockSize(5);
    OpenMM::Context context(*system, integrator, platform(), properties());
    context.setPositions({OpenMM::Vec3(-2.4, 0.0, 0.0)});
    integrator.setReplicaPositions(2, {OpenMM::Vec3(2.1, 0.3, 0.0)});
    integrator.step(25);  // an odd number of steps: the next round of exchanges is an odd-pair round
    std::stringstream checkpoint;
    context.createCheckpoint(checkpoint);
    auto record = [&](TSFParallelTemperingIntegrator& pt) {
        std::vector<double> xs;
        for (int i = 0; i < 30; i++) {
            pt.step(1);
            for (int r = 0; r < 3; r++)
                xs.push_back(pt.getReplicaPositions(r)[0][0]);
        }
        return xs;
    };
    const std::vector<double> first = record(integrator);
    const long long trips = integrator.getNumRoundTrips(), attempts = integrator.getExchangeAttempts(1);
    checkpoint.seekg(0);
    context.loadCheckpoint(checkpoint);
    EXPECT_EQ(record(integrator), first);
    // A new Context with a new integrator of the same definition.
    TSFParallelTemperingIntegrator other(model, ladder, 0.4, 0.3);
    other.setFlowMovesPerStep(2);
    other.setIndependenceBlockSize(5);
    OpenMM::Context otherContext(*system, other, platform(), properties());
    checkpoint.seekg(0);
    otherContext.loadCheckpoint(checkpoint);
    EXPECT_EQ(record(other), first);
    EXPECT_EQ(other.getNumRoundTrips(), trips);
    EXPECT_EQ(other.getExchangeAttempts(1), attempts);
    for (int r = 0; r < 3; r++)
        EXPECT_EQ(other.getWalkerAtReplica(r), integrator.getWalkerAtReplica(r));
    // Another ladder is refused with a clear message.
    TSFParallelTemperingIntegrator longer(model, {300.0, 400.0, 500.0, 600.0}, 0.4, 0.3);
    OpenMM::Context longerContext(*system, longer, platform(), properties());
    checkpoint.seekg(0);
    expectMessage([&] { longerContext.loadCheckpoint(checkpoint); }, "entries where this integrator has");
}

TEST_F(ParallelTemperingOnPlatform, IndependenceBlocksFollowExchanges) {
    // Exact flow, independence moves only: every move is accepted, in every
    // replica, although exchanges keep moving configurations (with their
    // external z and, for this TSF, their momenta) between temperatures; and
    // no configuration's z is lost or duplicated.
    auto system = harmonicSystem();
    const std::vector<double> ladder = {300.0, 360.0, 430.0};
    TSFParallelTemperingIntegrator integrator(exactHarmonicFlow(*system), ladder, 0.0, 1.0);
    integrator.setIndependenceBlockSize(7);
    integrator.setRandomNumberSeed(41);
    OpenMM::Context context(*system, integrator, platform(), properties());
    const std::vector<double> zs = {0.125, 0.25, -0.375};  // exact in single precision (CUDA)
    context.setPositions({OpenMM::Vec3(0.125, 0.0, zs[0])});
    for (int r = 1; r < 3; r++)
        integrator.setReplicaPositions(r, {OpenMM::Vec3(-0.125, 0.25, zs[r])});
    integrator.step(60);
    for (int r = 0; r < 3; r++)
        EXPECT_EQ(integrator.getMoveStatistics(r).acceptanceRate(MoveKind::Independence), 1.0) << "replica " << r;
    EXPECT_GT(integrator.getExchangeAcceptances(0) + integrator.getExchangeAcceptances(1), 0);
    std::multiset<double> found;
    for (int r = 0; r < 3; r++)
        found.insert(integrator.getReplicaPositions(r)[0][2]);
    EXPECT_EQ(found, std::multiset<double>(zs.begin(), zs.end()));
}

TEST_F(ParallelTemperingOnPlatform, EnergiesAreTheIntegrationForceGroupsWithTheContextsParameters) {
    auto system = harmonicSystemWithAnotherGroup();
    TSFParallelTemperingIntegrator integrator(exactHarmonicFlow(*system), {300.0, 400.0, 600.0}, 0.0, 1.0);
    integrator.setRandomNumberSeed(38);
    integrator.setIntegrationForceGroups(1 << 0);
    OpenMM::Context context(*system, integrator, platform(), properties());
    context.setPositions({OpenMM::Vec3(0.1, -0.2, 0.0)});
    context.setParameter("unit", 2 * context.getParameter("unit"));
    integrator.step(50);
    OpenMM::VerletIntegrator verlet(0.001);
    OpenMM::Context fresh(*system, verlet, platform(), properties());
    fresh.setParameter("unit", context.getParameter("unit"));
    for (int r = 0; r < 3; r++) {
        fresh.setPositions(integrator.getReplicaPositions(r));
        const double groupZero = fresh.getState(OpenMM::State::Energy, false, 1 << 0).getPotentialEnergy();
        EXPECT_EQ(integrator.getReplicaPotentialEnergy(r), groupZero) << "replica " << r;
    }
}

} // namespace testing
} // namespace OpenMMBG
