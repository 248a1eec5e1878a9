#ifndef OPENMMBG_FLOWMOVERUNNER_H_
#define OPENMMBG_FLOWMOVERUNNER_H_

// The step loops of both flow-move integrators, written once for every
// platform. A platform's kernel supplies only how configurations move
// between its Context and tensors (ContextConfiguration) and how replica
// energies are evaluated (ReplicaEnergies); the loops do the rest: energies
// at the start of each call, Metropolis decisions through LatentMoveEngine,
// statistics, warm-up adaptation and exchanges.

#include "openmmbg/internal/LatentMoveEngine.h"

#include <ATen/core/Tensor.h>
#include <openmm/Vec3.h>
#include <openmm/internal/ContextImpl.h>

#include <vector>

namespace OpenMMBG {

class LatentMetropolisIntegrator;
class TSFParallelTemperingIntegrator;

/**
 * The configuration a kernel's Context holds, as tensors [1, N, 3] (float64,
 * nm) on the move engine's device.
 */
class ContextConfiguration {
public:
    virtual ~ContextConfiguration() = default;
    /** The Context's positions. */
    virtual at::Tensor read() = 0;
    /** Sets the Context's positions to x [1, N, 3]. */
    virtual void write(const at::Tensor& x) = 0;
    /** Remembers exactly what the Context holds now ... */
    virtual void save() = 0;
    /** ... and puts it back bit for bit (OpenMM's own values, not a conversion of them). */
    virtual void restore() = 0;
};

/**
 * Through ContextImpl::getPositions and setPositions: exact on the Reference
 * and CPU platforms (they store double positions), and usable on any
 * platform, at the cost of a host round trip per call.
 */
class HostContextConfiguration : public ContextConfiguration {
public:
    HostContextConfiguration(OpenMM::ContextImpl& context, at::Device device) : context(context), device(device) {}
    at::Tensor read() override;
    void write(const at::Tensor& x) override;
    void save() override;
    void restore() override;

private:
    OpenMM::ContextImpl& context;
    at::Device device;
    std::vector<OpenMM::Vec3> saved, written;
};

/** Potential energies (kJ/mol) [B] of configurations x [B, N, 3]; +inf where OpenMM fails. */
class ReplicaEnergies {
public:
    virtual ~ReplicaEnergies() = default;
    virtual at::Tensor evaluate(const at::Tensor& x) = 0;
};

/**
 * Evaluates the configurations in the kernel's own Context, one after the
 * other, and leaves the Context exactly as it was.
 */
class SequentialContextEnergies : public ReplicaEnergies {
public:
    SequentialContextEnergies(OpenMM::ContextImpl& context, ContextConfiguration& configuration, int forceGroups)
        : context(context), configuration(configuration), forceGroups(forceGroups) {}
    at::Tensor evaluate(const at::Tensor& x) override;

private:
    OpenMM::ContextImpl& context;
    ContextConfiguration& configuration;
    int forceGroups;
};

/** The potential energy (kJ/mol) of what the Context holds; +inf if OpenMM throws (the move is then rejected). */
double tryContextEnergy(OpenMM::ContextImpl& context, int forceGroups);

/** LatentMetropolisIntegrator's moves (ALGORITHMS.md, "Monte Carlo moves"). */
class LatentMetropolisMoves {
public:
    /** Tensors live on `device`. */
    LatentMetropolisMoves(const LatentMetropolisIntegrator& integrator, at::Device device);
    /**
     * `steps` moves of the chain the Context holds: a rejected move restores
     * the Context, an accepted one leaves the proposal in it. Warm-up moves
     * adapt the latent step size.
     */
    void run(OpenMM::ContextImpl& context, LatentMetropolisIntegrator& integrator, ContextConfiguration& configuration,
             int steps, bool warmUp);

private:
    LatentMoveEngine engine;
    long long warmUpSteps = 0;  // counts adaptation steps within one warm-up
};

/** TSFParallelTemperingIntegrator's steps (ALGORITHMS.md, "Parallel tempering"). */
class ParallelTemperingSteps {
public:
    ParallelTemperingSteps(const TSFParallelTemperingIntegrator& integrator, at::Device device);
    /**
     * `steps` steps: flow moves of all replicas in one batch, then
     * exchanges. Replica 0 is read from the Context at the start and written
     * back at the end; the others live in the integrator's ReplicaState.
     */
    void run(OpenMM::ContextImpl& context, TSFParallelTemperingIntegrator& integrator,
             ContextConfiguration& configuration, ReplicaEnergies& energies, int steps, bool warmUp);

private:
    void moveReplicas(ChainState& state, TSFParallelTemperingIntegrator& integrator, ReplicaEnergies& energies,
                      const at::Tensor& temperatures, bool warmUp);
    void exchangeReplicas(ChainState& state, TSFParallelTemperingIntegrator& integrator);

    LatentMoveEngine engine;
    long long warmUpSteps = 0;
};

} // namespace OpenMMBG

#endif
