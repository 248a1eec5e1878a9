// RealNVP, TSF and spline flows and the FlowModel around them.

#include "TestSupport.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/InternalCoordinates.h"
#include "openmmbg/RealNVPFlow.h"
#include "openmmbg/SplineFlow.h"
#include "openmmbg/TSFFlow.h"
#include "openmmbg/internal/RationalQuadraticSpline.h"

#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <openmm/CustomExternalForce.h>
#include <openmm/HarmonicBondForce.h>
#include <openmm/OpenMMException.h>
#include <openmm/serialization/XmlSerializer.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;
using OpenMM::OpenMMException;

namespace {

FlowConfig randomFlow(uint64_t seed, int blocks = 3, int width = 16) {
    FlowConfig config;
    config.numBlocks = blocks;
    config.hiddenLayers = 2;
    config.hiddenWidth = width;
    config.outputInitScale = 1.0;  // a non-trivial map
    config.seed = seed;
    return config;
}

at::Tensor randomInput(int64_t batch, int64_t dim, uint64_t seed) {
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::randn({batch, dim}, generator, at::kDouble);
}

double maxAbs(const at::Tensor& t) {
    return t.abs().max().item<double>();
}

void expectInvertible(const Flow& flow) {
    at::Tensor v = randomInput(32, flow.getLatentDim(), 3) * 1.5;
    auto [gamma, logDet] = flow.forward(v);
    auto [back, logDetInverse] = flow.inverse(gamma);
    EXPECT_LT(maxAbs(back - v), 1e-8) << flow.getTypeName();
    EXPECT_LT(maxAbs(logDet + logDetInverse), 1e-10) << flow.getTypeName();
    at::Tensor g = randomInput(32, flow.getLatentDim(), 4);
    EXPECT_LT(maxAbs(flow.forward(flow.inverse(g).first).first - g), 1e-8) << flow.getTypeName();
    // The map is not the identity, or the test would prove little.
    EXPECT_GT(maxAbs(gamma - v), 1e-2) << flow.getTypeName();
}

void expectLogDetMatchesAutograd(const Flow& flow) {
    at::Tensor points = randomInput(3, flow.getLatentDim(), 8);
    for (int64_t b = 0; b < points.size(0); b++) {
        at::Tensor v = points.narrow(0, b, 1);
        at::Tensor jacobian = bruteForceJacobian([&](const at::Tensor& in) { return flow.forward(in).first; }, v);
        EXPECT_NEAR(logAbsDet(jacobian), flow.forward(v).second.item<double>(), 1e-9) << flow.getTypeName();
        at::Tensor gamma = flow.forward(v).first.detach();
        at::Tensor inverseJacobian =
            bruteForceJacobian([&](const at::Tensor& in) { return flow.inverse(in).first; }, gamma);
        EXPECT_NEAR(logAbsDet(inverseJacobian), flow.inverse(gamma).second.item<double>(), 1e-9)
            << flow.getTypeName();
    }
}

/** A one-particle System with a harmonic well, for Cartesian models. */
OpenMM::System harmonicSystem(int particles) {
    OpenMM::System system;
    auto* force = new OpenMM::CustomExternalForce("x^2 + y^2 + z^2");
    for (int i = 0; i < particles; i++) {
        system.addParticle(1.0);
        force->addParticle(i);
    }
    system.addForce(force);
    return system;
}

FlowModel alanineModel(const std::string& type, const AlanineDipeptide& molecule, uint64_t seed = 2) {
    at::Tensor frames = perturbedFrames(molecule.positions(), 64, 0.01, seed);
    return FlowModel::createForMolecule(*molecule.system, frames, type, randomFlow(seed, 2, 32), 600.0);
}

} // namespace

TEST(RealNVPFlow, IsInvertible) {
    expectInvertible(RealNVPFlow(5, randomFlow(1)));
    expectInvertible(RealNVPFlow(2, randomFlow(2)));
}

TEST(TSFFlow, IsInvertible) {
    expectInvertible(TSFFlow(4, randomFlow(3)));
    expectInvertible(TSFFlow(1, randomFlow(4)));
}

TEST(RealNVPFlow, LogDetMatchesAutograd) {
    expectLogDetMatchesAutograd(RealNVPFlow(5, randomFlow(5)));
}

TEST(TSFFlow, LogDetMatchesAutograd) {
    TSFFlow flow(3, randomFlow(6));
    {
        at::NoGradGuard noGrad;
        flow.parameters()[0].fill_(0.4);  // s: k = exp(0.4)
    }
    expectLogDetMatchesAutograd(flow);
}

