#include "openmmbg/FlowTrainer.h"

#include "openmmbg/tools/DCDFile.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/ComputeSettings.h"
#include "openmmbg/internal/MLP.h"
#include "openmmbg/internal/Tempering.h"
#include "openmmbg/internal/TensorChecks.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <openmm/OpenMMException.h>
#include <torch/optim/adam.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

double cosineLearningRate(const TrainingStage& stage, int64_t step) {
    if (stage.finalLearningRate < 0 || stage.steps <= 1)
        return stage.learningRate;
    double progress = (double) (step - 1) / (double) (stage.steps - 1);
    return stage.finalLearningRate
           + 0.5 * (stage.learningRate - stage.finalLearningRate) * (1 + std::cos(M_PI * progress));
}

double lambdaAt(const TrainingStage& stage, int64_t step) {
    if (stage.steps <= 1)
        return stage.lambdaEnd;
    return stage.lambdaStart + (stage.lambdaEnd - stage.lambdaStart) * (double) (step - 1) / (double) (stage.steps - 1);
}

/** -mean log q_T(x) of frames [F, N, 3] in nats, in chunks of 1000 (TSF momenta from `generator`). */
double meanNegativeLogProb(const FlowModel& model, const at::Tensor& frames, double temperature,
                           at::Generator& generator) {
    at::NoGradGuard noGrad;
    double total = 0;
    const int64_t chunk = 1000;
    for (int64_t begin = 0; begin < frames.size(0); begin += chunk) {
        at::Tensor part = frames.narrow(0, begin, std::min(chunk, frames.size(0) - begin)).to(model.getDevice());
        total += model.logProb(part, temperature, generator).sum().item<double>();
    }
    return -total / (double) frames.size(0);
}

} // namespace

std::string describeProgress(const TrainingProgress& p) {
    char buffer[512];
    int n = std::snprintf(buffer, sizeof(buffer), "[%s] step %lld/%lld  loss %.4f", p.stage.c_str(), (long long) p.step,
                          (long long) p.stageSteps, p.loss);
    std::string line(buffer, n);
    if (!std::isnan(p.lossML)) {
        n = std::snprintf(buffer, sizeof(buffer), "  ML %.4f", p.lossML);
        line.append(buffer, n);
    }
    if (!std::isnan(p.lossKL)) {
        n = std::snprintf(buffer, sizeof(buffer), "  KL %.4f  T %.1f K  <u> %.3f  ESS %.4f", p.lossKL, p.temperature,
                          p.meanReducedEnergy, p.essFraction);
        line.append(buffer, n);
    }
    if (!std::isnan(p.validationNLL)) {
        n = std::snprintf(buffer, sizeof(buffer), "  validation NLL %.4f (best %.4f)%s", p.validationNLL,
                          p.bestValidationNLL, p.stoppedEarly ? ", stopping early" : "");
        line.append(buffer, n);
    }
    n = std::snprintf(buffer, sizeof(buffer), "  lambda %.3f  lr %.2e  %.1f steps/s", p.lambda, p.learningRate,
                      p.stepsPerSecond);
    line.append(buffer, n);
    if (p.skippedSteps > 0)
        line += "  skipped " + std::to_string(p.skippedSteps);
    return line;
}

class FlowTrainer::Impl {
public:
    Impl(const FlowModel& model, const TrainerOptions& options)
        : model(model), options(options), generator(at::make_generator<at::CPUGeneratorImpl>(options.seed)) {
        keepFreedMemoryInHeap();
        setComputeThreads(options.numThreads);
        torch::optim::AdamOptions adam(1e-3);
        optimizer = std::make_unique<torch::optim::Adam>(model.getFlow().parameters(), adam);
    }

