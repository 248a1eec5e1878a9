#ifndef OPENMMBG_FLOWMOVEINTEGRATOR_H_
#define OPENMMBG_FLOWMOVEINTEGRATOR_H_

#include "openmmbg/FlowModel.h"

#include <openmm/Integrator.h>
#include <openmm/Kernel.h>

#include <memory>
#include <optional>
#include <string>

namespace OpenMMBG {

class FlowMoveKernel;

/**
 * What LatentMetropolisIntegrator and TSFParallelTemperingIntegrator share:
 * Monte Carlo moves proposed by a flow and accepted by an exact Metropolis
 * test (docs/math.md, "Monte Carlo moves"). Each move proposes either a
 * latent random walk v' = v + sigma xi (after refreshing the flow's
 * auxiliary momenta) or, with the independence probability, an independent
 * draw v' from the flow's prior. Independence proposals are drawn ahead in
 * blocks (setIndependenceBlockSize), one batched flow call per block.
 *
 * The flow: the integrator keeps its own copy of the FlowModel, made when it
 * is constructed, and never changes it; training the model passed in further
 * does not change the integrator's moves. Each Context's kernel works on its
 * own copy of that, made when the Context is created (on a GPU, on the
 * device). FlowModel copies share their networks, so clone() the result of
 * getFlowModel() before training it. The same holds on every platform.
 *
 * Energies: moves evaluate the potential energy of the integration force
 * groups (setIntegrationForceGroups, all by default) in the integrator's own
 * Context, with the Context's global parameters, on every platform.
 *
 * A rejected move leaves the Context exactly as it was. Velocities and the
 * simulation time never change; steps advance the Context's step count, as
 * MD steps do. The external coordinates (position and orientation of the
 * molecule) stay fixed. Systems with constraints, virtual sites or periodic
 * boundary conditions are refused when the Context is created.
 *
 * State: the kernel of each Context owns the random generator, the move
 * statistics and (for parallel tempering) the replicas; Context checkpoints
 * (Context::createCheckpoint) save and restore all of it, so that a run
 * continues bit for bit. XML serialization records the integrator's
 * definition (parameters, seed, flow), not that state, like OpenMM's own
 * integrators.
 */
class FlowMoveIntegrator : public OpenMM::Integrator {
public:
    ~FlowMoveIntegrator() override;

    /** The integrator's own copy of the flow (clone() it to train or change it). */
    const FlowModel& getFlowModel() const { return *model; }
    /** sigma of the latent random walk (>= 0). */
    double getLatentStepSize() const { return latentStepSize; }
    void setLatentStepSize(double sigma);
    /** Probability that a flow move is an independence proposal, in [0, 1]. */
    double getIndependenceProbability() const { return independenceProbability; }
    void setIndependenceProbability(double probability);
    /**
     * Independence proposals drawn ahead per chain by one batched flow call
     * (>= 1, default 64). They do not depend on the chain, so the block size
     * changes the random numbers a run uses but not its law; 1 draws each
     * proposal when it is used. A chain whose temperature changes draws a new block.
     */
    int getIndependenceBlockSize() const { return independenceBlockSize; }
    void setIndependenceBlockSize(int size);
    /** 0 (default): a different random seed each time the integrator is bound to a Context. */
    int getRandomNumberSeed() const { return randomNumberSeed; }
    void setRandomNumberSeed(int seed) { randomNumberSeed = seed; }
    /** Reject moves that change the handedness of a stereocentre (default true); set before creating the Context. */
    bool getCheckStereochemistry() const { return checkStereochemistry; }
    void setCheckStereochemistry(bool check);

    /** Performs `steps` steps. */
    void step(int steps) override;
    /**
     * Warm-up: `steps` steps during which the latent step size adapts towards
     * `targetAcceptance` of the random-walk moves (Robbins-Monro on log sigma).
     * The statistics are reset afterwards; production steps never adapt, and
     * warm-up steps do not count in the Context's step count.
     */
    void warmUp(int steps, double targetAcceptance = 0.3);
    /** Clears the move (and exchange) statistics; nothing to clear before a Context exists. */
    void resetStatistics();

protected:
    /**
     * @param model      the integrator's copy of the flow (callers pass a clone)
     * @param className  names the integrator in error messages
     */
    FlowMoveIntegrator(FlowModel model, double latentStepSize, double independenceProbability,
                       const std::string& className);

    const std::string& getClassName() const { return className; }
    /** Throws unless the integrator is bound to a Context. */
    void checkBound() const;
    /** This integrator's kernel, as its own kernel class; throws unless bound. */
    template <class KernelType>
    KernelType& getKernel() {
        checkBound();
        return kernel.getAs<KernelType>();
    }
    template <class KernelType>
    const KernelType& getKernel() const {
        checkBound();
        return kernel.getAs<KernelType>();
    }

    void initialize(OpenMM::ContextImpl& context) override;
    void cleanup() override;
    std::vector<std::string> getKernelNames() override;
    double computeKineticEnergy() override;
    bool kineticEnergyRequiresForce() const override { return false; }
    void createCheckpoint(std::ostream& stream) const override;
    void loadCheckpoint(std::istream& stream) override;

private:
    virtual std::string getKernelName() const = 0;
    /** Calls the typed initialize() of this integrator's kernel. */
    virtual void initializeKernel(const OpenMM::System& system) = 0;
    /** Runs the kernel: returns the latent step size after the steps. */
    double run(int steps, std::optional<double> warmUpTarget);

    std::shared_ptr<const FlowModel> model;
    std::string className;
    double latentStepSize, independenceProbability;
    int independenceBlockSize = 64;
    int randomNumberSeed = 0;
    bool checkStereochemistry = true;
    OpenMM::Kernel kernel;
};

} // namespace OpenMMBG

#endif
