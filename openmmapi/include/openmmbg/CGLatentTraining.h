#ifndef OPENMMBG_CGLATENTTRAINING_H_
#define OPENMMBG_CGLATENTTRAINING_H_

// Training of coarse-grained latent-variable models (paper 002,
// docs/cg_latent.md): from data (the evidence lower bound, the ARD prior
// with its EM updates, a Laplace approximation of the decoder's output layer)
// and from the force field alone (the embedded-physics bound with tempering).

#include "openmmbg/CGLatentModel.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace OpenMMBG {

class OpenMMEnergy;

/** The ELBO of each frame and its two terms, in nats (densities of aligned coordinates in nm^-3N). */
struct CGElboTerms {
    at::Tensor elbo;                   // [B] = expectedLogLikelihood - kl
    at::Tensor kl;                     // [B] KL(r_phi(z|x) || N(0, I)), analytic
    at::Tensor expectedLogLikelihood;  // [B] E_r[log q_theta(x|z)], mean over the latent draws
};

/**
 * The ELBO of frames [B, N, 3] (aligned first) with `latentDraws` reparameterised
 * draws z = mean + exp(logVariance / 2) * eps per frame; differentiable in
 * the model's weights.
 */
CGElboTerms evidenceLowerBound(const CGLatentModel& model, const at::Tensor& frames, int latentDraws,
                               at::Generator& generator);

/** The same at given latent draws [B, S, d_z] (no encoder in the expected log-likelihood; the KL uses it). */
CGElboTerms evidenceLowerBoundAt(const CGLatentModel& model, const at::Tensor& frames, const at::Tensor& latent);

/** The ARD prior's Gamma(a0, b0) hyperprior on each weight's precision (shape, rate). */
struct ARDPrior {
    double shape = 1e-6;  // a0
    double rate = 1e-6;   // b0
};

/** The EM E-step: <tau_j> = (a0 + 1/2) / (b0 + theta_j^2 / 2), elementwise for weights theta. */
at::Tensor ardExpectedPrecision(const at::Tensor& weights, const ARDPrior& prior);

/** One progress report of trainCGLatentModel(); per-frame values in nats. */
struct CGTrainingProgress {
    int64_t step = 0, steps = 0;
    double elbo = 0;                   // mean ELBO of the batch
    double kl = 0;
    double expectedLogLikelihood = 0;
    double logPrior = 0;               // ARD: -sum_j <tau_j> theta_j^2 / 2 over all weights, divided by N
    double activeWeightFraction = 1;   // fraction of decoder weights with |theta| > 1e-2 * their layer's largest
    double stepsPerSecond = 0;
};

/** How trainCGLatentModel() trains. */
struct CGTrainingOptions {
    int64_t steps = 5000;
    int64_t batchSize = 32;      // frames per step; at most the number of frames
    double learningRate = 1e-3;  // Adam
    int latentDraws = 1;         // reparameterised z draws per frame and step
    bool ard = false;            // MAP with the ARD prior on the decoder's weight matrices (else maximum ELBO)
    ARDPrior ardPrior;
    int64_t ardInterval = 10;    // steps between E-steps
    /**
     * The step from which the ARD prior acts; -1: steps / 4. With a0, b0 near 0
     * the prior behaves like -log|theta| per weight, whose pull grows as a weight
     * shrinks: switched on at the small initial weights, it sets every weight to
     * 0 before the likelihood has shaped any; a fit without it comes first.
     */
    int64_t ardStartStep = -1;
    int64_t progressInterval = 0;  // steps between reports; 0: steps / 10
    uint64_t seed = 1;
};

/** What training did. */
struct CGTrainingSummary {
    int64_t steps = 0;
    double seconds = 0;
    double finalElbo = 0;  // mean ELBO over all frames at the end (64 draws each), nats
    /** ARD: <tau_j> [width, 3N] of the decoder mean's output weights at the end (undefined without ARD). */
    at::Tensor outputWeightPrecision;
    double activeWeightFraction = 1;
};

using CGProgressCallback = std::function<void(const CGTrainingProgress&)>;

/**
 * Maximises the summed ELBO of `frames` [N, atoms, 3] (nm) with Adam on
 * minibatches, with the ARD prior if options.ard (EM: E-step every
 * ardInterval steps, the M-step's -<tau_j> theta_j in every gradient).
 * Throws an OpenMMException for NaN frames, a batch larger than the data,
 * or non-positive settings.
 */
