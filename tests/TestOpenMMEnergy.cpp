// The energy bridge against OpenMM's own single-Context values.

#include "TestSupport.h"
#include "ThrowingForce.h"
#include "openmmbg/OpenMMEnergy.h"

#include <gtest/gtest.h>
#include <openmm/Context.h>
#include <openmm/CustomExternalForce.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/State.h>
#include <openmm/VerletIntegrator.h>

#include <cmath>
#include <limits>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

const double TEMPERATURE = 300.0;  // K
const double KT = OpenMMEnergy::BOLTZMANN * TEMPERATURE;

OpenMMEnergy::Options onPlatform(const std::string& platform, int workers) {
    OpenMMEnergy::Options options;
    options.platform = platform;
    options.numWorkers = workers;
    return options;
}

/** Energy (kJ/mol) and forces (kJ/mol/nm) of frame b from one plain Context. */
struct SingleContext {
    // Same properties as the bridge's workers (one CPU thread).
    SingleContext(const System& system, const std::string& platform)
        : integrator(0.001),
          context(system, integrator, Platform::getPlatformByName(platform),
                  platform == "CPU" ? std::map<std::string, std::string>{{"Threads", "1"}}
                                    : std::map<std::string, std::string>{}) {}

    State evaluate(const at::Tensor& frames, int64_t b) {
        at::Tensor frame = frames[b].contiguous();
        std::vector<Vec3> positions(frame.size(0));
        for (int64_t i = 0; i < frame.size(0); i++)
            positions[i] = Vec3(frame[i][0].item<double>(), frame[i][1].item<double>(), frame[i][2].item<double>());
        context.setPositions(positions);
        return context.getState(State::Energy | State::Forces);
    }

    VerletIntegrator integrator;
    Context context;
};

void expectMatchesSingleContext(const std::string& platform, double tolerance) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(molecule.positions(), 16, 0.01, 1234);
    OpenMMEnergy bridge(*molecule.system, TEMPERATURE, onPlatform(platform, 2));
    EnergyBatch result = bridge.evaluate(frames);
    SingleContext reference(*molecule.system, platform);
    for (int64_t b = 0; b < frames.size(0); b++) {
        State state = reference.evaluate(frames, b);
        double energy = state.getPotentialEnergy();
        ASSERT_TRUE(result.finite[b].item<bool>());
        EXPECT_NEAR(result.potentialEnergy[b].item<double>(), energy, tolerance * std::abs(energy));
        EXPECT_NEAR(result.reducedEnergy[b].item<double>(), energy / KT, tolerance * std::abs(energy / KT));
        double largest = 0;
        for (const Vec3& f : state.getForces())
            largest = std::max(largest, std::sqrt(f.dot(f)));
        for (int i = 0; i < bridge.getNumParticles(); i++)
            for (int k = 0; k < 3; k++)
                EXPECT_NEAR(result.forces[b][i][k].item<double>() * KT, state.getForces()[i][k], tolerance * largest);
    }
}

} // namespace

TEST(OpenMMEnergy, MatchesSingleReferenceContext) {
    expectMatchesSingleContext("Reference", 1e-10);
}

TEST(OpenMMEnergy, MatchesSingleCpuContext) {
    // The CPU platform computes nonbonded terms in single precision: agreement
    // to float precision is what it promises (wrong units, frames or atom order
    // would differ by far more).
    expectMatchesSingleContext("CPU", 1e-6);
}

TEST(OpenMMEnergy, AutomaticPlatformIsRegisteredAndAgrees) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    OpenMMEnergy bridge(*molecule.system, TEMPERATURE);
    at::Tensor frames = perturbedFrames(molecule.positions(), 4, 0.01, 7);
    EnergyBatch result = bridge.evaluate(frames);
    std::string chosen = bridge.getPlatformName();
    EXPECT_TRUE(chosen == "Reference" || chosen == "CPU") << chosen;
    OpenMMEnergy reference(*molecule.system, TEMPERATURE, onPlatform("Reference", 1));
    // CPU computes nonbonded terms in single precision.
    EXPECT_TRUE(at::allclose(result.reducedEnergy, reference.evaluate(frames).reducedEnergy, 1e-5, 1e-3));
}

