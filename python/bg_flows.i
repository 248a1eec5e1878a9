// FlowConfig and FlowModel. Samples come back as the namedtuple FlowSample
// of numpy arrays (defined in bg_tools.i).

%feature("novaluewrapper") OpenMMBG::FlowSample;
%typemap(out) OpenMMBG::FlowSample {
    $result = bgpy::makeRecord("FlowSample", {{"x", bgpy::toNumpy($1.x)},
                                              {"gamma", bgpy::toNumpy($1.gamma)},
                                              {"latent", bgpy::toNumpy($1.latent)},
                                              {"logq", bgpy::toNumpy($1.logq)},
                                              {"logJ", bgpy::toNumpy($1.logJ)},
                                              {"inDomain", bgpy::toNumpy($1.inDomain)}});
    if (!$result) SWIG_fail;
}

%nodefaultctor OpenMMBG::FlowModel;
%feature("valuewrapper") OpenMMBG::FlowModel;  // no default constructor: returned by value through a wrapper

namespace OpenMMBG {

struct FlowSample;

/** Shape and initialisation of a flow's networks (see Flow.h). */
struct FlowConfig {
    int numBlocks;
    int hiddenLayers;
    int hiddenWidth;
    double outputInitScale;
    uint64_t seed;
    int splineBins;
    double splineTailBound;
    bool conditionByLevel;
    bool tsfSplineCouplings;
};

/**
 * A Boltzmann generator: coordinates, normalisation, flow, prior and the
 * fingerprint of its System. Positions in nm, temperatures in K.
 */
class FlowModel {
public:
    /** A flow on internal coordinates fitted to frames (B, N, 3); flowType "tsf" or "realnvp". */
    static FlowModel createForMolecule(const OpenMM::System& system, const at::Tensor& frames,
                                       const std::string& flowType, const FlowConfig& config,
                                       double referenceTemperature);
    /** A flow on the given flattened Cartesian coordinates; frames None: identity normalisation. */
    static FlowModel createCartesian(const OpenMM::System& system, const std::vector<int>& coordinates,
                                     const at::Tensor& optionalFrames, const std::string& flowType,
                                     const FlowConfig& config, double referenceTemperature,
                                     const at::Tensor& canonicalValues = at::Tensor());
    static FlowModel load(const std::string& path);
    /** load(path), then checkCompatible(system). */
    static FlowModel load(const std::string& path, const OpenMM::System& system);
    void save(const std::string& path) const;
    /** A copy with its own weights. */
    FlowModel clone() const;

    double getReferenceTemperature() const;
    int getNumParticles() const;
    int getNumCoordinates() const;
    int getLatentDim() const;
    bool hasMomenta() const;
    double tau(double temperature) const;
    /** Raises OpenMMException naming the difference if `system` is not the molecule of this flow. */
    void checkCompatible(const OpenMM::System& system) const;
    const std::string& getMetadata() const;
    void setMetadata(const std::string& text);

    const at::Tensor& getShift() const;
    const at::Tensor& getScale() const;
    at::Tensor normalize(const at::Tensor& y) const;
    at::Tensor denormalize(const at::Tensor& yn) const;
    double getLogDetNormalization() const;
    /** gamma = D(v) and log|det dD/dv|. */
    std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& v) const;
    /** v = D^-1(gamma) and log|det dD^-1/dgamma|. */
    std::pair<at::Tensor, at::Tensor> inverse(const at::Tensor& gamma) const;
    /** The samples of latent vectors v (B, d) at temperature T. */
    FlowSample decode(const at::Tensor& latent, double temperature, const at::Tensor& external = at::Tensor()) const;
};

%extend FlowModel {
    /** count samples at temperature T (K) from a generator seeded with `seed`. */
    FlowSample sample(int64_t count, double temperature, uint64_t seed = 1,
                      const at::Tensor& external = at::Tensor()) const {
        at::Generator generator = bgpy::generatorFromSeed(seed);
        at::NoGradGuard noGrad;
        return $self->sample(count, temperature, generator, external);
    }
    /** log q_T(x) (B,) in nats of configurations x (B, N, 3); `seed` draws TSF momenta. */
    at::Tensor logProb(const at::Tensor& x, double temperature, uint64_t seed = 1,
                       const at::Tensor& momenta = at::Tensor()) const {
        at::Generator generator = bgpy::generatorFromSeed(seed);
        at::NoGradGuard noGrad;
        return $self->logProb(x, temperature, generator, momenta);
    }
    /** "realnvp", "tsf" or "spline". */
    std::string getFlowType() const { return $self->getFlow().getTypeName(); }
    int64_t getNumParameters() const { return $self->getFlow().getNumParameters(); }
    FlowConfig getConfig() const { return $self->getFlow().getConfig(); }
}

}
