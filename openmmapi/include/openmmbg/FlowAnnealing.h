#ifndef OPENMMBG_FLOWANNEALING_H_
#define OPENMMBG_FLOWANNEALING_H_

#include "openmmbg/FlowTrainer.h"

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace OpenMMBG {

/**
 * Temperature annealing of a flow on its own samples (after Schopmans and
 * Friederich 2024, TA-BG; docs/math.md, "Annealing"): the flow's density
 * at its reference temperature, first fitted to a hotter Boltzmann
 * distribution (e.g. by maximum likelihood on MD frames of a high
 * temperature), is carried down a temperature ladder without data. At each
 * temperature T_k of the ladder, `samples` configurations are drawn from
 * the flow, weighted by pi_{T_k}(x) / q(x), and the flow trains `stage` by
 * weighted maximum likelihood on them (FlowTrainer::setData with weights).
 * Steps should be small enough that the flow's samples keep a useful
 * effective sample size at the next temperature; the reported ESS says
 * whether they did.
 */
struct AnnealingSchedule {
    /** K, in the order visited (normally decreasing); the last is the target. Repeating it refines there. */
    std::vector<double> temperatures;
    int64_t samples = 20000;  // flow samples drawn per temperature
    /** The weighted-ML stage run at each temperature; its name gets "@<T>K" and the step's index. */
    TrainingStage stage;
    /**
     * Optional [N, 3] or [1, N, 3] configuration (nm): samples with a
     * stereocentre of another handedness than here weigh 0, as in the
     * samplers' target (Stereochemistry).
     */
    at::Tensor stereoReference;
    uint64_t seed = 1;  // of the flow samples
};

/** What one temperature of the ladder did. */
struct AnnealingStep {
    double temperature = 0;         // K, the samples were weighted for
    double essFraction = 0;         // Kish ESS / N of their weights, before training at it
    double zeroWeightFraction = 0;  // out of domain, non-finite energy or other handedness
    TrainingSummary training;
};

/**
 * Runs the schedule with `trainer` (its model is trained in place; its
 * training data is replaced by each temperature's weighted samples) and
 * `energy` (its temperature is changed). `report`, if set, is called after
 * each temperature. Throws OpenMMException for an empty or non-positive
 * ladder, fewer samples than two, or a step whose samples all weigh 0.
 */
std::vector<AnnealingStep> annealFlow(FlowTrainer& trainer, OpenMMEnergy& energy, const AnnealingSchedule& schedule,
                                      const std::function<void(const AnnealingStep&)>& report = nullptr);

} // namespace OpenMMBG

#endif
