// Molecules other than alanine dipeptide (examples/molecules/data): capped
// proline and phenylalanine (rings) and alanine tetrapeptide. For each: the
// automatic z-matrix leaves out exactly the ring-closing bonds, internal
// coordinates invert and their log-determinant matches autograd, a spline
// flow's density is the density of its samples, and flow moves keep the
// Boltzmann distribution that MD samples (a short exactness check with a
// negative control that shows it can fail).

#include "TestSupport.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/InternalCoordinates.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/Positions.h"
#include "openmmbg/Topology.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <openmm/Context.h>
#include <openmm/LangevinMiddleIntegrator.h>
#include <openmm/Platform.h>
#include <openmm/State.h>

#include <cmath>
#include <set>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

struct MoleculeCase {
    std::string name;
    int atoms;
    int rings;  // independent cycles of the bond graph
};

std::ostream& operator<<(std::ostream& out, const MoleculeCase& c) {
    return out << c.name;
}

MoleculeFiles load(const MoleculeCase& c) {
    return loadMoleculeFiles(std::string(BG_MOLECULE_DATA_DIR) + "/" + c.name);
}

/** Configurations [count, N, 3] from Langevin MD at T, `spacing` steps (1 fs) apart after 5 ps. */
at::Tensor mdFrames(const MoleculeFiles& molecule, double temperature, int count, int spacing, int seed) {
    LangevinMiddleIntegrator integrator(temperature, 5.0, 0.001);
    integrator.setRandomNumberSeed(seed);
    Context context(*molecule.system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(molecule.structure.positions);
    context.setVelocitiesToTemperature(temperature, seed);
    integrator.step(5000);
    std::vector<at::Tensor> frames;
    for (int i = 0; i < count; i++) {
        integrator.step(spacing);
        frames.push_back(positionsToTensor(context.getState(State::Positions).getPositions()));
    }
    return at::cat(frames);
}

/**
 * A small flow of `type` fitted to `frames` whose networks are moved away
 * from the identity by random noise. For spline flows, noise of 0.1 gives
 * log-determinants of several nats; at 0.3 and above some splines become so
 * flat that their inverse loses float64 precision (a property of such maps,
 * not of the code).
 */
FlowModel randomFlow(const System& system, const at::Tensor& frames, const std::string& type, double noise,
                     uint64_t seed) {
    FlowConfig config;
    config.numBlocks = 2;
    config.hiddenLayers = 1;
    config.hiddenWidth = 32;
    FlowModel model = FlowModel::createForMolecule(system, frames, type, config, 300.0);
    at::NoGradGuard noGrad;
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    for (at::Tensor p : model.getFlow().parameters())
        p.add_(noise * at::randn(p.sizes(), generator, p.scalar_type()));
    return model;
}

class Molecules : public ::testing::TestWithParam<MoleculeCase> {};

} // namespace

TEST_P(Molecules, DataMatchItsDescription) {
    MoleculeFiles molecule = load(GetParam());
    EXPECT_EQ(molecule.system->getNumParticles(), GetParam().atoms);
    EXPECT_EQ((int) molecule.structure.atoms.size(), GetParam().atoms);
    EXPECT_EQ(molecule.system->getNumConstraints(), 0);
    const int bonds = (int) bondsOfSystem(*molecule.system).size();
    EXPECT_EQ(bonds - (GetParam().atoms - 1), GetParam().rings) << "a connected graph has N - 1 + rings bonds";
}

TEST_P(Molecules, ZMatrixLeavesOutOnlyRingClosingBonds) {
    MoleculeFiles molecule = load(GetParam());
    InternalCoordinates ic(*molecule.system);
    const ZMatrix& z = ic.getZMatrix();
    EXPECT_NO_THROW(z.validate(GetParam().atoms));
    std::set<std::pair<int, int>> zBonds;
    auto add = [&](int a, int b) { zBonds.insert({std::min(a, b), std::max(a, b)}); };
    add(z.seeds[0], z.seeds[1]);
    add(z.seeds[1], z.seeds[2]);
    for (const ZMatrixRow& row : z.rows)
        add(row.atom, row.bondPartner);
    const auto bonds = bondsOfSystem(*molecule.system);
    const std::set<std::pair<int, int>> systemBonds(bonds.begin(), bonds.end());
    // Every z-matrix bond is a bond of the molecule (a spanning tree) ...
    for (const auto& b : zBonds)
        EXPECT_TRUE(systemBonds.count(b)) << b.first << "-" << b.second << " is not a bond";
    // ... and the bonds left out close one ring each: without them the graph is still connected.
    int leftOut = 0;
    for (const auto& b : systemBonds) {
        if (zBonds.count(b))
            continue;
        leftOut++;
        std::vector<std::pair<int, int>> without;
        for (const auto& other : bonds)
            if (other != b)
                without.push_back(other);
        EXPECT_NO_THROW(ZMatrix::fromBonds(GetParam().atoms, without, std::vector<double>(GetParam().atoms, 12.0)))
            << "bond " << b.first << "-" << b.second << " is a bridge, not a ring bond";
    }
    EXPECT_EQ(leftOut, GetParam().rings);
}

TEST_P(Molecules, InternalCoordinatesRoundTrip) {
    MoleculeFiles molecule = load(GetParam());
    InternalCoordinates ic(*molecule.system);
    at::Tensor x = perturbedFrames(molecule.positions(), 16, 0.01, 3);
    auto [y, e] = ic.forward(x);
    EXPECT_EQ(y.size(1), 3 * GetParam().atoms - 6);
    EXPECT_TRUE(ic.inDomain(y).all().item<bool>());
    EXPECT_LT((ic.inverse(y, e) - x).abs().max().item<double>(), 1e-8);
    auto [y2, e2] = ic.forward(ic.inverse(y, e));
    EXPECT_LT((y2 - y).abs().max().item<double>(), 1e-8);
}