TEST(TSFFlow, LogDetIsConstantOverInputs) {
    TSFFlow flow(6, randomFlow(7));
    {
        at::NoGradGuard noGrad;
        flow.parameters()[0].fill_(-0.3);
    }
    at::Tensor v = randomInput(50, 12, 9) * 3;
    at::Tensor logDet = flow.forward(v).second;
    EXPECT_LT(maxAbs(logDet - 6 * -0.3), 1e-12);
    EXPECT_NEAR(flow.getLogScale(), -0.3, 1e-15);
    // RealNVP, for contrast, has an input-dependent log-det.
    RealNVPFlow realnvp(6, randomFlow(7));
    at::Tensor varying = realnvp.forward(v.narrow(1, 0, 6)).second;
    EXPECT_GT((varying.max() - varying.min()).item<double>(), 1e-3);
}

/** A TSF with spline couplings whose splines are not the identity (their networks start at zero). */
std::shared_ptr<TSFFlow> splineTSF(int n, uint64_t seed) {
    FlowConfig config = randomFlow(seed);
    config.tsfSplineCouplings = true;
    config.splineBins = 5;
    config.splineTailBound = 3.0;
    auto flow = std::make_shared<TSFFlow>(n, config);
    const size_t affineCount = TSFFlow(n, randomFlow(seed)).parameters().size();
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed + 100);
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> parameters = flow->parameters();
    EXPECT_GT(parameters.size(), affineCount);
    for (size_t i = affineCount; i < parameters.size(); i++)
        parameters[i].add_(0.1 * at::randn(parameters[i].sizes(), generator, at::kDouble));
    parameters[0].fill_(0.25);  // s
    return flow;
}

TEST(TSFFlow, SplineCouplingsAreInvertibleAndPreserveVolume) {
    for (int n : {2, 5}) {
        std::shared_ptr<TSFFlow> flow = splineTSF(n, 30 + n);
        expectInvertible(*flow);
        expectLogDetMatchesAutograd(*flow);
        // Inputs beyond the splines' interval [-3, 3] too: the log-det is n s everywhere.
        at::Tensor v = randomInput(200, 2 * n, 31) * 3;
        EXPECT_LT(maxAbs(flow->forward(v).second - n * 0.25), 1e-12);
        EXPECT_LT(maxAbs(flow->inverse(v).second + n * 0.25), 1e-12);
    }
    expectMessage([] {
        FlowConfig config = randomFlow(1);
        config.tsfSplineCouplings = true;
        TSFFlow(1, config);
    }, "at least 2 coordinates");
}

TEST(TSFFlow, SplineCouplingsMoveCoordinatesNonlinearlyAndMomentaByTheInverseDerivative) {
    // One block on two pairs: with the affine couplings removed (zero weights), the map is the
    // spline couplings alone, so each z_i' depends on z_i nonlinearly and q_i' = q_i / f_i'(z_i).
    FlowConfig config = randomFlow(3, 1);
    config.tsfSplineCouplings = true;
    config.splineBins = 6;
    config.splineTailBound = 4.0;
    TSFFlow flow(2, config);
    const size_t affineCount = TSFFlow(2, randomFlow(3, 1)).parameters().size();
    {
        at::NoGradGuard noGrad;
        at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(5);
        std::vector<at::Tensor> parameters = flow.parameters();
        for (size_t i = 1; i < affineCount; i++)
            parameters[i].zero_();
        for (size_t i = affineCount; i < parameters.size(); i++)
            parameters[i].add_(0.3 * at::randn(parameters[i].sizes(), generator, at::kDouble));
    }
    // z_0 varies along a line, the other entries fixed: z_0' is not affine in z_0.
    at::Tensor v = at::zeros({41, 4}, at::kDouble);
    v.select(1, 0).copy_(at::linspace(-2, 2, 41, at::kDouble));
    v.select(1, 1).fill_(0.3);
    v.select(1, 2).fill_(0.7);
    v.select(1, 3).fill_(-0.4);
    at::Tensor gamma = flow.forward(v).first;
    at::Tensor slope = (gamma.select(1, 0).slice(0, 1) - gamma.select(1, 0).slice(0, 0, -1)) / 0.1;
    EXPECT_GT((slope.max() - slope.min()).item<double>(), 0.05);
    // z_0 first (the even half of block 0), with (z_1, q_1) = (0.3, -0.4) as its conditioning:
    // the momentum of pair 0 is divided by the spline's slope there.
    at::Tensor step = at::zeros({1, 4}, at::kDouble);
    step[0][0] = 1e-6;
    at::Tensor z = v.narrow(0, 20, 1), derivative = (flow.forward(z + step).first - flow.forward(z - step).first) / 2e-6;
    const double f0 = derivative[0][0].item<double>();
    EXPECT_GT(std::abs(f0 - 1), 1e-3);
    EXPECT_NEAR(gamma[20][2].item<double>(), 0.7 / f0, 1e-6);
}

/**
 * Three real and three circular coordinates, interleaved, with random
 * networks; with `levels`, conditioned level by level.
 */