TEST(OpenMMEnergy, AutogradGradientIsMinusForce) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    OpenMMEnergy bridge(*molecule.system, TEMPERATURE, onPlatform("Reference", 2));
    at::Tensor frames = perturbedFrames(molecule.positions(), 5, 0.01, 99).requires_grad_(true);
    at::Tensor weights = at::arange(1, 6, at::kDouble);
    at::Tensor u = bridge.reducedEnergy(frames);
    (u * weights).sum().backward();
    EnergyBatch result = bridge.evaluate(frames.detach());
    EXPECT_TRUE(at::equal(u.detach(), result.reducedEnergy));
    at::Tensor expected = -result.forces * weights.reshape({-1, 1, 1});
    EXPECT_TRUE(at::allclose(frames.grad(), expected, 0, 1e-12));
}

TEST(OpenMMEnergy, ForcesMatchFiniteDifferences) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    OpenMMEnergy bridge(*molecule.system, TEMPERATURE, onPlatform("Reference", 1));
    at::Tensor frame = perturbedFrames(molecule.positions(), 1, 0.005, 5);
    EnergyBatch result = bridge.evaluate(frame);
    const double h = 1e-5;  // nm
    for (int i = 0; i < bridge.getNumParticles(); i += 3) {
        for (int k = 0; k < 3; k++) {
            at::Tensor shifted = at::cat({frame, frame});
            shifted[0][i][k] += h;
            shifted[1][i][k] -= h;
            at::Tensor u = bridge.evaluate(shifted).reducedEnergy;
            double derivative = (u[0].item<double>() - u[1].item<double>()) / (2 * h);
            double force = result.forces[0][i][k].item<double>();
            EXPECT_NEAR(-derivative, force, 1e-5 * std::max(1.0, std::abs(force))) << "atom " << i << " axis " << k;
        }
    }
}

TEST(OpenMMEnergy, WorkerCountDoesNotChangeResultsOrOrder) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(molecule.positions(), 40, 0.02, 11);
    OpenMMEnergy one(*molecule.system, TEMPERATURE, onPlatform("Reference", 1));
    OpenMMEnergy three(*molecule.system, TEMPERATURE, onPlatform("Reference", 3));
    EXPECT_EQ(three.getNumWorkers(), 3);
    EnergyBatch a = one.evaluate(frames);
    EnergyBatch b = three.evaluate(frames);
    EXPECT_TRUE(at::equal(a.reducedEnergy, b.reducedEnergy));
    EXPECT_TRUE(at::equal(a.forces, b.forces));
    // Frame order: each frame alone gives the value at its index.
    for (int64_t i : {0, 17, 39}) {
        EnergyBatch single = three.evaluate(frames.narrow(0, i, 1));
        EXPECT_EQ(single.reducedEnergy[0].item<double>(), b.reducedEnergy[i].item<double>());
    }
}

TEST(OpenMMEnergy, NonFiniteAndExplodingFramesAreFlagged) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    for (const std::string platform : {"Reference", "CPU"}) {
        OpenMMEnergy bridge(*molecule.system, TEMPERATURE, onPlatform(platform, 2));
        at::Tensor frames = perturbedFrames(molecule.positions(), 5, 0.01, 3);
        frames[1][4][0] = std::numeric_limits<double>::quiet_NaN();
        frames[2][7][1] = std::numeric_limits<double>::infinity();
        frames[3][3].copy_(frames[3][4]);  // two atoms on top of each other
        EnergyBatch result = bridge.evaluate(frames);
        for (int64_t b : {1, 2, 3}) {
            EXPECT_FALSE(result.finite[b].item<bool>()) << platform << " frame " << b;
            EXPECT_EQ(result.reducedEnergy[b].item<double>(), std::numeric_limits<double>::infinity());
            EXPECT_EQ(result.potentialEnergy[b].item<double>(), std::numeric_limits<double>::infinity());
            EXPECT_EQ(result.forces[b].abs().max().item<double>(), 0.0);
        }
        for (int64_t b : {0, 4}) {
            EXPECT_TRUE(result.finite[b].item<bool>()) << platform << " frame " << b;
            EXPECT_TRUE(std::isfinite(result.reducedEnergy[b].item<double>()));
        }
        // The gradient of flagged frames is zero, never NaN.
        at::Tensor x = frames.clone().requires_grad_(true);
        at::Tensor u = bridge.reducedEnergy(x);
        at::where(result.finite, u, at::zeros_like(u)).sum().backward();
        EXPECT_FALSE(x.grad().isnan().any().item<bool>());
    }
}

