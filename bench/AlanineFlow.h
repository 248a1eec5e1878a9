#ifndef OPENMMBG_BENCH_ALANINEFLOW_H_
#define OPENMMBG_BENCH_ALANINEFLOW_H_

// A trained alanine dipeptide flow for the benchmarks: loaded from a file,
// or made here as the pipeline's default preset makes one (replica-exchange MD,
// then training) with its CPU time measured.

#include "AlanineDipeptide.h"

#include <cstdio>
#include <fstream>
#include <sys/resource.h>

namespace OpenMMBG {
namespace bench {

/** CPU seconds (user + system, all threads) used by this process so far. */
inline double cpuSeconds() {
    rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

struct TrainedFlow {
    std::unique_ptr<FlowModel> model;
    double cpuSeconds = 0;  // MD data and training; 0 if loaded
};

/** A flow from `path`, or one made as the pipeline's default preset makes it (its CPU time measured). */
inline TrainedFlow trainedFlow(const alanine::Molecule& molecule, const std::string& path) {
    TrainedFlow flow;
    if (!path.empty() && std::ifstream(path)) {
        flow.model = std::make_unique<FlowModel>(FlowModel::load(path, *molecule.system));
        std::printf("flow: %s (training time not counted)\n", path.c_str());
        return flow;
    }
    const alanine::Preset preset = alanine::presetNamed("default");
    std::printf("flow: training one as the pipeline's default preset does (replica-exchange MD, %zu replicas, %.1f ns "
                "each, then ML %lld + mixed %lld steps at %.0f K)...\n", preset.mdLadder.size(), preset.mdSteps * 1e-6,
                preset.plan.mlSteps, preset.plan.mixedSteps, preset.plan.temperature);
    std::fflush(stdout);
    double begin = cpuSeconds();
    const alanine::TrainingSet data = alanine::trainingSetOf(
        preset, alanine::runReplicaExchangeMD(molecule, alanine::replicaExchangeOf(preset, 11)).rungs);
    flow.model = std::make_unique<FlowModel>(alanine::trainFlow(molecule, data, preset.plan, "", nullptr));
    flow.cpuSeconds = cpuSeconds() - begin;
    std::printf("flow: trained in %.0f CPU s (MD data included)\n", flow.cpuSeconds);
    return flow;
}

} // namespace bench
} // namespace OpenMMBG

#endif
