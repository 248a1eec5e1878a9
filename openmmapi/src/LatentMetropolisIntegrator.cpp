#include "openmmbg/LatentMetropolisIntegrator.h"

#include "openmmbg/BGKernels.h"
#include "openmmbg/internal/IntegratorSupport.h"

using namespace OpenMM;

namespace OpenMMBG {

LatentMetropolisIntegrator::LatentMetropolisIntegrator(FlowModel&& model, double temperature, double latentStepSize,
                                                       double independenceProbability, bool)
    : FlowMoveIntegrator(std::move(model), latentStepSize, independenceProbability, "LatentMetropolisIntegrator"),
      temperature(temperature) {
    checkTemperature(temperature, getClassName());
}

LatentMetropolisIntegrator::LatentMetropolisIntegrator(const FlowModel& model, double temperature,
                                                       double latentStepSize, double independenceProbability)
    : LatentMetropolisIntegrator(model.clone(), temperature, latentStepSize, independenceProbability, true) {}

LatentMetropolisIntegrator::LatentMetropolisIntegrator(const std::string& flowFile, double temperature,
                                                       double latentStepSize, double independenceProbability)
    : LatentMetropolisIntegrator(FlowModel::load(flowFile), temperature, latentStepSize, independenceProbability,
                                 true) {}

void LatentMetropolisIntegrator::setTemperature(double value) {
    checkTemperature(value, getClassName());
    temperature = value;
}

MoveStatistics LatentMetropolisIntegrator::getStatistics() const {
    if (context == nullptr)
        return MoveStatistics();
    return getKernel<IntegrateLatentMetropolisStepKernel>().getStatistics();
}

std::string LatentMetropolisIntegrator::getKernelName() const {
    return IntegrateLatentMetropolisStepKernel::Name();
}

void LatentMetropolisIntegrator::initializeKernel(const System& system) {
    getKernel<IntegrateLatentMetropolisStepKernel>().initialize(system, *this);
}

} // namespace OpenMMBG