SplineFlow mixedSplineFlow(uint64_t seed, const std::vector<int>& levels = {}) {
    FlowConfig config = randomFlow(seed, 3, 16);
    config.splineBins = 6;
    config.splineTailBound = 3.0;
    config.conditionByLevel = !levels.empty();
    return SplineFlow(6, {false, true, false, true, true, false}, config, levels);
}

/** Three levels; level 0 has one coordinate (1), which nothing conditions. */
const std::vector<int> THREE_LEVELS = {2, 0, 1, 1, 2, 2};

void expectInvertibleOnTheLineAndTheCircle(const SplineFlow& flow, uint64_t seed) {
    // Real entries partly beyond the splines' interval [-3, 3]; circular ones anywhere on [-pi, pi).
    at::Tensor v = flow.wrapLatent(randomInput(64, 6, seed) * 2.5);
    auto [gamma, logDet] = flow.forward(v);
    auto [back, logDetInverse] = flow.inverse(gamma);
    EXPECT_LT(maxAbs(wrapAngle(back - v)), 1e-9);
    EXPECT_LT(maxAbs(logDet + logDetInverse), 1e-9);
    at::Tensor angles = gamma.index_select(1, at::tensor({1, 3, 4}, at::kLong));
    EXPECT_GE(angles.min().item<double>(), -M_PI);
    EXPECT_LT(angles.max().item<double>(), M_PI);
    // Not the identity in any coordinate (even one that nothing conditions).
    EXPECT_GT(wrapAngle(gamma - v).abs().amax(0).min().item<double>(), 1e-2);
    EXPECT_FALSE(at::isfinite(logDet).logical_not().any().item<bool>());
}

TEST(SplineFlow, IsInvertibleOnTheLineAndTheCircle) {
    expectInvertibleOnTheLineAndTheCircle(mixedSplineFlow(30), 31);
}

TEST(SplineFlow, LogDetMatchesAutograd) {
    SplineFlow flow = mixedSplineFlow(32);
    expectLogDetMatchesAutograd(flow);
}

TEST(SplineFlow, ByLevelIsInvertibleWithTheExactLogDet) {
    SplineFlow flow = mixedSplineFlow(50, THREE_LEVELS);
    expectInvertibleOnTheLineAndTheCircle(flow, 51);
    expectLogDetMatchesAutograd(flow);
}

TEST(SplineFlow, ByLevelALevelDependsOnlyOnItselfAndTheLevelsBelow) {
    // From latent to data the density factorises level by level: output
    // coordinates of level k do not depend on latent coordinates of higher
    // levels, and every level depends on the one below it.
    SplineFlow flow = mixedSplineFlow(52, THREE_LEVELS);
    const std::vector<int>& level = THREE_LEVELS;
    at::Tensor v = randomInput(1, 6, 53);
    at::Tensor jacobian = bruteForceJacobian([&](const at::Tensor& in) { return flow.forward(in).first; }, v);
    double dependsOnLower = 0;
    for (int out = 0; out < 6; out++)
        for (int in = 0; in < 6; in++) {
            const double entry = std::abs(jacobian[out][in].item<double>());
            if (level[in] > level[out])
                EXPECT_LT(entry, 1e-12) << "output " << out << " on input " << in;
            if (level[in] < level[out])
                dependsOnLower = std::max(dependsOnLower, entry);
        }
    EXPECT_GT(dependsOnLower, 1e-3);
    // Without levels, the same coordinates mix freely.
    SplineFlow alternating = mixedSplineFlow(52);
    at::Tensor mixed = bruteForceJacobian([&](const at::Tensor& in) { return alternating.forward(in).first; }, v);
    EXPECT_GT(std::abs(mixed[1][0].item<double>()), 1e-3);
}

TEST(SplineFlow, StartsAsTheIdentityAndCircularSplinesCloseSmoothly) {
    // Default output layers are zero: the identity, log-det 0.
    FlowConfig config;
    config.numBlocks = 2;
    config.hiddenLayers = 1;
    config.hiddenWidth = 8;
    SplineFlow identity(4, {true, false, true, false}, config);
    at::Tensor v = identity.wrapLatent(randomInput(20, 4, 33) * 2);
    auto [gamma, logDet] = identity.forward(v);
    EXPECT_LT(maxAbs(wrapAngle(gamma - v)), 1e-12);
    EXPECT_LT(maxAbs(logDet), 1e-12);
    // A random circular spline: continuous across the cut, with the same slope on both sides.
    const int64_t bins = 5;
    at::Tensor params = randomInput(1, 3 * bins, 34).reshape({1, 1, 3 * bins});
    at::Tensor circular = at::ones({1}, at::kBool);
    const double h = 1e-6;
    auto map = [&](double angle) {
        return rationalQuadraticSpline(at::full({1, 1}, angle, at::kDouble), params, circular, 1.0, false);
    };
    auto [low, lowLog] = map(-M_PI + h);
    auto [high, highLog] = map(M_PI - h);
    EXPECT_LT(std::abs(wrapAngle(low - high).item<double>()), 1e-4);  // 2h times the slopes
    EXPECT_NEAR(lowLog.item<double>(), highLog.item<double>(), 1e-4);
    EXPECT_GT(std::abs(lowLog.item<double>()), 1e-3);  // a slope other than 1: the check has teeth
    // The real splines are the identity beyond their interval.
    at::Tensor real = at::zeros({1}, at::kBool);
    auto [far, farLog] = rationalQuadraticSpline(at::full({1, 1}, 4.5, at::kDouble), params, real, 4.0, false);
    EXPECT_EQ(far.item<double>(), 4.5);
    EXPECT_EQ(farLog.item<double>(), 0.0);
    expectMessage([&] { rationalQuadraticSpline(at::zeros({1, 1}, at::kDouble), at::zeros({1, 1, 4}, at::kDouble),
                                                real, 1.0, false); },
                  "3K");
}

