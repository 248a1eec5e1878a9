#include "TestSupport.h"

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/serialize/output-archive.h>

#include <unistd.h>
#include <openmm/Platform.h>

#include <iostream>
#include <vector>

namespace OpenMMBG {
namespace testing {

std::string dataFile(const std::string& name) {
    return std::string(BG_DATA_DIR) + "/" + name;
}

at::Tensor AlanineDipeptide::positions() const {
    std::vector<double> flat;
    for (const OpenMM::Vec3& p : structure.positions)
        flat.insert(flat.end(), {p[0], p[1], p[2]});
    return at::tensor(flat, at::kDouble).reshape({1, (int64_t) structure.positions.size(), 3});
}

AlanineDipeptide loadAlanineDipeptide() {
    AlanineDipeptide molecule;
    molecule.system = loadSystemXml(dataFile("alanine_dipeptide_system.xml"));
    molecule.structure = readPdb(dataFile("alanine_dipeptide.pdb"));
    return molecule;
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

double logAbsDet(const at::Tensor& matrix) {
    return std::get<1>(at::linalg_slogdet(matrix)).item<double>();
}

/**
 * Loads the plugins from OpenMM's default directory (OPENMM_PLUGIN_DIR: the
 * build tree's plugin folder) once, and fails if any of ours did not load.
 * Debian's Amoeba and Drude plugins fail in C++ programs unless
 * /usr/lib/x86_64-linux-gnu/openmm is on LD_LIBRARY_PATH, and CUDA plugins on
 * a machine without a CUDA driver; that is reported, not failed.
 */
class PluginEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        OpenMM::Platform::loadPluginsFromDirectory(OpenMM::Platform::getDefaultPluginsDirectory());
        for (const std::string& failure : OpenMM::Platform::getPluginLoadFailures()) {
            // Without a CUDA driver no CUDA plugin can load; TestCudaKernels checks ours with the driver stub.
            const bool noDriver = failure.find("libcuda.so.1") != std::string::npos;
            if (failure.find("libOpenMMBG") == std::string::npos)
                std::cerr << "note: OpenMM plugin not loaded (not part of OpenMM-BG): " << failure << "\n";
            else if (noDriver)
                std::cerr << "note: OpenMM-BG CUDA plugin not loaded (no CUDA driver here): " << failure << "\n";
            else
                ADD_FAILURE() << "plugin load failure: " << failure;
        }
    }
};

} // namespace testing
} // namespace OpenMMBG

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new OpenMMBG::testing::PluginEnvironment);
    return RUN_ALL_TESTS();
}
