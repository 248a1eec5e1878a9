// XML serialization of both integrators: a round trip keeps the definition
// (parameters, seed, force groups, the flow), a deserialized integrator with
// the same seed repeats the original's run from the same start, newer
// versions are refused, and version 1 files (which also held a random state)
// are still read.

#include "SamplerChecks.h"
#include "TestSupport.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/tools/ToySystems.h"

#include <gtest/gtest.h>
#include <openmm/Context.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/State.h>
#include <openmm/serialization/XmlSerializer.h>

#include <memory>
#include <sstream>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

const double T_REF = 300.0;

std::unique_ptr<Integrator> roundTrip(const Integrator& integrator, std::string* text = nullptr) {
    std::stringstream xml;
    XmlSerializer::serialize<Integrator>(&integrator, "Integrator", xml);
    if (text)
        *text = xml.str();
    return std::unique_ptr<Integrator>(XmlSerializer::deserialize<Integrator>(xml));
}

/** x of particle 0 after each of `steps` single steps from (-2.4, 0, 0). */
std::vector<double> trajectory(const System& system, Integrator& integrator, int steps) {
    Context context(system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(-2.4, 0.0, 0.0)});
    std::vector<double> xs;
    for (int i = 0; i < steps; i++) {
        integrator.step(1);
        xs.push_back(context.getState(State::Positions).getPositions()[0][0]);
    }
    return xs;
}

void expectRefused(const std::string& xml, const std::string& text) {
    std::stringstream stream(xml);
    expectMessage([&] { delete XmlSerializer::deserialize<Integrator>(stream); }, text);
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

} // namespace

TEST(SerializeIntegrators, LatentMetropolisRoundTripKeepsTheDefinition) {
    DoubleWell well;
    auto system = well.createSystem();
    LatentMetropolisIntegrator original(trainedDoubleWellFlow(*system, "tsf"), 2 * T_REF, 0.4, 0.25);
    original.setRandomNumberSeed(16);
    original.setCheckStereochemistry(false);
    original.setIntegrationForceGroups(1);  // group 0, which holds the System's one force
    original.setIndependenceBlockSize(9);
    std::string xml;
    std::unique_ptr<Integrator> copy = roundTrip(original, &xml);
    auto* restored = dynamic_cast<LatentMetropolisIntegrator*>(copy.get());
    ASSERT_NE(restored, nullptr);
    EXPECT_EQ(restored->getTemperature(), 2 * T_REF);
    EXPECT_EQ(restored->getLatentStepSize(), 0.4);
    EXPECT_EQ(restored->getIndependenceProbability(), 0.25);
    EXPECT_EQ(restored->getRandomNumberSeed(), 16);
    EXPECT_FALSE(restored->getCheckStereochemistry());
    EXPECT_EQ(restored->getIntegrationForceGroups(), 1);
    EXPECT_EQ(restored->getIndependenceBlockSize(), 9);
    EXPECT_EQ(restored->getFlowModel().getFlow().getTypeName(), "tsf");
    // The same definition and seed: the same run.
    EXPECT_EQ(trajectory(*system, original, 60), trajectory(*system, *restored, 60));
    // A newer XML version is refused; version 1 (which carried a random state) and 2 (no block size) are read.
    expectRefused(replaced(xml, "version=\"3\"", "version=\"9\""), "XML version 9 is not supported");
    const std::string version2 = replaced(replaced(xml, "version=\"3\"", "version=\"2\""), "independenceBlockSize=\"9\"", "");
    std::stringstream secondVersion(version2);
    std::unique_ptr<Integrator> second(XmlSerializer::deserialize<Integrator>(secondVersion));
    EXPECT_EQ(dynamic_cast<LatentMetropolisIntegrator&>(*second).getIndependenceBlockSize(), 64);
    std::stringstream oldVersion(
        replaced(replaced(version2, "version=\"2\"", "version=\"1\""), "randomSeed=", "randomState=\"AAAA\" randomSeed="));
    std::unique_ptr<Integrator> old(XmlSerializer::deserialize<Integrator>(oldVersion));
    EXPECT_EQ(dynamic_cast<LatentMetropolisIntegrator&>(*old).getTemperature(), 2 * T_REF);
}

TEST(SerializeIntegrators, ParallelTemperingRoundTripKeepsTheDefinition) {
    DoubleWell well;
    auto system = well.createSystem();
    TSFParallelTemperingIntegrator original(untrainedDoubleWellFlow(*system), {300.0, 420.0, 600.0}, 0.4, 0.3);
    original.setRandomNumberSeed(37);
    original.setFlowMovesPerStep(2);
    std::string xml;
    std::unique_ptr<Integrator> copy = roundTrip(original, &xml);
    auto* restored = dynamic_cast<TSFParallelTemperingIntegrator*>(copy.get());
    ASSERT_NE(restored, nullptr);
    EXPECT_EQ(restored->getTemperatures(), original.getTemperatures());
    EXPECT_EQ(restored->getFlowMovesPerStep(), 2);
    EXPECT_EQ(restored->getLatentStepSize(), 0.4);
    EXPECT_EQ(restored->getIndependenceProbability(), 0.3);
    EXPECT_EQ(restored->getRandomNumberSeed(), 37);
    EXPECT_EQ(trajectory(*system, original, 40), trajectory(*system, *restored, 40));
    expectRefused(replaced(xml, "version=\"3\"", "version=\"0\""), "XML version 0 is not supported");
    // A corrupt embedded flow is refused with the flow file's own message.
    const size_t flow = xml.find("flow=\"");
    ASSERT_NE(flow, std::string::npos);
    std::string corrupt = xml;
    corrupt.replace(flow + 6, 40, std::string(40, 'A'));
    expectRefused(corrupt, "the flow embedded in the XML");
}