TEST(SplineFlow, SplinesOfOneKindMatchTheMixedEvaluation) {
    // The shortcuts for all-circular and all-real entries against the general evaluation, both directions.
    const int64_t bins = 5;
    at::Tensor params = randomInput(40, 3 * 3 * bins, 42).reshape({40, 3, 3 * bins});
    at::Tensor x = randomInput(40, 3, 43) * 2.5;  // real entries partly beyond [-3, 3]
    for (bool circularEntries : {true, false}) {
        const at::Tensor flags = circularEntries ? at::ones({3}, at::kBool) : at::zeros({3}, at::kBool);
        const SplineEntries kind = circularEntries ? SplineEntries::Circular : SplineEntries::Real;
        for (bool inverse : {false, true}) {
            auto [mixed, mixedLog] = rationalQuadraticSpline(x, params, flags, 3.0, inverse, SplineEntries::Mixed);
            auto [fast, fastLog] = rationalQuadraticSpline(x, params, flags, 3.0, inverse, kind);
            EXPECT_LT(maxAbs(fast - mixed), 1e-13) << circularEntries << inverse;
            EXPECT_LT(maxAbs(fastLog - mixedLog), 1e-13) << circularEntries << inverse;
            EXPECT_GT(maxAbs(mixedLog), 1e-2);
        }
    }
}

TEST(SplineFlow, SamplesFollowItsDensityOnTheCircle) {
    // One real and one circular coordinate: the circular marginal of the
    // flow's density, by quadrature over the real one, against a histogram
    // of the flow's own samples.
    FlowConfig config = randomFlow(40, 2, 16);
    config.splineBins = 5;
    config.splineTailBound = 3.0;
    SplineFlow flow(2, {false, true}, config);
    at::NoGradGuard noGrad;
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(41);
    const at::Tensor one = at::ones({1}, at::kDouble);
    const int64_t count = 400000;
    at::Tensor angles = flow.forward(flow.priorFromNormal(at::randn({count, 2}, generator, at::kDouble), one))
                            .first.select(1, 1);
    const int bins = 16, grid = 64, realPoints = 4000;
    at::Tensor real = at::linspace(-12, 12, realPoints, at::kDouble);
    std::vector<double> expected(bins, 0.0), observed(bins, 0.0);
    for (int b = 0; b < bins; b++) {
        for (int g = 0; g < grid; g++) {
            const double angle = -M_PI + 2 * M_PI * (b * grid + g + 0.5) / (bins * grid);
            at::Tensor gamma = at::stack({real, at::full_like(real, angle)}, 1);
            auto [v, logDet] = flow.inverse(gamma);
            const double density = at::exp(flow.logPrior(v, one) + logDet).sum().item<double>() * (24.0 / (realPoints - 1));
            expected[b] += density * 2 * M_PI / (bins * grid);
        }
        const double low = -M_PI + 2 * M_PI * b / bins, high = low + 2 * M_PI / bins;
        observed[b] = ((angles >= low) & (angles < high)).sum().item<int64_t>() / (double) count;
    }
    double total = 0;
    for (int b = 0; b < bins; b++) {
        total += expected[b];
        const double error = std::sqrt(expected[b] * (1 - expected[b]) / count);
        EXPECT_NEAR(observed[b], expected[b], 4.5 * error) << "bin " << b;
    }
    EXPECT_NEAR(total, 1.0, 1e-3);
}

