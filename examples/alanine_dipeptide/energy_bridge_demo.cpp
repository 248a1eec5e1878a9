// Alanine dipeptide through the energy bridge: Langevin MD at 600 K collects
// frames, the bridge evaluates all of them in one batch on its worker pool,
// and the energies are checked against the MD Context's own.
//
//   energy_bridge_demo [--frames 2000] [--workers 0] [--platform NAME]

#include "openmmbg/tools/MoleculeIO.h"
#include "openmmbg/OpenMMEnergy.h"

#include <ATen/ATen.h>
#include <openmm/Context.h>
#include <openmm/LangevinMiddleIntegrator.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/State.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

using namespace OpenMM;
using namespace OpenMMBG;

int main(int argc, char** argv) {
    int frames = 2000, workers = 0;
    std::string platform;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--frames"))
            frames = std::stoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--workers"))
            workers = std::stoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--platform"))
            platform = argv[i + 1];
    }
    try {
        Platform::loadPluginsFromDirectory(Platform::getDefaultPluginsDirectory());
        const std::string data = BG_DATA_DIR;
        std::unique_ptr<System> system = loadSystemXml(data + "/alanine_dipeptide_system.xml");
        PdbStructure pdb = readPdb(data + "/alanine_dipeptide.pdb");
        const int n = system->getNumParticles();
        const double temperature = 600.0;  // K

        // MD: 1 fs steps, a frame every 100 steps.
        LangevinMiddleIntegrator integrator(temperature, 1.0, 0.001);
        integrator.setRandomNumberSeed(2024);
        Context context(*system, integrator, Platform::getPlatformByName("Reference"));
        context.setPositions(pdb.positions);
        context.setVelocitiesToTemperature(temperature, 2024);
        integrator.step(5000);  // equilibrate
        at::Tensor positions = at::empty({frames, n, 3}, at::kDouble);
        at::Tensor mdEnergies = at::empty({frames}, at::kDouble);
        std::printf("MD at %.0f K: %d frames, 100 fs apart\n", temperature, frames);
        auto mdBegin = std::chrono::steady_clock::now();
        for (int f = 0; f < frames; f++) {
            integrator.step(100);
            State state = context.getState(State::Positions | State::Energy);
            for (int i = 0; i < n; i++)
                for (int k = 0; k < 3; k++)
                    positions[f][i][k] = state.getPositions()[i][k];
            mdEnergies[f] = state.getPotentialEnergy();
            if ((f + 1) % (frames / 4) == 0)
                std::printf("  %5d / %d frames\n", f + 1, frames);
        }
        double mdSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - mdBegin).count();
        std::printf("  %.1f s (%.0f MD steps/s)\n", mdSeconds, 100.0 * frames / mdSeconds);

        // The whole trajectory in one call.
        OpenMMEnergy::Options options;
        options.platform = platform;
        options.numWorkers = workers;
        OpenMMEnergy bridge(*system, temperature, options);
        auto begin = std::chrono::steady_clock::now();
        EnergyBatch batch = bridge.evaluate(positions);
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
        double largestError = (batch.potentialEnergy - mdEnergies).abs().max().item<double>();
        std::printf("energy bridge: %d frames on %s with %d workers in %.3f s (%.0f configurations/s, "
                    "first call includes start-up)\n",
                    frames, bridge.getPlatformName().c_str(), bridge.getNumWorkers(), seconds, frames / seconds);
        std::printf("  all finite: %s\n", batch.finite.all().item<bool>() ? "yes" : "NO");
        std::printf("  mean U = %.2f kJ/mol, mean u = U/kT = %.2f\n", batch.potentialEnergy.mean().item<double>(),
                    batch.reducedEnergy.mean().item<double>());
        std::printf("  largest |U(bridge) - U(MD Context)| = %.2e kJ/mol\n", largestError);
        std::printf("  mean |F| = %.1f kT/nm per atom\n", batch.forces.norm(2, -1).mean().item<double>());
        // The MD Context runs on Reference; the bridge may use CPU (single precision).
        const double tolerance = bridge.getPlatformName() == "Reference" ? 1e-6 : 1e-2;
        if (!(largestError < tolerance) || !batch.finite.all().item<bool>()) {
            std::fprintf(stderr, "error: bridge energies disagree with the MD Context\n");
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
