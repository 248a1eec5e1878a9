#include "openmmbg/internal/FlowMoveRunner.h"

#include "openmmbg/Positions.h"
#include "openmmbg/internal/Checkpoint.h"
#include "openmmbg/internal/IntegratorSupport.h"

#include <c10/core/InferenceMode.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>
#include <ATen/ops/tensor.h>
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

/** The potential energy (kJ/mol) of what the Context holds; +inf if OpenMM throws (the move is then rejected). */
double tryContextEnergy(ContextImpl& context, int forceGroups) {
    try {
        return context.calcForcesAndEnergy(false, true, forceGroups);
    } catch (const std::exception&) {
        return std::numeric_limits<double>::infinity();
    }
}

} // namespace

FlowMoveRunner::FlowMoveRunner(std::unique_ptr<ContextAccess> access) : access(std::move(access)) {}

FlowMoveRunner::~FlowMoveRunner() = default;

void FlowMoveRunner::initialize(const FlowModel& model, bool checkStereochemistry, int seed, int chains,
                                const std::string& integratorName) {
    who = integratorName;
    access->initialize(who);
    access->run([&] { engine = std::make_unique<LatentMoveEngine>(model, checkStereochemistry, access->getDevice()); });
    engine->getIndependenceProposals().resize(chains);
    generator = makeGenerator(seed);
    statistics.assign(chains, MoveStatistics());
}

void FlowMoveRunner::resetStatistics() {
    std::fill(statistics.begin(), statistics.end(), MoveStatistics());
}

double FlowMoveRunner::run(ContextImpl& context, const FlowMoveSettings& settings,
                           std::vector<std::vector<Vec3>>& positions, std::vector<double>& energies, int steps,
                           std::optional<double> warmUpTarget, const std::function<void(ChainState&)>& afterMoves) {
    double sigma = settings.latentStepSize;
    if (steps > 0)
        access->run([&] { sigma = runSteps(context, settings, positions, energies, steps, warmUpTarget, afterMoves); });
    return sigma;
}

double FlowMoveRunner::runSteps(ContextImpl& context, const FlowMoveSettings& settings,
                                std::vector<std::vector<Vec3>>& positions, std::vector<double>& energies, int steps,
                                std::optional<double> warmUpTarget,
                                const std::function<void(ChainState&)>& afterMoves) {
    // Moves never need gradients; inference mode also skips the autograd
    // bookkeeping that dominates operations on tensors this small.
    c10::InferenceMode inference;
    const int count = (int) settings.temperatures.size();
    const at::Device device = access->getDevice();
    // Chain 0 is whatever the Context holds now: MD or the user may have moved it since the last call.
    const at::Tensor contextX = access->read();
    checkFiniteConfiguration(contextX, who);
    std::vector<at::Tensor> frames = {contextX};
    for (int r = 1; r < count; r++)
        frames.push_back(positionsToTensor(positions[r]).to(device));
    const at::Tensor x = at::cat(frames);
    at::Tensor energy = at::full({1}, context.calcForcesAndEnergy(false, true, settings.forceGroups),
                                 at::TensorOptions().dtype(at::kDouble).device(device));
    if (count > 1)
        energy = at::cat({energy, energiesInContext(context, x.narrow(0, 1, count - 1), settings.forceGroups)});
    const at::Tensor startEnergies = energy.to(at::kCPU);
    for (int r = 0; r < count; r++)
        if (!std::isfinite(startEnergies[r].item<double>()))
            throw OpenMMException(who + ": the energy of " + (r == 0 ? "the Context's configuration" : "replica " + std::to_string(r))
                                  + " is not finite");
    ChainState state = engine->encode(x, energy);
    if (!engine->hasStereoReference())
        engine->setStereoReference(contextX);
    if (!warmUpTarget)
        warmUpSteps = 0;
    const at::Tensor temperatures = at::tensor(settings.temperatures, at::kDouble);
    double sigma = settings.latentStepSize;
    for (int step = 0; step < steps; step++) {
        context.updateContextState();
        for (int move = 0; move < settings.movesPerStep; move++)
            sigma = moveChains(context, state, settings, temperatures, sigma, warmUpTarget);
        if (afterMoves)
            afterMoves(state);
    }
    const at::Tensor hostX = state.x.to(at::kCPU), hostEnergy = state.energy.to(at::kCPU);
    positions.resize(count);
    energies.resize(count);
    for (int r = 0; r < count; r++) {
        tensorToPositions(hostX.narrow(0, r, 1), positions[r]);
        energies[r] = hostEnergy[r].item<double>();
    }
    const at::Tensor first = state.x.narrow(0, 0, 1);
    if (!at::equal(first, contextX))
        access->write(first);
    return sigma;
}