TEST(SplineFlow, PriorIsUniformOnTorsionsAndGaussianElsewhere) {
    SplineFlow flow = mixedSplineFlow(35);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(36);
    at::Tensor v = flow.priorFromNormal(at::randn({100000, 6}, generator, at::kDouble), at::full({1}, 2.0, at::kDouble));
    at::Tensor angles = v.select(1, 1), real = v.select(1, 0);
    EXPECT_NEAR(angles.mean().item<double>(), 0.0, 0.03);
    EXPECT_NEAR(angles.var().item<double>(), M_PI * M_PI / 3, 0.05);  // uniform on [-pi, pi)
    EXPECT_NEAR(real.var().item<double>(), 2.0, 0.05);                 // N(0, tau)
    at::Tensor one = at::tensor({0.5, 1.0, -0.5, 2.0, -3.0, 0.0}, at::kDouble).reshape({1, 6});
    const double expected = 3 * -std::log(2 * M_PI) - (0.25 + 0.25 + 0) / (2 * 2.0) - 1.5 * std::log(2 * M_PI * 2.0);
    EXPECT_NEAR(flow.logPrior(one, at::full({1}, 2.0, at::kDouble)).item<double>(), expected, 1e-12);
}

TEST(FlowModel, TSFScalesExactlyWithTemperature) {
    // log q_tau(gamma) = log q_1(gamma) / tau + const for every gamma.
    AlanineDipeptide molecule = loadAlanineDipeptide();
    FlowModel model = alanineModel("tsf", molecule);
    at::Tensor gamma = randomInput(40, model.getLatentDim(), 10);
    auto [v, logDetInverse] = model.inverse(gamma);
    for (double tau : {0.5, 2.0, 5.0}) {
        at::Tensor difference = model.logModel(v, -logDetInverse, tau) - model.logModel(v, -logDetInverse, 1.0) / tau;
        EXPECT_LT((difference.max() - difference.min()).item<double>(), 1e-9) << "tau " << tau;
    }
    // RealNVP on internal coordinates is not steerable: the same check fails.
    FlowModel realnvp = alanineModel("realnvp", molecule);
    at::Tensor g = randomInput(40, realnvp.getLatentDim(), 11);
    auto [w, logDetInverse2] = realnvp.inverse(g);
    at::Tensor difference = model.logModel(w, -logDetInverse2, 2.0) - model.logModel(w, -logDetInverse2, 1.0) / 2.0;
    EXPECT_GT((difference.max() - difference.min()).item<double>(), 1e-3);
}

TEST(FlowModel, SampleAndLogProbAgree) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    for (const std::string type : {"realnvp", "tsf", "spline"}) {
        FlowModel model = alanineModel(type, molecule);
        at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(12);
        at::NoGradGuard noGrad;
        FlowSample sample = model.sample(16, 450.0, generator);
        ASSERT_EQ(sample.x.size(1), 22);
        at::Tensor momenta;
        if (model.hasMomenta())
            momenta = sample.gamma.narrow(1, model.getNumCoordinates(), model.getNumCoordinates());
        // Only frames in the domain map back to the same gamma (torsions wrap).
        at::Tensor inside = sample.inDomain.nonzero().reshape({-1});
        ASSERT_GT(inside.numel(), 0);
        at::Tensor logp = model.logProb(sample.x, 450.0, generator, momenta);
        at::Tensor expected = sample.logq - model.getLogDetNormalization() - sample.logJ;
        if (model.hasMomenta())
            expected = expected - FlowModel::logPrior(momenta, model.tau(450.0));
        EXPECT_LT(maxAbs(logp.index_select(0, inside) - expected.index_select(0, inside)), 1e-7) << type;
    }
}

TEST(FlowModel, SplineModelSeesTorsionsAsAnglesAndRoundTrips) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    FlowModel model = alanineModel("spline", molecule, 37);
    auto& coordinates = dynamic_cast<const InternalCoordinates&>(model.getCoordinates());
    const int torsions = coordinates.getNumTorsions(), first = model.getNumCoordinates() - torsions;
    // Torsions t in [c, c + 2 pi) become t - (c + pi) in [-pi, pi).
    EXPECT_TRUE(at::allclose(model.getShift().narrow(0, first, torsions), coordinates.getTorsionCuts() + M_PI));
    EXPECT_TRUE(at::equal(model.getScale().narrow(0, first, torsions), at::ones({torsions}, at::kDouble)));
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(38);
    at::NoGradGuard noGrad;
    FlowSample sample = model.sample(64, 600.0, generator);
    at::Tensor angles = sample.gamma.narrow(1, first, torsions);
    EXPECT_GE(angles.min().item<double>(), -M_PI);
    EXPECT_LT(angles.max().item<double>(), M_PI);
    // A saved and loaded spline flow is the same map.
    std::stringstream bytes;
    model.save(bytes);
    FlowModel loaded = FlowModel::load(bytes, "a stream");
    EXPECT_EQ(loaded.getFlow().getTypeName(), "spline");
    at::Tensor x = perturbedFrames(molecule.positions(), 8, 0.01, 39);
    EXPECT_TRUE(at::equal(model.logProb(x, 450.0, generator), loaded.logProb(x, 450.0, generator)));
    EXPECT_FALSE(loaded.getFlow().getConfig().conditionByLevel);
    // Level by level (torsions, angles, bonds): saved with its levels.
    FlowConfig config = randomFlow(40, 2, 32);
    config.conditionByLevel = true;
    FlowModel levelled = FlowModel::createForMolecule(*molecule.system, perturbedFrames(molecule.positions(), 64, 0.01, 40),
                                                      "spline", config, 600.0);
    EXPECT_EQ(coordinates.conditioningLevels().front(), 2);  // bonds last
    EXPECT_EQ(coordinates.conditioningLevels().back(), 0);   // torsions first
    std::stringstream levelledBytes;
    levelled.save(levelledBytes);
    // Format version 3 (in the header after the 14-byte magic), which older readers refuse; other flows stay at 2.
    EXPECT_EQ(levelledBytes.str()[14], 3);
    EXPECT_EQ(bytes.str()[14], 2);
    FlowModel levelledLoaded = FlowModel::load(levelledBytes, "a stream");
    EXPECT_TRUE(levelledLoaded.getFlow().getConfig().conditionByLevel);
    EXPECT_EQ(levelledLoaded.getFlow().getNumParameters(), levelled.getFlow().getNumParameters());
    EXPECT_NE(levelled.getFlow().getNumParameters(), model.getFlow().getNumParameters());
    EXPECT_TRUE(at::equal(levelled.logProb(x, 450.0, generator), levelledLoaded.logProb(x, 450.0, generator)));
}

