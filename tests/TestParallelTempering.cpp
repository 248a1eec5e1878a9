// TSFParallelTemperingIntegrator: every replica against its exact marginal,
// exchange acceptance against its closed form, replica bookkeeping, the
// Context as replica 0, composition with MD, serialization and bad input.

#include "IntegratorChecks.h"
#include "SamplerChecks.h"
#include "TestSupport.h"
#include "openmmbg/Metrics.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/ToySystems.h"

#include <gtest/gtest.h>
#include <openmm/CompoundIntegrator.h>
#include <openmm/Context.h>
#include <openmm/LangevinMiddleIntegrator.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/State.h>
#include <openmm/VerletIntegrator.h>
#include <openmm/serialization/XmlSerializer.h>

#include <cmath>
#include <set>
#include <sstream>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

const double T_REF = 300.0;

double xOf(const std::vector<Vec3>& positions) {
    return positions[0][0];
}

} // namespace

TEST(ParallelTempering, EveryReplicaMatchesItsExactMarginal) {
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = trainedDoubleWellFlow(*system, "tsf");
    const std::vector<double> ladder = {300.0, 400.0, 533.0, 711.0};
    TSFParallelTemperingIntegrator integrator(model, ladder, 0.5, 0.5);
    integrator.setRandomNumberSeed(31);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(-2.4, 0.0, 0.0)});
    integrator.step(200);
    std::vector<std::vector<double>> chains(ladder.size());
    for (int step = 0; step < 20000; step++) {
        integrator.step(1);
        for (size_t r = 0; r < ladder.size(); r++)
            chains[r].push_back(xOf(integrator.getReplicaPositions((int) r)));
    }
    for (size_t r = 0; r < ladder.size(); r++) {
        StationarityCheck check = checkBlockAverages(chains[r], well, ladder[r]);
        Estimate dF = phiFreeEnergyDifference(at::tensor(chains[r], at::kDouble), 20);
        double exact = well.freeEnergyDifference(ladder[r]);
        EXPECT_GE(countCrossings(chains[r]), 100) << "replica " << r;
        EXPECT_LT(check.maxAbsZ, 4.5) << "replica " << r << "\n" << check.describe();
        EXPECT_NEAR(dF.value, exact, 4 * dF.error) << "replica " << r << " error " << dF.error;
    }
    // The Context holds the T_1 replica.
    State state = context.getState(State::Positions | State::Energy);
    EXPECT_EQ(state.getPositions()[0][0], integrator.getReplicaPositions(0)[0][0]);
    EXPECT_EQ(state.getPotentialEnergy(), integrator.getReplicaPotentialEnergy(0));
    for (int pair = 0; pair < 3; pair++) {
        EXPECT_EQ(integrator.getExchangeAttempts(pair), 10100);  // each pair every other step
        EXPECT_GT(integrator.getExchangeAcceptanceRate(pair), 0.2) << "pair " << pair;
    }
    EXPECT_GT(integrator.getNumRoundTrips(), 50);
}

TEST(ParallelTempering, ExchangeAcceptanceMatchesClosedForm) {
    // With a flow exact at every temperature, independence moves are always
    // accepted and replicas are independent Boltzmann samples every step. For
    // a 2D harmonic oscillator beta U is exponential, and an exchange between
    // T_i < T_j is accepted with probability 2 rho / (1 + rho), rho = T_i / T_j.
    for (const std::string platform : {"Reference", "CPU"})
        checkExchangeAcceptanceMatchesClosedForm(platform);
}

