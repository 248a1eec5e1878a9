// Soak run: many flow moves and parallel-tempering steps in one Context each,
// with the resident memory of the process after every block of steps. Memory
// must stay at its level after the first block (start-up: LibTorch's and
// OpenMM's allocations, the first independence blocks); the closing lines
// print the growth from there to the end, against that level.
//
//   build/bench/soak [--moves 1000000] [--pt-steps 100000] [--platform Reference]
//
// The 2D double well keeps each step cheap, so the run measures the
// integrators' own bookkeeping rather than a molecule's energy.

#include "BenchSupport.h"
#include "OpenMMBGTools.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"

#include <openmm/Context.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace OpenMM;
using namespace OpenMMBG;

namespace {

/** Resident set size of this process in MiB (Linux: /proc/self/statm). */
double residentMiB() {
    std::ifstream statm("/proc/self/statm");
    long long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * (double) sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

/** Steps `total` in `blocks` calls of step(), printing memory after each; returns {after the first, at the end} (MiB). */
std::pair<double, double> soak(FlowMoveIntegrator& integrator, long long total, int blocks, const std::string& name) {
    const long long perBlock = std::max(1LL, total / blocks);
    double first = 0, last = 0;
    auto begin = std::chrono::steady_clock::now();
    for (long long done = 0; done < total; done += perBlock) {
        integrator.step((int) std::min(perBlock, total - done));
        last = residentMiB();
        if (done == 0)
            first = last;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
        std::printf("  %-28s %10lld steps  %8.1f s  resident %8.1f MiB\n", name.c_str(),
                    std::min(done + perBlock, total), seconds, last);
        std::fflush(stdout);
    }
    return {first, last};
}

} // namespace

int main(int argc, char** argv) {
    long long moves = 1000000, ptSteps = 100000;
    std::string platformName = "Reference";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--moves"))
            moves = std::stoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--pt-steps"))
            ptSteps = std::stoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--platform"))
            platformName = argv[i + 1];
    }
    bench::loadPlugins();
    DoubleWell well;
    auto system = well.createSystem();
    FlowConfig config;
    config.numBlocks = 2;
    config.hiddenLayers = 2;
    config.hiddenWidth = 32;
    FlowModel model = FlowModel::createCartesian(*system, {0, 1}, at::Tensor(), "tsf", config, well.unitTemperature);
    Platform& platform = Platform::getPlatformByName(platformName);
    std::printf("soak on the 2D double well, %s platform; resident memory at start %.1f MiB\n", platformName.c_str(),
                residentMiB());

    LatentMetropolisIntegrator moves300(model, well.unitTemperature, 0.5, 0.3);
    moves300.setRandomNumberSeed(71);
    Context chainContext(*system, moves300, platform);
    chainContext.setPositions({Vec3(-2.4, 0.0, 0.0)});
    auto [chainFirst, chainLast] = soak(moves300, moves, 10, "LatentMetropolisIntegrator");

    TSFParallelTemperingIntegrator tempering(model, {300.0, 420.0, 600.0}, 0.5, 0.3);
    tempering.setRandomNumberSeed(72);
    Context temperingContext(*system, tempering, platform);
    temperingContext.setPositions({Vec3(-2.4, 0.0, 0.0)});
    auto [ptFirst, ptLast] = soak(tempering, ptSteps, 10, "TSFParallelTempering (3)");

    std::printf("\nresident memory growth after the first block:\n");
    std::printf("  LatentMetropolisIntegrator  %+.1f MiB (%.1f -> %.1f, %+.2f%%), acceptance %.3f\n",
                chainLast - chainFirst, chainFirst, chainLast, 100.0 * (chainLast / chainFirst - 1.0),
                moves300.getAcceptanceRate());
    std::printf("  TSFParallelTempering        %+.1f MiB (%.1f -> %.1f, %+.2f%%), %lld round trips\n",
                ptLast - ptFirst, ptFirst, ptLast, 100.0 * (ptLast / ptFirst - 1.0), tempering.getNumRoundTrips());
    return 0;
}