TEST(FlowModel, SaveLoadRoundTrip) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    FlowModel model = alanineModel("tsf", molecule, 21);
    model.setMetadata("trained for a test");
    std::string path = temporaryPath(".flow");
    model.save(path);
    FlowModel loaded = FlowModel::load(path, *molecule.system);
    EXPECT_EQ(loaded.getMetadata(), "trained for a test");
    EXPECT_EQ(loaded.getReferenceTemperature(), 600.0);
    EXPECT_EQ(loaded.getFlow().getTypeName(), "tsf");
    EXPECT_EQ(loaded.getFlow().getNumParameters(), model.getFlow().getNumParameters());
    at::NoGradGuard noGrad;
    at::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(5), g2 = at::make_generator<at::CPUGeneratorImpl>(5);
    FlowSample a = model.sample(8, 300.0, g1), b = loaded.sample(8, 300.0, g2);
    EXPECT_TRUE(at::equal(a.x, b.x));
    EXPECT_TRUE(at::equal(a.logq, b.logq));
    at::Tensor x = perturbedFrames(molecule.positions(), 8, 0.01, 6);
    at::Tensor p = randomInput(8, 60, 7);
    EXPECT_TRUE(at::equal(model.logProb(x, 300.0, g1, p), loaded.logProb(x, 300.0, g2, p)));
    // A clone has its own weights.
    FlowModel copy = model.clone();
    copy.getFlowPtr()->parameters()[1].add_(1.0);
    EXPECT_FALSE(at::equal(copy.getFlow().parameters()[1], model.getFlow().parameters()[1]));
    std::remove(path.c_str());
}

TEST(FlowModel, TSFWithSplineCouplingsSavesItsSplinesAndStaysSteerable) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    FlowConfig config = randomFlow(23, 2, 32);
    config.tsfSplineCouplings = true;
    config.splineBins = 6;
    FlowModel model = FlowModel::createForMolecule(*molecule.system, perturbedFrames(molecule.positions(), 64, 0.01, 23),
                                                   "tsf", config, 600.0);
    {
        at::NoGradGuard noGrad;
        at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(24);
        for (const at::Tensor& p : model.getFlow().parameters())
            p.add_(0.05 * at::randn(p.sizes(), generator, at::kDouble));
    }
    // Exactly steerable: log q_tau = log q_1 / tau + const.
    at::Tensor gamma = randomInput(40, model.getLatentDim(), 25);
    auto [v, logDetInverse] = model.inverse(gamma);
    at::Tensor difference = model.logModel(v, -logDetInverse, 2.0) - model.logModel(v, -logDetInverse, 1.0) / 2.0;
    EXPECT_LT((difference.max() - difference.min()).item<double>(), 1e-9);
    std::stringstream bytes;
    model.save(bytes);
    EXPECT_EQ(bytes.str()[14], 4);  // format version 4, which older readers refuse
    FlowModel loaded = FlowModel::load(bytes, "a stream");
    EXPECT_TRUE(loaded.getFlow().getConfig().tsfSplineCouplings);
    EXPECT_EQ(loaded.getFlow().getConfig().splineBins, 6);
    EXPECT_EQ(loaded.getFlow().getNumParameters(), model.getFlow().getNumParameters());
    at::NoGradGuard noGrad;
    at::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(5), g2 = at::make_generator<at::CPUGeneratorImpl>(5);
    at::Tensor x = perturbedFrames(molecule.positions(), 8, 0.01, 26);
    at::Tensor p = randomInput(8, 60, 27);
    EXPECT_TRUE(at::equal(model.logProb(x, 450.0, g1, p), loaded.logProb(x, 450.0, g2, p)));
    // A plain TSF is still written as version 2 and loads without splines.
    std::stringstream plainBytes;
    alanineModel("tsf", molecule, 28).save(plainBytes);
    EXPECT_EQ(plainBytes.str()[14], 2);
    EXPECT_FALSE(FlowModel::load(plainBytes, "a stream").getFlow().getConfig().tsfSplineCouplings);
}

