#include "openmmbg/FlowMoveIntegrator.h"

#include "openmmbg/BGKernels.h"
#include "openmmbg/internal/Checkpoint.h"

#include <openmm/OpenMMException.h>
#include <openmm/internal/ContextImpl.h>

#include <cmath>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

/**
 * Throws a clear OpenMMException if the System cannot be sampled with flow
 * moves yet (constraints, virtual sites, periodic boundary conditions) or is
 * not the molecule the flow was made for.
 */
void checkSystemForFlowMoves(const System& system, const FlowModel& model, const std::string& who) {
    if (system.getNumConstraints() > 0)
        throw OpenMMException(who + " cannot be used with Systems that include constraints (this one has "
                              + std::to_string(system.getNumConstraints())
                              + "); create the System with constraints=None");
    for (int i = 0; i < system.getNumParticles(); i++)
        if (system.isVirtualSite(i))
            throw OpenMMException(who + " cannot be used with Systems that include virtual sites (particle "
                                  + std::to_string(i) + " is one)");
    if (system.usesPeriodicBoundaryConditions())
        throw OpenMMException(who + " cannot be used with periodic Systems yet; use a non-periodic System "
                              "(e.g. NoCutoff with implicit solvent)");
    model.checkCompatible(system);
}

void checkLatentStepSize(double sigma, const std::string& who) {
    if (!(sigma >= 0) || !std::isfinite(sigma))
        throw OpenMMException(who + ": the latent step size must be >= 0, got " + std::to_string(sigma));
}

void checkIndependenceProbability(double probability, const std::string& who) {
    if (!(probability >= 0 && probability <= 1))
        throw OpenMMException(who + ": the independence probability must lie in [0, 1], got "
                              + std::to_string(probability));
}

} // namespace

FlowMoveIntegrator::FlowMoveIntegrator(FlowModel model, double latentStepSize, double independenceProbability,
                                       const std::string& className)
    : model(std::make_shared<const FlowModel>(std::move(model))), className(className),
      latentStepSize(latentStepSize), independenceProbability(independenceProbability) {
    checkLatentStepSize(latentStepSize, className);
    checkIndependenceProbability(independenceProbability, className);
    if (!this->model->getFlow().hasFiniteParameters())
        throw OpenMMException(className + ": the flow's weights contain NaN or infinite values (a diverged training?)");
    setStepSize(0.0);  // Monte Carlo steps take no simulated time
}

FlowMoveIntegrator::~FlowMoveIntegrator() = default;

void FlowMoveIntegrator::setLatentStepSize(double sigma) {
    checkLatentStepSize(sigma, className);
    latentStepSize = sigma;
}

void FlowMoveIntegrator::setIndependenceProbability(double probability) {
    checkIndependenceProbability(probability, className);
    independenceProbability = probability;
}

void FlowMoveIntegrator::setIndependenceBlockSize(int size) {
    if (size < 1 || size > 1000000)
        throw OpenMMException(className + ": the independence block size must lie in [1, 1000000], got "
                              + std::to_string(size));
    independenceBlockSize = size;
}

void FlowMoveIntegrator::setCheckStereochemistry(bool check) {
    if (context != nullptr)
        throw OpenMMException(className + ": set the stereochemistry check before creating the Context");
    checkStereochemistry = check;
}

void FlowMoveIntegrator::checkBound() const {
    if (context == nullptr)
        throw OpenMMException(className + ": the integrator is not bound to a Context");
}

void FlowMoveIntegrator::initialize(ContextImpl& contextRef) {
    if (owner != nullptr && &contextRef.getOwner() != owner)
        throw OpenMMException("This Integrator is already bound to a context");
    checkSystemForFlowMoves(contextRef.getSystem(), *model, className);
    context = &contextRef;
    owner = &contextRef.getOwner();
    kernel = contextRef.getPlatform().createKernel(getKernelName(), contextRef);
    initializeKernel(contextRef.getSystem());
}

void FlowMoveIntegrator::cleanup() {
    kernel = Kernel();
}

std::vector<std::string> FlowMoveIntegrator::getKernelNames() {
    return {getKernelName()};
}

double FlowMoveIntegrator::computeKineticEnergy() {
    // Monte Carlo moves never change velocities: the kinetic energy is that of the Context's velocities.
    std::vector<Vec3> velocities;
    context->getVelocities(velocities);
    const System& system = context->getSystem();
    double energy = 0;
    for (int i = 0; i < system.getNumParticles(); i++)
        energy += 0.5 * system.getParticleMass(i) * velocities[i].dot(velocities[i]);
    return energy;
}

double FlowMoveIntegrator::run(int steps, std::optional<double> warmUpTarget) {
    checkBound();
    if (steps < 0)
        throw OpenMMException(className + ": the number of steps must be >= 0");
    return getKernel<FlowMoveKernel>().execute(*context, steps, warmUpTarget);
}

void FlowMoveIntegrator::step(int steps) {
    run(steps, std::nullopt);
    // app.Simulation counts its steps by the Context's step count.
    context->setStepCount(context->getStepCount() + steps);
}

void FlowMoveIntegrator::warmUp(int steps, double targetAcceptance) {
    if (!(targetAcceptance > 0 && targetAcceptance < 1))
        throw OpenMMException(className + "::warmUp: the target acceptance must lie in (0, 1)");
    latentStepSize = run(steps, targetAcceptance);
    resetStatistics();
}

void FlowMoveIntegrator::resetStatistics() {
    if (context != nullptr)
        getKernel<FlowMoveKernel>().resetStatistics();
}

void FlowMoveIntegrator::createCheckpoint(std::ostream& stream) const {
    // The adapted latent step size is state too: a warm-up may have changed it.
    checkpoint::writeTag(stream, className);
    checkpoint::write(stream, latentStepSize);
    getKernel<FlowMoveKernel>().createCheckpoint(stream);
}

void FlowMoveIntegrator::loadCheckpoint(std::istream& stream) {
    checkpoint::readTag(stream, className);
    const double sigma = checkpoint::read<double>(stream);
    getKernel<FlowMoveKernel>().loadCheckpoint(stream);
    latentStepSize = sigma;
}

} // namespace OpenMMBG