    void checkStage(const TrainingStage& stage) const {
        if (stage.steps < 0 || stage.batchSize < 1)
            throw OpenMMException("FlowTrainer: a stage needs steps >= 0 and batchSize >= 1");
        if (!(stage.learningRate > 0))
            throw OpenMMException("FlowTrainer: the learning rate must be positive");
        for (double lambda : {stage.lambdaStart, stage.lambdaEnd})
            if (!(lambda >= 0 && lambda <= 1))
                throw OpenMMException("FlowTrainer: lambda must lie in [0, 1], got " + std::to_string(lambda));
        bool needsData = stage.lambdaStart < 1 || stage.lambdaEnd < 1;
        bool needsEnergy = stage.lambdaStart > 0 || stage.lambdaEnd > 0;
        if (needsData && !data.defined())
            throw OpenMMException("FlowTrainer: stage '" + stage.name
                                  + "' has a maximum-likelihood part (lambda < 1) but no data was set (setData)");
        if (needsEnergy && !energy)
            throw OpenMMException("FlowTrainer: stage '" + stage.name
                                  + "' has a KL part (lambda > 0) but no energy bridge was set (setEnergy)");
        if (stage.temperature < 0 || stage.temperingStart < 0)
            throw OpenMMException("FlowTrainer: temperatures must be positive");
        if (stage.temperingStart > 0 && stage.temperingStart < klTemperature(stage))
            throw OpenMMException("FlowTrainer: temperingStart must be above the stage's temperature");
        if (stage.temperingStart > 0 && (!(stage.temperingMaxRatio > 1) || stage.temperingInterval < 1))
            throw OpenMMException("FlowTrainer: tempering needs temperingMaxRatio > 1 and temperingInterval >= 1");
        if (stage.validationInterval < 0 || stage.validationPatience < 0)
            throw OpenMMException("FlowTrainer: validationInterval and validationPatience must not be negative");
        if (stage.validationInterval > 0 && !validation.defined())
            throw OpenMMException("FlowTrainer: stage '" + stage.name
                                  + "' checks a validation NLL but no validation frames were set (setValidationData)");
        if (stage.validationInterval > 0 && !data.defined())
            throw OpenMMException("FlowTrainer: stage '" + stage.name
                                  + "' checks a validation NLL at the data's temperature but no data was set (setData)");
    }

    /**
     * -mean log q(x) of the validation frames at the data's temperature. TSF
     * momenta come from a generator of their own, the same at every check, so
     * that checks compare like with like and training's random numbers are untouched.
     */
    double validationNLL() {
        at::Generator momenta = at::make_generator<at::CPUGeneratorImpl>(options.seed + 1);
        return meanNegativeLogProb(model, validation, dataTemperature, momenta);
    }

    /** A validation check at this step of `stage`: fills the validation fields of `progress`. */
    void checkValidation(const TrainingStage& stage, int64_t step, TrainingProgress& progress) {
        EarlyStopping& record = earlyStopping[stage.name];
        progress.validationNLL = validationNLL();
        std::vector<at::Tensor> parameters = model.getFlow().parameters();
        if (progress.validationNLL < record.best) {
            record.best = progress.validationNLL;
            record.checksWithoutImprovement = 0;
            record.bestParameters.clear();
            for (const at::Tensor& p : parameters)
                record.bestParameters.push_back(p.detach().clone());
        } else {
            record.checksWithoutImprovement++;
        }
        progress.bestValidationNLL = record.best;
        progress.stoppedEarly = stage.validationPatience > 0 && record.checksWithoutImprovement >= stage.validationPatience
                                && step < stage.steps;
        if ((step == stage.steps || progress.stoppedEarly) && !record.bestParameters.empty()) {
            at::NoGradGuard noGrad;
            for (size_t i = 0; i < parameters.size(); i++)
                parameters[i].copy_(record.bestParameters[i]);
        }
    }

    double klTemperature(const TrainingStage& stage) const {
        return stage.temperature > 0 ? stage.temperature : model.getReferenceTemperature();
    }

