#include "openmmbg/internal/CommonFlowMoveKernels.h"

#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/internal/Checkpoint.h"

#include <ATen/ops/tensor.h>
#include <openmm/OpenMMException.h>

using namespace OpenMM;

namespace OpenMMBG {

// ---------------------------------------------------------------------------
// LatentMetropolisIntegrator: one chain, the Context's.

CommonIntegrateLatentMetropolisStepKernel::CommonIntegrateLatentMetropolisStepKernel(
    const std::string& name, const Platform& platform, std::unique_ptr<ContextAccess> access)
    : IntegrateLatentMetropolisStepKernel(name, platform), runner(std::move(access)) {}

void CommonIntegrateLatentMetropolisStepKernel::initialize(const System&, const LatentMetropolisIntegrator& owner) {
    integrator = &owner;
    runner.initialize(owner.getFlowModel(), owner.getCheckStereochemistry(), owner.getRandomNumberSeed(), 1,
                      "LatentMetropolisIntegrator");
}

double CommonIntegrateLatentMetropolisStepKernel::execute(ContextImpl& context, int steps,
                                                          std::optional<double> warmUpTarget) {
    FlowMoveSettings settings;
    settings.temperatures = {integrator->getTemperature()};
    settings.latentStepSize = integrator->getLatentStepSize();
    settings.independenceProbability = integrator->getIndependenceProbability();
    settings.independenceBlockSize = integrator->getIndependenceBlockSize();
    settings.forceGroups = integrator->getIntegrationForceGroups();
    return runner.run(context, settings, positions, energies, steps, warmUpTarget);
}

// ---------------------------------------------------------------------------
// TSFParallelTemperingIntegrator: one chain per replica, exchanges after each step.

CommonIntegrateTSFParallelTemperingStepKernel::CommonIntegrateTSFParallelTemperingStepKernel(
    const std::string& name, const Platform& platform, std::unique_ptr<ContextAccess> access)
    : IntegrateTSFParallelTemperingStepKernel(name, platform), runner(std::move(access)) {}

void CommonIntegrateTSFParallelTemperingStepKernel::initialize(const System& system,
                                                               const TSFParallelTemperingIntegrator& owner) {
    integrator = &owner;
    const int count = owner.getNumReplicas();
    runner.initialize(owner.getFlowModel(), owner.getCheckStereochemistry(), owner.getRandomNumberSeed(), count,
                      "TSFParallelTemperingIntegrator");
    exchange = std::make_unique<ReplicaExchange>(owner.getTemperatures());
    positions.assign(count, std::vector<Vec3>(system.getNumParticles()));
    energies.assign(count, 0.0);
    setByUser.assign(count, false);
}

double CommonIntegrateTSFParallelTemperingStepKernel::execute(ContextImpl& context, int steps,
                                                              std::optional<double> warmUpTarget) {
    if (steps == 0)
        return integrator->getLatentStepSize();
    if (!started) {
        std::vector<Vec3> contextPositions;
        context.getPositions(contextPositions);
        for (int r = 1; r < integrator->getNumReplicas(); r++)
            if (!setByUser[r])
                positions[r] = contextPositions;
    }
    FlowMoveSettings settings;
    settings.temperatures = integrator->getTemperatures();
    settings.latentStepSize = integrator->getLatentStepSize();
    settings.independenceProbability = integrator->getIndependenceProbability();
    settings.independenceBlockSize = integrator->getIndependenceBlockSize();
    settings.movesPerStep = integrator->getFlowMovesPerStep();
    settings.forceGroups = integrator->getIntegrationForceGroups();
    const double sigma = runner.run(context, settings, positions, energies, steps, warmUpTarget,
                                    [this](ChainState& state) { exchangeReplicas(state); });
    started = true;
    return sigma;
}

void CommonIntegrateTSFParallelTemperingStepKernel::exchangeReplicas(ChainState& state) {
    const at::Tensor hostEnergy = state.energy.to(at::kCPU).contiguous();
    const double* energy = hostEnergy.data_ptr<double>();
    const std::vector<int> swaps =
        exchange->exchange(std::vector<double>(energy, energy + hostEnergy.numel()), runner.getGenerator());
    if (swaps.empty())
        return;
    std::vector<int64_t> order(hostEnergy.numel());
    for (size_t r = 0; r < order.size(); r++)
        order[r] = (int64_t) r;
    for (int r : swaps)
        std::swap(order[r], order[r + 1]);
    state.reorder(at::tensor(order, at::kLong));
}

std::vector<Vec3> CommonIntegrateTSFParallelTemperingStepKernel::getReplicaPositions(ContextImpl& context,
                                                                                     int replica) const {
    if (replica == 0) {
        // Replica 0 lives in the Context, which MD may have moved.
        std::vector<Vec3> contextPositions;
        context.getPositions(contextPositions);
        return contextPositions;
    }
    if (!started && !setByUser[replica])
        throw OpenMMException("TSFParallelTemperingIntegrator: replica " + std::to_string(replica)
                              + " has no positions before the first step; they start from the Context's");
    return positions[replica];
}

void CommonIntegrateTSFParallelTemperingStepKernel::setReplicaPositions(ContextImpl& context, int replica,
                                                                        const std::vector<Vec3>& values) {
    positions[replica] = values;
    setByUser[replica] = true;
    if (replica == 0)
        context.setPositions(values);
}

double CommonIntegrateTSFParallelTemperingStepKernel::getReplicaPotentialEnergy(int replica) const {
    if (!started)
        throw OpenMMException("TSFParallelTemperingIntegrator: replica energies exist after the first step");
    return energies[replica];
}

void CommonIntegrateTSFParallelTemperingStepKernel::resetStatistics() {
    runner.resetStatistics();
    exchange->resetStatistics();
}

void CommonIntegrateTSFParallelTemperingStepKernel::createCheckpoint(std::ostream& stream) const {
    // Replica 0 is in the Context's own part of the checkpoint.
    runner.writeState(stream);
    exchange->writeState(stream);
    checkpoint::writeTag(stream, "Replicas");
    checkpoint::write(stream, started);
    for (size_t r = 1; r < positions.size(); r++) {
        std::vector<double> flat;
        for (const Vec3& p : positions[r])
            flat.insert(flat.end(), {p[0], p[1], p[2]});
        checkpoint::writeVector(stream, flat);
        checkpoint::write(stream, (bool) setByUser[r]);
    }
    checkpoint::writeVector(stream, energies);
}

void CommonIntegrateTSFParallelTemperingStepKernel::loadCheckpoint(std::istream& stream) {
    runner.readState(stream);
    exchange->readState(stream);
    checkpoint::readTag(stream, "Replicas");
    started = checkpoint::read<bool>(stream);
    for (size_t r = 1; r < positions.size(); r++) {
        std::vector<double> flat = checkpoint::readVector<double>(stream, 3 * positions[r].size(), "a replica");
        for (size_t i = 0; i < positions[r].size(); i++)
            positions[r][i] = Vec3(flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]);
        setByUser[r] = checkpoint::read<bool>(stream);
    }
    energies = checkpoint::readVector<double>(stream, energies.size(), "the replica energies");
}

// ---------------------------------------------------------------------------
// The factory every platform registers.

KernelImpl* FlowMoveKernelFactory::createKernelImpl(std::string name, const Platform& platform,
                                                    ContextImpl& context) const {
    if (name == IntegrateLatentMetropolisStepKernel::Name())
        return new CommonIntegrateLatentMetropolisStepKernel(name, platform, makeAccess(context));
    if (name == IntegrateTSFParallelTemperingStepKernel::Name())
        return new CommonIntegrateTSFParallelTemperingStepKernel(name, platform, makeAccess(context));
    throw OpenMMException("OpenMM-BG: no kernel named '" + name + "' for the " + platform.getName() + " platform");
}

void FlowMoveKernelFactory::registerWith(Platform& platform, AccessMaker makeAccess) {
    auto* factory = new FlowMoveKernelFactory(std::move(makeAccess));
    platform.registerKernelFactory(IntegrateLatentMetropolisStepKernel::Name(), factory);
    platform.registerKernelFactory(IntegrateTSFParallelTemperingStepKernel::Name(), factory);
}

} // namespace OpenMMBG
