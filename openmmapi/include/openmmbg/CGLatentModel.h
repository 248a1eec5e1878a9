#ifndef OPENMMBG_CGLATENTMODEL_H_
#define OPENMMBG_CGLATENTMODEL_H_

#include "openmmbg/Topology.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <openmm/System.h>

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {

/** Architecture of a coarse-grained latent-variable model (docs/cg_latent.md). */
struct CGModelConfig {
    int latentDim = 2;                              // d_z
    std::vector<int> decoderWidths = {100, 100, 50};  // hidden layers of mu_theta(z), Tanh
    std::vector<int> encoderWidths = {50, 100, 100};  // hidden layers of r_phi(z|x): SELU ..., LogSigmoid last
    /**
     * false (data-driven model): sigma^2 of the decoder is a free vector of
     * length 3N. true (embedded physics): log sigma^2 = a second output head
     * of the decoder network, a function of z.
     */
    bool varianceDependsOnLatent = false;
    /**
     * true: frames are moved onto the reference structure (see CGLatentModel);
     * false: raw coordinates, as in paper 002.
     */
    bool alignFrames = true;
    double initialStd = 0.05;  // nm: decoder sigma before training (the frames' spread if there are several)
    /**
     * nm; 0: none. Embedded-physics models only: an upper bound on the decoder's
     * sigma(z), so that spread beyond it has to come through z (docs/cg_latent.md,
     * "Training without data").
     */
    double maxStd = 0;
    uint64_t seed = 1;
};

/** r_phi(z|x) = N(mean, diag exp(logVariance)) for a batch. */
struct CGEncoding {
    at::Tensor mean;         // [B, d_z]
    at::Tensor logVariance;  // [B, d_z]
};

/** q_theta(x|z) = N(mean, diag exp(logVariance)) for a batch, in the model's aligned frame (nm). */
struct CGDecoding {
    at::Tensor mean;         // [B, 3N] nm
    at::Tensor logVariance;  // [B, 3N] log nm^2
};

/**
 * A coarse-grained latent-variable model of a molecule's configurations
 * (paper 002): prior q(z) = N(0, I) on d_z latent variables, decoder
 * q_theta(x|z) = N(reference + mu_theta(z), diag sigma^2) on the 3N Cartesian
 * coordinates in a fixed frame, and encoder r_phi(z|x).
 *
 * Rigid-body motion (config.alignFrames): configurations are moved onto a reference structure
 * (mass-weighted centre of mass to the origin, then the rotation of least
 * mass-weighted squared deviation, Kabsch) before they are encoded or scored,
 * so that the model spends no capacity on the six rigid-body coordinates,
 * which the energy does not depend on. Densities are therefore of aligned
 * configurations, in nm^-3N.
 *
 * Copies share their networks (like tensors); clone() makes an independent one.
 */
class CGLatentModel {
public:
    /**
     * A new model for `system`. The reference structure is the mass-weighted
     * Procrustes mean of `frames` [B, N, 3] (nm; one frame is enough; their
     * plain mean without alignment), and the decoder starts at it with sigma
     * = the aligned frames' spread per coordinate (config.initialStd for a
     * single frame). The encoder sees (x - reference) divided by that spread.
     */
    static CGLatentModel create(const OpenMM::System& system, const at::Tensor& frames, const CGModelConfig& config);

    const CGModelConfig& getConfig() const;
    int getLatentDim() const;
    int getNumParticles() const;
    const SystemFingerprint& getFingerprint() const;
    /** [N, 3] nm: the structure the decoder's mean is measured from, and that frames are aligned onto. */
    at::Tensor getReference() const;
    /** [N] Da */
    at::Tensor getMasses() const;

    /** Throws an OpenMMException naming the difference if `system` is not the molecule of this model. */
    void checkCompatible(const OpenMM::System& system) const;
    /** Frames [B, N, 3] (nm) moved onto the reference (no gradient); throws on NaN or a wrong shape. */
    at::Tensor align(const at::Tensor& frames) const;

    /** r_phi(z|x) of frames [B, N, 3] (aligned first). */
    CGEncoding encode(const at::Tensor& frames) const;
    /**
     * r_phi(z|x) of coordinates [B, 3N] (nm) already in the model's frame
     * (e.g. decoded ones), differentiable in them: no alignment.
     */
    CGEncoding encodeCoordinates(const at::Tensor& coordinates) const;
    /** q_theta(x|z) of latent vectors z [B, d_z]. */
    CGDecoding decode(const at::Tensor& latent) const;
    /**
     * count configurations [count, N, 3] (nm) from the model: z ~ N(0, I),
     * x ~ q_theta(x|z) (or the decoder's mean if `meanOnly`).
     */
    at::Tensor sample(int64_t count, at::Generator& generator, bool meanOnly = false) const;
    /** The decoder's mean configurations [B, N, 3] (nm) of latent vectors z [B, d_z]. */
    at::Tensor decodeConfigurations(const at::Tensor& latent) const;

    /** Encoder weights (for the optimiser). */
    std::vector<at::Tensor> encoderParameters() const;
    /** Decoder weights: the network's layers, then the free log-variance vector of a data-driven model. */
    std::vector<at::Tensor> decoderParameters() const;
    /**
     * The decoder's weight matrices (without biases or log-variances): the
     * parameters under the ARD prior.
     */
    std::vector<at::Tensor> decoderWeightMatrices() const;
    /** The decoder network's weights and biases before its output layer. */
    std::vector<at::Tensor> decoderHiddenParameters() const;
    /** The decoder network's last hidden layer [B, width] at z [B, d_z] (z itself without hidden layers). */
    at::Tensor decoderFeatures(const at::Tensor& latent) const;
    /**
     * The decoder network layer by layer at z [B, d_z]: each layer's input
     * (z, then each hidden layer's activations) and pre-activation (input @
     * weight + bias; the last is the network's output, whose first 3N columns
     * are the mean minus the reference). Weight l is decoderParameters()[2 l]
     * [in, out], its bias decoderParameters()[2 l + 1].
     */
    void traceDecoder(const at::Tensor& latent, std::vector<at::Tensor>& layerInputs,
                      std::vector<at::Tensor>& preActivations) const;
    /** The output layer of the decoder's mean: weight [width, 3N] and bias [3N] (views of the parameters). */
    at::Tensor decoderOutputWeight() const;
    at::Tensor decoderOutputBias() const;
    /** log sigma^2 [3N] of a data-driven model (throws for an embedded-physics model). */
    at::Tensor decoderLogVariance() const;
    int64_t getNumParameters() const;
    bool hasFiniteParameters() const;

    const std::string& getMetadata() const;
    void setMetadata(const std::string& text);

    /**
     * One file: header with length and checksum, architecture, reference,
     * masses, fingerprint, metadata, weights (docs/architecture.md, "Model files").
     */
    void save(const std::string& path) const;
    void save(std::ostream& stream) const;
    /** Throws an OpenMMException for a missing, truncated, corrupt or newer file, or non-finite weights. */
    static CGLatentModel load(const std::string& path);
    static CGLatentModel load(std::istream& stream, const std::string& description = "stream");
    /** load(path), then checkCompatible(system). */
    static CGLatentModel load(const std::string& path, const OpenMM::System& system);
    /** A copy with its own weights. */
    CGLatentModel clone() const;

    static const int FORMAT_VERSION = 2;

    class Impl;

private:
    explicit CGLatentModel(std::shared_ptr<Impl> impl);
    std::shared_ptr<Impl> impl;
};

/** Radius of gyration [B] (nm) of configurations [B, N, 3] (nm) with masses [N] (Da). */
at::Tensor radiusOfGyration(const at::Tensor& x, const at::Tensor& masses);

} // namespace OpenMMBG

#endif
