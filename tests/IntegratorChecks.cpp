#include "IntegratorChecks.h"

#include "SamplerChecks.h"
#include "openmmbg/CartesianCoordinates.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/Metrics.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/TSFFlow.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/ToySystems.h"

#include <gtest/gtest.h>
#include <openmm/Context.h>
#include <openmm/CustomExternalForce.h>
#include <openmm/Platform.h>
#include <openmm/State.h>
#include <openmm/VerletIntegrator.h>

#include <cmath>

using namespace OpenMM;

namespace OpenMMBG {
namespace testing {

namespace {

const double T_REF = 300.0;  // the double well's unit temperature (kT = 1)

double xOf(Context& context) {
    return context.getState(State::Positions).getPositions()[0][0];
}

} // namespace

void checkRejectedMovesLeaveTheContextExactly(const std::string& platform, const PlatformProperties& properties) {
    DoubleWell well;
    auto system = well.createSystem();
    // Proposals a latent step of 50 away have energies far beyond exp(-700): always rejected.
    LatentMetropolisIntegrator integrator(untrainedDoubleWellFlow(*system), T_REF, 50.0, 0.0);
    integrator.setRandomNumberSeed(13);
    Context context(*system, integrator, Platform::getPlatformByName(platform), properties);
    context.setPositions({Vec3(-2.3, 0.4, 0.1)});
    context.setVelocities({Vec3(0.5, -0.25, 1.5)});
    context.setTime(7.0);
    const int all = State::Positions | State::Velocities | State::Energy | State::Forces;
    State before = context.getState(all);
    integrator.step(20);
    State after = context.getState(all);
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
    State moved = context.getState(all);
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
    VerletIntegrator verlet(0.001);
    Context fresh(*system, verlet, Platform::getPlatformByName(platform), properties);
    fresh.setPositions(moved.getPositions());
    EXPECT_EQ(fresh.getState(State::Energy).getPotentialEnergy(), moved.getPotentialEnergy());
}

void checkDoubleWellFreeEnergy(const FlowModel& model, double temperature, int seed, const std::string& platform,
                               const PlatformProperties& properties) {
    DoubleWell well;
    auto system = well.createSystem();
    LatentMetropolisIntegrator integrator(model, temperature, 0.5, 0.5);
    integrator.setRandomNumberSeed(seed);
    Context context(*system, integrator, Platform::getPlatformByName(platform), properties);
    context.setPositions({Vec3(-2.4, 0.0, 0.0)});
    integrator.step(200);
    std::vector<double> xs;
    for (int i = 0; i < 20000; i++) {
        integrator.step(1);
        xs.push_back(xOf(context));
    }
    int crossings = countCrossings(xs);
    Estimate dF = phiFreeEnergyDifference(at::tensor(xs, at::kDouble), 20);
    double exact = well.freeEnergyDifference(temperature);
    std::string label = model.getFlow().getTypeName() + " at " + std::to_string(temperature) + " K on " + platform;
    // Enough crossings that 20 blocks each see some: the error bar means something.
    EXPECT_GE(crossings, 60) << label;
    EXPECT_NEAR(dF.value, exact, 4 * dF.error) << label << ", error " << dF.error;
    EXPECT_LT(dF.error, 0.3) << label;
}

std::unique_ptr<System> harmonicSystem() {
    auto system = std::make_unique<System>();
    system->addParticle(1.0);
    auto* force = new CustomExternalForce("unit*0.5*(x^2 + y^2 + z^2)");
    force->addGlobalParameter("unit", OpenMMEnergy::BOLTZMANN * T_REF);
    force->addParticle(0);
    system->addForce(force);
    return system;
}

FlowModel exactHarmonicFlow(const System& system) {
    FlowConfig config;
    config.numBlocks = 1;
    config.hiddenLayers = 1;
    config.hiddenWidth = 4;
    config.outputInitScale = 0.0;  // the identity
    auto coordinates = std::make_shared<CartesianCoordinates>(1, std::vector<int>{0, 1});
    return FlowModel(coordinates, at::zeros({2}, at::kDouble), at::ones({2}, at::kDouble),
                     std::make_shared<TSFFlow>(2, config), T_REF, SystemFingerprint::of(system));
}

void checkExchangeAcceptanceMatchesClosedForm(const std::string& platform, const PlatformProperties& properties) {
    auto system = harmonicSystem();
    FlowModel model = exactHarmonicFlow(*system);
    const std::vector<double> ladder = {300.0, 400.0, 600.0};
    TSFParallelTemperingIntegrator integrator(model, ladder, 0.0, 1.0);
    integrator.setRandomNumberSeed(32);
    Context context(*system, integrator, Platform::getPlatformByName(platform), properties);
    context.setPositions({Vec3(0.1, -0.2, 0.0)});
    integrator.step(20000);
    for (int r = 0; r < 3; r++)
        EXPECT_NEAR(integrator.getMoveStatistics(r).acceptanceRate(MoveKind::Independence), 1.0, 1e-3)
            << platform << " replica " << r;
    for (int pair = 0; pair < 2; pair++) {
        double rho = ladder[pair] / ladder[pair + 1];
        double expected = 2 * rho / (1 + rho);
        double attempts = (double) integrator.getExchangeAttempts(pair);
        double error = std::sqrt(expected * (1 - expected) / attempts);  // independent attempts
        EXPECT_NEAR(integrator.getExchangeAcceptanceRate(pair), expected, 4 * error)
            << platform << " pair " << pair << ": " << attempts << " attempts";
    }
}

} // namespace testing
} // namespace OpenMMBG