TEST(FlowModel, DeviceCopyHasItsOwnWeightsAndTheSameMap) {
    OpenMM::System system = harmonicSystem(1);
    at::Tensor frames = randomInput(100, 3, 21).reshape({100, 1, 3});
    for (const std::string type : {"tsf", "realnvp"}) {
        FlowModel model = FlowModel::createCartesian(system, {0, 1}, frames, type, randomFlow(22), 300.0);
        FlowModel copy = model.to(at::kCPU);
        at::Tensor v = randomInput(5, model.getLatentDim(), 23);
        EXPECT_TRUE(at::equal(copy.forward(v).first, model.forward(v).first)) << type;
        EXPECT_TRUE(at::equal(copy.inverse(v).second, model.inverse(v).second)) << type;
        EXPECT_TRUE(copy.getFlow().parameters()[1].requires_grad()) << type;
        {
            at::NoGradGuard noGrad;
            copy.getFlowPtr()->parameters()[1].add_(1.0);
        }
        EXPECT_FALSE(at::equal(copy.getFlow().parameters()[1], model.getFlow().parameters()[1])) << type;
        // On another device (meta: shapes without data) every tensor the flow computes with lives there,
        // or mixing devices would throw, as it would between the CPU and a GPU. LibTorch 1.13 has no meta
        // relu and index_select: these networks have no hidden layers, and RealNVP (index_select) is
        // checked only for where its weights are.
        FlowConfig linear = randomFlow(24);
        linear.hiddenLayers = 0;
        FlowModel moved = FlowModel::createCartesian(system, {0, 1}, frames, type, linear, 300.0).to(at::kMeta);
        for (const at::Tensor& p : moved.getFlow().parameters())
            EXPECT_TRUE(p.is_meta()) << type;
        if (type != "tsf")
            continue;
        at::Tensor input = at::empty({5, model.getLatentDim()}, at::TensorOptions().dtype(at::kDouble).device(at::kMeta));
        auto [gamma, logDet] = moved.forward(input);
        auto [back, logDetInverse] = moved.inverse(gamma);
        EXPECT_TRUE(gamma.is_meta() && logDet.is_meta() && back.is_meta() && logDetInverse.is_meta()) << type;
        EXPECT_EQ(back.sizes(), input.sizes()) << type;
        EXPECT_TRUE(moved.denormalize(moved.normalize(input.narrow(1, 0, 2))).is_meta()) << type;
    }
}

TEST(FlowModel, CartesianModelRoundTrip) {
    OpenMM::System system = harmonicSystem(1);
    at::Tensor frames = randomInput(100, 3, 13).reshape({100, 1, 3});
    FlowModel model = FlowModel::createCartesian(system, {0, 1}, frames, "realnvp", randomFlow(14), 300.0,
                                                 at::tensor({0.0, 0.0, 0.25}, at::kDouble));
    std::string path = temporaryPath(".flow");
    model.save(path);
    FlowModel loaded = FlowModel::load(path, system);
    at::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(1), g2 = at::make_generator<at::CPUGeneratorImpl>(1);
    at::NoGradGuard noGrad;
    FlowSample a = model.sample(4, 300.0, g1), b = loaded.sample(4, 300.0, g2);
    EXPECT_TRUE(at::equal(a.x, b.x));
    EXPECT_EQ(a.x[0][0][2].item<double>(), 0.25);
    std::remove(path.c_str());
}