TEST_P(Molecules, LogDetMatchesAutogradJacobian) {
    MoleculeFiles molecule = load(GetParam());
    expectLogDetMatchesAutograd(InternalCoordinates(*molecule.system), perturbedFrames(molecule.positions(), 2, 0.01, 8),
                                1e-7);
}

TEST_P(Molecules, SplineFlowDensityIsThatOfItsSamples) {
    MoleculeFiles molecule = load(GetParam());
    FlowModel model =
        randomFlow(*molecule.system, perturbedFrames(molecule.positions(), 64, 0.005, 2), "spline", 0.1, 5);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(7);
    at::NoGradGuard noGrad;
    FlowSample sample = model.sample(3, 300.0, generator);
    ASSERT_TRUE(at::isfinite(sample.x).all().item<bool>());
    // log q(x) = log N(v) + log|det dv/dy_n| - log|dy/dy_n| - log J(y), with dv/dy_n by autograd.
    at::Tensor logProb = model.logProb(sample.x, 300.0, generator);
    for (int64_t b = 0; b < 3; b++) {
        at::Tensor gamma = sample.gamma.narrow(0, b, 1);
        at::Tensor jacobian;
        {
            at::AutoGradMode enable(true);
            jacobian = bruteForceJacobian([&](const at::Tensor& g) { return model.inverse(g).first; }, gamma);
        }
        at::Tensor v = model.inverse(gamma).first;
        const double expected = model.logLatentPrior(v, 1.0).item<double>() + logAbsDet(jacobian)
                                - model.getLogDetNormalization() - sample.logJ[b].item<double>();
        EXPECT_NEAR(logProb[b].item<double>(), expected, 1e-6);
        EXPECT_NEAR(sample.logq[b].item<double>(), model.logLatentPrior(v, 1.0).item<double>() + logAbsDet(jacobian),
                    1e-6);
    }
}

// A short exactness check on the molecule: chains of flow moves started from
// MD samples at 300 K. If the moves leave the Boltzmann distribution
// invariant, each chain's end is distributed like its start, so the mean of
// the paired differences f(end) - f(start) is zero within its standard error
// over chains (|z| < 4), for the energy and for the summed bond lengths (the
// coordinates whose Jacobian terms the moves must get right). The negative
// control: the same chains at 600 K must heat the molecule (z > 4).
TEST_P(Molecules, FlowMovesKeepTheBoltzmannDistribution) {
    MoleculeFiles molecule = load(GetParam());
    const int chains = 30, moves = 100;
    const at::Tensor starts = mdFrames(molecule, 300.0, chains, 500, 11);
    // A RealNVP flow (Gaussian latent torsions, cheap moves) with random networks, fitted to the starts.
    FlowModel model = randomFlow(*molecule.system, starts, "realnvp", 0.1, 13);
    const auto bonds = bondsOfSystem(*molecule.system);
    auto bondSum = [&](const State& state) {
        double sum = 0;
        for (const auto& b : bonds) {
            const Vec3 d = state.getPositions()[b.first] - state.getPositions()[b.second];
            sum += std::sqrt(d.dot(d));
        }
        return sum;
    };
    auto zOfMean = [](const std::vector<double>& d) {
        const at::Tensor t = at::tensor(d, at::kDouble);
        return t.mean().item<double>() / (t.std().item<double>() / std::sqrt((double) d.size()));
    };
    auto pairedZ = [&](double temperature) {
        LatentMetropolisIntegrator integrator(model, temperature, 0.1, 0.1);
        integrator.setRandomNumberSeed(17);
        Context context(*molecule.system, integrator, Platform::getPlatformByName("Reference"));
        std::vector<Vec3> x;
        tensorToPositions(starts.narrow(0, chains - 1, 1), x);
        context.setPositions(x);
        integrator.warmUp(200, 0.3);  // the step size is fixed before the chains
        std::vector<double> dEnergy, dBonds;
        for (int k = 0; k < chains; k++) {
            tensorToPositions(starts.narrow(0, k, 1), x);
            context.setPositions(x);
            const State before = context.getState(State::Positions | State::Energy);
            integrator.step(moves);
            const State after = context.getState(State::Positions | State::Energy);
            dEnergy.push_back(after.getPotentialEnergy() - before.getPotentialEnergy());
            dBonds.push_back(bondSum(after) - bondSum(before));
        }
        EXPECT_GT(integrator.getAcceptanceRate(MoveKind::RandomWalk), 0.15) << temperature << " K: the chains must move";
        return std::make_pair(zOfMean(dEnergy), zOfMean(dBonds));
    };
    const auto [zEnergy, zBonds] = pairedZ(300.0);
    EXPECT_LT(std::abs(zEnergy), 4.0) << "mean energy change, in standard errors";
    EXPECT_LT(std::abs(zBonds), 4.0) << "mean change of the summed bond lengths, in standard errors";
    EXPECT_GT(pairedZ(600.0).first, 4.0) << "the negative control: moves at 600 K must heat the molecule";
}

INSTANTIATE_TEST_SUITE_P(CappedPeptides, Molecules,
                         ::testing::Values(MoleculeCase{"capped_proline", 26, 1},
                                           MoleculeCase{"capped_phenylalanine", 32, 1},
                                           MoleculeCase{"alanine_tetrapeptide", 42, 0}),
                         [](const ::testing::TestParamInfo<MoleculeCase>& info) { return info.param.name; });
