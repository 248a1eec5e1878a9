#include "TestSupport.h"

#include "ReferenceBGKernelFactory.h"
#include "openmmbg/Positions.h"

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/serialize/output-archive.h>

#include <unistd.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>

#include <cmath>
#include <cstdlib>
#include <vector>

namespace OpenMMBG {
namespace testing {

std::string dataFile(const std::string& name) {
    return std::string(BG_DATA_DIR) + "/" + name;
}

at::Tensor MoleculeFiles::positions() const {
    return positionsToTensor(structure.positions);
}

MoleculeFiles loadMoleculeFiles(const std::string& base) {
    MoleculeFiles molecule;
    molecule.system = loadSystemXml(base + "_system.xml");
    molecule.structure = readPdb(base + ".pdb");
    return molecule;
}

AlanineDipeptide loadAlanineDipeptide() {
    return loadMoleculeFiles(dataFile("alanine_dipeptide"));
}

at::Tensor perturbedFrames(const at::Tensor& frame, int count, double sigma, uint64_t seed) {
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    at::Tensor noise = at::normal(0.0, sigma, {count, frame.size(1), 3}, generator, at::kDouble);
    return frame + noise;
}

at::Tensor bruteForceJacobian(const std::function<at::Tensor(const at::Tensor&)>& f, const at::Tensor& x) {
    at::Tensor input = x.detach().clone().requires_grad_(true);
    at::Tensor output = f(input).reshape({-1});
    std::vector<at::Tensor> rows;
    for (int64_t i = 0; i < output.size(0); i++) {
        at::Tensor row = torch::autograd::grad({output[i]}, {input}, {}, true, false, true)[0];
        rows.push_back(row.defined() ? row.reshape({-1}) : at::zeros({input.numel()}, input.options()));
    }
    return at::stack(rows).detach();
}

void writeFlowFileHeader(const std::string& path, int64_t formatVersion) {
    torch::serialize::OutputArchive archive;
    archive.write("format", c10::IValue(std::string("openmm-bg-flow")));
    archive.write("format_version", c10::IValue(formatVersion));
    archive.save_to(path);
}

std::string temporaryPath(const std::string& suffix) {
    static int counter = 0;
    return ::testing::TempDir() + "openmmbg_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + suffix;
}

void expectMessage(const std::function<void()>& call, const std::string& text) {
    try {
        call();
        ADD_FAILURE() << "no exception; expected one mentioning '" << text << "'";
    } catch (const OpenMM::OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
}

double logAbsDet(const at::Tensor& matrix) {
    return std::get<1>(at::linalg_slogdet(matrix)).item<double>();
}

void expectLogDetMatchesAutograd(const InternalCoordinates& coordinates, const at::Tensor& x, double tolerance) {
    auto [y, e] = coordinates.forward(x);
    const int64_t n = y.size(1);
    for (int64_t b = 0; b < x.size(0); b++) {
        auto map = [&](const at::Tensor& input) { return coordinates.inverse(input.narrow(1, 6, n), input.narrow(1, 0, 6)); };
        const at::Tensor jacobian = bruteForceJacobian(map, at::cat({e[b], y[b]}).unsqueeze(0));
        ASSERT_EQ(jacobian.size(0), n + 6);
        ASSERT_EQ(jacobian.size(1), n + 6);
        // The full log-det is the y part plus log sin(theta) of the external frame.
        const double expected = coordinates.logDetJacobian(y.narrow(0, b, 1)).item<double>()
                                + std::log(std::sin(e[b][3].item<double>()));
        EXPECT_NEAR(logAbsDet(jacobian), expected, tolerance) << "configuration " << b;
    }
}

/**
 * Registers OpenMM's CPU platform (from OpenMM's plugin folder) and this
 * build's kernels for the Reference and CPU platforms, by the plugin's own
 * registration function: the tests never load a copy installed earlier.
 * OpenMM's own OPENMM_PLUGIN_DIR, if set, names the plugin folder instead of
 * the one found at build time (test programs run on another machine, as
 * scripts/gpu_check.sh does).
 */
class PlatformEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        const char* folder = std::getenv("OPENMM_PLUGIN_DIR");
        OpenMM::Platform::loadPluginLibrary(folder != nullptr ? std::string(folder) + "/libOpenMMCPU.so"
                                                              : std::string(BG_OPENMM_CPU_PLUGIN));
        registerBGReferenceKernelFactories();
    }
};

} // namespace testing
} // namespace OpenMMBG

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new OpenMMBG::testing::PlatformEnvironment);
    return RUN_ALL_TESTS();
}
