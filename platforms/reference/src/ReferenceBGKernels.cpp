#include "ReferenceBGKernels.h"

#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/internal/IntegratorSupport.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

using namespace OpenMM;

namespace OpenMMBG {

void ReferenceIntegrateLatentMetropolisStepKernel::initialize(const System&, LatentMetropolisIntegrator& integrator) {
    engine = std::make_unique<LatentMoveEngine>(integrator.getFlowModel(), integrator.getCheckStereochemistry(),
                                                at::kCPU);
}

void ReferenceIntegrateLatentMetropolisStepKernel::execute(ContextImpl& context, LatentMetropolisIntegrator& integrator,
                                                           int steps, bool warmUp) {
    if (steps == 0)
        return;
    at::NoGradGuard noGrad;
    const int groups = integrator.getIntegrationForceGroups();
    // Read the Context afresh: MD or the user may have moved it since the last call.
    std::vector<Vec3> positions, trial;
    context.getPositions(positions);
    checkFinitePositions(positions, "LatentMetropolisIntegrator");
    const double energy = context.calcForcesAndEnergy(false, true, groups);
    if (!std::isfinite(energy))
        throw OpenMMException("LatentMetropolisIntegrator: the energy of the Context's configuration is not finite");
    ChainState state = engine->encode(positionsToTensor(positions), at::full({1}, energy, at::kDouble));
    if (!engine->hasStereoReference())
        engine->setStereoReference(state.x);
    if (!warmUp)
        warmUpSteps = 0;
    at::Generator& generator = integrator.getGenerator();
    MoveStatistics& statistics = integrator.getMutableStatistics();
    for (int step = 0; step < steps; step++) {
        context.updateContextState();
        const at::Tensor temperature = at::full({1}, integrator.getTemperature(), at::kDouble);
        LatentProposal proposal = engine->propose(state, temperature, integrator.getLatentStepSize(),
                                                  integrator.getIndependenceProbability(), generator);
        double proposedEnergy = std::numeric_limits<double>::infinity();
        const bool evaluate = proposal.valid[0].item<bool>();
        if (evaluate) {
            tensorToPositions(proposal.x, trial);
            context.setPositions(trial);
            try {
                proposedEnergy = context.calcForcesAndEnergy(false, true, groups);
            } catch (const std::exception&) {
                // A failure inside OpenMM rejects the move like an infinite energy.
            }
        }
        const at::Tensor energies = at::full({1}, proposedEnergy, at::kDouble);
        at::Tensor probability;
        const at::Tensor accepted = engine->decide(state, proposal, energies, temperature, generator, &probability);
        if (accepted[0].item<bool>()) {
            positions.swap(trial);
            engine->update(state, proposal, energies, accepted);
        } else if (evaluate) {
            context.setPositions(positions);  // bit for bit what it was
        }
        LatentMoveEngine::count(statistics, proposal, energies, accepted, 0);
        if (warmUp && !proposal.independence[0].item<bool>())
            integrator.setLatentStepSize(LatentMoveEngine::adaptStepSize(
                integrator.getLatentStepSize(), probability[0].item<double>(), integrator.getWarmUpTarget(),
                warmUpSteps++));
    }
}

} // namespace OpenMMBG