CGTrainingSummary trainCGLatentModel(CGLatentModel& model, const at::Tensor& frames, const CGTrainingOptions& options,
                                     const CGProgressCallback& progress = CGProgressCallback());

/** How the Laplace approximation is made. */
struct CGLaplaceOptions {
    /** The curvature behind the posterior (see CGLaplacePosterior). */
    enum class Curvature {
        OutputLayer,  // exact blocks of the output layer; hiddenLayers adds diagonal ones
        Kronecker     // every layer of the decoder's mean, Kronecker-factored Gauss-Newton blocks
    };
    Curvature curvature = Curvature::OutputLayer;
    int latentDraws = 20;  // z draws per frame for E_r[h h^T]
    /**
     * Prior precision of the output weights [width, 3N] (ARD: the summary's
     * outputWeightPrecision); undefined: priorPrecision for every weight.
     */
    at::Tensor weightPrecision;
    double priorPrecision = 1.0;  // 1/nm^2: weights without an ARD precision, and the biases
    /**
     * Also the hidden layers of the decoder's mean, with a diagonal
     * Gauss-Newton precision (see CGLaplacePosterior).
     */
    bool hiddenLayers = false;
    /**
     * Hidden layers: with `ard`, the prior precision of each hidden weight is
     * its ARD <tau_j> at the trained weights (ardExpectedPrecision), as in
     * training's last E-step; otherwise priorPrecision.
     */
    bool ard = false;
    ARDPrior ardPrior;
    int probes = 200;  // random-sign probes of the diagonal Gauss-Newton matrix
    /**
     * Kronecker: each layer's isotropic prior precision (weights and biases)
     * maximises the Laplace evidence, the fixed point of
     * tau = P / (|theta_MAP|^2 + tr Sigma(tau)) over the layer's P parameters,
     * found from priorPrecision. false: priorPrecision for every layer.
     */
    bool evidencePrior = false;
    uint64_t seed = 1;
};

/**
 * One layer of a Kronecker-factored Laplace posterior. The layer's parameters
 * form theta [in + 1, out] (the weight [in, out], then the bias as a last
 * row); its Gauss-Newton precision is approximated by frames * A (x) G, with
 * A = E[a a^T] over the layer's inputs a = [input, 1] and G = E[g g^T] over
 * g = J^T diag(sigma^-1), J the Jacobian of the decoder's mean with respect to
 * the layer's pre-activations (exact, one backward pass per coordinate),
 * both averaged over frames and latent draws. In the eigenbases A = U_a
 * diag(lambda_a) U_a^T and G = U_g diag(lambda_g) U_g^T the posterior
 * precision frames * lambda_a lambda_g^T + priorPrecision is diagonal.
 */
struct CGKroneckerLayer {
    at::Tensor inputBasis, inputEigenvalues;    // U_a [in + 1, in + 1], lambda_a [in + 1]
    at::Tensor outputBasis, outputEigenvalues;  // U_g [out, out], lambda_g [out]
    double frames = 0;
    double priorPrecision = 0;
    /** The precision in the eigenbasis [in + 1, out]: frames * lambda_a lambda_g^T + priorPrecision. */
    at::Tensor eigenPrecision() const;
};

/**
 * A Laplace approximation of p(theta | data). With the default curvature,
 * for the output layer of the decoder's mean (weights W [width, 3N], bias b [3N]), all other weights at
 * their trained values. Coordinate d of the mean is [h(z), 1] . [W_d, b_d],
 * so the expected log-likelihood is quadratic in (W_d, b_d) and its Hessian
 * is exact and block-diagonal over d:
 *   A_d = sum_n E_r[phi phi^T] / sigma_d^2 + diag(prior precisions of W_d, b_d),  phi = [h(z), 1].
 * The posterior of each block is N(MAP, A_d^-1).
 *
 * With options.hiddenLayers, the weights and biases of the hidden layers get
 * a diagonal Gaussian too, independent of the output layer: precision =
 * diag(G) + prior, with G = sum_frames E_r[J^T diag(sigma^-2) J] the
 * Gauss-Newton matrix of the expected log-likelihood (J = d mean / d theta).
 * Its diagonal is estimated without per-frame gradients: with independent
 * random signs v [draws, 3N], g = d/d theta sum (mean * v / sigma) / sqrt(S)
 * has E[g^2] = diag(G), averaged over `probes` draws of v.
 *
 * With Curvature::Kronecker, every layer of the decoder's mean gets a
 * Gaussian with Kronecker-factored precision (CGKroneckerLayer; Martens and
 * Grosse's K-FAC, as Ritter et al. use it for Laplace approximations), layers
 * independent of each other; the prior is isotropic per layer, so ARD
 * precisions do not enter. Within a layer it keeps the correlations between
 * weights that a diagonal drops, and for the output layer of a data-driven
 * model, where G = diag(sigma^-2) and the likelihood is Gaussian in the
 * weights, it is the exact posterior.
 */
