// RealNVP and TSF flows and the FlowModel around them.

#include "TestSupport.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/RealNVPFlow.h"
#include "openmmbg/TSFFlow.h"

#include <gtest/gtest.h>
#include <openmm/CustomExternalForce.h>
#include <openmm/HarmonicBondForce.h>
#include <openmm/OpenMMException.h>
#include <openmm/serialization/XmlSerializer.h>

#include <cstdio>
#include <fstream>

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

TEST(FlowModel, TSFScalesExactlyWithTemperature) {
    // log q_tau(gamma) = log q_1(gamma) / tau + const for every gamma.
    AlanineDipeptide molecule = loadAlanineDipeptide();
    FlowModel model = alanineModel("tsf", molecule);
    at::Tensor gamma = randomInput(40, model.getLatentDim(), 10);
    auto [v, logDetInverse] = model.inverse(gamma);
    for (double tau : {0.5, 2.0, 5.0}) {
        at::Tensor difference = FlowModel::logModel(v, -logDetInverse, tau) - FlowModel::logModel(v, -logDetInverse, 1.0) / tau;
        EXPECT_LT((difference.max() - difference.min()).item<double>(), 1e-9) << "tau " << tau;
    }
    // RealNVP on internal coordinates is not steerable: the same check fails.
    FlowModel realnvp = alanineModel("realnvp", molecule);
    at::Tensor g = randomInput(40, realnvp.getLatentDim(), 11);
    auto [w, logDetInverse2] = realnvp.inverse(g);
    at::Tensor difference = FlowModel::logModel(w, -logDetInverse2, 2.0) - FlowModel::logModel(w, -logDetInverse2, 1.0) / 2.0;
    EXPECT_GT((difference.max() - difference.min()).item<double>(), 1e-3);
}

TEST(FlowModel, SampleAndLogProbAgree) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    for (const std::string type : {"realnvp", "tsf"}) {
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