TEST(OpenMMEnergy, ExceptionsInsideOpenMMAreFlagged) {
    // A plugin-style force that throws while OpenMM computes the energy for
    // frames whose particle 0 has x >= 0.5 nm.
    registerThrowingForceProxy();
    System system;
    system.addParticle(1.0);
    auto* harmonic = new CustomExternalForce("x^2");
    harmonic->addParticle(0);
    system.addForce(harmonic);
    system.addForce(new ThrowingForce(0.5));
    OpenMMEnergy bridge(system, TEMPERATURE, onPlatform("Reference", 2));
    at::Tensor frames = at::zeros({4, 1, 3}, at::kDouble);
    frames[0][0][0] = 0.25;
    frames[1][0][0] = 1.0;
    frames[3][0][0] = 2.0;
    EnergyBatch result = bridge.evaluate(frames);
    EXPECT_TRUE(result.finite[0].item<bool>());
    EXPECT_FALSE(result.finite[1].item<bool>());
    EXPECT_TRUE(result.finite[2].item<bool>());
    EXPECT_FALSE(result.finite[3].item<bool>());
    EXPECT_EQ(result.reducedEnergy[1].item<double>(), std::numeric_limits<double>::infinity());
    EXPECT_EQ(result.forces[3].abs().max().item<double>(), 0.0);
    EXPECT_NEAR(result.potentialEnergy[0].item<double>(), 0.0625, 1e-12);
    EXPECT_EQ(result.potentialEnergy[2].item<double>(), 0.0);
}

TEST(OpenMMEnergy, EnergyCutIsLinearLog) {
    System system;
    system.addParticle(1.0);
    auto* force = new CustomExternalForce("0.5*k*x^2");
    force->addGlobalParameter("k", 1000.0);
    force->addParticle(0);
    system.addForce(force);
    OpenMMEnergy::Options options = onPlatform("Reference", 1);
    options.energyCut = 10.0;
    OpenMMEnergy bridge(system, TEMPERATURE, options);
    at::Tensor frames = at::zeros({3, 1, 3}, at::kDouble);
    frames[0][0][0] = 0.05;  // u = 0.5*1000*0.0025/kT ~ 0.5: below the cut
    frames[1][0][0] = 1.0;   // u ~ 200: above
    frames[2][0][0] = -1.0;
    EnergyBatch result = bridge.evaluate(frames);
    for (int64_t b = 0; b < 3; b++) {
        double x = frames[b][0][0].item<double>();
        double u = 500.0 * x * x / KT;
        double dudx = 1000.0 * x / KT;
        double expected = u <= 10 ? u : 10 + std::log1p(u - 10);
        double expectedForce = u <= 10 ? -dudx : -dudx / (1 + u - 10);
        EXPECT_NEAR(result.reducedEnergy[b].item<double>(), expected, 1e-12 * std::max(1.0, expected));
        EXPECT_NEAR(result.forces[b][0][0].item<double>(), expectedForce, 1e-12 * std::abs(dudx));
        EXPECT_NEAR(result.potentialEnergy[b].item<double>(), 500.0 * x * x, 1e-9);
    }
}

TEST(OpenMMEnergy, ForceClippingCapsEachAtom) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(molecule.positions(), 3, 0.02, 21);
    OpenMMEnergy plain(*molecule.system, TEMPERATURE, onPlatform("Reference", 1));
    OpenMMEnergy::Options options = onPlatform("Reference", 1);
    options.maxForce = 100.0;  // kT/nm
    OpenMMEnergy clipped(*molecule.system, TEMPERATURE, options);
    at::Tensor f = plain.evaluate(frames).forces;
    at::Tensor g = clipped.evaluate(frames).forces;
    at::Tensor norms = f.norm(2, -1, true);
    at::Tensor expected = at::where(norms > 100.0, f * (100.0 / norms), f);
    ASSERT_TRUE((norms > 100.0).any().item<bool>());
    EXPECT_TRUE(at::allclose(g, expected, 1e-12, 1e-12));
}