class CGLaplacePosterior {
public:
    /** From frames [N, atoms, 3] with z ~ r_phi(z|x). */
    static CGLaplacePosterior fit(const CGLatentModel& model, const at::Tensor& frames,
                                  const CGLaplaceOptions& options = CGLaplaceOptions());
    /** From given latent draws [N, S, d_z] of the frames. */
    static CGLaplacePosterior fitAt(const CGLatentModel& model, const at::Tensor& latent,
                                    const CGLaplaceOptions& options = CGLaplaceOptions());

    /** A_d [3N, width + 1, width + 1]: precision blocks, parameters ordered (W_d, b_d) (undefined with Kronecker curvature). */
    const at::Tensor& getPrecision() const { return precision; }
    /** A_d^-1 [3N, width + 1, width + 1]. */
    at::Tensor covariance() const;
    /** Hidden layers: the diagonal precisions, one tensor per parameter (empty without them). */
    const std::vector<at::Tensor>& getHiddenPrecision() const { return hiddenPrecision; }
    /** Kronecker curvature: one entry per layer of the decoder (empty otherwise). */
    const std::vector<CGKroneckerLayer>& getKroneckerLayers() const { return kroneckerLayers; }
    /**
     * Kronecker curvature: layer l's posterior precision as a dense matrix
     * over theta [in + 1, out] flattened row by row (for small layers and checks).
     */
    at::Tensor layerPrecision(int layer) const;
    /** A copy of the model whose output layer (and hidden layers, if fitted) is one draw from the posterior. */
    CGLatentModel drawModel(at::Generator& generator) const;
    /**
     * One draw from the posterior as offsets from the MAP, one tensor per
     * entry of CGLatentModel::decoderParameters() (zero where the
     * approximation does not reach, e.g. the log-variances).
     */
    std::vector<at::Tensor> drawOffsets(at::Generator& generator) const;
    /** A copy of the MAP model with scale * offsets added to its decoder's parameters. */
    CGLatentModel modelAt(const std::vector<at::Tensor>& offsets, double scale = 1.0) const;
    /**
     * The decoder's mean [B, 3N] at z [B, d_z], linearised in its parameters
     * around the MAP: mu_MAP(z) + J(z) offsets, J the Jacobian in the
     * parameters (the linearised predictive of Immer et al. 2021, which keeps
     * a draw's deviation from the MAP in the directions the Laplace
     * approximation describes; a network with all weights moved at once also
     * changes by their higher-order effects). J(z) offsets comes from a
     * central difference of two forward passes (step 1e-5 times the
     * offsets), within 1e-7 of the offsets' effect in the test against autograd.
     */
    at::Tensor linearizedMean(const std::vector<at::Tensor>& offsets, const at::Tensor& latent) const;
    /**
     * count configurations [count, N, 3] (nm) of the linearised model:
     * z ~ N(0, I), x = linearizedMean(offsets, z) + sigma eps.
     */
    at::Tensor sampleLinearized(const std::vector<at::Tensor>& offsets, int64_t count, at::Generator& generator) const;

private:
    CGLatentModel model;
    std::vector<CGKroneckerLayer> kroneckerLayers;
    at::Tensor precision;       // [3N, H + 1, H + 1]
    at::Tensor choleskyFactor;  // [3N, H + 1, H + 1] lower, precision = L L^T
    std::vector<at::Tensor> hiddenPrecision;
    explicit CGLaplacePosterior(const CGLatentModel& model) : model(model) {}
};

/**
 * The importance-weighted lower bound of log q_theta(x) [B] (nm^-3N, of
 * aligned configurations as in CGLatentModel) for frames [B, N, 3] nm: the
 * log of the mean of q(x|z_k) q(z_k) / r(z_k|x) over `draws` latent draws
 * z_k ~ r(z|x) (Burda et al. 2016). Its expectation rises towards log q(x) as
 * draws grow, and equals it for every draw when r(z|x) is the exact posterior;
 * it is an estimate, not the exact density a Metropolis test needs.
 */
