#include "ReferenceBGKernels.h"

#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"

#include <algorithm>
#include <thread>

using namespace OpenMM;

namespace OpenMMBG {

void ReferenceIntegrateLatentMetropolisStepKernel::initialize(const System&, LatentMetropolisIntegrator& integrator) {
    moves = std::make_unique<LatentMetropolisMoves>(integrator, at::kCPU);
}

void ReferenceIntegrateLatentMetropolisStepKernel::execute(ContextImpl& context, LatentMetropolisIntegrator& integrator,
                                                           int steps, bool warmUp) {
    HostContextConfiguration configuration(context, at::kCPU);
    moves->run(context, integrator, configuration, steps, warmUp);
}

void ReferenceIntegrateTSFParallelTemperingStepKernel::initialize(const System& system,
                                                                  TSFParallelTemperingIntegrator& integrator) {
    steps = std::make_unique<ParallelTemperingSteps>(integrator, at::kCPU);
    OpenMMEnergy::Options options;
    options.platform = getPlatform().getName();
    options.numWorkers = std::min(integrator.getNumReplicas(), (int) std::max(1u, std::thread::hardware_concurrency()));
    energies = std::make_unique<BridgeReplicaEnergies>(system, integrator.getTemperature(0), options);
}

void ReferenceIntegrateTSFParallelTemperingStepKernel::execute(ContextImpl& context,
                                                               TSFParallelTemperingIntegrator& integrator, int count,
                                                               bool warmUp) {
    HostContextConfiguration configuration(context, at::kCPU);
    steps->run(context, integrator, configuration, *energies, count, warmUp);
}

} // namespace OpenMMBG
