#include "openmmbg/internal/FlowMoveRunner.h"

#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/internal/IntegratorSupport.h"
#include "openmmbg/internal/ReplicaExchange.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <limits>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

/**
 * The proposal's flags on the host: statistics read them row by row, which
 * on a GPU would otherwise cost one transfer per flag and row.
 */
LatentProposal flagsOnHost(const LatentProposal& proposal) {
    LatentProposal flags;
    flags.independence = proposal.independence.to(at::kCPU);
    flags.outOfDomain = proposal.outOfDomain.to(at::kCPU);
    flags.stereoFlip = proposal.stereoFlip.to(at::kCPU);
    flags.nonFinite = proposal.nonFinite.to(at::kCPU);
    return flags;
}

} // namespace

// ---------------------------------------------------------------------------
// Context access and energies

at::Tensor HostContextConfiguration::read() {
    std::vector<Vec3> positions;
    context.getPositions(positions);
    return positionsToTensor(positions).to(device);
}

void HostContextConfiguration::write(const at::Tensor& x) {
    tensorToPositions(x, written);
    context.setPositions(written);
}

void HostContextConfiguration::save() {
    context.getPositions(saved);
}

void HostContextConfiguration::restore() {
    context.setPositions(saved);
}

double tryContextEnergy(ContextImpl& context, int forceGroups) {
    try {
        return context.calcForcesAndEnergy(false, true, forceGroups);
    } catch (const std::exception&) {
        // A failure inside OpenMM rejects the move like an infinite energy.
        return std::numeric_limits<double>::infinity();
    }
}

at::Tensor SequentialContextEnergies::evaluate(const at::Tensor& x) {
    std::vector<double> energies(x.size(0));
    configuration.save();
    for (int64_t b = 0; b < x.size(0); b++) {
        configuration.write(x.narrow(0, b, 1));
        energies[b] = tryContextEnergy(context, forceGroups);
    }
    configuration.restore();
    return at::tensor(energies, at::kDouble).to(x.device());
}

// ---------------------------------------------------------------------------
// LatentMetropolisIntegrator

LatentMetropolisMoves::LatentMetropolisMoves(const LatentMetropolisIntegrator& integrator, at::Device device)
    : engine(integrator.getFlowModel(), integrator.getCheckStereochemistry(), device) {}

void LatentMetropolisMoves::run(ContextImpl& context, LatentMetropolisIntegrator& integrator,
                                ContextConfiguration& configuration, int steps, bool warmUp) {
    if (steps == 0)
        return;
    at::NoGradGuard noGrad;
    const int groups = integrator.getIntegrationForceGroups();
    // Read the Context afresh: MD or the user may have moved it since the last call.
    at::Tensor x = configuration.read();
    checkFiniteConfiguration(x, "LatentMetropolisIntegrator");
    const double energy = context.calcForcesAndEnergy(false, true, groups);
    if (!std::isfinite(energy))
        throw OpenMMException("LatentMetropolisIntegrator: the energy of the Context's configuration is not finite");
    ChainState state = engine.encode(x, at::full({1}, energy, at::kDouble));
    if (!engine.hasStereoReference())
        engine.setStereoReference(state.x);
    configuration.save();
    if (!warmUp)
        warmUpSteps = 0;
    at::Generator& generator = integrator.getGenerator();
    MoveStatistics& statistics = integrator.getMutableStatistics();
    for (int step = 0; step < steps; step++) {
        context.updateContextState();
        const at::Tensor temperature = at::full({1}, integrator.getTemperature(), at::kDouble);
        LatentProposal proposal = engine.propose(state, temperature, integrator.getLatentStepSize(),
                                                 integrator.getIndependenceProbability(), generator);
        double proposedEnergy = std::numeric_limits<double>::infinity();
        const bool evaluate = proposal.valid[0].item<bool>();
        if (evaluate) {
            configuration.write(proposal.x);
            proposedEnergy = tryContextEnergy(context, groups);
        }
        const at::Tensor energies = at::full({1}, proposedEnergy, at::kDouble);
        at::Tensor probability;
        const at::Tensor accepted =
            engine.decide(state, proposal, energies, temperature, generator, &probability).to(at::kCPU);
        if (accepted[0].item<bool>()) {
            engine.update(state, proposal, energies, accepted);
            configuration.save();  // the Context holds the proposal now
        } else if (evaluate) {
            configuration.restore();
        }
        LatentProposal flags = flagsOnHost(proposal);
        LatentMoveEngine::count(statistics, flags, energies, accepted, 0);
        if (warmUp && !flags.independence[0].item<bool>())
            integrator.setLatentStepSize(LatentMoveEngine::adaptStepSize(
                integrator.getLatentStepSize(), probability[0].item<double>(), integrator.getWarmUpTarget(),
                warmUpSteps++));
    }
}

// ---------------------------------------------------------------------------
// TSFParallelTemperingIntegrator

ParallelTemperingSteps::ParallelTemperingSteps(const TSFParallelTemperingIntegrator& integrator, at::Device device)
    : engine(integrator.getFlowModel(), integrator.getCheckStereochemistry(), device) {}