    /** The KL part of one step; fills the KL fields of `progress`. Returns lossKL + penalty (differentiable). */
    at::Tensor klLoss(const TrainingStage& stage, double temperature, TrainingProgress& progress,
                      at::Tensor& logWeights, at::Tensor& reduced, at::Tensor& rest) {
        const double tau = model.tau(temperature);
        if (energy->getTemperature() != temperature)
            energy->setTemperature(temperature);
        FlowSample sample =
            model.decode(model.drawLatent(stage.batchSize, temperature, generator).to(model.getDevice()), temperature);
        at::Tensor u = energy->reducedEnergy(sample.x);
        at::Tensor finite = at::isfinite(u);
        const int n = model.getNumCoordinates();
        at::Tensor y = model.denormalize(sample.gamma.narrow(1, 0, n));
        at::Tensor violation = model.getCoordinates().domainViolation(y);
        // -log of the target without -u: log J - |p|^2 / (2 tau).
        rest = sample.logJ;
        if (model.hasMomenta()) {
            at::Tensor p = sample.gamma.narrow(1, n, n);
            rest = rest - (p * p).sum(1) / (2 * tau);
        }
        at::Tensor perSample = sample.logq - (-u + rest);
        at::Tensor count = finite.sum().clamp_min(1).to(at::kDouble);
        at::Tensor loss = at::where(finite, perSample, at::zeros_like(perSample)).sum() / count;
        at::Tensor penalty = options.domainPenalty * violation.mean();

        at::Tensor detachedU = u.detach();
        logWeights = at::where(finite & sample.inDomain, (-detachedU + rest - sample.logq).detach(),
                               at::full_like(detachedU, -std::numeric_limits<double>::infinity()));
        reduced = detachedU;
        rest = (rest - sample.logq).detach();
        progress.lossKL = loss.item<double>();
        progress.temperature = temperature;
        progress.meanReducedEnergy =
            at::where(finite, detachedU, at::zeros_like(detachedU)).sum().item<double>() / count.item<double>();
        progress.essFraction = kishEffectiveSampleSize(logWeights);
        progress.fractionNonFinite = 1.0 - finite.to(at::kDouble).mean().item<double>();
        progress.fractionOutOfDomain = 1.0 - sample.inDomain.to(at::kDouble).mean().item<double>();
        return loss + penalty;
    }

    /**
     * The lowest temperature in [target, current] at which the current batch,
     * reweighted, has a KL estimate <= threshold (bisection on beta).
     */
    double lowerTemperature(double current, double target, double threshold, const at::Tensor& reduced,
                            const at::Tensor& rest) {
        // beta rises by the factor current / T' with T' >= target; the full factor lands on target exactly.
        const double largest = current / target;
        const double factor = largestTemperingFactor(reduced, rest, largest, threshold);
        return factor == largest ? target : current / factor;
    }

    /** Scales the gradients to a global norm <= clip; returns the norm before (non-finite if any entry is). */
    double clipGradients() {
        return clipGradientNorm(model.getFlow().parameters(), options.gradientClip);
    }

    void setLearningRate(double lr) {
        for (auto& group : optimizer->param_groups())
            static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    }

    FlowModel model;
    TrainerOptions options;
    at::Generator generator;
    std::unique_ptr<torch::optim::Adam> optimizer;
    at::Tensor data;
    double dataTemperature = 0;
    at::Tensor dataProbabilities;  // [F] batch-drawing probabilities of weighted data; undefined: uniform
    std::shared_ptr<OpenMMEnergy> energy;
    std::map<std::string, int64_t> completed;
    std::map<std::string, double> temperingTemperature;
    int64_t skipped = 0;
    at::Tensor validation;  // [F, N, 3] held-out frames at dataTemperature; undefined: none
    struct EarlyStopping {
        double best = std::numeric_limits<double>::infinity();
        int64_t checksWithoutImprovement = 0;
        std::vector<at::Tensor> bestParameters;
    };
    std::map<std::string, EarlyStopping> earlyStopping;  // per stage
};

FlowTrainer::FlowTrainer(const FlowModel& model, const TrainerOptions& options)
    : impl(std::make_unique<Impl>(model, options)) {
    if (options.logInterval < 1)
        throw OpenMMException("FlowTrainer: logInterval must be at least 1");
}

FlowTrainer::~FlowTrainer() = default;

