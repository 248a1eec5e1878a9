#ifndef OPENMMBG_LATENTMETROPOLISINTEGRATOR_H_
#define OPENMMBG_LATENTMETROPOLISINTEGRATOR_H_

#include "openmmbg/FlowMoveIntegrator.h"
#include "openmmbg/MoveStatistics.h"

#include <string>

namespace OpenMMBG {

/**
 * Boltzmann-generator Monte Carlo at one temperature as an OpenMM Integrator
 * (docs/math.md, "Monte Carlo moves"): each step is one flow move of the
 * configuration the Context holds, a latent random walk or an independence
 * proposal, accepted or rejected by the exact Metropolis test. Everything
 * FlowMoveIntegrator says holds: the integrator's own copy of the flow, the
 * integration force groups, a rejected move leaving the Context exactly as it
 * was, velocities and time untouched, so that it composes with MD in a
 * CompoundIntegrator.
 */
class LatentMetropolisIntegrator : public FlowMoveIntegrator {
public:
    /**
     * @param model                    the flow (copied); its System fingerprint must match the Context's System
     * @param temperature              K
     * @param latentStepSize           sigma of the latent random walk (>= 0)
     * @param independenceProbability  probability that a step is an independence proposal, in [0, 1]
     */
    LatentMetropolisIntegrator(const FlowModel& model, double temperature, double latentStepSize,
                               double independenceProbability = 0.0);
    /** The same with the flow read from a file written by FlowModel::save(). */
    LatentMetropolisIntegrator(const std::string& flowFile, double temperature, double latentStepSize,
                               double independenceProbability = 0.0);

    double getTemperature() const { return temperature; }
    void setTemperature(double temperature);

    /** Moves proposed and accepted since the last reset (none before a Context exists). */
    MoveStatistics getStatistics() const;
    /** Accepted / proposed moves of one kind (0 if none proposed). */
    double getAcceptanceRate(MoveKind kind) const { return getStatistics().acceptanceRate(kind); }
    /** Accepted / proposed over both kinds. */
    double getAcceptanceRate() const { return getStatistics().acceptanceRate(); }

private:
    LatentMetropolisIntegrator(FlowModel&& model, double temperature, double latentStepSize,
                               double independenceProbability, bool);
    std::string getKernelName() const override;
    void initializeKernel(const OpenMM::System& system) override;

    double temperature;
};

} // namespace OpenMMBG

#endif