TEST(ParallelTempering, ReplicasFollowExchangesWithoutLossOrDuplication) {
    // Exchanges only: configurations must be permuted between temperatures, unchanged.
    auto system = harmonicSystem();
    FlowModel model = exactHarmonicFlow(*system);
    TSFParallelTemperingIntegrator integrator(model, TSFParallelTemperingIntegrator::geometricLadder(300.0, 450.0, 4),
                                              0.5, 0.0);
    integrator.setFlowMovesPerStep(0);
    integrator.setRandomNumberSeed(33);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    std::vector<std::vector<Vec3>> initial;
    for (int r = 0; r < 4; r++) {
        initial.push_back({Vec3(0.3 * r - 0.4, 0.1 * r, 0.0)});
        integrator.setReplicaPositions(r, initial.back());
    }
    EXPECT_EQ(context.getState(State::Positions).getPositions()[0][0], initial[0][0][0]);
    std::vector<int> atBottom;
    for (int step = 0; step < 2000; step++) {
        integrator.step(1);
        std::set<int> walkers;
        for (int r = 0; r < 4; r++) {
            int walker = integrator.getWalkerAtReplica(r);
            walkers.insert(walker);
            ASSERT_EQ(integrator.getReplicaPositions(r)[0][0], initial[walker][0][0]) << "step " << step;
            ASSERT_EQ(integrator.getReplicaPositions(r)[0][1], initial[walker][0][1]) << "step " << step;
        }
        ASSERT_EQ(walkers.size(), 4u);
        atBottom.push_back(integrator.getWalkerAtReplica(0));
        // The top replica's walker, for the round-trip count below.
        atBottom.push_back(-1 - integrator.getWalkerAtReplica(3));
    }
    // Round trips, counted independently: a walker at T_1 after having been at T_4 since its last visit to T_1.
    std::vector<int> heading(4, 0);
    heading[0] = +1;
    long long trips = 0;
    for (size_t i = 0; i < atBottom.size(); i += 2) {
        int bottom = atBottom[i], top = -1 - atBottom[i + 1];
        if (heading[bottom] == -1)
            trips++;
        heading[bottom] = +1;
        if (heading[top] == +1)
            heading[top] = -1;
    }
    EXPECT_GT(trips, 10);
    EXPECT_EQ(integrator.getNumRoundTrips(), trips);
    // Energies are those of the replicas' configurations.
    VerletIntegrator verlet(0.001);
    Context fresh(*system, verlet, Platform::getPlatformByName("Reference"));
    for (int r = 0; r < 4; r++) {
        fresh.setPositions(integrator.getReplicaPositions(r));
        EXPECT_EQ(fresh.getState(State::Energy).getPotentialEnergy(), integrator.getReplicaPotentialEnergy(r));
    }
}

TEST(ParallelTempering, MDMovesOnlyTheContextReplica) {
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = untrainedDoubleWellFlow(*system);
    CompoundIntegrator compound;
    auto* md = new LangevinMiddleIntegrator(T_REF, 5.0, 0.004);
    md->setRandomNumberSeed(34);
    auto* pt = new TSFParallelTemperingIntegrator(model, {300.0, 450.0, 600.0}, 0.5, 0.3);
    pt->setRandomNumberSeed(35);
    compound.addIntegrator(md);
    compound.addIntegrator(pt);
    Context context(*system, compound, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(-2.4, 0.0, 0.0)});
    context.setVelocitiesToTemperature(T_REF, 36);
    compound.setCurrentIntegrator(1);
    compound.step(20);
    std::vector<Vec3> others[2] = {pt->getReplicaPositions(1), pt->getReplicaPositions(2)};
    compound.setCurrentIntegrator(0);
    compound.step(50);
    std::vector<Vec3> moved = context.getState(State::Positions).getPositions();
    EXPECT_EQ(pt->getReplicaPositions(0)[0][0], moved[0][0]);
    EXPECT_EQ(pt->getReplicaPositions(1)[0][0], others[0][0][0]);
    EXPECT_EQ(pt->getReplicaPositions(2)[0][0], others[1][0][0]);
    // The next PT step starts replica 0 from where MD left it.
    compound.setCurrentIntegrator(1);
    pt->setFlowMovesPerStep(0);
    const long long attempts = pt->getExchangeAttempts(0) + pt->getExchangeAttempts(1);
    compound.step(1);
    EXPECT_EQ(pt->getExchangeAttempts(0) + pt->getExchangeAttempts(1), attempts + 1);
    bool replica0Kept = pt->getWalkerAtReplica(0) == 0 && pt->getReplicaPositions(0)[0][0] == moved[0][0];
    bool replica0Swapped = pt->getWalkerAtReplica(1) == 0 && pt->getReplicaPositions(1)[0][0] == moved[0][0];
    EXPECT_TRUE(replica0Kept || replica0Swapped);
    // Each integrator's steps advance the Context's step count: 20 + 50 + 1.
    EXPECT_EQ(context.getStepCount(), 71);
}

