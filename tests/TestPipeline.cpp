// The alanine dipeptide pipeline as a user runs it: a smoke run, a rerun that
// reuses every finished stage, and user mistakes answered by one clear line
// and a non-zero exit code.

#include "TestSupport.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/ToySystems.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

struct PipelineRun {
    int status;
    std::string output;
};

PipelineRun runPipeline(const std::string& arguments) {
    std::string command = std::string(BG_PIPELINE_EXECUTABLE) + " " + arguments + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    PipelineRun run{-1, ""};
    char buffer[4096];
    while (size_t read = fread(buffer, 1, sizeof(buffer), pipe))
        run.output.append(buffer, read);
    int status = pclose(pipe);
    run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
}

bool fileExists(const std::string& path) {
    return std::ifstream(path).good();
}

std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int occurrences(const std::string& text, const std::string& word) {
    int count = 0;
    for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1))
        count++;
    return count;
}

} // namespace

TEST(Pipeline, SmokeRunWritesTheResultsAndARerunReusesThem) {
    std::string folder = temporaryPath("_pipeline") + "/results";  // a nested folder that does not exist yet
    PipelineRun first = runPipeline("--preset smoke --output " + folder);
    ASSERT_EQ(first.status, 0) << first.output;
    for (const char* file : {"md600.csv", "md300.csv", "md600.dcd", "md300.dcd", "flow.bgflow", "training.csv",
                             "flow600.csv", "flow300.csv", "mcmc300.csv", "pt300.csv", "summary.json", "summary.txt",
                             "ramachandran.png", "phi_histograms.png", "energy_histograms.png"})
        EXPECT_TRUE(fileExists(folder + "/" + file)) << file;
    std::string summary = contents(folder + "/summary.json");
    for (const char* key : {"dF_phi_md300", "dF_phi_pt300", "pt_exchange_acceptance", "mcmc_random_walk_acceptance",
                            "flow300_ess", "rama_kl_pt300_vs_md300", "seconds_training"})
        EXPECT_NE(summary.find(key), std::string::npos) << key;
    std::string flow = contents(folder + "/flow.bgflow");

    PipelineRun second = runPipeline("--preset smoke --no-plots --output " + folder);
    ASSERT_EQ(second.status, 0) << second.output;
    EXPECT_EQ(occurrences(second.output, "reused"), 4) << second.output;  // MD, flow, Metropolis, PT
    EXPECT_EQ(contents(folder + "/flow.bgflow"), flow);
    // The reused stages report the same statistics.
    std::string again = contents(folder + "/summary.json");
    for (const char* key : {"\"pt_exchange_acceptance\"", "\"mcmc_random_walk_acceptance\""}) {
        size_t a = summary.find(key), b = again.find(key);
        ASSERT_NE(b, std::string::npos) << key;
        EXPECT_EQ(summary.substr(a, summary.find('\n', a) - a), again.substr(b, again.find('\n', b) - b));
    }
}

TEST(Pipeline, UserMistakesGetOneClearLineAndAnExitCode) {
    struct Case {
        std::string arguments;
        int status;
        std::string message;
    };
    DoubleWell well;
    auto system = well.createSystem();
    std::string otherFlow = temporaryPath(".bgflow");
    FlowModel::createCartesian(*system, {0, 1}, at::Tensor(), "tsf", FlowConfig(), 300.0).save(otherFlow);
    std::string output = temporaryPath("_mistakes");
    const std::vector<Case> cases = {
        {"--frobnicate", 2, "unknown option '--frobnicate'"},
        {"--preset huge", 2, "unknown preset 'huge'"},
        {"--output", 2, "needs a value"},
        {"--output /proc/not-here", 2, "cannot create the output folder"},
        {"--preset smoke --data /nonexistent --output " + output, 1, "cannot open '/nonexistent/"},
        {"--preset smoke --no-plots --flow /nonexistent.bgflow --output " + output, 1, "cannot open '/nonexistent.bgflow'"},
        {"--preset smoke --no-plots --flow " + otherFlow + " --output " + output, 1, "made for another System"},
    };
    for (const Case& c : cases) {
        PipelineRun run = runPipeline(c.arguments);
        EXPECT_EQ(run.status, c.status) << c.arguments << "\n" << run.output;
        EXPECT_EQ(run.output.rfind("error: ", 0), 0u) << c.arguments << "\n" << run.output;  // the first line
        EXPECT_NE(run.output.find(c.message), std::string::npos) << c.arguments << "\n" << run.output;
        EXPECT_EQ(run.output.find("terminate called"), std::string::npos) << run.output;
    }
}
