// Benchmark of the energy bridge on alanine dipeptide: configurations per
// second with energies and forces, batch 1000, against (a) a plain C++ loop
// over one Context and (b) a Python loop with python3-openmm (with units, and
// (b') reading raw values), all measured in the same run.
//
//   build/bench/energy_bridge [--frames 1000] [--repeats 10]

#include "BenchSupport.h"
#include "openmmbg/Positions.h"
#include "openmmbg/tools/MoleculeIO.h"
#include "openmmbg/OpenMMEnergy.h"

#include <openmm/Context.h>
#include <openmm/State.h>
#include <openmm/VerletIntegrator.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <thread>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::bench;

namespace {

/** (a): one Context, setPositions + getState per frame, positions copied from the tensor. */
class PlainLoop {
public:
    PlainLoop(const System& system, const std::string& platform)
        : integrator(0.001),
          context(system, integrator, Platform::getPlatformByName(platform),
                  platform == "CPU" ? std::map<std::string, std::string>{{"Threads", "1"}}
                                    : std::map<std::string, std::string>{}) {}

    void run(const at::Tensor& frames) {
        const int64_t batch = frames.size(0), n = frames.size(1);
        const double* x = frames.data_ptr<double>();
        positions.resize(n);
        energies.resize(batch);
        forces.resize(batch * n * 3);
        for (int64_t b = 0; b < batch; b++) {
            for (int64_t i = 0; i < n; i++)
                positions[i] = Vec3(x[(b * n + i) * 3], x[(b * n + i) * 3 + 1], x[(b * n + i) * 3 + 2]);
            context.setPositions(positions);
            State state = context.getState(State::Energy | State::Forces);
            energies[b] = state.getPotentialEnergy();
            const std::vector<Vec3>& f = state.getForces();
            for (int64_t i = 0; i < n; i++)
                for (int k = 0; k < 3; k++)
                    forces[(b * n + i) * 3 + k] = f[i][k];
        }
    }

private:
    VerletIntegrator integrator;
    Context context;
    std::vector<Vec3> positions;
    std::vector<double> energies, forces;
};

std::unique_ptr<OpenMMEnergy> makeBridge(const System& system, const std::string& platform, int workers,
                                         const at::Tensor& frames) {
    OpenMMEnergy::Options options;
    options.platform = platform;
    options.numWorkers = workers;
    auto bridge = std::make_unique<OpenMMEnergy>(system, 300.0, options);
    bridge->evaluate(frames.narrow(0, 0, 2));  // start the workers outside the timing
    return bridge;
}

/** (b): the Python loop, run as a child process; 0 if it failed. */
double pythonLoopRate(const std::string& platform, const std::string& style, int frames, int repeats) {
    std::string command = std::string(BG_PYTHON_EXECUTABLE) + " " + BG_SOURCE_DIR + "/bench/python_energy_loop.py"
                          + " --system " + dataFile("alanine_dipeptide_system.xml") + " --pdb "
                          + dataFile("alanine_dipeptide.pdb") + " --frames " + std::to_string(frames)
                          + " --platform " + platform + " --style " + style + " --repeats " + std::to_string(repeats);
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe)
        return 0;
    double rate = 0;
    char line[256];
    while (fgets(line, sizeof(line), pipe))
        sscanf(line, "configs_per_second %lf", &rate);
    pclose(pipe);
    return rate;
}

} // namespace

int main(int argc, char** argv) {
    int frames = 1000, repeats = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--frames"))
            frames = std::stoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeats"))
            repeats = std::stoi(argv[i + 1]);
    }
    loadPlugins();
    at::set_num_threads(1);
    std::unique_ptr<System> system = loadSystemXml(dataFile("alanine_dipeptide_system.xml"));
    PdbStructure pdb = readPdb(dataFile("alanine_dipeptide.pdb"));
    at::Tensor start = positionsToTensor(pdb.positions);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
    at::Tensor batch = (start + at::normal(0.0, 0.01, {frames, start.size(1), 3}, generator, at::kDouble)).contiguous();

    std::printf("energy bridge, alanine dipeptide (22 atoms, amber99sbildn + OBC), batch %d, best of %d\n", frames,
                repeats);
    std::printf("hardware threads: %u\n\n", std::thread::hardware_concurrency());
    std::printf("%-10s %-28s %12s %10s\n", "platform", "method", "configs/s", "ratio");
    for (const std::string platform : {"Reference", "CPU"}) {
        // The C++ methods are timed in interleaved rounds, each keeping its
        // best round, so that drifts in machine speed hit all of them alike.
        PlainLoop plainLoop(*system, platform);
        auto bridge1 = makeBridge(*system, platform, 1, batch);
        auto bridge2 = makeBridge(*system, platform, 2, batch);
        double plain = 0, one = 0, two = 0;
        for (int r = 0; r < repeats; r++) {
            plain = std::max(plain, bestRate(1, frames, [&] { plainLoop.run(batch); }));
            one = std::max(one, bestRate(1, frames, [&] { bridge1->evaluate(batch); }));
            two = std::max(two, bestRate(1, frames, [&] { bridge2->evaluate(batch); }));
        }
        double python = pythonLoopRate(platform, "units", frames, repeats);
        double pythonRaw = pythonLoopRate(platform, "raw", frames, repeats);
        std::printf("%-10s %-28s %12.0f %10s\n", platform.c_str(), "(a) C++ loop, one Context", plain, "1.00");
        std::printf("%-10s %-28s %12.0f %9.2fx\n", platform.c_str(), "(b) Python loop, units", python, python / plain);
        std::printf("%-10s %-28s %12.0f %9.2fx\n", platform.c_str(), "(b') Python loop, raw values", pythonRaw,
                    pythonRaw / plain);
        std::printf("%-10s %-28s %12.0f %9.2fx\n", platform.c_str(), "bridge, 1 worker", one, one / plain);
        std::printf("%-10s %-28s %12.0f %9.2fx\n", platform.c_str(), "bridge, 2 workers", two, two / plain);
        std::printf("%-10s   1 worker vs (a): %.2fx   2 workers vs 1: %.2fx   2 workers vs (b): %.2fx   vs (b'): %.2fx\n\n",
                    platform.c_str(), one / plain, two / one, python > 0 ? two / python : 0.0,
                    pythonRaw > 0 ? two / pythonRaw : 0.0);
    }
    OpenMMEnergy automatic(*system, 300.0);
    automatic.evaluate(batch.narrow(0, 0, 2));
    std::printf("automatic platform choice: %s\n", automatic.getPlatformName().c_str());
    return 0;
}