void FlowTrainer::setData(const at::Tensor& frames, double temperature) {
    checkFrames(frames, impl->model.getNumParticles(), "FlowTrainer::setData");
    impl->model.tau(temperature);  // checks the temperature
    impl->data = frames.detach().to(at::kCPU).contiguous();
    impl->dataTemperature = temperature;
    impl->dataProbabilities = at::Tensor();
}

void FlowTrainer::setData(const at::Tensor& frames, double temperature, const at::Tensor& logWeights) {
    const std::string who = "FlowTrainer::setData";
    checkConfigurationTensor(frames, impl->model.getNumParticles(), who);  // before frames.size(0) below
    if (!logWeights.defined() || logWeights.dim() != 1 || logWeights.size(0) != frames.size(0))
        throw OpenMMException(who + ": need one log-weight per frame");
    at::Tensor lw = logWeights.detach().to(at::kCPU).to(at::kDouble);
    if (at::isnan(lw).any().item<bool>() || (lw == INFINITY).any().item<bool>())
        throw OpenMMException(who + ": log-weights must not be NaN or +inf");
    if (!at::isfinite(lw).any().item<bool>())
        throw OpenMMException(who + ": every weight is zero");
    setData(frames, temperature);
    impl->dataProbabilities = at::softmax(lw, 0).contiguous();
}

void FlowTrainer::setData(const std::string& dcdPath, double temperature) {
    setData(readDcd(dcdPath, impl->model.getNumParticles()), temperature);
}

void FlowTrainer::setValidationData(const at::Tensor& frames) {
    checkFrames(frames, impl->model.getNumParticles(), "FlowTrainer::setValidationData");
    impl->validation = frames.detach().to(at::kCPU).contiguous();
}

void FlowTrainer::setEnergy(std::shared_ptr<OpenMMEnergy> energy) {
    if (!energy)
        throw OpenMMException("FlowTrainer::setEnergy: no energy bridge given");
    if (energy->getNumParticles() != impl->model.getNumParticles())
        throw OpenMMException("FlowTrainer::setEnergy: the bridge's System has " + std::to_string(energy->getNumParticles())
                              + " particles, the flow " + std::to_string(impl->model.getNumParticles()));
    impl->model.checkCompatible(energy->getSystem());
    impl->energy = std::move(energy);
}

