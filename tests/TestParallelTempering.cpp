// TSFParallelTemperingIntegrator on the Reference platform: every replica
// against its exact marginal, and bad input. What every platform must pass
// (exchange rates, replica bookkeeping, MD next to it, checkpoints) is in
// FlowMoveIntegratorTests.cpp.

#include "SamplerChecks.h"
#include "TestSupport.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/tools/ToySystems.h"

#include <gtest/gtest.h>
#include <openmm/Context.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/State.h>

#include <cmath>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

const double T_REF = 300.0;

double xOf(const std::vector<Vec3>& positions) {
    return positions[0][0];
}

void expectEveryReplicaMatchesItsExactMarginal(bool tsfSplineCouplings) {
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = trainedDoubleWellFlow(*system, "tsf", tsfSplineCouplings);
    const std::vector<double> ladder = {300.0, 400.0, 533.0, 711.0};
    TSFParallelTemperingIntegrator integrator(model, ladder, 0.5, 0.5);
    integrator.setRandomNumberSeed(31);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(-2.4, 0.0, 0.0)});
    integrator.step(200);
    std::vector<std::vector<double>> chains(ladder.size());
    // Two steps per call: moves right after exchanges within a call, too.
    for (int step = 0; step < 20000; step += 2) {
        integrator.step(2);
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

} // namespace

TEST(ParallelTempering, EveryReplicaMatchesItsExactMarginal) {
    expectEveryReplicaMatchesItsExactMarginal(false);
}

TEST(ParallelTempering, EveryReplicaMatchesItsExactMarginalWithSplineCouplings) {
    expectEveryReplicaMatchesItsExactMarginal(true);
}

TEST(ParallelTempering, BadInputIsRefusedClearly) {
    DoubleWell well;
    auto system = well.createSystem();
    FlowModel model = untrainedDoubleWellFlow(*system);
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
    expectMessage([&] { integrator.setReplicaPositions(1, {Vec3()}); }, "not bound to a Context");
    expectMessage([&] { integrator.getReplicaPositions(1); }, "not bound to a Context");
    expectMessage([&] { integrator.getExchangeAttempts(1); }, "pair index 1 is out of range");
    expectMessage([&] { integrator.setFlowMovesPerStep(-1); }, "flowMovesPerStep");
    expectMessage([&] { integrator.step(1); }, "not bound to a Context");
    // Before a Context exists there is nothing to count.
    EXPECT_EQ(integrator.getExchangeAttempts(0), 0);
    EXPECT_EQ(integrator.getNumRoundTrips(), 0);
    EXPECT_EQ(integrator.getWalkerAtReplica(1), 1);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(-2.4, 0, 0)});
    expectMessage([&] { integrator.getReplicaPotentialEnergy(0); }, "after the first step");
    expectMessage([&] { integrator.getReplicaPositions(1); }, "before the first step");
    context.setPositions({Vec3(std::nan(""), 0, 0)});
    expectMessage([&] { integrator.step(1); }, "not finite");
    // Nothing changed by the refused calls.
    EXPECT_EQ(integrator.getNumReplicas(), 2);
    EXPECT_EQ(integrator.getExchangeAttempts(0), 0);
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