at::Tensor estimateCGLogDensity(const CGLatentModel& model, const at::Tensor& frames, int draws,
                                at::Generator& generator);

/** How trainCGLatentModelFromEnergy() trains (docs/cg_latent.md, "Training without data"). */
struct CGPhysicsOptions {
    int64_t maxSteps = 20000;         // at most this many steps in all
    int64_t stepsAtTarget = 2000;     // steps after beta_s has reached beta; then training stops
    int64_t batchSize = 256;          // (z, x) draws per step
    double learningRate = 1e-3;       // Adam
    double gradientClip = 100.0;      // global gradient norm; 0: none
    double temperingStart = 1e-10;    // beta_s / beta at the start
    double temperingThreshold = 1.0;  // nats: the KL estimate allowed after a rise of beta_s
    /**
     * true: the threshold bounds the increase of the KL estimate by a rise
     * (a model whose KL stays above the threshold still tempers on); false: the
     * KL estimate itself, as FlowTrainer's tempering does.
     */
    bool temperingOnIncrease = true;
    int64_t temperingInterval = 50;   // steps between rises
    double temperingMaxRatio = 10.0;  // largest factor of one rise
    int64_t progressInterval = 0;     // steps between reports; 0: every tempering rise
    /**
     * K latent draws from the encoder per sample besides the one that made it:
     * log q(x) is bounded by the log-mean of K + 1 importance ratios, tighter as K
     * grows (docs/cg_latent.md); 0: paper 002's bound. They cost decoder
     * evaluations, not energies.
     */
    int importanceSamples = 0;
    /**
     * Weight of the mode-covering term (docs/cg_latent.md): maximum likelihood
     * (importance-weighted bound, importanceSamples draws, at least 1) on
     * the model's own samples resampled to the target at beta_s. 0: off, the
     * paper's objective alone, which keeps no well of small weight.
     */
    double coveringWeight = 0;
    int64_t coveringSamples = 20000;     // model samples in the buffer, redrawn every temperingInterval steps
    int coveringImportanceSamples = 32;  // draws K of the buffer's bound of log q(x)
    uint64_t seed = 1;
};

/** One progress report of trainCGLatentModelFromEnergy(); per-sample values in nats. */
struct CGPhysicsProgress {
    int64_t step = 0;
    double betaFraction = 0;          // beta_s / beta
    double bound = 0;                 // mean of -beta_s u + log r - log q(x|z) - log q(z) over finite samples
    double meanReducedEnergy = 0;     // mean u = U / kT at the energy's temperature over finite samples
    double klEstimate = 0;            // of the samples against the target at beta_s, from their log-weights
    double fractionNonFinite = 0;     // samples whose energy was not finite (left out)
    double coveringEss = 0;           // Kish ESS / M of the covering buffer at beta_s (0 without one)
    double stepsPerSecond = 0;
};

/** What embedded-physics training did. */
struct CGPhysicsSummary {
    int64_t steps = 0;
    double seconds = 0;
    bool reachedTarget = false;                 // beta_s reached beta
    int64_t stepsToTarget = -1;                 // the step at which it did
    std::vector<double> betaFractions;          // beta_s / beta after each rise
    CGPhysicsProgress last;
};

using CGPhysicsCallback = std::function<void(const CGPhysicsProgress&)>;

/**
 * Trains `model` without data on the Boltzmann distribution of `energy`'s
 * System at its temperature: maximises
 *   E_{z ~ N(0,I), x ~ q(x|z)}[-beta_s u(x) + log r_phi(z|x) - log q_theta(x|z) - log q(z)]
 * (reparameterised; forces from the energy bridge), with beta_s raised from
 * temperingStart * beta to beta every temperingInterval steps as far as keeps
 * the KL estimate of the model's samples at the new beta_s under
 * temperingThreshold (largestTemperingFactor). Decoded coordinates are in the
 * model's frame and are encoded without alignment. Samples whose energy is not
 * finite are left out of the step. Throws an OpenMMException for a System of
 * another size or bad options.
 */
CGPhysicsSummary trainCGLatentModelFromEnergy(CGLatentModel& model, const OpenMMEnergy& energy,
                                              const CGPhysicsOptions& options,
                                              const CGPhysicsCallback& progress = CGPhysicsCallback());

} // namespace OpenMMBG

#endif
