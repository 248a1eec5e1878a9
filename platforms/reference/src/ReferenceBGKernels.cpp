#include "ReferenceBGKernels.h"

#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/internal/ReplicaExchange.h"
#include "openmmbg/internal/IntegratorSupport.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <thread>

using namespace OpenMM;

namespace OpenMMBG {

void ReferenceIntegrateLatentMetropolisStepKernel::initialize(const System&, LatentMetropolisIntegrator& integrator) {
    engine = std::make_unique<LatentMoveEngine>(integrator.getFlowModel(), integrator.getCheckStereochemistry(),
                                                at::kCPU);
}

void ReferenceIntegrateLatentMetropolisStepKernel::execute(ContextImpl& context, LatentMetropolisIntegrator& integrator,
                                                           int steps, bool warmUp) {
    if (steps == 0)
        return;
    at::NoGradGuard noGrad;
    const int groups = integrator.getIntegrationForceGroups();
    // Read the Context afresh: MD or the user may have moved it since the last call.
    std::vector<Vec3> positions, trial;
    context.getPositions(positions);
    checkFinitePositions(positions, "LatentMetropolisIntegrator");
    const double energy = context.calcForcesAndEnergy(false, true, groups);
    if (!std::isfinite(energy))
        throw OpenMMException("LatentMetropolisIntegrator: the energy of the Context's configuration is not finite");
    ChainState state = engine->encode(positionsToTensor(positions), at::full({1}, energy, at::kDouble));
    if (!engine->hasStereoReference())
        engine->setStereoReference(state.x);
    if (!warmUp)
        warmUpSteps = 0;
    at::Generator& generator = integrator.getGenerator();
    MoveStatistics& statistics = integrator.getMutableStatistics();
    for (int step = 0; step < steps; step++) {
        context.updateContextState();
        const at::Tensor temperature = at::full({1}, integrator.getTemperature(), at::kDouble);
        LatentProposal proposal = engine->propose(state, temperature, integrator.getLatentStepSize(),
                                                  integrator.getIndependenceProbability(), generator);
        double proposedEnergy = std::numeric_limits<double>::infinity();
        const bool evaluate = proposal.valid[0].item<bool>();
        if (evaluate) {
            tensorToPositions(proposal.x, trial);
            context.setPositions(trial);
            try {
                proposedEnergy = context.calcForcesAndEnergy(false, true, groups);
            } catch (const std::exception&) {
                // A failure inside OpenMM rejects the move like an infinite energy.
            }
        }
        const at::Tensor energies = at::full({1}, proposedEnergy, at::kDouble);
        at::Tensor probability;
        const at::Tensor accepted = engine->decide(state, proposal, energies, temperature, generator, &probability);
        if (accepted[0].item<bool>()) {
            positions.swap(trial);
            engine->update(state, proposal, energies, accepted);
        } else if (evaluate) {
            context.setPositions(positions);  // bit for bit what it was
        }
        LatentMoveEngine::count(statistics, proposal, energies, accepted, 0);
        if (warmUp && !proposal.independence[0].item<bool>())
            integrator.setLatentStepSize(LatentMoveEngine::adaptStepSize(
                integrator.getLatentStepSize(), probability[0].item<double>(), integrator.getWarmUpTarget(),
                warmUpSteps++));
    }
}

void ReferenceIntegrateTSFParallelTemperingStepKernel::initialize(const System& system,
                                                                  TSFParallelTemperingIntegrator& integrator) {
    engine = std::make_unique<LatentMoveEngine>(integrator.getFlowModel(), integrator.getCheckStereochemistry(),
                                                at::kCPU);
    OpenMMEnergy::Options options;
    options.platform = getPlatform().getName();
    options.numWorkers = std::min(integrator.getNumReplicas(), (int) std::max(1u, std::thread::hardware_concurrency()));
    bridge = std::make_unique<OpenMMEnergy>(system, integrator.getTemperature(0), options);
}

at::Tensor ReferenceIntegrateTSFParallelTemperingStepKernel::energies(const at::Tensor& x) {
    return bridge->evaluate(x).potentialEnergy;
}

void ReferenceIntegrateTSFParallelTemperingStepKernel::execute(ContextImpl& context,
                                                               TSFParallelTemperingIntegrator& integrator, int steps,
                                                               bool warmUp) {
    if (steps == 0)
        return;
    at::NoGradGuard noGrad;
    ReplicaState& replicas = integrator.getReplicaState();
    const int count = integrator.getNumReplicas();
    // Replica 0 is whatever the Context holds now (MD may have moved it).
    std::vector<Vec3> contextPositions;
    context.getPositions(contextPositions);
    checkFinitePositions(contextPositions, "TSFParallelTemperingIntegrator");
    if (!replicas.started) {
        for (int r = 1; r < count; r++)
            if (!replicas.setByUser[r])
                replicas.positions[r] = contextPositions;
        replicas.started = true;
    }
    replicas.positions[0] = contextPositions;
    std::vector<at::Tensor> frames;
    for (const auto& p : replicas.positions)
        frames.push_back(positionsToTensor(p));
    at::Tensor x = at::cat(frames);
    at::Tensor energy = energies(x);
    for (int r = 0; r < count; r++)
        if (!std::isfinite(energy[r].item<double>()))
            throw OpenMMException("TSFParallelTemperingIntegrator: the energy of replica " + std::to_string(r)
                                  + " is not finite");
    ChainState state = engine->encode(x, energy);
    if (!engine->hasStereoReference())
        engine->setStereoReference(state.x.narrow(0, 0, 1));
    if (!warmUp)
        warmUpSteps = 0;
    const at::Tensor temperatures = at::tensor(integrator.getTemperatures(), at::kDouble);
    at::Generator& generator = integrator.getGenerator();
    for (int step = 0; step < steps; step++) {
        context.updateContextState();
        for (int move = 0; move < integrator.getFlowMovesPerStep(); move++) {
            LatentProposal proposal = engine->propose(state, temperatures, integrator.getLatentStepSize(),
                                                      integrator.getIndependenceProbability(), generator);
            at::Tensor proposed = at::full({count}, std::numeric_limits<double>::infinity(), at::kDouble);
            at::Tensor rows = proposal.valid.nonzero().reshape({-1});
            if (rows.numel() > 0)
                proposed.index_copy_(0, rows, energies(proposal.x.index_select(0, rows)));
            at::Tensor probability;
            at::Tensor accepted = engine->decide(state, proposal, proposed, temperatures, generator, &probability);
            engine->update(state, proposal, proposed, accepted);
            double walkProbability = 0;
            int walks = 0;
            for (int r = 0; r < count; r++) {
                LatentMoveEngine::count(replicas.moves[r], proposal, proposed, accepted, r);
                if (!proposal.independence[r].item<bool>()) {
                    walkProbability += probability[r].item<double>();
                    walks++;
                }
            }
            if (warmUp && walks > 0)
                integrator.setLatentStepSize(LatentMoveEngine::adaptStepSize(
                    integrator.getLatentStepSize(), walkProbability / walks, integrator.getWarmUpTarget(),
                    warmUpSteps++));
        }
        // Exchanges: decided on the energies, applied to the rows of the state and the bookkeeping.
        std::vector<double> current(count);
        for (int r = 0; r < count; r++)
            current[r] = state.energy[r].item<double>();
        std::vector<int> swaps = decideExchanges(current, integrator.getTemperatures(), replicas.steps % 2 == 1,
                                                 generator, replicas);
        if (!swaps.empty()) {
            std::vector<int64_t> order(count);
            for (int r = 0; r < count; r++)
                order[r] = r;
            for (int r : swaps) {
                std::swap(order[r], order[r + 1]);
                replicas.swap(r);
            }
            at::Tensor permutation = at::tensor(order, at::kLong);
            state.x = state.x.index_select(0, permutation);
            state.external = state.external.index_select(0, permutation);
            state.yn = state.yn.index_select(0, permutation);
            state.logJ = state.logJ.index_select(0, permutation);
            state.energy = state.energy.index_select(0, permutation);
        }
        replicas.recordExtremes();
        replicas.steps++;
    }
    for (int r = 0; r < count; r++) {
        tensorToPositions(state.x.narrow(0, r, 1), replicas.positions[r]);
        replicas.energies[r] = state.energy[r].item<double>();
    }
    if (replicas.positions[0] != contextPositions)
        context.setPositions(replicas.positions[0]);
}

} // namespace OpenMMBG