TEST(OpenMMEnergy, TemperatureScalesReducedEnergy) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(molecule.positions(), 3, 0.01, 2);
    OpenMMEnergy bridge(*molecule.system, 300.0, onPlatform("Reference", 1));
    at::Tensor u300 = bridge.evaluate(frames).reducedEnergy;
    bridge.setTemperature(600.0);
    EXPECT_EQ(bridge.getTemperature(), 600.0);
    at::Tensor u600 = bridge.evaluate(frames).reducedEnergy;
    EXPECT_TRUE(at::allclose(u600 * 2, u300, 1e-14, 0));
}

TEST(OpenMMEnergy, BadInputIsRejectedClearly) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    OpenMMEnergy bridge(*molecule.system, TEMPERATURE, onPlatform("Reference", 1));
    expectMessage([&] { bridge.evaluate(at::zeros({2, 22, 3}, at::kFloat)); }, "float64");
    expectMessage([&] { bridge.evaluate(at::zeros({2, 66}, at::kDouble)); }, "shape");
    expectMessage([&] { bridge.evaluate(at::zeros({2, 21, 3}, at::kDouble)); }, "21 particles but the System has 22");
    expectMessage([&] { bridge.reducedEnergy(at::zeros({2, 23, 3}, at::kDouble)); }, "23 particles");
    expectMessage([&] { OpenMMEnergy(*molecule.system, 0.0); }, "temperature");
    expectMessage([&] { OpenMMEnergy(*molecule.system, -5.0); }, "temperature");
    expectMessage([&] { OpenMMEnergy(*molecule.system, std::nan("")); }, "temperature");
    expectMessage([&] { bridge.setTemperature(-1.0); }, "temperature");
    expectMessage([&] { OpenMMEnergy(*molecule.system, TEMPERATURE, onPlatform("NoSuchPlatform", 1)); },
                  "unknown platform 'NoSuchPlatform'");
    expectMessage([&] { OpenMMEnergy(*molecule.system, TEMPERATURE, onPlatform("Reference", -2)); }, "numWorkers");
    OpenMMEnergy::Options strict = onPlatform("Reference", 1);
    strict.rejectNonFiniteInput = true;
    OpenMMEnergy strictBridge(*molecule.system, TEMPERATURE, strict);
    at::Tensor frames = perturbedFrames(molecule.positions(), 3, 0.01, 1);
    frames[2][0][0] = std::numeric_limits<double>::quiet_NaN();
    expectMessage([&] { strictBridge.evaluate(frames); }, "frame 2 has non-finite positions");
    // The temperature was left unchanged by the rejected call.
    EXPECT_EQ(bridge.getTemperature(), TEMPERATURE);
}

TEST(OpenMMEnergy, RejectsPeriodicSystems) {
    System system;
    system.addParticle(1.0);
    system.setDefaultPeriodicBoxVectors(Vec3(2, 0, 0), Vec3(0, 2, 0), Vec3(0, 0, 2));
    auto* force = new CustomExternalForce("x");
    force->addParticle(0);
    system.addForce(force);
    auto* periodic = new CustomExternalForce("periodicdistance(x, y, z, 0, 0, 0)");
    periodic->addParticle(0);
    system.addForce(periodic);
    EXPECT_THROW(OpenMMEnergy(system, TEMPERATURE), OpenMMException);
}

TEST(OpenMMEnergy, KeepsItsOwnCopyOfTheSystem) {
    auto molecule = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(molecule.positions(), 2, 0.01, 8);
    OpenMMEnergy bridge(*molecule.system, TEMPERATURE, onPlatform("Reference", 1));
    at::Tensor before = bridge.evaluate(frames).reducedEnergy;
    molecule.system.reset();
    EXPECT_TRUE(at::equal(before, bridge.evaluate(frames).reducedEnergy));
}

TEST(OpenMMEnergy, ManyCpuWorkersStartTogetherSafely) {
    // OpenMM's CPU platform keeps its per-Context data in one process-wide
    // map, so Contexts must not be created or destroyed concurrently.
    AlanineDipeptide molecule = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(molecule.positions(), 8, 0.01, 21);
    OpenMMEnergy reference(*molecule.system, TEMPERATURE, onPlatform("CPU", 1));
    at::Tensor expected = reference.evaluate(frames).reducedEnergy;
    for (int round = 0; round < 20; round++) {
        OpenMMEnergy bridge(*molecule.system, TEMPERATURE, onPlatform("CPU", 8));
        EXPECT_TRUE(at::equal(bridge.evaluate(frames).reducedEnergy, expected)) << "round " << round;
    }
}