TEST(FlowModel, RejectsBadFiles) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    FlowModel model = alanineModel("realnvp", molecule);
    expectMessage([] { FlowModel::load("/nonexistent/model.flow"); }, "cannot open");
    std::string path = temporaryPath(".flow");
    model.save(path);
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string truncated = temporaryPath(".flow");
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    expectMessage([&] { FlowModel::load(truncated); }, "truncated or corrupt");
    std::string garbage = temporaryPath(".flow");
    std::ofstream(garbage, std::ios::binary) << "this is not a flow file at all";
    expectMessage([&] { FlowModel::load(garbage); }, "truncated or corrupt");
    std::string newer = temporaryPath(".flow");
    writeFlowFileHeader(newer, FlowModel::FORMAT_VERSION + 1);
    expectMessage([&] { FlowModel::load(newer); }, "written by a newer OpenMM-BG");
    // Another molecule: a missing bond, a changed mass, another particle count.
    std::unique_ptr<OpenMM::System> other(OpenMM::XmlSerializer::clone(*molecule.system));
    other->setParticleMass(5, 16.0);
    expectMessage([&] { FlowModel::load(path, *other); }, "mass of particle 5");
    OpenMM::System oneParticle = harmonicSystem(1);
    expectMessage([&] { FlowModel::load(path, oneParticle); }, "it has 1 particles, the flow was made for 22");
    std::unique_ptr<OpenMM::System> fewerBonds(OpenMM::XmlSerializer::clone(*molecule.system));
    for (int f = 0; f < fewerBonds->getNumForces(); f++)
        if (auto* bonds = dynamic_cast<OpenMM::HarmonicBondForce*>(&fewerBonds->getForce(f)))
            bonds->setBondParameters(0, 0, 3, 0.1, 1000.0);  // moves the first bond elsewhere
    expectMessage([&] { FlowModel::load(path, *fewerBonds); }, "bond");
    for (const std::string& file : {path, truncated, garbage, newer})
        std::remove(file.c_str());
}

TEST(FlowModel, EveryCorruptionOfAFlowFileIsRefused) {
    // Byte flips (every header byte, then anywhere), truncations and garbage:
    // none is accepted, and every refusal is an OpenMMException (any other
    // exception, or a crash, fails the test).
    OpenMM::System system;
    system.addParticle(1.0);
    FlowConfig small;  // a small file, so that many corruptions take little time
    small.numBlocks = 1;
    small.hiddenLayers = 1;
    small.hiddenWidth = 8;
    FlowModel model = FlowModel::createCartesian(system, {0, 1}, at::Tensor(), "tsf", small, 300.0);
    std::stringstream out;
    model.save(out);
    const std::string bytes = out.str();
    auto refused = [](const std::string& file) {
        std::istringstream in(file);
        try {
            FlowModel::load(in, "the test file");
            return false;
        } catch (const OpenMM::OpenMMException&) {
            return true;
        }
    };
    ASSERT_FALSE(refused(bytes));
    const size_t header = std::string("OpenMMBG flow\n").size() + 24;
    std::mt19937_64 random(2024);
    int accepted = 0;
    for (size_t i = 0; i < 1000; i++) {
        std::string flipped = bytes;
        flipped[i < header ? i : random() % bytes.size()] ^= (char) (1 + random() % 255);
        accepted += !refused(flipped);
    }
    for (int i = 0; i < 300; i++)
        accepted += !refused(bytes.substr(0, random() % bytes.size()));
    for (int i = 0; i < 100; i++) {
        // Garbage: bare, behind the flow header, or behind a header whose length and checksum fit it.
        std::string garbage(random() % (2 * bytes.size()), '\0');
        for (char& c : garbage)
            c = (char) (random() % 256);
        const std::string prefixes[] = {"", bytes.substr(0, header), std::string("PK\3\4", 4)};
        accepted += !refused(prefixes[i % 3] + garbage);
    }
    EXPECT_EQ(accepted, 0);
    // The archive without its header, and a header of a newer version.
    expectMessage([&] {
        std::istringstream in(bytes.substr(header));
        FlowModel::load(in, "a bare archive");
    }, "without its header");
    std::string newer = bytes;
    newer[std::string("OpenMMBG flow\n").size()] = (char) (FlowModel::FORMAT_VERSION + 1);
    expectMessage([&] {
        std::istringstream in(newer);
        FlowModel::load(in, "a newer file");
    }, "written by a newer OpenMM-BG");
    // One flipped weight byte, as a user would meet it.
    std::string damaged = bytes;
    damaged[bytes.size() - 100] ^= 1;
    expectMessage([&] {
        std::istringstream in(damaged);
        FlowModel::load(in, "a damaged file");
    }, "checksum does not match");
}

TEST(FlowModel, RejectsBadData) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(molecule.positions(), 10, 0.01, 1);
    expectMessage([&] {
        FlowModel::createForMolecule(*molecule.system, frames.narrow(1, 0, 21), "tsf", FlowConfig(), 600.0);
    }, "21 particles but the System has 22");
    at::Tensor bad = frames.clone();
    bad[3][2][1] = std::nan("");
    expectMessage([&] { FlowModel::createForMolecule(*molecule.system, bad, "tsf", FlowConfig(), 600.0); }, "NaN");
    expectMessage([&] { FlowModel::createForMolecule(*molecule.system, frames, "glow", FlowConfig(), 600.0); },
                  "unknown flow type 'glow'");
    expectMessage([&] { FlowModel::createForMolecule(*molecule.system, frames, "tsf", FlowConfig(), -1.0); },
                  "reference temperature");
    FlowModel model = FlowModel::createForMolecule(*molecule.system, frames, "tsf", randomFlow(1), 600.0);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
    expectMessage([&] { model.sample(2, 0.0, generator); }, "temperature must be positive");
}