void ParallelTemperingSteps::run(ContextImpl& context, TSFParallelTemperingIntegrator& integrator,
                                 ContextConfiguration& configuration, ReplicaEnergies& energies, int steps,
                                 bool warmUp) {
    if (steps == 0)
        return;
    at::NoGradGuard noGrad;
    ReplicaState& replicas = integrator.getReplicaState();
    const int count = integrator.getNumReplicas();
    // Replica 0 is whatever the Context holds now (MD may have moved it).
    const at::Tensor contextX = configuration.read();
    checkFiniteConfiguration(contextX, "TSFParallelTemperingIntegrator");
    std::vector<Vec3> contextPositions;
    tensorToPositions(contextX, contextPositions);
    if (!replicas.started) {
        for (int r = 1; r < count; r++)
            if (!replicas.setByUser[r])
                replicas.positions[r] = contextPositions;
        replicas.started = true;
    }
    replicas.positions[0] = contextPositions;
    std::vector<at::Tensor> frames = {contextX};
    for (int r = 1; r < count; r++)
        frames.push_back(positionsToTensor(replicas.positions[r]).to(engine.getDevice()));
    at::Tensor x = at::cat(frames);
    at::Tensor energy = energies.evaluate(x);
    const at::Tensor startEnergies = energy.to(at::kCPU);
    for (int r = 0; r < count; r++)
        if (!std::isfinite(startEnergies[r].item<double>()))
            throw OpenMMException("TSFParallelTemperingIntegrator: the energy of replica " + std::to_string(r)
                                  + " is not finite");
    ChainState state = engine.encode(x, energy);
    if (!engine.hasStereoReference())
        engine.setStereoReference(state.x.narrow(0, 0, 1));
    if (!warmUp)
        warmUpSteps = 0;
    const at::Tensor temperatures = at::tensor(integrator.getTemperatures(), at::kDouble);
    for (int step = 0; step < steps; step++) {
        context.updateContextState();
        for (int move = 0; move < integrator.getFlowMovesPerStep(); move++)
            moveReplicas(state, integrator, energies, temperatures, warmUp);
        exchangeReplicas(state, integrator);
    }
    // Every replica's configuration and energy back into the integrator's bookkeeping.
    const at::Tensor hostX = state.x.to(at::kCPU), hostEnergy = state.energy.to(at::kCPU);
    for (int r = 0; r < count; r++) {
        tensorToPositions(hostX.narrow(0, r, 1), replicas.positions[r]);
        replicas.energies[r] = hostEnergy[r].item<double>();
    }
    const at::Tensor first = state.x.narrow(0, 0, 1);
    if (!at::equal(first, contextX))
        configuration.write(first);
}

void ParallelTemperingSteps::moveReplicas(ChainState& state, TSFParallelTemperingIntegrator& integrator,
                                          ReplicaEnergies& energies, const at::Tensor& temperatures, bool warmUp) {
    ReplicaState& replicas = integrator.getReplicaState();
    const int count = integrator.getNumReplicas();
    at::Generator& generator = integrator.getGenerator();
    LatentProposal proposal = engine.propose(state, temperatures, integrator.getLatentStepSize(),
                                             integrator.getIndependenceProbability(), generator);
    at::Tensor proposed = at::full({count}, std::numeric_limits<double>::infinity(),
                                   at::TensorOptions().dtype(at::kDouble).device(engine.getDevice()));
    at::Tensor rows = proposal.valid.nonzero().reshape({-1});
    if (rows.numel() > 0)
        proposed.index_copy_(0, rows, energies.evaluate(proposal.x.index_select(0, rows)));
    at::Tensor probability;
    at::Tensor accepted = engine.decide(state, proposal, proposed, temperatures, generator, &probability);
    engine.update(state, proposal, proposed, accepted);
    const LatentProposal flags = flagsOnHost(proposal);
    const at::Tensor hostProposed = proposed.to(at::kCPU), hostAccepted = accepted.to(at::kCPU);
    const at::Tensor hostProbability = probability.to(at::kCPU);
    double walkProbability = 0;
    int walks = 0;
    for (int r = 0; r < count; r++) {
        LatentMoveEngine::count(replicas.moves[r], flags, hostProposed, hostAccepted, r);
        if (!flags.independence[r].item<bool>()) {
            walkProbability += hostProbability[r].item<double>();
            walks++;
        }
    }
    if (warmUp && walks > 0)
        integrator.setLatentStepSize(LatentMoveEngine::adaptStepSize(
            integrator.getLatentStepSize(), walkProbability / walks, integrator.getWarmUpTarget(), warmUpSteps++));
}

void ParallelTemperingSteps::exchangeReplicas(ChainState& state, TSFParallelTemperingIntegrator& integrator) {
    // Decided on the energies, applied to the rows of the state and to the bookkeeping.
    ReplicaState& replicas = integrator.getReplicaState();
    const int count = integrator.getNumReplicas();
    const at::Tensor hostEnergy = state.energy.to(at::kCPU);
    std::vector<double> current(count);
    for (int r = 0; r < count; r++)
        current[r] = hostEnergy[r].item<double>();
    std::vector<int> swaps = decideExchanges(current, integrator.getTemperatures(), replicas.steps % 2 == 1,
                                             integrator.getGenerator(), replicas);
    if (!swaps.empty()) {
        std::vector<int64_t> order(count);
        for (int r = 0; r < count; r++)
            order[r] = r;
        for (int r : swaps) {
            std::swap(order[r], order[r + 1]);
            replicas.swap(r);
        }
        at::Tensor permutation = at::tensor(order, at::kLong).to(engine.getDevice());
        state.x = state.x.index_select(0, permutation);
        state.external = state.external.index_select(0, permutation);
        state.yn = state.yn.index_select(0, permutation);
        state.logJ = state.logJ.index_select(0, permutation);
        state.energy = state.energy.index_select(0, permutation);
    }
    replicas.recordExtremes();
    replicas.steps++;
}

} // namespace OpenMMBG