TEST(ParallelTempering, SerializationRoundTripContinuesIdentically) {
    DoubleWell well;
    auto system = well.createSystem();
    TSFParallelTemperingIntegrator original(untrainedDoubleWellFlow(*system), {300.0, 420.0, 600.0}, 0.4, 0.3);
    original.setRandomNumberSeed(37);
    original.setFlowMovesPerStep(2);
    Context context(*system, original, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(-2.4, 0.0, 0.0)});
    original.step(50);
    std::stringstream xml;
    XmlSerializer::serialize<Integrator>(&original, "Integrator", xml);
    std::unique_ptr<Integrator> copy(XmlSerializer::deserialize<Integrator>(xml));
    auto* restored = dynamic_cast<TSFParallelTemperingIntegrator*>(copy.get());
    ASSERT_NE(restored, nullptr);
    EXPECT_EQ(restored->getTemperatures(), original.getTemperatures());
    EXPECT_EQ(restored->getFlowMovesPerStep(), 2);
    EXPECT_EQ(restored->getIndependenceProbability(), 0.3);
    // Replica configurations belong to the simulation: give the copy the same ones.
    Context other(*system, *restored, Platform::getPlatformByName("Reference"));
    for (int r = 0; r < 3; r++)
        restored->setReplicaPositions(r, original.getReplicaPositions(r));
    // The exchange pairs alternate with the step count; the copy starts at step 0,
    // so align the parity by comparing from an even step of the original.
    ASSERT_EQ(original.getReplicaState().steps % 2, 0);
    for (int i = 0; i < 30; i++) {
        original.step(1);
        restored->step(1);
        for (int r = 0; r < 3; r++)
            ASSERT_EQ(original.getReplicaPositions(r)[0][0], restored->getReplicaPositions(r)[0][0])
                << "step " << i << " replica " << r;
    }
}

TEST(ParallelTempering, BadInputIsRefusedClearly) {
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = untrainedDoubleWellFlow(*system);
    auto expectMessage = [](const std::function<void()>& call, const std::string& text) {
        try {
            call();
            ADD_FAILURE() << "no exception; expected one mentioning '" << text << "'";
        } catch (const OpenMMException& e) {
            EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
        }
    };
    expectMessage([&] { TSFParallelTemperingIntegrator(model, {300.0}, 0.5); }, "at least 2 temperatures");
    expectMessage([&] { TSFParallelTemperingIntegrator(model, {300.0, 300.0}, 0.5); }, "strictly increasing");
    expectMessage([&] { TSFParallelTemperingIntegrator(model, {400.0, 300.0}, 0.5); }, "strictly increasing");
    expectMessage([&] { TSFParallelTemperingIntegrator(model, {-300.0, 300.0}, 0.5); }, "positive");
    expectMessage([&] { TSFParallelTemperingIntegrator(model, {0.0, 300.0}, 0.5); }, "positive");
    expectMessage([&] { TSFParallelTemperingIntegrator(model, {300.0, 600.0}, -1.0); }, "latent step size");
    expectMessage([&] { TSFParallelTemperingIntegrator(model, {300.0, 600.0}, 0.5, 2.0); }, "independence probability");
    expectMessage([&] { TSFParallelTemperingIntegrator::geometricLadder(300.0, 200.0, 4); }, "highest > lowest");
    TSFParallelTemperingIntegrator integrator(model, {300.0, 600.0}, 0.5);
    expectMessage([&] { integrator.getTemperature(2); }, "replica index 2 is out of range");
    expectMessage([&] { integrator.setReplicaPositions(-1, {Vec3()}); }, "replica index -1 is out of range");
    expectMessage([&] { integrator.setReplicaPositions(1, {Vec3(), Vec3()}); }, "got 2 positions");
    expectMessage([&] { integrator.setReplicaPositions(1, {Vec3(std::nan(""), 0, 0)}); }, "not finite");
    expectMessage([&] { integrator.getExchangeAttempts(1); }, "pair index 1 is out of range");
    expectMessage([&] { integrator.getReplicaPotentialEnergy(0); }, "after the first step");
    expectMessage([&] { integrator.step(1); }, "not bound to a Context");
    // Nothing changed by the refused calls.
    EXPECT_EQ(integrator.getNumReplicas(), 2);
    AlanineDipeptide molecule = loadAlanineDipeptide();
    expectMessage([&] {
        TSFParallelTemperingIntegrator wrong(model, {300.0, 600.0}, 0.5);
        Context context(*molecule.system, wrong, Platform::getPlatformByName("Reference"));
    }, "another System");
    std::vector<double> ladder = TSFParallelTemperingIntegrator::geometricLadder(300.0, 600.0, 5);
    EXPECT_EQ(ladder.front(), 300.0);
    EXPECT_EQ(ladder.back(), 600.0);
    EXPECT_NEAR(ladder[2], 300.0 * std::sqrt(2.0), 1e-9);
}
