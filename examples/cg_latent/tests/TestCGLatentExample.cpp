// The coarse-grained latent-model example as a user runs it: every command on
// a few frames, the files each writes, and user mistakes answered by one line
// and exit code 2.

#include "ProgramRun.h"
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

using namespace OpenMMBG::testing;

TEST(CGLatentExample, EveryCommandRunsOnAShortTrajectory) {
    const std::string dir = temporaryPath("_cg");
    auto run = [&](const std::string& arguments) {
        return runProgram(BG_CG_LATENT_EXECUTABLE, arguments + " --output " + dir);
    };
    // No data yet: a clear message.
    ProgramRun missing = run("rg");
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.errors.find("run 'cg_latent md"), std::string::npos) << missing.errors;
    EXPECT_EQ(run("nonsense").status, 2);
    EXPECT_EQ(run("md --frobnicate 3").status, 2);

    ProgramRun md = run("md --train-ns 0.08 --reference-ns 0.05");
    ASSERT_EQ(md.status, 0) << md.output << md.errors;
    // The other Laplace approximations and predictives (rg's summary is rewritten by the run after them).
    for (const char* variant : {"--prior evidence", "--curvature diagonal --predictive network", "--curvature output"}) {
        ProgramRun other = run(std::string("rg --sizes 4 --steps 30 --draws 3 ") + variant);
        EXPECT_EQ(other.status, 0) << variant << ": " << other.output << other.errors;
    }
    EXPECT_EQ(run("rg --curvature full").status, 2);
    EXPECT_EQ(run("rg --predictive exact").status, 2);
    EXPECT_EQ(run("rg --prior 0").status, 2);
    ProgramRun rg = run("rg --sizes 4,8 --steps 30 --draws 3");
    ASSERT_EQ(rg.status, 0) << rg.output << rg.errors;
    EXPECT_NE(rg.output.find("N = 8: reference mass inside the 90% band"), std::string::npos) << rg.output;
    ProgramRun tooMany = run("rg --sizes 9 --steps 30 --draws 3");
    EXPECT_EQ(tooMany.status, 2);
    EXPECT_NE(tooMany.errors.find("fewer than N = 9"), std::string::npos) << tooMany.errors;
    ProgramRun ard = run("ard --size 8 --steps 30");
    ASSERT_EQ(ard.status, 0) << ard.output << ard.errors;
    ProgramRun map = run("map --model 8");
    ASSERT_EQ(map.status, 0) << map.output << map.errors;
    ProgramRun physics = run("physics --max-steps 60");
    ASSERT_EQ(physics.status, 0) << physics.output << physics.errors;
    EXPECT_NE(physics.output.find("reference MD: <u>"), std::string::npos) << physics.output;

    const std::string json = fileContents(dir + "/summary.json");
    for (const char* key : {"md_temperature_K", "N4_rg_band_coverage", "N8_final_elbo", "ard_knn_accuracy",
                            "no_ard_knn_accuracy", "map_r2_phi", "dw_model_x1_mean", "dw_covering_model_p_right_well", "adp_physics_mean_reduced_energy",
                            "adp_md_mean_reduced_energy", "dw_last_held_latent_share"})
        EXPECT_TRUE(std::isfinite(jsonNumber(json, key))) << key << " in " << json;
    for (const char* file : {"rg_density.csv", "ard_encodings.csv", "latent_grid.csv", "latent_encodings.csv",
                             "model_N4.bgcg", "model_N8.bgcg", "physics_samples.csv", "model_physics.bgcg",
                             "physics_double_well.csv", "physics_double_well_covering.csv"})
        EXPECT_FALSE(fileContents(dir + "/" + file).empty()) << file;
    // 40 bins per size, a header and a comment.
    const std::string csv = fileContents(dir + "/rg_density.csv");
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2 + 2 * 40);
}
