#ifndef OPENMMBG_TSFPARALLELTEMPERINGINTEGRATOR_H_
#define OPENMMBG_TSFPARALLELTEMPERINGINTEGRATOR_H_

#include "openmmbg/FlowModel.h"
#include "openmmbg/MoveStatistics.h"

#include <openmm/Integrator.h>
#include <openmm/Kernel.h>
#include <openmm/Vec3.h>

#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {

/**
 * The replicas of a TSFParallelTemperingIntegrator and their bookkeeping,
 * shared with the kernels. Index r is the temperature slot T_r.
 */
struct ReplicaState {
    std::vector<std::vector<OpenMM::Vec3>> positions;  // [replica][particle], nm
    std::vector<double> energies;                      // kJ/mol, as of the last step
    std::vector<int> walkers;                          // which configuration is at each replica
    std::vector<int> heading;                          // per walker: +1 after T_1, -1 after T_R, 0 neither yet
    std::vector<MoveStatistics> moves;                 // per replica
    std::vector<long long> exchangeAttempts, exchangeAcceptances;  // per neighbouring pair
    long long roundTrips = 0;
    long long steps = 0;                               // decides which pairs exchange
    bool started = false;                              // replicas hold configurations
    std::vector<bool> setByUser;                       // replicas given before the first step

    void resize(int replicas, int particles);
    /** Swaps replicas r and r + 1 (positions, energies, walkers). */
    void swap(int r);
    /** Round-trip bookkeeping after exchanges: a walker back at T_1 after visiting T_R completes one. */
    void recordExtremes();
    void resetStatistics();
};

/**
 * Parallel tempering on one temperature-steerable flow (ALGORITHMS.md,
 * "Parallel tempering"). R replicas at T_1 < ... < T_R share the flow, each
 * using tau_r = T_r / T_ref. One step performs flowMovesPerStep flow moves in
 * every replica at its own temperature (the moves of LatentMetropolisIntegrator,
 * with the same options), then exchange attempts between neighbours,
 * alternating even pairs (1-2, 3-4, ...) and odd pairs (2-3, 4-5, ...), each
 * accepted with min(1, exp[(beta_i - beta_j)(U_i - U_j)]).
 *
 * Replica i is the configuration currently at temperature T_i; positions
 * move with exchanges. The Context always holds replica 0 (T_1), so State
 * queries and reporters see the T_1 ensemble. All replicas start from the
 * Context's positions unless set with setReplicaPositions(). On the CPU
 * platform the replicas' energies are evaluated in parallel threads.
 *
 * In a CompoundIntegrator next to MD, the MD integrator moves the Context,
 * that is replica 0 only; the other replicas change only through this
 * integrator's flow moves and exchanges.
 */
class TSFParallelTemperingIntegrator : public OpenMM::Integrator {
public:
    /**
     * @param temperatures             K, at least two, strictly increasing
     * @param latentStepSize           sigma of the latent random walk (>= 0)
     * @param independenceProbability  probability that a flow move is an independence proposal
     */
    TSFParallelTemperingIntegrator(const FlowModel& model, const std::vector<double>& temperatures,
                                   double latentStepSize, double independenceProbability = 0.0);
    TSFParallelTemperingIntegrator(const std::string& flowFile, const std::vector<double>& temperatures,
                                   double latentStepSize, double independenceProbability = 0.0);
    ~TSFParallelTemperingIntegrator() override;

    /** count >= 2 temperatures spaced geometrically from lowest to highest (K). */
    static std::vector<double> geometricLadder(double lowest, double highest, int count);

    int getNumReplicas() const { return (int) temperatures.size(); }
    const std::vector<double>& getTemperatures() const { return temperatures; }
    double getTemperature(int replica) const;
    double getLatentStepSize() const { return latentStepSize; }
    void setLatentStepSize(double sigma);
    double getIndependenceProbability() const { return independenceProbability; }
    void setIndependenceProbability(double probability);
    /** Flow moves per replica in each step (default 1; 0: exchanges only). */
    int getFlowMovesPerStep() const { return flowMovesPerStep; }
    void setFlowMovesPerStep(int moves);
    /** 0 (default): a different random seed each time the integrator is bound to a Context. */
    int getRandomNumberSeed() const { return randomNumberSeed; }
    void setRandomNumberSeed(int seed);
    bool getCheckStereochemistry() const { return checkStereochemistry; }
    void setCheckStereochemistry(bool check);
    const FlowModel& getFlowModel() const { return *model; }

    void step(int steps) override;
    /** Warm-up steps adapting the latent step size to targetAcceptance (mean over replicas); statistics reset after. */
    void warmUp(int steps, double targetAcceptance = 0.3);
    double getWarmUpTarget() const { return warmUpTarget; }

    /** Positions (nm) of the replica at temperature index `replica`. */
    std::vector<OpenMM::Vec3> getReplicaPositions(int replica) const;
    /**
     * Sets one replica's positions. Replica 0 is written to the Context as
     * well. Replicas not set start from the Context's positions.
     */
    void setReplicaPositions(int replica, const std::vector<OpenMM::Vec3>& positions);
    /** Potential energy (kJ/mol) of a replica, as of the last step. */
    double getReplicaPotentialEnergy(int replica) const;
    /** Which configuration (walkers are numbered by the replica they started at) is at temperature index `replica`. */
    int getWalkerAtReplica(int replica) const;

    const MoveStatistics& getMoveStatistics(int replica) const;
    /** Exchange attempts and acceptances between replicas pair and pair + 1. */
    long long getExchangeAttempts(int pair) const;
    long long getExchangeAcceptances(int pair) const;
    double getExchangeAcceptanceRate(int pair) const;
    /** Completed round trips T_1 -> T_R -> T_1, summed over walkers. */
    long long getNumRoundTrips() const;
    void resetStatistics();

    // For kernels and serialization.
    ReplicaState& getReplicaState() { return *replicas; }
    at::Generator& getGenerator() { return *generator; }
    at::Tensor getRandomState() const;
    void setRandomState(const at::Tensor& state);

protected:
    void initialize(OpenMM::ContextImpl& context) override;
    void cleanup() override;
    std::vector<std::string> getKernelNames() override;
    double computeKineticEnergy() override;
    bool kineticEnergyRequiresForce() const override { return false; }
    void createCheckpoint(std::ostream& stream) const override;
    void loadCheckpoint(std::istream& stream) override;

private:
    void run(int steps, bool warmUp);
    void checkReplica(int replica) const;

    std::shared_ptr<FlowModel> model;
    std::vector<double> temperatures;
    double latentStepSize, independenceProbability;
    double warmUpTarget = 0.3;
    int flowMovesPerStep = 1;
    int randomNumberSeed = 0;
    bool checkStereochemistry = true;
    std::unique_ptr<ReplicaState> replicas;
    std::unique_ptr<at::Generator> generator;
    OpenMM::Kernel kernel;
};

} // namespace OpenMMBG

#endif
