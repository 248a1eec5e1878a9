#ifndef OPENMMBG_LATENTMOVEENGINE_H_
#define OPENMMBG_LATENTMOVEENGINE_H_

#include "openmmbg/FlowModel.h"
#include "openmmbg/MoveStatistics.h"
#include "openmmbg/Stereochemistry.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <iosfwd>
#include <memory>
#include <vector>

namespace OpenMMBG {

/** The current configurations of B chains (one per row), encoded for the flow. */
struct ChainState {
    at::Tensor x;         // [B, N, 3] nm
    at::Tensor external;  // [B, m] external coordinates, kept by every move
    at::Tensor yn;        // [B, n] normalised coordinates
    at::Tensor logJ;      // [B] log J(y)
    at::Tensor energy;    // [B] potential energy, kJ/mol
    /**
     * The flow's view of each row once a move has computed it: gamma =
     * (y_n, p) = D(latent), logDetForward = log|det dD/dv| at latent, and the
     * momenta p (flows with momenta only). Undefined until the first move,
     * and again after exchanges of a flow with momenta (p belongs to a temperature).
     */
    at::Tensor latent, logDetForward, momenta;

    /** Rows in the new order: row i becomes what row order[i] was. */
    void reorder(const at::Tensor& order);
};

/**
 * Proposed configurations with everything about them that does not depend
 * on the chain they are proposed to (except their external coordinates).
 */
struct Candidates {
    at::Tensor latent;         // [B, d] v'
    at::Tensor logDetForward;  // [B] log|det dD/dv| at v'
    at::Tensor yn, momenta;    // [B, n] gamma' = (y_n, p) = D(v'); momenta only for flows with them
    at::Tensor x;              // [B, N, 3] nm
    at::Tensor logJ;           // [B] log J(y)
    at::Tensor outOfDomain;    // [B] bool
    at::Tensor stereoFlip;     // [B] bool (only where in the domain)
    at::Tensor finite;         // [B] bool: x and the log-determinants are finite

    /** Every field, in one order (undefined ones included). */
    std::vector<at::Tensor*> fields();
    Candidates rows(int64_t start, int64_t count) const;
    /** The pieces' rows one after the other, then row i := row order[i] (if order is defined). */
    static Candidates gather(std::vector<Candidates> pieces, const at::Tensor& order);
};

/** One proposal per chain, with everything the Metropolis test needs except the proposals' energies. */
struct LatentProposal : Candidates {
    at::Tensor independence;  // [B] bool: independence proposal (else random walk)
    at::Tensor nonFinite;     // [B] bool (only where in the domain and stereo kept)
    at::Tensor valid;         // [B] bool: none of the flags; the energy must decide
    at::Tensor logRatio;      // [B] A' - A: log a without the energy term (docs/math.md)
};

/**
 * Independence proposals drawn ahead, a block per chain by one batched flow
 * call, and handed out one by one in order. They do not depend on the
 * chain's state, so taking them later leaves the chain's law unchanged
 * (docs/math.md, "Batched independence proposals"). A block belongs to a
 * temperature and to the external coordinates it was placed with: a chain
 * at another temperature draws a new block, one with other external
 * coordinates re-places the rest of the block.
 */
class IndependenceProposals {
public:
    struct Block {
        double temperature = 0;  // K
        at::Tensor external;  // [1, m]
        Candidates candidates;
        int64_t next = 0;
        int64_t remaining() const { return candidates.latent.defined() ? candidates.latent.size(0) - next : 0; }
    };
    void resize(int chains) { blocks.resize(chains); }
    Block& getBlock(int chain) { return blocks[chain]; }
    void writeState(std::ostream& stream) const;
    void readState(std::istream& stream, at::Device device);

private:
    std::vector<Block> blocks;
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

    /**
     * One proposal per chain; temperatures [B] in K. Independence proposals
     * come from blocks of `blockSize` per chain. Refreshes the state's
     * momenta (and its latent view) where a move needs them.
     */
    LatentProposal propose(ChainState& state, const at::Tensor& temperatures, double sigma,
                           double independenceProbability, at::Generator& generator, int blockSize = 1);

    /** The independence proposals drawn ahead (for Context checkpoints). */
    IndependenceProposals& getIndependenceProposals() { return independenceProposals; }

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
    /** p ~ N(0, tau I) for every row, then the latent view v = D^-1(y_n, p) (docs/math.md). */
    void refresh(ChainState& state, const at::Tensor& tau, at::Generator& generator) const;
    /** Candidates from latent vectors v [B, d], placed with external coordinates [B, m]. */
    Candidates describe(const at::Tensor& latent, const at::Tensor& external) const;
    /** Fills in the configurations of candidates (and what depends on them) from their y_n. */
    void place(Candidates& candidates, const at::Tensor& external) const;
    /** The next independence proposal of one chain at its temperature (K). */
    Candidates takeIndependence(const ChainState& state, int64_t chain, double temperature, int blockSize,
                                at::Generator& generator);

    FlowModel model;
    std::unique_ptr<Stereochemistry> stereo;
    at::Tensor stereoReference;
    at::Device device;
    IndependenceProposals independenceProposals;
};

} // namespace OpenMMBG

#endif
