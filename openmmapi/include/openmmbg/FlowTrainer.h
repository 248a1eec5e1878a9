#ifndef OPENMMBG_FLOWTRAINER_H_
#define OPENMMBG_FLOWTRAINER_H_

#include "openmmbg/FlowModel.h"
#include "openmmbg/OpenMMEnergy.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace OpenMMBG {

/** One progress report of FlowTrainer::train(). Losses are in nats per configuration. */
struct TrainingProgress {
    std::string stage;
    int64_t step = 0;             // within the stage, 1-based
    int64_t stageSteps = 0;
    double loss = 0;              // (1 - lambda) lossML + lambda lossKL (+ domain penalty)
    double lossML = NAN;          // test-NLL-style: -log q(x) including log J and the normalisation
    double lossKL = NAN;          // E_q[log q_tau(gamma) - l_T(gamma)]
    double lambda = 0;
    double temperature = 0;       // K, of the KL part
    double learningRate = 0;
    double meanReducedEnergy = NAN;  // of the flow's samples at `temperature`
    double essFraction = NAN;        // Kish ESS / N of those samples
    double fractionOutOfDomain = 0;  // of those samples
    double fractionNonFinite = 0;    // energies flagged by the bridge
    int64_t skippedSteps = 0;        // steps skipped for a non-finite gradient, in this trainer so far
    double stepsPerSecond = 0;
    double validationNLL = NAN;      // of the validation frames, where it was computed at this step
    double bestValidationNLL = NAN;  // the stage's best so far (validation on)
    bool stoppedEarly = false;       // the stage ends here: no better validation NLL for validationPatience checks
};

/** One line describing a progress report, as printProgress prints it. */
std::string describeProgress(const TrainingProgress& progress);

/**
 * One training stage: a number of Adam steps with a loss
 * L = (1 - lambda) L_ML + lambda L_KL, lambda ramped linearly from
 * lambdaStart to lambdaEnd over the stage (docs/math.md, "Training").
 */
struct TrainingStage {
    std::string name = "training";  // identifies the stage in checkpoints and progress lines
    int64_t steps = 1000;
    int64_t batchSize = 256;
    double learningRate = 1e-3;
    /** Cosine decay of the learning rate to this value over the stage; negative: constant. */
    double finalLearningRate = -1;
    double lambdaStart = 0.0;  // 0: maximum likelihood only
    double lambdaEnd = 0.0;    // 1: reverse KL only
    /** Temperature (K) of the KL part; 0: the model's reference temperature. */
    double temperature = 0;
    /**
     * Data-free tempering (paper 002): if positive, the KL part starts at this
     * temperature (K, above `temperature`) and is lowered towards `temperature`
     * every temperingInterval steps, as far as keeps the KL estimate of the
     * current batch (reweighted to the new temperature) at or under
     * temperingThreshold (nats), and by at most a factor temperingMaxRatio per
     * update. The estimate cannot see regions the flow never samples, so the
     * cap is what gives the flow time to follow every basin as barriers grow.
     */
    double temperingStart = 0;
    double temperingThreshold = 1.0;
    int64_t temperingInterval = 50;
    double temperingMaxRatio = 1.1;

    /**
     * Early stopping (needs setValidationData): if positive, the NLL of the
     * validation frames is computed every validationInterval steps and at the
     * stage's last step, and the stage ends with the weights of its best
     * validation NLL. With validationPatience > 0 the stage also stops once
     * that many checks in a row did not improve on the best.
     */
    int64_t validationInterval = 0;
    int64_t validationPatience = 0;

    /**
     * A maximum-likelihood stage: `steps` steps of `batchSize` samples, the
     * learning rate decaying by a cosine from learningRate to
     * finalLearningRate (negative: constant). Other fields keep their defaults.
     */
    static TrainingStage maximumLikelihood(const std::string& name, int64_t steps, int64_t batchSize,
                                           double learningRate, double finalLearningRate = -1) {
        TrainingStage stage;
        stage.name = name;
        stage.steps = steps;
        stage.batchSize = batchSize;
        stage.learningRate = learningRate;
        stage.finalLearningRate = finalLearningRate;
        return stage;
    }
};

