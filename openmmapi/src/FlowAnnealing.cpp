#include "openmmbg/FlowAnnealing.h"

#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/Stereochemistry.h"
#include "openmmbg/tools/Metrics.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <memory>
#include <sstream>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

void checkSchedule(const AnnealingSchedule& schedule) {
    if (schedule.temperatures.empty())
        throw OpenMMException("annealFlow: the schedule has no temperatures");
    for (double t : schedule.temperatures)
        if (!(t > 0) || !std::isfinite(t))
            throw OpenMMException("annealFlow: temperatures must be positive and finite, got " + std::to_string(t));
    if (schedule.samples < 2)
        throw OpenMMException("annealFlow: need at least 2 samples per temperature");
}

std::string stageName(const std::string& base, size_t index, double temperature) {
    std::ostringstream name;
    name << base << "@" << std::lround(temperature) << "K#" << index;
    return name.str();
}

} // namespace

std::vector<AnnealingStep> annealFlow(FlowTrainer& trainer, OpenMMEnergy& energy, const AnnealingSchedule& schedule,
                                      const std::function<void(const AnnealingStep&)>& report) {
    checkSchedule(schedule);
    const FlowModel& model = trainer.getModel();
    const double referenceTemperature = model.getReferenceTemperature();
    std::unique_ptr<Stereochemistry> stereo;
    at::Tensor handedness;
    if (schedule.stereoReference.defined()) {
        stereo = std::make_unique<Stereochemistry>(model.getNumParticles(), model.getFingerprint().bonds);
        at::Tensor reference = schedule.stereoReference.to(at::kCPU).to(at::kDouble).reshape({1, -1, 3});
        if (reference.size(1) != model.getNumParticles())
            throw OpenMMException("annealFlow: the stereo reference has " + std::to_string(reference.size(1))
                                  + " particles, the flow " + std::to_string(model.getNumParticles()));
        handedness = stereo->referenceSigns(reference, "annealFlow's stereo reference");
    }
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(schedule.seed);
    std::vector<AnnealingStep> steps;
    for (size_t k = 0; k < schedule.temperatures.size(); k++) {
        AnnealingStep step;
        step.temperature = schedule.temperatures[k];
        at::Tensor x, logWeights;
        {
            at::NoGradGuard noGrad;
            // The density being annealed is the flow's at its reference temperature (tau = 1).
            FlowSample sample = model.sample(schedule.samples, referenceTemperature, generator);
            energy.setTemperature(step.temperature);
            x = sample.x.to(at::kCPU);
            EnergyBatch batch = energy.evaluate(x);
            at::Tensor valid = batch.finite;
            if (stereo)
                valid = valid & stereo->matches(x, handedness);
            logWeights = model.logImportanceWeights(sample, batch.reducedEnergy, referenceTemperature, valid);
        }
        at::Tensor finite = at::isfinite(logWeights);
        step.zeroWeightFraction = 1.0 - finite.to(at::kDouble).mean().item<double>();
        if (!finite.any().item<bool>())
            throw OpenMMException("annealFlow: every flow sample weighs 0 at " + std::to_string(step.temperature)
                                  + " K (out of the domain, non-finite energies or the other handedness)");
        step.essFraction = kishEffectiveSampleSize(logWeights);
        trainer.setData(x, referenceTemperature, logWeights);
        TrainingStage stage = schedule.stage;
        stage.name = stageName(schedule.stage.name, k, step.temperature);
        stage.validationInterval = 0;  // no held-out frames: the data are the flow's own samples
        step.training = trainer.train(stage);
        steps.push_back(step);
        if (report)
            report(step);
    }
    return steps;
}

} // namespace OpenMMBG