double FlowMoveRunner::moveChains(ContextImpl& context, ChainState& state, const FlowMoveSettings& settings,
                                  const at::Tensor& temperatures, double sigma, std::optional<double> warmUpTarget) {
    const int count = (int) statistics.size();
    LatentProposal proposal =
        engine->propose(state, temperatures, sigma, settings.independenceProbability, generator,
                        settings.independenceBlockSize);
    // Only proposals that passed the domain, stereo and finiteness checks reach OpenMM.
    at::Tensor proposed = at::full({count}, std::numeric_limits<double>::infinity(),
                                   at::TensorOptions().dtype(at::kDouble).device(engine->getDevice()));
    at::Tensor rows = proposal.valid.nonzero().reshape({-1});
    if (rows.numel() > 0)
        proposed.index_copy_(0, rows, energiesInContext(context, proposal.x.index_select(0, rows), settings.forceGroups));
    at::Tensor probability;
    at::Tensor accepted = engine->decide(state, proposal, proposed, temperatures, generator, &probability);
    engine->update(state, proposal, proposed, accepted);
    const LatentProposal flags = flagsOnHost(proposal);
    const at::Tensor hostProposed = proposed.to(at::kCPU), hostAccepted = accepted.to(at::kCPU);
    const at::Tensor hostProbability = probability.to(at::kCPU);
    double walkProbability = 0;
    int walks = 0;
    for (int r = 0; r < count; r++) {
        LatentMoveEngine::count(statistics[r], flags, hostProposed, hostAccepted, r);
        if (!flags.independence[r].item<bool>()) {
            walkProbability += hostProbability[r].item<double>();
            walks++;
        }
    }
    if (warmUpTarget && walks > 0)
        sigma = LatentMoveEngine::adaptStepSize(sigma, walkProbability / walks, *warmUpTarget, warmUpSteps++);
    return sigma;
}

at::Tensor FlowMoveRunner::energiesInContext(ContextImpl& context, const at::Tensor& x, int forceGroups) {
    std::vector<double> result(x.size(0));
    access->save();
    for (int64_t b = 0; b < x.size(0); b++) {
        access->write(x.narrow(0, b, 1));
        result[b] = tryContextEnergy(context, forceGroups);
    }
    access->restore();
    return at::tensor(result, at::kDouble).to(x.device());
}

void FlowMoveRunner::writeState(std::ostream& stream) const {
    checkpoint::writeTag(stream, "FlowMoveRunner");
    checkpoint::writeGenerator(stream, generator);
    checkpoint::writeVector(stream, statistics);
    checkpoint::write(stream, warmUpSteps);
    engine->getIndependenceProposals().writeState(stream);
}

void FlowMoveRunner::readState(std::istream& stream) {
    checkpoint::readTag(stream, "FlowMoveRunner");
    checkpoint::readGenerator(stream, generator);
    statistics = checkpoint::readVector<MoveStatistics>(stream, statistics.size(), "the chain statistics");
    warmUpSteps = checkpoint::read<long long>(stream);
    access->run([&] { engine->getIndependenceProposals().readState(stream, access->getDevice()); });
}

} // namespace OpenMMBG
