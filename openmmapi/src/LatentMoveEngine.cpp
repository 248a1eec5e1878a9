#include "openmmbg/internal/LatentMoveEngine.h"

#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/internal/Checkpoint.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <cmath>

namespace OpenMMBG {

void ChainState::reorder(const at::Tensor& order) {
    const at::Tensor rows = order.to(x.device());
    x = x.index_select(0, rows);
    external = external.index_select(0, rows);
    yn = yn.index_select(0, rows);
    logJ = logJ.index_select(0, rows);
    energy = energy.index_select(0, rows);
    if (momenta.defined() || !latent.defined()) {
        // Momenta are drawn at their row's temperature: the next move draws them anew.
        latent = logDetForward = momenta = at::Tensor();
    } else {
        latent = latent.index_select(0, rows);
        logDetForward = logDetForward.index_select(0, rows);
    }
}

std::vector<at::Tensor*> Candidates::fields() {
    return {&latent, &logDetForward, &yn, &momenta, &x, &logJ, &outOfDomain, &stereoFlip, &finite};
}

Candidates Candidates::rows(int64_t start, int64_t count) const {
    Candidates part = *this;
    for (at::Tensor* field : part.fields())
        if (field->defined())
            *field = field->narrow(0, start, count);
    return part;
}

Candidates Candidates::gather(std::vector<Candidates> pieces, const at::Tensor& order) {
    if (pieces.size() == 1 && !order.defined())
        return pieces.front();
    Candidates all = pieces.front();
    const std::vector<at::Tensor*> fields = all.fields();
    std::vector<std::vector<at::Tensor*>> pieceFields;
    for (Candidates& piece : pieces)
        pieceFields.push_back(piece.fields());
    for (size_t f = 0; f < fields.size(); f++) {
        if (!fields[f]->defined())
            continue;
        std::vector<at::Tensor> parts;
        for (const std::vector<at::Tensor*>& piece : pieceFields)
            parts.push_back(*piece[f]);
        *fields[f] = at::cat(parts);
        if (order.defined())
            *fields[f] = fields[f]->index_select(0, order);
    }
    return all;
}

void IndependenceProposals::writeState(std::ostream& stream) const {
    checkpoint::writeTag(stream, "IndependenceProposals");
    checkpoint::write<int64_t>(stream, (int64_t) blocks.size());
    for (Block block : blocks) {
        checkpoint::write(stream, block.temperature);
        checkpoint::write(stream, block.next);
        checkpoint::writeTensor(stream, block.external);
        for (at::Tensor* field : block.candidates.fields())
            checkpoint::writeTensor(stream, *field);
    }
}

void IndependenceProposals::readState(std::istream& stream, at::Device device) {
    checkpoint::readTag(stream, "IndependenceProposals");
    if (checkpoint::read<int64_t>(stream) != (int64_t) blocks.size())
        throw OpenMM::OpenMMException("Context checkpoint: the independence proposals are of another number of chains");
    for (Block& block : blocks) {
        block.temperature = checkpoint::read<double>(stream);
        block.next = checkpoint::read<int64_t>(stream);
        block.external = checkpoint::readTensor(stream, device);
        for (at::Tensor* field : block.candidates.fields())
            *field = checkpoint::readTensor(stream, device);
        if (block.next < 0 || block.remaining() < 0)
            throw OpenMM::OpenMMException("Context checkpoint: the independence proposals are corrupt");
    }
}

LatentMoveEngine::LatentMoveEngine(const FlowModel& model, bool checkStereochemistry, at::Device device)
    : model(device.is_cpu() ? model.clone() : model.to(device)), device(device) {
    if (checkStereochemistry && !model.getFingerprint().bonds.empty())
        stereo = std::make_unique<Stereochemistry>(model.getNumParticles(), model.getFingerprint().bonds);
}

void LatentMoveEngine::setStereoReference(const at::Tensor& x) {
    if (stereo && stereo->getNumCentres() > 0) {
        stereoReference = stereo->referenceSigns(x.to(device), "the starting configuration");
    } else {
        stereoReference = at::zeros({0}, at::TensorOptions().dtype(at::kDouble).device(device));
    }
}

ChainState LatentMoveEngine::encode(const at::Tensor& x, const at::Tensor& energy) const {
    ChainState state;
    state.x = x.to(device);
    auto [y, external] = model.getCoordinates().forward(state.x);
    state.external = external;
    state.yn = model.normalize(y);
    state.logJ = model.getCoordinates().logDetJacobian(y);
    state.energy = energy.to(device);
    return state;
}

void LatentMoveEngine::refresh(ChainState& state, const at::Tensor& tau, at::Generator& generator) const {
    const int64_t rows = state.x.size(0);
    const int n = model.getNumCoordinates();
    at::Tensor gamma = state.yn;
    if (model.hasMomenta()) {
        at::Tensor noise = at::randn({rows, n}, generator, at::kDouble);
        state.momenta = noise.to(device) * at::sqrt(tau).reshape({rows, 1});
        gamma = at::cat({state.yn, state.momenta}, 1);
    }
    auto [v, logDetInverse] = model.inverse(gamma);
    state.latent = v;
    state.logDetForward = -logDetInverse;  // log|det dD/dv| at v
}

void LatentMoveEngine::place(Candidates& candidates, const at::Tensor& external) const {
    const int64_t rows = candidates.yn.size(0);
    at::Tensor y = model.denormalize(candidates.yn);
    candidates.outOfDomain = ~model.getCoordinates().inDomain(y);
    candidates.x = model.getCoordinates().inverse(y, external);
    candidates.logJ = model.getCoordinates().logDetJacobian(y);
    if (stereo && stereoReference.numel() > 0)
        candidates.stereoFlip = ~candidates.outOfDomain & ~stereo->matches(candidates.x, stereoReference);
    else
        candidates.stereoFlip = at::zeros_like(candidates.outOfDomain);
    candidates.finite = at::isfinite(candidates.x).reshape({rows, -1}).all(1) & at::isfinite(candidates.logJ)
                        & at::isfinite(candidates.logDetForward);
}

Candidates LatentMoveEngine::describe(const at::Tensor& latent, const at::Tensor& external) const {
    const int n = model.getNumCoordinates();
    Candidates candidates;
    candidates.latent = latent;
    auto [gamma, logDetForward] = model.forward(latent);
    candidates.logDetForward = logDetForward;
    candidates.yn = gamma.narrow(1, 0, n);
    if (model.hasMomenta())
        candidates.momenta = gamma.narrow(1, n, n);
    place(candidates, external);
    return candidates;
}

Candidates LatentMoveEngine::takeIndependence(const ChainState& state, int64_t chain, double temperature,
                                              int blockSize, at::Generator& generator) {
    IndependenceProposals::Block& block = independenceProposals.getBlock(chain);
    const at::Tensor external = state.external.narrow(0, chain, 1);
    if (block.remaining() == 0 || block.temperature != temperature) {
        // One batched flow call for the next blockSize proposals of this chain.
        at::Tensor latent = model.drawLatent(blockSize, temperature, generator).to(device);
        block.candidates = describe(latent, external.repeat({blockSize, 1}));
        block.temperature = temperature;
        block.external = external;
        block.next = 0;
    } else if (!at::equal(block.external, external)) {
        // The chain's molecule was moved or exchanged: place the rest of the block where it is now.
        Candidates rest = block.candidates.rows(block.next, block.remaining());
        place(rest, external.repeat({block.remaining(), 1}));
        block.candidates = rest;
        block.external = external;
        block.next = 0;
    }
    return block.candidates.rows(block.next++, 1);
}

LatentProposal LatentMoveEngine::propose(ChainState& state, const at::Tensor& temperatures, double sigma,
                                         double independenceProbability, at::Generator& generator, int blockSize) {
    const int64_t rows = state.x.size(0);
    independenceProposals.resize((int) rows);
    const auto onDevice = at::TensorOptions().dtype(at::kDouble).device(device);
    const at::Tensor hostTemperatures = temperatures.to(at::kCPU).to(at::kDouble).contiguous();
    // Random numbers, drawn on the host: the kinds, momenta where a move needs them, walk steps, blocks.
    const at::Tensor independent = at::rand({rows}, generator, at::kDouble) < independenceProbability;
    const at::Tensor walkRows = (~independent).nonzero().reshape({-1});
    const at::Tensor drawRows = independent.nonzero().reshape({-1});
    const at::Tensor tau = hostTemperatures.to(device) / model.getReferenceTemperature();
    // Momenta are redrawn before every walk (a Gibbs step), so a TSF state is
    // re-encoded each time; without momenta the latent vector kept from the
    // last move is the state's own (accepted: the proposal's; rejected: unchanged).
    if (!state.latent.defined() || (walkRows.numel() > 0 && model.hasMomenta()))
        refresh(state, tau, generator);

    const Flow& flow = model.getFlow();
    std::vector<Candidates> pieces;
    if (walkRows.numel() > 0) {
        const at::Tensor walkers = walkRows.to(device);
        at::Tensor noise = at::randn({walkRows.numel(), model.getLatentDim()}, generator, at::kDouble).to(device);
        at::Tensor walked = flow.wrapLatent(state.latent.index_select(0, walkers) + sigma * noise);
        pieces.push_back(describe(walked, state.external.index_select(0, walkers)));
    }
    const double* temperature = hostTemperatures.data_ptr<double>();
    for (int64_t i = 0; i < drawRows.numel(); i++) {
        const int64_t chain = drawRows[i].item<int64_t>();
        pieces.push_back(takeIndependence(state, chain, temperature[chain], blockSize, generator));
    }
    at::Tensor order;  // pieces hold the walkers first, then the draws: back to the chains' order
    if (walkRows.numel() > 0 && drawRows.numel() > 0)
        order = at::argsort(at::cat({walkRows, drawRows})).to(device);
    LatentProposal proposal;
    static_cast<Candidates&>(proposal) = Candidates::gather(std::move(pieces), order);
    proposal.independence = independent.to(device);

    // log a without the energy: A' - A (docs/math.md, "Monte Carlo moves"); independence
    // proposals add the prior density of the latent vectors.
    const at::Tensor tauColumn = tau.reshape({rows, 1});
    const at::Tensor noLatentTerm = at::zeros({rows}, onDevice);
    auto weight = [&](const at::Tensor& logJ, const at::Tensor& logDetForward, const at::Tensor& latent,
                      const at::Tensor& momenta) {
        at::Tensor a = logJ + logDetForward - at::where(proposal.independence, flow.logPrior(latent, tauColumn),
                                                        noLatentTerm);
        if (momenta.defined())
            a = a - (momenta * momenta).sum(1) / (2 * tau);
        return a;
    };
    proposal.logRatio = weight(proposal.logJ, proposal.logDetForward, proposal.latent, proposal.momenta)
                        - weight(state.logJ, state.logDetForward, state.latent, state.momenta);
    const at::Tensor inside = ~proposal.outOfDomain;
    const at::Tensor finite = proposal.finite & at::isfinite(proposal.logRatio);
    proposal.nonFinite = inside & ~proposal.stereoFlip & ~finite;
    proposal.valid = inside & ~proposal.stereoFlip & finite;
    return proposal;
}

at::Tensor LatentMoveEngine::decide(const ChainState& state, const LatentProposal& proposal,
                                    const at::Tensor& proposedEnergy, const at::Tensor& temperatures,
                                    at::Generator& generator, at::Tensor* acceptanceProbability) const {
    const int64_t rows = state.x.size(0);
    at::Tensor uniform = at::rand({rows}, generator, at::kDouble).to(device);
    at::Tensor energy = proposedEnergy.to(device);
    at::Tensor beta = 1.0 / (OpenMMEnergy::BOLTZMANN * temperatures.to(device).to(at::kDouble));
    at::Tensor logA = -beta * (energy - state.energy) + proposal.logRatio;
    at::Tensor ok = proposal.valid & at::isfinite(energy) & ~at::isnan(logA);
    if (acceptanceProbability)
        *acceptanceProbability = at::where(ok, at::exp(at::clamp_max(logA, 0.0)), at::zeros_like(logA));
    return ok & (at::log(uniform) < logA);
}

void LatentMoveEngine::update(ChainState& state, const LatentProposal& proposal, const at::Tensor& proposedEnergy,
                              const at::Tensor& accepted) const {
    const int64_t rows = state.x.size(0);
    at::Tensor rowsAccepted = accepted.to(device);
    state.x = at::where(rowsAccepted.reshape({rows, 1, 1}), proposal.x, state.x);
    state.yn = at::where(rowsAccepted.reshape({rows, 1}), proposal.yn, state.yn);
    state.logJ = at::where(rowsAccepted, proposal.logJ, state.logJ);
    state.energy = at::where(rowsAccepted, proposedEnergy.to(device), state.energy);
    state.latent = at::where(rowsAccepted.reshape({rows, 1}), proposal.latent, state.latent);
    state.logDetForward = at::where(rowsAccepted, proposal.logDetForward, state.logDetForward);
    if (state.momenta.defined())
        state.momenta = at::where(rowsAccepted.reshape({rows, 1}), proposal.momenta, state.momenta);
}

void LatentMoveEngine::count(MoveStatistics& statistics, const LatentProposal& proposal,
                             const at::Tensor& proposedEnergy, const at::Tensor& accepted, int64_t row) {
    const int kind = proposal.independence[row].item<bool>() ? 1 : 0;
    statistics.proposed[kind]++;
    if (accepted[row].item<bool>())
        statistics.accepted[kind]++;
    if (proposal.outOfDomain[row].item<bool>())
        statistics.outOfDomain++;
    else if (proposal.stereoFlip[row].item<bool>())
        statistics.stereoFlips++;
    else if (proposal.nonFinite[row].item<bool>() || !std::isfinite(proposedEnergy[row].item<double>()))
        statistics.failedEnergies++;
}

double LatentMoveEngine::adaptStepSize(double sigma, double acceptanceProbability, double target, long long step) {
    double gain = 1.0 / std::pow((double) step + 1.0, 0.6);
    return sigma * std::exp(gain * (acceptanceProbability - target));
}

} // namespace OpenMMBG
