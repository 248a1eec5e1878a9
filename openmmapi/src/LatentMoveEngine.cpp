#include "openmmbg/internal/LatentMoveEngine.h"

#include "openmmbg/OpenMMEnergy.h"

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
}

LatentMoveEngine::LatentMoveEngine(const FlowModel& model, bool checkStereochemistry, at::Device device)
    : model(device.is_cpu() ? model.clone() : model.to(device)), device(device) {
    if (checkStereochemistry && !model.getFingerprint().bonds.empty())
        stereo = std::make_unique<Stereochemistry>(model.getNumParticles(), model.getFingerprint().bonds);
}

void LatentMoveEngine::setStereoReference(const at::Tensor& x) {
    if (stereo && stereo->getNumCentres() > 0) {
        at::Tensor signs = stereo->signs(x.to(device))[0];
        if ((signs == 0).any().item<bool>())
            throw OpenMM::OpenMMException("LatentMoveEngine: a stereocentre of the starting configuration is flat "
                                          "(its neighbours are coplanar); its handedness is undefined");
        stereoReference = signs;
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

LatentProposal LatentMoveEngine::propose(const ChainState& state, const at::Tensor& temperatures, double sigma,
                                         double independenceProbability, at::Generator& generator) const {
    const int64_t rows = state.x.size(0);
    const int n = model.getNumCoordinates(), d = model.getLatentDim();
    const auto onDevice = at::TensorOptions().dtype(at::kDouble).device(device);
    // Random numbers: a fixed amount per step, drawn on the host.
    const auto host = at::TensorOptions().dtype(at::kDouble);
    at::Tensor momentumNoise = model.hasMomenta() ? at::randn({rows, n}, generator, host) : at::Tensor();
    at::Tensor kindDraw = at::rand({rows}, generator, host);
    at::Tensor walkNoise = at::randn({rows, d}, generator, host);
    at::Tensor freshLatent = at::randn({rows, d}, generator, host);

    at::Tensor tau = (temperatures.to(onDevice) / model.getReferenceTemperature()).reshape({rows, 1});
    at::Tensor sqrtTau = at::sqrt(tau);
    at::Tensor gamma = state.yn, momentumTerm = at::zeros({rows}, onDevice);
    if (model.hasMomenta()) {
        at::Tensor p = momentumNoise.to(device) * sqrtTau;
        gamma = at::cat({state.yn, p}, 1);
        momentumTerm = (p * p).sum(1) / (2 * tau.reshape({rows}));
    }
    auto [v, logDetInverse] = model.inverse(gamma);
    at::Tensor independence = (kindDraw < independenceProbability).to(device);
    const Flow& flow = model.getFlow();
    at::Tensor walked = flow.wrapLatent(v + sigma * walkNoise.to(device));
    at::Tensor drawn = flow.priorFromNormal(freshLatent.to(device), tau);
    at::Tensor proposedV = at::where(independence.reshape({rows, 1}), drawn, walked);
    auto [proposedGamma, logDetForward] = model.forward(proposedV);

    LatentProposal proposal;
    proposal.independence = independence;
    proposal.yn = proposedGamma.narrow(1, 0, n);
    at::Tensor y = model.denormalize(proposal.yn);
    proposal.outOfDomain = ~model.getCoordinates().inDomain(y);
    proposal.x = model.getCoordinates().inverse(y, state.external);
    proposal.logJ = model.getCoordinates().logDetJacobian(y);
    at::Tensor inside = ~proposal.outOfDomain;
    if (stereo && stereoReference.numel() > 0)
        proposal.stereoFlip = inside & ~stereo->matches(proposal.x, stereoReference);
    else
        proposal.stereoFlip = at::zeros_like(inside);

    at::Tensor proposedMomentumTerm = at::zeros({rows}, onDevice);
    if (model.hasMomenta()) {
        at::Tensor p = proposedGamma.narrow(1, n, n);
        proposedMomentumTerm = (p * p).sum(1) / (2 * tau.reshape({rows}));
    }
    // Independence proposals: the prior density of v enters the ratio (docs/math.md, "Monte Carlo moves").
    at::Tensor noLatentTerm = at::zeros({rows}, onDevice);
    at::Tensor latentTerm = at::where(independence, -flow.logPrior(v, tau), noLatentTerm);
    at::Tensor proposedLatentTerm = at::where(independence, -flow.logPrior(proposedV, tau), noLatentTerm);
    // log|det dD/dv| at v is minus the inverse's log-det.
    at::Tensor current = state.logJ - momentumTerm - logDetInverse + latentTerm;
    at::Tensor next = proposal.logJ - proposedMomentumTerm + logDetForward + proposedLatentTerm;
    proposal.logRatio = next - current;
    at::Tensor finite = at::isfinite(proposal.x).reshape({rows, -1}).all(1) & at::isfinite(proposal.logRatio);
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
