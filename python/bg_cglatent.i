// Coarse-grained latent-variable models (paper 002): CGModelConfig,
// CGLatentModel, data-driven training (trainCGLatentModel), the Laplace
// approximation (CGLaplacePosterior) and training without data
// (trainCGLatentModelFromEnergy). Encodings and decodings come back as
// (mean, logVariance) tuples of numpy arrays; methods that draw take seeds.

%typemap(out) OpenMMBG::CGEncoding, OpenMMBG::CGDecoding {
    $result = Py_BuildValue("(NN)", bgpy::toNumpy($1.mean), bgpy::toNumpy($1.logVariance));
    if (!$result) SWIG_fail;
}
%feature("novaluewrapper") OpenMMBG::CGEncoding;
%feature("novaluewrapper") OpenMMBG::CGDecoding;
%naturalvar OpenMMBG::CGModelConfig::decoderWidths;
%naturalvar OpenMMBG::CGModelConfig::encoderWidths;
%nodefaultctor OpenMMBG::CGLatentModel;
%feature("valuewrapper") OpenMMBG::CGLatentModel;
%nodefaultctor OpenMMBG::CGLaplacePosterior;
%feature("valuewrapper") OpenMMBG::CGLaplacePosterior;

namespace OpenMMBG {

struct CGEncoding;
struct CGDecoding;

/** Architecture of a coarse-grained latent-variable model (docs/cg_latent.md). */
struct CGModelConfig {
    int latentDim;
    std::vector<int> decoderWidths;
    std::vector<int> encoderWidths;
    bool varianceDependsOnLatent;
    bool alignFrames;
    double initialStd;
    double maxStd;
    uint64_t seed;
};

/**
 * Prior N(0, I) on latentDim variables, Gaussian decoder q(x|z) and encoder
 * r(z|x) on the Cartesian coordinates (nm) of a molecule, moved onto a
 * reference structure first (config.alignFrames).
 */
class CGLatentModel {
public:
    /** A new model for `system`; reference and scales from frames (B, N, 3) nm. */
    static CGLatentModel create(const OpenMM::System& system, const at::Tensor& frames, const CGModelConfig& config);
    static CGLatentModel load(const std::string& path);
    /** load(path), then checkCompatible(system). */
    static CGLatentModel load(const std::string& path, const OpenMM::System& system);
    void save(const std::string& path) const;
    /** A copy with its own weights. */
    CGLatentModel clone() const;
    const CGModelConfig& getConfig() const;
    int getLatentDim() const;
    int getNumParticles() const;
    int64_t getNumParameters() const;
    /** (N, 3) nm */
    at::Tensor getReference() const;
    /** (N,) Da */
    at::Tensor getMasses() const;
    void checkCompatible(const OpenMM::System& system) const;
    const std::string& getMetadata() const;
    void setMetadata(const std::string& text);
};

%extend CGLatentModel {
    /** Frames (B, N, 3) nm moved onto the reference structure. */
    at::Tensor align(const at::Tensor& frames) const { at::NoGradGuard g; return $self->align(frames); }
    /** (mean, logVariance) of r(z|x), each (B, latentDim), for frames (B, N, 3) nm. */
    OpenMMBG::CGEncoding encode(const at::Tensor& frames) const {
        at::NoGradGuard g;
        OpenMMBG::CGEncoding e = $self->encode(frames);
        return {e.mean.detach(), e.logVariance.detach()};
    }
    /** (mean, logVariance) of q(x|z), each (B, 3N), for latent vectors (B, latentDim). */
    OpenMMBG::CGDecoding decode(const at::Tensor& latent) const {
        at::NoGradGuard g;
        OpenMMBG::CGDecoding d = $self->decode(latent);
        return {d.mean.detach(), d.logVariance.detach()};
    }
    /** The decoder's mean configurations (B, N, 3) nm of latent vectors (B, latentDim). */
    at::Tensor decodeConfigurations(const at::Tensor& latent) const {
        at::NoGradGuard g;
        return $self->decodeConfigurations(latent).detach();
    }
    /** count configurations (count, N, 3) nm: z ~ N(0, I), x ~ q(x|z) (its mean if meanOnly). */
    at::Tensor sample(int64_t count, uint64_t seed = 1, bool meanOnly = false) const {
        at::NoGradGuard g;
        at::Generator generator = bgpy::generatorFromSeed(seed);
        return $self->sample(count, generator, meanOnly).detach();
    }
    /** Per-frame (elbo, kl, expectedLogLikelihood) in nats, with `latentDraws` z draws per frame. */
    PyObject* evidenceLowerBound(const at::Tensor& frames, int latentDraws = 64, uint64_t seed = 1) const {
        at::NoGradGuard g;
        at::Generator generator = bgpy::generatorFromSeed(seed);
        OpenMMBG::CGElboTerms t = OpenMMBG::evidenceLowerBound(*$self, frames, latentDraws, generator);
        return Py_BuildValue("(NNN)", bgpy::toNumpy(t.elbo.detach()), bgpy::toNumpy(t.kl.detach()),
                             bgpy::toNumpy(t.expectedLogLikelihood.detach()));
    }
    /** Per-frame importance-weighted lower bound of log q(x) with `draws` z draws (estimateCGLogDensity). */
    at::Tensor logDensityEstimate(const at::Tensor& frames, int draws = 64, uint64_t seed = 1) const {
        at::Generator generator = bgpy::generatorFromSeed(seed);
        return OpenMMBG::estimateCGLogDensity(*$self, frames, draws, generator).detach();
    }
}

/** The ARD prior's Gamma(shape, rate) hyperprior on each weight's precision. */
struct ARDPrior {
    double shape;
    double rate;
};

/** How trainCGLatentModel trains (see CGLatentTraining.h). */
struct CGTrainingOptions {
    int64_t steps;
    int64_t batchSize;
    double learningRate;
    int latentDraws;
    bool ard;
    ARDPrior ardPrior;
    int64_t ardInterval;
    int64_t ardStartStep;
    int64_t progressInterval;
    uint64_t seed;
};

/** One progress report of trainCGLatentModel; per-frame values in nats. */
struct CGTrainingProgress {
    int64_t step;
    int64_t steps;
    double elbo;
    double kl;
    double expectedLogLikelihood;
    double logPrior;
    double activeWeightFraction;
    double stepsPerSecond;
};

/** What training did. */
struct CGTrainingSummary {
    int64_t steps;
    double seconds;
    double finalElbo;
    double activeWeightFraction;
};

%extend CGTrainingSummary {
    /** ARD: the output weights' prior precisions (width, 3N), or None. */
    PyObject* _getOutputWeightPrecision() const {
        if (!$self->outputWeightPrecision.defined())
            Py_RETURN_NONE;
        return bgpy::toNumpy($self->outputWeightPrecision);
    }
    %pythoncode %{
        outputWeightPrecision = property(_getOutputWeightPrecision,
                                         doc="ARD: the output weights' prior precisions (width, 3N), or None.")
    %}
}

/** How the Laplace approximation is made (see CGLatentTraining.h). */
struct CGLaplaceOptions {
    int latentDraws;
    double priorPrecision;
    bool hiddenLayers;
    bool ard;
    ARDPrior ardPrior;
    int probes;
    bool evidencePrior;
    uint64_t seed;
};

%extend CGLaplaceOptions {
    /** Prior precisions (width, 3N) of the output weights, e.g. CGTrainingSummary.outputWeightPrecision. */
    void setWeightPrecision(const at::Tensor& weights) { $self->weightPrecision = weights; }
    /** The property `curvature` (openmmbg/__init__.py): "outputLayer" or "kronecker". */
    std::string _getCurvature() const {
        return $self->curvature == OpenMMBG::CGLaplaceOptions::Curvature::Kronecker ? "kronecker" : "outputLayer";
    }
    void _setCurvature(const std::string& name) {
        if (name == "kronecker")
            $self->curvature = OpenMMBG::CGLaplaceOptions::Curvature::Kronecker;
        else if (name == "outputLayer")
            $self->curvature = OpenMMBG::CGLaplaceOptions::Curvature::OutputLayer;
        else
            throw OpenMM::OpenMMException("CGLaplaceOptions: unknown curvature '" + name +
                                          "' (outputLayer or kronecker)");
    }
}

/** Laplace approximation of the decoder's output layer around the trained weights. */
class CGLaplacePosterior {
public:
    static CGLaplacePosterior fit(const CGLatentModel& model, const at::Tensor& frames,
                                  const CGLaplaceOptions& options = CGLaplaceOptions());
    /** Precision blocks (3N, width + 1, width + 1), parameters (W_d, b_d). */
    const at::Tensor& getPrecision() const;
    at::Tensor covariance() const;
    /** Kronecker curvature: layer l's precision over its parameters [in + 1, out] flattened row by row. */
    at::Tensor layerPrecision(int layer) const;
};

%extend CGLaplacePosterior {
    /** Hidden layers (options.hiddenLayers): the diagonal precisions, a list of arrays (empty without them). */
    PyObject* getHiddenPrecision() const {
        PyObject* list = PyList_New(0);
        for (const at::Tensor& t : $self->getHiddenPrecision()) {
            PyObject* item = bgpy::toNumpy(t);
            if (!item || PyList_Append(list, item) < 0) {
                Py_XDECREF(item);
                Py_DECREF(list);
                return nullptr;
            }
            Py_DECREF(item);
        }
        return list;
    }
    /** Kronecker curvature: each layer's prior precision (fitted with evidencePrior), a list. */
    std::vector<double> getKroneckerPriorPrecisions() const {
        std::vector<double> result;
        for (const OpenMMBG::CGKroneckerLayer& layer : $self->getKroneckerLayers())
            result.push_back(layer.priorPrecision);
        return result;
    }
    /** A copy of the model whose output layer (and hidden layers, if fitted) is a draw from the posterior. */
    CGLatentModel drawModel(uint64_t seed) const {
        at::Generator generator = bgpy::generatorFromSeed(seed);
        return $self->drawModel(generator);
    }
    /** One draw from the posterior, then count configurations (count, N, 3) of the decoder linearised around the MAP. */
    at::Tensor sampleLinearized(int64_t count, uint64_t seed = 1) const {
        at::Generator generator = bgpy::generatorFromSeed(seed);
        return $self->sampleLinearized($self->drawOffsets(generator), count, generator);
    }
}

/** How trainCGLatentModelFromEnergy trains (see CGLatentTraining.h). */
struct CGPhysicsOptions {
    int64_t maxSteps;
    int64_t stepsAtTarget;
    int64_t batchSize;
    double learningRate;
    double gradientClip;
    double temperingStart;
    double temperingThreshold;
    bool temperingOnIncrease;
    int64_t temperingInterval;
    double temperingMaxRatio;
    int64_t progressInterval;
    int importanceSamples;
    double coveringWeight;
    int64_t coveringSamples;
    int coveringImportanceSamples;
    uint64_t seed;
};

/** One progress report of trainCGLatentModelFromEnergy; per-sample values in nats. */
struct CGPhysicsProgress {
    int64_t step;
    double betaFraction;
    double bound;
    double meanReducedEnergy;
    double klEstimate;
    double fractionNonFinite;
    double coveringEss;
    double stepsPerSecond;
};

/** What embedded-physics training did. */
struct CGPhysicsSummary {
    int64_t steps;
    double seconds;
    bool reachedTarget;
    int64_t stepsToTarget;
    std::vector<double> betaFractions;
    CGPhysicsProgress last;
};

/** Radius of gyration (B,) nm of configurations x (B, N, 3) nm with masses (N,) Da. */
at::Tensor radiusOfGyration(const at::Tensor& x, const at::Tensor& masses);

}

