#ifndef OPENMMBG_LATENTMOVEENGINE_H_
#define OPENMMBG_LATENTMOVEENGINE_H_

#include "openmmbg/FlowModel.h"
#include "openmmbg/MoveStatistics.h"
#include "openmmbg/Stereochemistry.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <memory>

namespace OpenMMBG {

/** The current configurations of B chains (one per row), encoded for the flow. */
struct ChainState {
    at::Tensor x;         // [B, N, 3] nm
    at::Tensor external;  // [B, m] external coordinates, kept by every move
    at::Tensor yn;        // [B, n] normalised coordinates
    at::Tensor logJ;      // [B] log J(y)
    at::Tensor energy;    // [B] potential energy, kJ/mol

    /** Rows in the new order: row i becomes what row order[i] was. */
    void reorder(const at::Tensor& order);
};

/** One proposal per chain, with everything the Metropolis test needs except the proposals' energies. */
struct LatentProposal {
    at::Tensor x;             // [B, N, 3] proposed configurations
    at::Tensor yn, logJ;      // of the proposals
    at::Tensor independence;  // [B] bool: independence proposal (else random walk)
    at::Tensor outOfDomain;   // [B] bool
    at::Tensor stereoFlip;    // [B] bool (only where in the domain)
    at::Tensor nonFinite;     // [B] bool (only where in the domain and stereo kept)
    at::Tensor valid;         // [B] bool: none of the above; the energy must decide
    at::Tensor logRatio;      // [B] A' - A: log a without the energy term (docs/math.md)
};

/**
 * The Metropolis logic of every flow move, written once for all platforms and
 * for any number of chains (rows), each at its own temperature
 * (docs/math.md, "Monte Carlo moves"):
 *   p ~ N(0, tau I) (Gibbs refresh), v = D^-1(y_n, p);
 *   random walk v' = v + sigma xi, or independence v' ~ N(0, tau I);
 *   log a = -(U' - U)/kT + A' - A with
 *   A = log J(y) - |p|^2 / (2 tau) + log|det dD/dv| (+ |v|^2 / (2 tau) for independence).
 * Tensors live on the device given at construction; random numbers come
 * from a CPU generator in a fixed amount per step, so a seed gives the same
 * run on every platform.
 */
class LatentMoveEngine {
public:
    /** The engine works on its own copy of the flow, on `device` (FlowModel::clone, FlowModel::to). */
    LatentMoveEngine(const FlowModel& model, bool checkStereochemistry, at::Device device);

    const FlowModel& getModel() const { return model; }
    at::Device getDevice() const { return device; }

    /** Records the handedness of every stereocentre of x [1, N, 3]: moves must keep it. */
    void setStereoReference(const at::Tensor& x);
    bool hasStereoReference() const { return stereoReference.defined(); }

    /** Encodes configurations x [B, N, 3] with potential energies [B] (kJ/mol). */
    ChainState encode(const at::Tensor& x, const at::Tensor& energy) const;

    /** One proposal per chain; temperatures [B] in K. */
    LatentProposal propose(const ChainState& state, const at::Tensor& temperatures, double sigma,
                           double independenceProbability, at::Generator& generator) const;

    /**
     * Metropolis test: accepted [B] where the proposal is valid, its energy
     * (kJ/mol, [B]) finite and log u < log a. Draws B uniforms. If
     * acceptanceProbability is given it receives min(1, exp(log a)) (0 where invalid).
     */
    at::Tensor decide(const ChainState& state, const LatentProposal& proposal, const at::Tensor& proposedEnergy,
                      const at::Tensor& temperatures, at::Generator& generator,
                      at::Tensor* acceptanceProbability = nullptr) const;

    /** Rows where `accepted` take the proposal. */
    void update(ChainState& state, const LatentProposal& proposal, const at::Tensor& proposedEnergy,
                const at::Tensor& accepted) const;

    /** Adds row `row` of a step to the statistics. */
    static void count(MoveStatistics& statistics, const LatentProposal& proposal, const at::Tensor& proposedEnergy,
                      const at::Tensor& accepted, int64_t row);

    /**
     * One Robbins-Monro update of the latent step size during warm-up:
     * log sigma += (a - target) / (step + 1)^0.6, with a the acceptance
     * probability of a random-walk move.
     */
    static double adaptStepSize(double sigma, double acceptanceProbability, double target, long long step);

private:
    FlowModel model;
    std::unique_ptr<Stereochemistry> stereo;
    at::Tensor stereoReference;
    at::Device device;
};

} // namespace OpenMMBG

#endif
