#ifndef OPENMMBG_LATENTMETROPOLISINTEGRATOR_H_
#define OPENMMBG_LATENTMETROPOLISINTEGRATOR_H_

#include "openmmbg/FlowModel.h"
#include "openmmbg/MoveStatistics.h"

#include <openmm/Integrator.h>
#include <openmm/Kernel.h>

#include <memory>
#include <string>

namespace OpenMMBG {

/**
 * Boltzmann-generator Monte Carlo as an OpenMM Integrator (ALGORITHMS.md,
 * "Monte Carlo moves"). Each step refreshes the auxiliary momenta, maps the
 * Context's configuration into the flow's latent space and proposes either a
 * latent random walk v' = v + sigma xi or, with probability
 * independenceProbability, an independent draw v' ~ N(0, tau I); the exact
 * Metropolis test accepts or rejects it. The external coordinates (position
 * and orientation of the molecule) stay fixed; proposals outside the domain,
 * that flip a stereocentre, or whose energy is not finite are rejected.
 *
 * A rejected move leaves the Context exactly as it was. Velocities and the
 * simulation time are never changed, so the integrator composes with MD in a
 * CompoundIntegrator. Systems with constraints, virtual sites or periodic
 * boundary conditions are refused when the Context is created.
 */
class LatentMetropolisIntegrator : public OpenMM::Integrator {
public:
    /**
     * @param model                    the flow; its System fingerprint must match the Context's System
     * @param temperature              K
     * @param latentStepSize           sigma of the latent random walk (>= 0)
     * @param independenceProbability  probability that a step is an independence proposal, in [0, 1]
     */
    LatentMetropolisIntegrator(const FlowModel& model, double temperature, double latentStepSize,
                               double independenceProbability = 0.0);
    /** The same with the flow read from a file written by FlowModel::save(). */
    LatentMetropolisIntegrator(const std::string& flowFile, double temperature, double latentStepSize,
                               double independenceProbability = 0.0);
    ~LatentMetropolisIntegrator() override;

    double getTemperature() const { return temperature; }
    void setTemperature(double temperature);
    double getLatentStepSize() const { return latentStepSize; }
    void setLatentStepSize(double sigma);
    double getIndependenceProbability() const { return independenceProbability; }
    void setIndependenceProbability(double probability);
    /** 0 (default): a different random seed each time the integrator is bound to a Context. */
    int getRandomNumberSeed() const { return randomNumberSeed; }
    void setRandomNumberSeed(int seed);
    /** Reject moves that change the handedness of a stereocentre (default true). */
    bool getCheckStereochemistry() const { return checkStereochemistry; }
    void setCheckStereochemistry(bool check);
    const FlowModel& getFlowModel() const { return *model; }

    /** Performs `steps` Monte Carlo moves. */
    void step(int steps) override;
    /**
     * Warm-up: `steps` moves during which the latent step size adapts towards
     * `targetAcceptance` of the random-walk moves (Robbins-Monro on log sigma).
     * The statistics are reset afterwards; production steps never adapt.
     */
    void warmUp(int steps, double targetAcceptance = 0.3);
    /** The acceptance rate the current or last warm-up aims at. */
    double getWarmUpTarget() const { return warmUpTarget; }

    const MoveStatistics& getStatistics() const { return statistics; }
    /** Accepted / proposed moves of one kind, over all steps since the last reset (0 if none proposed). */
    double getAcceptanceRate(MoveKind kind) const { return statistics.acceptanceRate(kind); }
    /** Accepted / proposed over both kinds. */
    double getAcceptanceRate() const { return statistics.acceptanceRate(); }
    void resetStatistics() { statistics = MoveStatistics(); }

    // For kernels and serialization.
    MoveStatistics& getMutableStatistics() { return statistics; }
    at::Generator& getGenerator() { return *generator; }
    /** The random state (advances as moves run), e.g. to store it. */
    at::Tensor getRandomState() const;
    void setRandomState(const at::Tensor& state);

protected:
    void initialize(OpenMM::ContextImpl& context) override;
    void cleanup() override;
    std::vector<std::string> getKernelNames() override;
    void stateChanged(OpenMM::State::DataType changed) override;
    double computeKineticEnergy() override;
    bool kineticEnergyRequiresForce() const override { return false; }
    void createCheckpoint(std::ostream& stream) const override;
    void loadCheckpoint(std::istream& stream) override;

private:
    void run(int steps, bool warmUp);
    static void checkParameters(double temperature, double sigma, double probability);

    std::shared_ptr<FlowModel> model;
    double temperature, latentStepSize, independenceProbability;
    double warmUpTarget = 0.3;
    int randomNumberSeed = 0;
    bool checkStereochemistry = true;
    MoveStatistics statistics;
    std::unique_ptr<at::Generator> generator;
    OpenMM::Kernel kernel;
};

} // namespace OpenMMBG

#endif