%inline %{
namespace bgpy {
/** Trains the model in place on frames (N, atoms, 3) nm; progress(CGTrainingProgress) is called for every report. */
OpenMMBG::CGTrainingSummary trainCGLatentModel(OpenMMBG::CGLatentModel& model, const at::Tensor& frames,
                                               const OpenMMBG::CGTrainingOptions& options, PyObject* progress = Py_None) {
    auto callback = callbackFrom<OpenMMBG::CGTrainingProgress>(progress, SWIGTYPE_p_OpenMMBG__CGTrainingProgress);
    AllowThreads allowThreads;
    return OpenMMBG::trainCGLatentModel(model, frames, options, callback);
}
/**
 * Trains the model without data on the Boltzmann distribution of the bridge's
 * System at its temperature (embedded physics, tempered from
 * options.temperingStart); progress(CGPhysicsProgress) at every rise of beta.
 */
OpenMMBG::CGPhysicsSummary trainCGLatentModelFromEnergy(OpenMMBG::CGLatentModel& model, OpenMMBG::OpenMMEnergy& energy,
                                                        const OpenMMBG::CGPhysicsOptions& options,
                                                        PyObject* progress = Py_None) {
    auto callback = callbackFrom<OpenMMBG::CGPhysicsProgress>(progress, SWIGTYPE_p_OpenMMBG__CGPhysicsProgress);
    AllowThreads allowThreads;
    return OpenMMBG::trainCGLatentModelFromEnergy(model, energy, options, callback);
}
}
%}