struct TrainerOptions {
    uint64_t seed = 1;                // batches, latent samples and momenta
    double gradientClip = 100.0;      // largest global gradient norm; 0 disables
    double domainPenalty = 100.0;     // weight of the squared distance of KL samples outside the domain
    int64_t logInterval = 50;         // steps between progress reports (and the last step)
    /** Called with every progress report. */
    std::function<void(const TrainingProgress&)> progress;
    /** Print progress reports on standard output. */
    bool printProgress = false;
    /** Where to write checkpoints (empty: none), every checkpointInterval steps and at the end of a stage. */
    std::string checkpointPath;
    int64_t checkpointInterval = 500;
    /**
     * Threads for LibTorch (and OpenBLAS) inside one operation; 0 leaves the
     * process setting alone. One is the default because the energy bridge's
     * workers already use the other cores: on 2 cores, bench/train measured
     * 2 threads at 0.71x the speed of 1 with passive waiting threads, and at
     * 0.05x with LibTorch's default spinning ones.
     */
    int numThreads = 1;
};

/** What a finished stage reached. */
struct TrainingSummary {
    TrainingProgress last;       // the last progress report
    double finalTemperature = 0; // K, where tempering ended
    double seconds = 0;
};

/**
 * Trains a FlowModel (docs/math.md, "Training"): maximum likelihood on data,
 * reverse KL through the energy bridge, mixtures of both with a lambda
 * schedule, and data-free training with tempering. Adam, learning-rate
 * schedules, gradient clipping, steps with a non-finite gradient skipped and
 * counted, checkpoints that resume a run exactly.
 */
class FlowTrainer {
public:
    /** Trains `model` in place (FlowModel copies share weights). */
    FlowTrainer(const FlowModel& model, const TrainerOptions& options = TrainerOptions());
    ~FlowTrainer();

    /** Training data for the ML loss: frames [F, N, 3] in nm sampled at `temperature` (K). */
    void setData(const at::Tensor& frames, double temperature);
    /**
     * Weighted training data: frames [F, N, 3] (nm) whose importance weights
     * exp(logWeights) [F] make them a sample of the Boltzmann distribution at
     * `temperature` (K), e.g. frames of other temperatures reweighted by MBAR
     * or flow samples reweighted to a new temperature. ML batches are drawn
     * with replacement with probabilities proportional to the weights, which
     * makes the loss the weighted maximum likelihood in expectation. Weights
     * may be zero (log-weight -inf); NaN, +inf or all zero are refused.
     */
    void setData(const at::Tensor& frames, double temperature, const at::Tensor& logWeights);
    /** The same, read from a DCD file written by OpenMM's DCDReporter. */
    void setData(const std::string& dcdPath, double temperature);
    /**
     * Held-out frames [F, N, 3] (nm) at the data's temperature for early
     * stopping (TrainingStage::validationInterval). Frames of an MD run are
     * correlated: hold out a contiguous stretch (e.g. its last tenth), not
     * frames picked at random among the training frames.
     */
    void setValidationData(const at::Tensor& frames);
    /** The energy bridge for the KL loss; its temperature is set by the trainer. */
    void setEnergy(std::shared_ptr<OpenMMEnergy> energy);

    /** Runs a stage; if a checkpoint recorded part of a stage of this name, only the rest is run. */
    TrainingSummary train(const TrainingStage& stage);

    /** -mean log q_T(x) in nats per configuration (docs/math.md "Metrics": includes log J). */
    double testNLL(const at::Tensor& frames, double temperature);

    /** Writes the model, optimizer state, step counts and random state. */
    void saveCheckpoint(const std::string& path) const;
    /** Restores a checkpoint written by saveCheckpoint() of a trainer for the same architecture. */
    void loadCheckpoint(const std::string& path);

    const FlowModel& getModel() const;
    int64_t getSkippedSteps() const;
    /** Steps completed in the stage of this name (from training or a checkpoint). */
    int64_t getCompletedSteps(const std::string& stage) const;

private:
    class Impl;
    std::unique_ptr<Impl> impl;
};

} // namespace OpenMMBG

#endif
