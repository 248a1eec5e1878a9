// FlowTrainer and its options. A Python progress callback is stored in the
// C++ std::function as a PythonCallback that owns a reference to it; train()
// runs without the GIL and the callback takes it back for each report. An
// exception raised by the callback stops train() and reaches the caller as is.

%{
namespace bgpy {
/**
 * A Python callable as a C++ progress callback: owns a reference to it, takes
 * the GIL for each report, passes it a copy of the report (of SWIG type
 * `reportType`) and rethrows what it raises. Used by every trainer that
 * reports progress (FlowTrainer, the coarse-grained latent models).
 */
template <class Report>
struct PythonCallback {
    std::shared_ptr<PyObject> callable;
    swig_type_info* reportType;

    void operator()(const Report& progress) const {
        PyGILState_STATE gil = PyGILState_Ensure();
        PyObject* report = SWIG_NewPointerObj(new Report(progress), reportType, SWIG_POINTER_OWN);
        PyObject* result = report ? PyObject_CallFunctionObjArgs(callable.get(), report, nullptr) : nullptr;
        Py_XDECREF(report);
        if (result == nullptr) {
            PythonError error = PythonError::fetch();
            PyGILState_Release(gil);
            throw error;
        }
        Py_DECREF(result);
        PyGILState_Release(gil);
    }
};

/** `progress` as a std::function: empty for None; a TypeError for anything not callable. */
template <class Report>
std::function<void(const Report&)> callbackFrom(PyObject* progress, swig_type_info* reportType) {
    if (progress == Py_None)
        return std::function<void(const Report&)>();
    if (!PyCallable_Check(progress)) {
        PyErr_SetString(PyExc_TypeError, "progress must be a callable or None");
        throw PythonError::fetch();
    }
    return PythonCallback<Report>{sharedReference(progress), reportType};
}

using ProgressCallback = PythonCallback<OpenMMBG::TrainingProgress>;
}
%}

%rename(lambda_) OpenMMBG::TrainingProgress::lambda;

namespace OpenMMBG {

/** One progress report of FlowTrainer.train(); losses in nats per configuration. */
struct TrainingProgress {
    std::string stage;
    int64_t step;
    int64_t stageSteps;
    double loss;
    double lossML;
    double lossKL;
    double lambda;
    double temperature;
    double learningRate;
    double meanReducedEnergy;
    double essFraction;
    double fractionOutOfDomain;
    double fractionNonFinite;
    int64_t skippedSteps;
    double stepsPerSecond;
    double validationNLL;
    double bestValidationNLL;
    bool stoppedEarly;
};

/** One training stage: L = (1 - lambda) L_ML + lambda L_KL, lambda ramped over the stage. */
struct TrainingStage {
    std::string name;
    int64_t steps;
    int64_t batchSize;
    double learningRate;
    double finalLearningRate;
    double lambdaStart;
    double lambdaEnd;
    double temperature;
    double temperingStart;
    double temperingThreshold;
    int64_t temperingInterval;
    double temperingMaxRatio;
    int64_t validationInterval;
    int64_t validationPatience;
};

struct TrainerOptions {
    uint64_t seed;
    double gradientClip;
    double domainPenalty;
    int64_t logInterval;
    bool printProgress;
    std::string checkpointPath;
    int64_t checkpointInterval;
    int numThreads;
};

%extend TrainerOptions {
    void _setProgress(PyObject* callable) {
        $self->progress = bgpy::callbackFrom<OpenMMBG::TrainingProgress>(callable, SWIGTYPE_p_OpenMMBG__TrainingProgress);
    }
    PyObject* _getProgress() const {
        if (const auto* callback = $self->progress.target<bgpy::ProgressCallback>()) {
            Py_INCREF(callback->callable.get());
            return callback->callable.get();
        }
        Py_RETURN_NONE;
    }
    %pythoncode %{
        progress = property(_getProgress, _setProgress,
                            doc="Called with a TrainingProgress for every report (None: no callback).")
    %}
}

/** What a finished stage reached. */
struct TrainingSummary {
    double finalTemperature;
    double seconds;
};

%extend TrainingSummary {
    TrainingProgress _getLast() const { return $self->last; }
    %pythoncode %{
        last = property(_getLast, doc="The last TrainingProgress of the stage.")
    %}
}

/** Trains a FlowModel in place (FlowModel copies share weights). */
class FlowTrainer {
public:
    FlowTrainer(const FlowModel& model, const TrainerOptions& options = TrainerOptions());
    ~FlowTrainer();
    /** ML training data: frames (F, N, 3) in nm sampled at T. */
    void setData(const at::Tensor& frames, double temperature);
    /** Weighted ML data: frames (F, N, 3) with log importance weights (F,) that make them a sample at T; batches are drawn in proportion to the weights. */
    void setData(const at::Tensor& frames, double temperature, const at::Tensor& logWeights);
    /** The same, read from a DCD file (OpenMM's DCDReporter). */
    void setData(const std::string& dcdPath, double temperature);
    /** Held-out frames (F, N, 3) at the data's temperature for early stopping (TrainingStage.validationInterval). */
    void setValidationData(const at::Tensor& frames);
    /** The energy bridge for the KL loss. */
    void setEnergy(std::shared_ptr<OpenMMEnergy> energy);
    /** Runs a stage (the rest of it after loading a checkpoint) and returns a TrainingSummary. */
    TrainingSummary train(const TrainingStage& stage);
    /** -mean log q_T(x) in nats per configuration. */
    double testNLL(const at::Tensor& frames, double temperature);
    void saveCheckpoint(const std::string& path) const;
    void loadCheckpoint(const std::string& path);
    const FlowModel& getModel() const;
    int64_t getSkippedSteps() const;
    int64_t getCompletedSteps(const std::string& stage) const;
};

/**
 * Temperature annealing on the flow's own weighted samples (annealFlow):
 * temperatures (K) in the order visited, the last the target; samples per
 * temperature; the weighted-ML stage run at each; the seed of the samples.
 */
struct AnnealingSchedule {
    int64_t samples;
    TrainingStage stage;
    uint64_t seed;
};

%extend AnnealingSchedule {
    void _setTemperatures(const std::vector<double>& temperatures) { $self->temperatures = temperatures; }
    std::vector<double> _getTemperatures() const { return $self->temperatures; }
    /** Samples with a stereocentre of another handedness than in x (N, 3) nm weigh 0. */
    void setStereoReference(const at::Tensor& x) { $self->stereoReference = x; }
    %pythoncode %{
        temperatures = property(_getTemperatures, _setTemperatures,
                                doc="Temperatures (K) in the order visited; the last is the target.")
    %}
}

/** What one temperature of the ladder did: its ESS before training there, and the stage's summary. */
struct AnnealingStep {
    double temperature;
    double essFraction;
    double zeroWeightFraction;
    TrainingSummary training;
};

}

%template(AnnealingSteps) std::vector<OpenMMBG::AnnealingStep>;

namespace OpenMMBG {
/** Runs the schedule: the trainer's model is trained in place, its data replaced; returns one AnnealingStep per temperature. */
std::vector<AnnealingStep> annealFlow(FlowTrainer& trainer, OpenMMEnergy& energy, const AnnealingSchedule& schedule);
}
