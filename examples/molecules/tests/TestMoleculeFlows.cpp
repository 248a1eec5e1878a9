// molecule_flows as a user runs it: a smoke run on each molecule of
// examples/molecules/data trains a spline flow and runs both integrators;
// user mistakes are answered by one clear line and exit code 2.

#include "ProgramRun.h"
#include "TestSupport.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/tools/MoleculeIO.h"

#include <gtest/gtest.h>

#include <string>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

ProgramRun runMoleculeFlows(const std::string& arguments) {
    return runProgram(BG_MOLECULE_FLOWS_EXECUTABLE, arguments);
}

class MoleculeFlows : public ::testing::TestWithParam<std::string> {};

} // namespace

TEST_P(MoleculeFlows, SmokeRunTrainsAFlowAndRunsBothIntegrators) {
    const std::string output = temporaryPath("_" + GetParam());
    const ProgramRun run = runMoleculeFlows("--molecule " + GetParam() + " --preset smoke --output " + output);
    ASSERT_EQ(run.status, 0) << run.output << run.errors;
    const std::string json = fileContents(output + "/summary.json");
    ASSERT_FALSE(json.empty());
    const std::string base = std::string(BG_SOURCE_DIR) + "/examples/molecules/data/" + GetParam();
    auto system = loadSystemXml(base + "_system.xml");
    EXPECT_EQ(jsonNumber(json, "atoms"), system->getNumParticles());
    // The saved flow belongs to this molecule.
    EXPECT_NO_THROW(FlowModel::load(output + "/flow.pt", *system));
    const double ess = jsonNumber(json, "flow300_ess");
    EXPECT_GT(ess, 0.0);
    EXPECT_LE(ess, 1.0);
    for (const char* key : {"mcmc_random_walk_acceptance", "mcmc_independence_acceptance"}) {
        EXPECT_GE(jsonNumber(json, key), 0.0) << key;
        EXPECT_LE(jsonNumber(json, key), 1.0) << key;
    }
    EXPECT_GT(jsonNumber(json, "mcmc_random_walk_acceptance"), 0.0) << "the chain never moved";
    EXPECT_NE(json.find("\"pt_exchange_acceptance\": ["), std::string::npos);
    EXPECT_GE(jsonNumber(json, "pt_round_trips"), 0.0);
}

INSTANTIATE_TEST_SUITE_P(CappedPeptides, MoleculeFlows,
                         ::testing::Values("capped_proline", "capped_phenylalanine", "alanine_tetrapeptide"));

TEST(MoleculeFlowsProgram, MistakesGetOneClearLine) {
    ProgramRun run = runMoleculeFlows("--preset smoke");
    EXPECT_EQ(run.status, 2);
    EXPECT_NE(run.errors.find("--molecule is required"), std::string::npos) << run.errors;
    run = runMoleculeFlows("--molecule no_such_molecule --preset smoke");
    EXPECT_EQ(run.status, 2);
    EXPECT_NE(run.errors.find("no molecule 'no_such_molecule'"), std::string::npos) << run.errors;
    run = runMoleculeFlows("--molecule capped_proline --preset huge");
    EXPECT_EQ(run.status, 2);
    EXPECT_NE(run.errors.find("unknown preset 'huge'"), std::string::npos) << run.errors;
}