TrainingSummary FlowTrainer::train(const TrainingStage& stage) {
    impl->checkStage(stage);
    const double target = impl->klTemperature(stage);
    if (!impl->temperingTemperature.count(stage.name))
        impl->temperingTemperature[stage.name] = stage.temperingStart > 0 ? stage.temperingStart : target;
    double& temperature = impl->temperingTemperature[stage.name];
    int64_t& done = impl->completed[stage.name];

    TrainingSummary summary;
    auto stageBegin = std::chrono::steady_clock::now();
    auto windowBegin = stageBegin;
    int64_t windowSteps = 0;
    for (int64_t step = done + 1; step <= stage.steps; step++) {
        TrainingProgress progress;
        progress.stage = stage.name;
        progress.step = step;
        progress.stageSteps = stage.steps;
        progress.lambda = lambdaAt(stage, step);
        progress.learningRate = cosineLearningRate(stage, step);
        impl->setLearningRate(progress.learningRate);
        impl->optimizer->zero_grad();

        at::Tensor loss = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(impl->model.getDevice()));
        if (progress.lambda < 1) {
            at::Tensor index = impl->dataProbabilities.defined()
                ? at::multinomial(impl->dataProbabilities, stage.batchSize, true, impl->generator)
                : at::randint(impl->data.size(0), {stage.batchSize}, impl->generator, at::kLong);
            // Batches are drawn on the CPU (the same random numbers on every device) and moved to the weights.
            at::Tensor batch = impl->data.index_select(0, index).to(impl->model.getDevice());
            at::Tensor nll = -impl->model.logProb(batch, impl->dataTemperature, impl->generator).mean();
            progress.lossML = nll.item<double>();
            loss = loss + (1 - progress.lambda) * nll;
        }
        at::Tensor logWeights, reduced, rest;
        if (progress.lambda > 0)
            loss = loss + progress.lambda * impl->klLoss(stage, temperature, progress, logWeights, reduced, rest);
        progress.loss = loss.item<double>();
        if (!std::isfinite(progress.loss)) {
            impl->skipped++;
        } else {
            loss.backward();
            if (std::isfinite(impl->clipGradients()))
                impl->optimizer->step();
            else
                impl->skipped++;
        }
        impl->optimizer->zero_grad();
        if (stage.temperingStart > 0 && reduced.defined() && temperature > target
            && step % stage.temperingInterval == 0)
            temperature = impl->lowerTemperature(temperature, std::max(target, temperature / stage.temperingMaxRatio),
                                                 stage.temperingThreshold, reduced, rest);
        const bool validated = stage.validationInterval > 0
                               && (step % stage.validationInterval == 0 || step == stage.steps);
        if (validated)
            impl->checkValidation(stage, step, progress);
        done = progress.stoppedEarly ? stage.steps : step;
        windowSteps++;

        progress.skippedSteps = impl->skipped;
        // Checkpoint before reporting, so that a report that stops the run
        // (an exception in the callback) leaves this step's checkpoint behind.
        if (!impl->options.checkpointPath.empty()
            && (step % impl->options.checkpointInterval == 0 || step == stage.steps || progress.stoppedEarly))
            saveCheckpoint(impl->options.checkpointPath);
        if (step % impl->options.logInterval == 0 || step == stage.steps || validated) {
            auto now = std::chrono::steady_clock::now();
            progress.stepsPerSecond = windowSteps / std::chrono::duration<double>(now - windowBegin).count();
            windowBegin = now;
            windowSteps = 0;
            if (impl->options.printProgress) {
                std::printf("%s\n", describeProgress(progress).c_str());
                std::fflush(stdout);
            }
            if (impl->options.progress)
                impl->options.progress(progress);
        }
        summary.last = progress;
        if (progress.stoppedEarly)
            break;
    }
    summary.finalTemperature = temperature;
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stageBegin).count();
    return summary;
}

double FlowTrainer::testNLL(const at::Tensor& frames, double temperature) {
    checkConfigurationTensor(frames, impl->model.getNumParticles(), "FlowTrainer::testNLL");
    return meanNegativeLogProb(impl->model, frames, temperature, impl->generator);
}

void FlowTrainer::saveCheckpoint(const std::string& path) const {
    torch::serialize::OutputArchive archive;
    std::stringstream modelBytes;
    impl->model.save(modelBytes);
    archive.write("model", c10::IValue(modelBytes.str()));
    torch::serialize::OutputArchive optimizerArchive;
    impl->optimizer->save(optimizerArchive);
    archive.write("optimizer", optimizerArchive);
    archive.write("generator", impl->generator.get_state());
    std::string names;
    std::vector<int64_t> steps;
    std::vector<double> temperatures;
    for (const auto& entry : impl->completed) {
        names += entry.first + "\n";
        steps.push_back(entry.second);
        temperatures.push_back(impl->temperingTemperature.count(entry.first) ? impl->temperingTemperature.at(entry.first)
                                                                              : 0.0);
    }
    archive.write("stages", c10::IValue(names));
    archive.write("stage_steps", at::tensor(steps, at::kLong));
    archive.write("stage_temperatures", at::tensor(temperatures, at::kDouble));
    archive.write("skipped", c10::IValue(impl->skipped));
    std::string validationNames;
    std::vector<double> best;
    std::vector<int64_t> checks;
    int64_t index = 0;
    for (const auto& entry : impl->earlyStopping) {
        validationNames += entry.first + "\n";
        best.push_back(entry.second.best);
        checks.push_back(entry.second.checksWithoutImprovement);
        torch::serialize::OutputArchive parameters;
        for (size_t i = 0; i < entry.second.bestParameters.size(); i++)
            parameters.write(std::to_string(i), entry.second.bestParameters[i]);
        archive.write("validation_parameters_" + std::to_string(index++), parameters);
    }
    archive.write("validation_stages", c10::IValue(validationNames));
    archive.write("validation_best", at::tensor(best, at::kDouble));
    archive.write("validation_checks", at::tensor(checks, at::kLong));
    // Write to a temporary file first, so that a crash never leaves a half-written checkpoint.
    std::string temporary = path + ".partial";
    archive.save_to(temporary);
    if (std::rename(temporary.c_str(), path.c_str()) != 0)
        throw OpenMMException("FlowTrainer: cannot write the checkpoint '" + path + "'");
}

