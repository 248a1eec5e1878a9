#include "openmmbg/LatentMetropolisIntegrator.h"

#include "openmmbg/BGKernels.h"
#include "openmmbg/internal/IntegratorSupport.h"

#include <ATen/ATen.h>
#include <openmm/Context.h>
#include <openmm/OpenMMException.h>
#include <openmm/internal/ContextImpl.h>

#include <cmath>

using namespace OpenMM;

namespace OpenMMBG {

LatentMetropolisIntegrator::LatentMetropolisIntegrator(const FlowModel& model, double temperature,
                                                       double latentStepSize, double independenceProbability)
    : model(std::make_shared<FlowModel>(model)), temperature(temperature), latentStepSize(latentStepSize),
      independenceProbability(independenceProbability) {
    checkParameters(temperature, latentStepSize, independenceProbability);
    // Monte Carlo moves take no simulated time.
    setStepSize(0.0);
}

LatentMetropolisIntegrator::LatentMetropolisIntegrator(const std::string& flowFile, double temperature,
                                                       double latentStepSize, double independenceProbability)
    : LatentMetropolisIntegrator(FlowModel::load(flowFile), temperature, latentStepSize, independenceProbability) {}

LatentMetropolisIntegrator::~LatentMetropolisIntegrator() = default;

void LatentMetropolisIntegrator::checkParameters(double temperature, double sigma, double probability) {
    checkTemperature(temperature, "LatentMetropolisIntegrator");
    if (!(sigma >= 0) || !std::isfinite(sigma))
        throw OpenMMException("LatentMetropolisIntegrator: the latent step size must be >= 0, got " + std::to_string(sigma));
    if (!(probability >= 0 && probability <= 1))
        throw OpenMMException("LatentMetropolisIntegrator: the independence probability must lie in [0, 1], got "
                              + std::to_string(probability));
}

void LatentMetropolisIntegrator::setTemperature(double value) {
    checkParameters(value, latentStepSize, independenceProbability);
    temperature = value;
}

void LatentMetropolisIntegrator::setLatentStepSize(double sigma) {
    checkParameters(temperature, sigma, independenceProbability);
    latentStepSize = sigma;
}

void LatentMetropolisIntegrator::setIndependenceProbability(double probability) {
    checkParameters(temperature, latentStepSize, probability);
    independenceProbability = probability;
}

void LatentMetropolisIntegrator::setRandomNumberSeed(int seed) {
    randomNumberSeed = seed;
}

void LatentMetropolisIntegrator::setCheckStereochemistry(bool check) {
    if (context != nullptr)
        throw OpenMMException("LatentMetropolisIntegrator: set the stereochemistry check before creating the Context");
    checkStereochemistry = check;
}

at::Tensor LatentMetropolisIntegrator::getRandomState() const {
    if (!generator)
        throw OpenMMException("LatentMetropolisIntegrator: the random state exists once the integrator is bound to a Context");
    return generator->get_state();
}

void LatentMetropolisIntegrator::setRandomState(const at::Tensor& state) {
    generator = makeGenerator(randomNumberSeed);
    generator->set_state(state);
}

void LatentMetropolisIntegrator::initialize(ContextImpl& contextRef) {
    if (owner != nullptr && &contextRef.getOwner() != owner)
        throw OpenMMException("This Integrator is already bound to a context");
    checkSystemForFlowMoves(contextRef.getSystem(), *model, "LatentMetropolisIntegrator");
    context = &contextRef;
    owner = &contextRef.getOwner();
    if (!generator)
        generator = makeGenerator(randomNumberSeed);
    kernel = context->getPlatform().createKernel(IntegrateLatentMetropolisStepKernel::Name(), contextRef);
    kernel.getAs<IntegrateLatentMetropolisStepKernel>().initialize(contextRef.getSystem(), *this);
}

void LatentMetropolisIntegrator::cleanup() {
    kernel = Kernel();
}

std::vector<std::string> LatentMetropolisIntegrator::getKernelNames() {
    return {IntegrateLatentMetropolisStepKernel::Name()};
}

void LatentMetropolisIntegrator::stateChanged(State::DataType) {
    // Nothing is cached across step() calls: each call reads the Context afresh.
}

double LatentMetropolisIntegrator::computeKineticEnergy() {
    return kineticEnergyFromVelocities(*context);
}

void LatentMetropolisIntegrator::run(int steps, bool warmUp) {
    if (context == nullptr)
        throw OpenMMException("LatentMetropolisIntegrator: the integrator is not bound to a Context");
    if (steps < 0)
        throw OpenMMException("LatentMetropolisIntegrator: the number of steps must be >= 0");
    kernel.getAs<IntegrateLatentMetropolisStepKernel>().execute(*context, *this, steps, warmUp);
}

void LatentMetropolisIntegrator::step(int steps) {
    run(steps, false);
    // Like OpenMM's integrators, steps advance the Context's step count (not
    // its time): app.Simulation counts its steps by it. Warm-up moves do not.
    context->setStepCount(context->getStepCount() + steps);
}

void LatentMetropolisIntegrator::warmUp(int steps, double targetAcceptance) {
    if (!(targetAcceptance > 0 && targetAcceptance < 1))
        throw OpenMMException("LatentMetropolisIntegrator::warmUp: the target acceptance must lie in (0, 1)");
    warmUpTarget = targetAcceptance;
    run(steps, true);
    resetStatistics();
}

void LatentMetropolisIntegrator::createCheckpoint(std::ostream& stream) const {
    writeIntegratorCheckpoint(stream, generator.get(), {latentStepSize}, {&statistics});
}

void LatentMetropolisIntegrator::loadCheckpoint(std::istream& stream) {
    std::vector<double> values;
    std::vector<MoveStatistics*> stats = {&statistics};
    readIntegratorCheckpoint(stream, generator, randomNumberSeed, values, stats);
    if (values.size() != 1)
        throw OpenMMException("LatentMetropolisIntegrator: the checkpoint was written by another integrator");
    latentStepSize = values[0];
}

} // namespace OpenMMBG
