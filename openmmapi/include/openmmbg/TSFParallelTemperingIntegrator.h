#ifndef OPENMMBG_TSFPARALLELTEMPERINGINTEGRATOR_H_
#define OPENMMBG_TSFPARALLELTEMPERINGINTEGRATOR_H_

#include "openmmbg/FlowMoveIntegrator.h"
#include "openmmbg/MoveStatistics.h"
#include "openmmbg/ReplicaExchange.h"

#include <openmm/Vec3.h>

#include <string>
#include <vector>

namespace OpenMMBG {

/**
 * Parallel tempering on one temperature-steerable flow (docs/math.md,
 * "Parallel tempering"). R replicas at T_1 < ... < T_R share the flow, each
 * using tau_r = T_r / T_ref. One step performs flowMovesPerStep flow moves in
 * every replica at its own temperature (the moves of
 * LatentMetropolisIntegrator, in one batch through the flow), then exchange
 * attempts between neighbours, alternating even pairs (1-2, 3-4, ...) and odd
 * pairs (2-3, 4-5, ...), each accepted with min(1, exp[(beta_i - beta_j)(U_i - U_j)]).
 * Everything FlowMoveIntegrator says holds; the replicas' energies are
 * evaluated one after the other in the integrator's own Context.
 *
 * Replica r is the configuration currently at temperature T_r; positions
 * move with exchanges. The Context always holds replica 0 (T_1), so State
 * queries and reporters see the T_1 ensemble. Replicas not given with
 * setReplicaPositions() start from the Context's positions at the first step.
 *
 * In a CompoundIntegrator next to MD, the MD integrator moves the Context,
 * that is replica 0 only; the other replicas change only through this
 * integrator's flow moves and exchanges.
 */
class TSFParallelTemperingIntegrator : public FlowMoveIntegrator {
public:
    /**
     * @param model                    the flow (copied)
     * @param temperatures             K, at least two, strictly increasing
     * @param latentStepSize           sigma of the latent random walk (>= 0)
     * @param independenceProbability  probability that a flow move is an independence proposal
     */
    TSFParallelTemperingIntegrator(const FlowModel& model, const std::vector<double>& temperatures,
                                   double latentStepSize, double independenceProbability = 0.0);
    TSFParallelTemperingIntegrator(const std::string& flowFile, const std::vector<double>& temperatures,
                                   double latentStepSize, double independenceProbability = 0.0);

    /** count >= 2 temperatures spaced geometrically from lowest to highest (K). */
    static std::vector<double> geometricLadder(double lowest, double highest, int count);

    int getNumReplicas() const { return (int) temperatures.size(); }
    const std::vector<double>& getTemperatures() const { return temperatures; }
    double getTemperature(int replica) const;
    /** Flow moves per replica in each step (default 1; 0: exchanges only). */
    int getFlowMovesPerStep() const { return flowMovesPerStep; }
    void setFlowMovesPerStep(int moves);

    /** Positions (nm) of the replica at temperature index `replica`; needs a Context. */
    std::vector<OpenMM::Vec3> getReplicaPositions(int replica) const;
    /** Sets one replica's positions (nm); replica 0 is the Context's. Needs a Context. */
    void setReplicaPositions(int replica, const std::vector<OpenMM::Vec3>& positions);
    /** Potential energy (kJ/mol) of a replica, as of the last step. */
    double getReplicaPotentialEnergy(int replica) const;
    /** Which configuration (walkers are numbered by the replica they started at) is at temperature index `replica`. */
    int getWalkerAtReplica(int replica) const;

    /** Flow moves of one replica since the last reset (none before a Context exists). */
    MoveStatistics getMoveStatistics(int replica) const;
    /** Exchange attempts and acceptances per pair, and round trips, since the last reset (none before a Context exists). */
    ExchangeStatistics getExchangeStatistics() const;
    /** Exchange attempts and acceptances between replicas pair and pair + 1. */
    long long getExchangeAttempts(int pair) const;
    long long getExchangeAcceptances(int pair) const;
    double getExchangeAcceptanceRate(int pair) const;
    /** Completed round trips T_1 -> T_R -> T_1, summed over walkers. */
    long long getNumRoundTrips() const;

private:
    TSFParallelTemperingIntegrator(FlowModel&& model, const std::vector<double>& temperatures, double latentStepSize,
                                   double independenceProbability, bool);
    std::string getKernelName() const override;
    void initializeKernel(const OpenMM::System& system) override;
    void checkReplica(int replica) const;
    void checkPair(int pair) const;

    std::vector<double> temperatures;
    int flowMovesPerStep = 1;
};

} // namespace OpenMMBG

#endif
