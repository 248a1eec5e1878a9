#ifndef OPENMMBG_FLOWMOVERUNNER_H_
#define OPENMMBG_FLOWMOVERUNNER_H_

// The step loop of both flow-move integrators, written once for every
// platform: B chains (one for LatentMetropolisIntegrator, one per replica for
// parallel tempering), each at its own temperature, moved together through
// the flow. Energies at the start of each call, Metropolis decisions through
// LatentMoveEngine, statistics and warm-up adaptation happen here; a platform
// supplies only its ContextAccess.

#include "openmmbg/MoveStatistics.h"
#include "openmmbg/internal/ContextAccess.h"
#include "openmmbg/internal/LatentMoveEngine.h"

#include <ATen/core/Generator.h>
#include <openmm/Vec3.h>
#include <openmm/internal/ContextImpl.h>

#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace OpenMMBG {

/** What one kernel call needs of its integrator's parameters. */
struct FlowMoveSettings {
    std::vector<double> temperatures;  // K, one per chain
    double latentStepSize = 0;
    double independenceProbability = 0;
    int independenceBlockSize = 1;  // independence proposals drawn ahead per chain
    int movesPerStep = 1;  // flow moves per chain and step
    int forceGroups = -1;  // the integration force groups
};

class FlowMoveRunner {
public:
    explicit FlowMoveRunner(std::unique_ptr<ContextAccess> access);
    ~FlowMoveRunner();

    /**
     * Once per Context: the move engine on the access's device (a device copy
     * of the flow off the CPU), the random generator from `seed` (0: random),
     * statistics for `chains` chains. `who` names the integrator in errors.
     */
    void initialize(const FlowModel& model, bool checkStereochemistry, int seed, int chains, const std::string& who);

    /**
     * `steps` steps, each settings.movesPerStep flow moves of every chain and
     * then afterMoves (exchanges), if given. Chain 0 starts from the Context,
     * chain r > 0 from positions[r] (nm). Energies are those of the
     * integration force groups, evaluated in the Context, which is left
     * exactly as it was after each evaluation. Afterwards positions and
     * energies (kJ/mol) hold every chain's configuration and energy, and the
     * Context holds chain 0. Warm-up steps adapt the latent step size
     * towards the target.
     *
     * @return the latent step size after the steps
     */
    double run(OpenMM::ContextImpl& context, const FlowMoveSettings& settings,
               std::vector<std::vector<OpenMM::Vec3>>& positions, std::vector<double>& energies, int steps,
               std::optional<double> warmUpTarget, const std::function<void(ChainState&)>& afterMoves = nullptr);

    /** The random generator; exchanges draw from it too, so a seed fixes a whole run. */
    at::Generator& getGenerator() { return generator; }
    /** Per chain. */
    const std::vector<MoveStatistics>& getStatistics() const { return statistics; }
    void resetStatistics();

    /** Generator, statistics and warm-up position, for Context checkpoints. */
    void writeState(std::ostream& stream) const;
    void readState(std::istream& stream);

private:
    double runSteps(OpenMM::ContextImpl& context, const FlowMoveSettings& settings,
                    std::vector<std::vector<OpenMM::Vec3>>& positions, std::vector<double>& energies, int steps,
                    std::optional<double> warmUpTarget, const std::function<void(ChainState&)>& afterMoves);
    /** One flow move of every chain; returns the (adapted, during warm-up) latent step size. */
    double moveChains(OpenMM::ContextImpl& context, ChainState& state, const FlowMoveSettings& settings,
                      const at::Tensor& temperatures, double sigma, std::optional<double> warmUpTarget);
    /** Potential energies (kJ/mol) [B] of x [B, N, 3] in the Context, +inf where OpenMM fails; the Context is restored. */
    at::Tensor energiesInContext(OpenMM::ContextImpl& context, const at::Tensor& x, int forceGroups);

    std::unique_ptr<ContextAccess> access;
    std::unique_ptr<LatentMoveEngine> engine;
    at::Generator generator;
    std::vector<MoveStatistics> statistics;
    long long warmUpSteps = 0;  // adaptation steps since the current warm-up began
    std::string who;
};

} // namespace OpenMMBG

#endif