void FlowTrainer::loadCheckpoint(const std::string& path) {
    if (!std::ifstream(path))
        throw OpenMMException("FlowTrainer::loadCheckpoint: cannot open '" + path + "'");
    torch::serialize::InputArchive archive;
    c10::IValue value;
    FlowModel saved = impl->model;
    try {
        archive.load_from(path);
        archive.read("model", value);
        std::stringstream modelBytes(value.toStringRef());
        saved = FlowModel::load(modelBytes, "the checkpoint's model");
    } catch (const OpenMMException&) {
        throw;
    } catch (const std::exception& e) {
        throw OpenMMException("FlowTrainer::loadCheckpoint: '" + path + "' cannot be read (truncated or corrupt?)");
    }
    std::vector<at::Tensor> target = impl->model.getFlow().parameters(), source = saved.getFlow().parameters();
    bool same = target.size() == source.size() && saved.getFlow().getTypeName() == impl->model.getFlow().getTypeName();
    for (size_t i = 0; same && i < target.size(); i++)
        same = target[i].sizes().equals(source[i].sizes());
    if (!same)
        throw OpenMMException("FlowTrainer::loadCheckpoint: '" + path + "' holds another flow architecture");
    {
        at::NoGradGuard noGrad;
        for (size_t i = 0; i < target.size(); i++)
            target[i].copy_(source[i]);
    }
    torch::serialize::InputArchive optimizerArchive;
    archive.read("optimizer", optimizerArchive);
    impl->optimizer->load(optimizerArchive);
    at::Tensor state;
    archive.read("generator", state);
    impl->generator.set_state(state);
    archive.read("stages", value);
    std::istringstream names(value.toStringRef());
    at::Tensor steps, temperatures;
    archive.read("stage_steps", steps);
    archive.read("stage_temperatures", temperatures);
    impl->completed.clear();
    impl->temperingTemperature.clear();
    std::string name;
    for (int64_t i = 0; std::getline(names, name); i++) {
        impl->completed[name] = steps[i].item<int64_t>();
        if (temperatures[i].item<double>() > 0)
            impl->temperingTemperature[name] = temperatures[i].item<double>();
    }
    archive.read("skipped", value);
    impl->skipped = value.toInt();
    impl->earlyStopping.clear();
    if (archive.try_read("validation_stages", value)) {
        std::istringstream validationNames(value.toStringRef());
        at::Tensor best, checks;
        archive.read("validation_best", best);
        archive.read("validation_checks", checks);
        for (int64_t i = 0; std::getline(validationNames, name); i++) {
            Impl::EarlyStopping& record = impl->earlyStopping[name];
            record.best = best[i].item<double>();
            record.checksWithoutImprovement = checks[i].item<int64_t>();
            torch::serialize::InputArchive parameters;
            archive.read("validation_parameters_" + std::to_string(i), parameters);
            for (size_t p = 0; p < target.size(); p++) {
                at::Tensor tensor;
                if (!parameters.try_read(std::to_string(p), tensor))
                    break;
                record.bestParameters.push_back(tensor);
            }
        }
    }
}

const FlowModel& FlowTrainer::getModel() const {
    return impl->model;
}

int64_t FlowTrainer::getSkippedSteps() const {
    return impl->skipped;
}

int64_t FlowTrainer::getCompletedSteps(const std::string& stage) const {
    auto found = impl->completed.find(stage);
    return found == impl->completed.end() ? 0 : found->second;
}

} // namespace OpenMMBG
