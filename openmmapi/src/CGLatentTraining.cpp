#include "openmmbg/CGLatentTraining.h"

#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/internal/MLP.h"
#include "openmmbg/internal/Tempering.h"
#include "openmmbg/internal/TensorChecks.h"
#include "openmmbg/tools/Metrics.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <openmm/OpenMMException.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/optim/adam.h>

#include <chrono>
#include <cmath>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

const double LOG_2PI = std::log(2 * M_PI);

/** log N(residual; 0, diag exp(logVariance)), summed over dimension `dim`. */
at::Tensor logNormalDiagonal(const at::Tensor& residual, const at::Tensor& logVariance, int64_t dim) {
    return -0.5 * (LOG_2PI + logVariance + residual * residual * at::exp(-logVariance)).sum(dim);
}

/** Latent draws [B, S, d_z] from r_phi(z|x), reparameterised. */
at::Tensor drawLatent(const CGEncoding& encoding, int draws, at::Generator& generator) {
    const int64_t b = encoding.mean.size(0), d = encoding.mean.size(1);
    at::Tensor eps = at::normal(0.0, 1.0, {b, (int64_t) draws, d}, generator, at::kDouble);
    return encoding.mean.unsqueeze(1) + at::exp(0.5 * encoding.logVariance).unsqueeze(1) * eps;
}

CGElboTerms elboTerms(const CGLatentModel& model, const at::Tensor& frames, const CGEncoding& encoding,
                      const at::Tensor& latent) {
    const int64_t b = latent.size(0), s = latent.size(1), d = latent.size(2);
    const int64_t n = 3 * (int64_t) model.getNumParticles();
    at::Tensor x = model.align(frames).reshape({b, 1, n});
    CGDecoding decoding = model.decode(latent.reshape({b * s, d}));
    at::Tensor mean = decoding.mean.reshape({b, s, n}), logVariance = decoding.logVariance.reshape({b, s, n});
    at::Tensor residual = x - mean;
    at::Tensor logLikelihood = logNormalDiagonal(residual, logVariance, 2);
    CGElboTerms terms;
    terms.expectedLogLikelihood = logLikelihood.mean(1);
    terms.kl = 0.5 * (encoding.mean * encoding.mean + at::exp(encoding.logVariance) - 1.0 - encoding.logVariance).sum(1);
    terms.elbo = terms.expectedLogLikelihood - terms.kl;
    return terms;
}

double activeFraction(const std::vector<at::Tensor>& matrices) {
    int64_t active = 0, total = 0;
    for (const at::Tensor& w : matrices) {
        at::Tensor magnitude = w.detach().abs();
        active += (magnitude > 1e-2 * magnitude.max()).sum().item<int64_t>();
        total += w.numel();
    }
    return total ? (double) active / (double) total : 1.0;
}

} // namespace

CGElboTerms evidenceLowerBoundAt(const CGLatentModel& model, const at::Tensor& frames, const at::Tensor& latent) {
    checkFrames(frames, model.getNumParticles(), "evidenceLowerBound");
    if (latent.dim() != 3 || latent.size(0) != frames.size(0) || latent.size(2) != model.getLatentDim())
        throw OpenMMException("evidenceLowerBound: latent draws must be [frames, draws, " +
                              std::to_string(model.getLatentDim()) + "], got " + shapeString(latent));
    return elboTerms(model, frames, model.encode(frames), latent.to(at::kDouble));
}

CGElboTerms evidenceLowerBound(const CGLatentModel& model, const at::Tensor& frames, int latentDraws,
                               at::Generator& generator) {
    checkFrames(frames, model.getNumParticles(), "evidenceLowerBound");
    if (latentDraws < 1)
        throw OpenMMException("evidenceLowerBound: need at least one latent draw per frame");
    CGEncoding encoding = model.encode(frames);
    return elboTerms(model, frames, encoding, drawLatent(encoding, latentDraws, generator));
}

at::Tensor ardExpectedPrecision(const at::Tensor& weights, const ARDPrior& prior) {
    if (!(prior.shape >= 0) || !(prior.rate > 0) || !std::isfinite(prior.shape) || !std::isfinite(prior.rate))
        throw OpenMMException("ARD prior: the Gamma shape must be >= 0 and its rate > 0 (both finite)");
    at::Tensor w = weights.detach();
    return (prior.shape + 0.5) / (prior.rate + 0.5 * w * w);
}

CGTrainingSummary trainCGLatentModel(CGLatentModel& model, const at::Tensor& frames, const CGTrainingOptions& options,
                                     const CGProgressCallback& progress) {
    const std::string where = "trainCGLatentModel";
    checkFrames(frames, model.getNumParticles(), where);
    const int64_t numFrames = frames.size(0);
    if (options.steps < 1 || options.batchSize < 1 || options.latentDraws < 1 || options.ardInterval < 1 ||
        options.progressInterval < 0 || options.ardStartStep < -1)
        throw OpenMMException(where + ": steps, batch size, latent draws and the ARD interval must be positive");
    if (options.batchSize > numFrames)
        throw OpenMMException(where + ": the batch size (" + std::to_string(options.batchSize) +
                              ") is larger than the number of frames (" + std::to_string(numFrames) + ")");
    if (!(options.learningRate > 0) || !std::isfinite(options.learningRate))
        throw OpenMMException(where + ": the learning rate must be positive");
    ardExpectedPrecision(at::zeros({1}, at::kDouble), options.ardPrior);  // checks the hyperprior
    const at::Tensor data = model.align(frames);
    at::Generator generator = at::detail::createCPUGenerator(options.seed);
    std::vector<at::Tensor> parameters = model.encoderParameters();
    for (const at::Tensor& p : model.decoderParameters())
        parameters.push_back(p);
    torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(options.learningRate));
    const std::vector<at::Tensor> matrices = model.decoderWeightMatrices();
    std::vector<at::Tensor> precisions;
    const int64_t interval = options.progressInterval > 0 ? options.progressInterval
                                                          : std::max<int64_t>(1, options.steps / 10);
    const auto start = std::chrono::steady_clock::now();
    at::Tensor order = at::randperm(numFrames, generator, at::kLong);
    int64_t cursor = 0;
    CGTrainingProgress report;
    report.steps = options.steps;
    const int64_t ardStart = options.ardStartStep >= 0 ? options.ardStartStep : options.steps / 4;
    for (int64_t step = 1; step <= options.steps; step++) {
        const bool ardActive = options.ard && step > ardStart;
        if (ardActive && (step - 1 - ardStart) % options.ardInterval == 0) {
            precisions.clear();
            for (const at::Tensor& w : matrices)
                precisions.push_back(ardExpectedPrecision(w, options.ardPrior));
        }
        if (cursor + options.batchSize > numFrames) {
            order = at::randperm(numFrames, generator, at::kLong);
            cursor = 0;
        }
        at::Tensor batch = data.index_select(0, order.narrow(0, cursor, options.batchSize));
        cursor += options.batchSize;
        CGElboTerms terms = evidenceLowerBound(model, batch, options.latentDraws, generator);
        // The objective per frame: the batch's mean ELBO + log p(theta) / N.
        at::Tensor loss = -terms.elbo.mean();
        at::Tensor logPrior = at::zeros({}, at::kDouble);
        if (ardActive)
            for (size_t i = 0; i < matrices.size(); i++)
                logPrior = logPrior - 0.5 * (precisions[i] * matrices[i] * matrices[i]).sum();
        loss = loss - logPrior / (double) numFrames;
        // Checked before the step, so that a diverged run leaves the last finite weights.
        if (!std::isfinite(loss.item<double>()))
            throw OpenMMException(where + ": the loss became non-finite at step " + std::to_string(step) +
                                  " (lower the learning rate?)");
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        if (progress && (step % interval == 0 || step == options.steps)) {
            report.step = step;
            report.elbo = terms.elbo.mean().item<double>();
            report.kl = terms.kl.mean().item<double>();
            report.expectedLogLikelihood = terms.expectedLogLikelihood.mean().item<double>();
            report.logPrior = logPrior.item<double>() / (double) numFrames;
            report.activeWeightFraction = activeFraction(matrices);
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            report.stepsPerSecond = seconds > 0 ? (double) step / seconds : 0;
            progress(report);
        }
    }
    CGTrainingSummary summary;
    summary.steps = options.steps;
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
        at::NoGradGuard noGrad;
        summary.finalElbo = evidenceLowerBound(model, data, 64, generator).elbo.mean().item<double>();
    }
    if (options.ard)
        summary.outputWeightPrecision =
            ardExpectedPrecision(model.decoderOutputWeight(), options.ardPrior).clone();
    summary.activeWeightFraction = activeFraction(matrices);
    return summary;
}

namespace {

/** The diagonal Laplace precision of the decoder's hidden layers (CGLaplacePosterior). */
std::vector<at::Tensor> hiddenLayerPrecision(const CGLatentModel& model, const at::Tensor& latent,
                                             const CGLaplaceOptions& options) {
    if (options.probes < 1)
        throw OpenMMException("CGLaplacePosterior: need at least one probe for the hidden layers");
    at::AutoGradMode enableGrad(true);  // callers hold a NoGradGuard
    const std::vector<at::Tensor> parameters = model.decoderHiddenParameters();
    if (parameters.empty())
        return {};
    const int64_t draws = latent.size(1);
    const at::Tensor z = latent.reshape({-1, latent.size(2)}).to(at::kDouble);
    const at::Tensor inverseSigma = at::exp(-0.5 * model.decoderLogVariance().detach()).unsqueeze(0);
    at::Generator generator = at::detail::createCPUGenerator(options.seed + 1);
    std::vector<at::Tensor> diagonal;
    for (const at::Tensor& p : parameters)
        diagonal.push_back(at::zeros_like(p).detach());
    const at::Tensor mean = model.decode(z).mean;  // [M, 3N], a graph to the hidden layers
    for (int probe = 0; probe < options.probes; probe++) {
        const at::Tensor signs = at::bernoulli(at::full(mean.sizes(), 0.5, at::kDouble), generator) * 2 - 1;
        const at::Tensor projection = (mean * signs * inverseSigma).sum() / std::sqrt((double) draws);
        const std::vector<at::Tensor> g = torch::autograd::grad({projection}, parameters, {}, true);
        for (size_t i = 0; i < g.size(); i++)
            diagonal[i] += g[i].detach().square() / (double) options.probes;
    }
    std::vector<at::Tensor> precision;
    for (size_t i = 0; i < parameters.size(); i++) {
        const bool weightMatrix = parameters[i].dim() == 2;
        const at::Tensor prior = weightMatrix && options.ard
                                     ? ardExpectedPrecision(parameters[i], options.ardPrior)
                                     : at::full_like(diagonal[i], options.priorPrecision);
        precision.push_back(diagonal[i] + prior);
    }
    return precision;
}

/** tau = P / (|theta|^2 + tr Sigma(tau)) to convergence: the EM fixed point of the Laplace evidence in tau. */
double evidencePriorPrecision(const at::Tensor& eigenCurvature, double squaredNorm, double start) {
    const double count = (double) eigenCurvature.numel();
    double tau = start;
    for (int iteration = 0; iteration < 100000; iteration++) {
        const double next = count / (squaredNorm + (1.0 / (eigenCurvature + tau)).sum().item<double>());
        const bool converged = std::abs(next - tau) <= 1e-12 * tau;
        tau = next;
        if (converged)
            break;
    }
    return tau;
}

/** The Kronecker factors of every decoder layer (CGKroneckerLayer). */
std::vector<CGKroneckerLayer> fitKroneckerLayers(const CGLatentModel& model, const at::Tensor& latent,
                                                 const CGLaplaceOptions& options) {
    at::AutoGradMode enableGrad(true);  // callers hold a NoGradGuard
    const at::Tensor z = latent.reshape({-1, latent.size(2)}).to(at::kDouble);
    const int64_t samples = z.size(0);
    const at::Tensor inverseSigma = at::exp(-0.5 * model.decoderLogVariance().detach());
    const int64_t n = inverseSigma.numel();
    std::vector<at::Tensor> inputs, preActivations;
    model.traceDecoder(z, inputs, preActivations);
    const size_t layers = preActivations.size();
    std::vector<at::Tensor> outputGram;
    for (const at::Tensor& s : preActivations)
        outputGram.push_back(at::zeros({s.size(1), s.size(1)}, at::kDouble));
    // Row k of J for every sample at once: samples do not mix, so the gradient
    // of the summed mean_k with respect to a pre-activation has each sample's own row.
    const at::Tensor mean = preActivations.back().narrow(1, 0, n);
    for (int64_t k = 0; k < n; k++) {
        const std::vector<at::Tensor> rows =
            torch::autograd::grad({mean.select(1, k).sum()}, preActivations, {}, true);
        const double scale = inverseSigma[k].item<double>();
        for (size_t l = 0; l < layers; l++)
            outputGram[l] += at::matmul(rows[l].t(), rows[l]) * (scale * scale);
    }
    const std::vector<at::Tensor> parameters = model.decoderParameters();  // weight, bias per layer
    std::vector<CGKroneckerLayer> result;
    for (size_t l = 0; l < layers; l++) {
        CGKroneckerLayer layer;
        const at::Tensor a = at::cat({inputs[l].detach(), at::ones({samples, 1}, at::kDouble)}, 1);
        std::tie(layer.inputEigenvalues, layer.inputBasis) = at::linalg_eigh(at::matmul(a.t(), a) / (double) samples);
        std::tie(layer.outputEigenvalues, layer.outputBasis) = at::linalg_eigh(outputGram[l] / (double) samples);
        // Both factors are positive semi-definite: rounding may leave eigenvalues just below 0.
        layer.inputEigenvalues.clamp_min_(0);
        layer.outputEigenvalues.clamp_min_(0);
        layer.frames = (double) latent.size(0);
        layer.priorPrecision = options.priorPrecision;
        if (options.evidencePrior) {
            const double squaredNorm = (parameters[2 * l].detach().square().sum() +
                                        parameters[2 * l + 1].detach().square().sum()).item<double>();
            layer.priorPrecision =
                evidencePriorPrecision(layer.eigenPrecision() - layer.priorPrecision, squaredNorm, layer.priorPrecision);
        }
        result.push_back(layer);
    }
    return result;
}

} // namespace

at::Tensor CGKroneckerLayer::eigenPrecision() const {
    return frames * at::outer(inputEigenvalues, outputEigenvalues) + priorPrecision;
}

CGLaplacePosterior CGLaplacePosterior::fit(const CGLatentModel& model, const at::Tensor& frames,
                                           const CGLaplaceOptions& options) {
    checkFrames(frames, model.getNumParticles(), "CGLaplacePosterior::fit");
    if (options.latentDraws < 1)
        throw OpenMMException("CGLaplacePosterior::fit: need at least one latent draw per frame");
    at::NoGradGuard noGrad;
    at::Generator generator = at::detail::createCPUGenerator(options.seed);
    return fitAt(model, drawLatent(model.encode(frames), options.latentDraws, generator), options);
}

CGLaplacePosterior CGLaplacePosterior::fitAt(const CGLatentModel& model, const at::Tensor& latent,
                                             const CGLaplaceOptions& options) {
    const std::string where = "CGLaplacePosterior";
    if (latent.dim() != 3 || latent.size(2) != model.getLatentDim() || latent.size(0) < 1 || latent.size(1) < 1)
        throw OpenMMException(where + ": latent draws must be [frames, draws, " +
                              std::to_string(model.getLatentDim()) + "], got " + shapeString(latent));
    if (!(options.priorPrecision > 0) || !std::isfinite(options.priorPrecision))
        throw OpenMMException(where + ": the prior precision must be positive");
    at::NoGradGuard noGrad;
    const at::Tensor logVariance = model.decoderLogVariance().detach();  // throws for embedded-physics models
    const int64_t n = logVariance.numel(), frames = latent.size(0), draws = latent.size(1);
    at::Tensor h = model.decoderFeatures(latent.reshape({frames * draws, -1}).to(at::kDouble));
    const int64_t width = h.size(1);
    at::Tensor phi = at::cat({h, at::ones({h.size(0), 1}, h.options())}, 1);
    // sum over frames of the mean over draws of phi phi^T.
    at::Tensor gram = at::matmul(phi.t(), phi) / (double) draws;
    at::Tensor priorDiagonal = at::full({n, width + 1}, options.priorPrecision, at::kDouble);
    if (options.weightPrecision.defined()) {
        if (!options.weightPrecision.sizes().equals({width, n}))
            throw OpenMMException(where + ": weightPrecision must be [" + std::to_string(width) + ", " +
                                  std::to_string(n) + "], got " + shapeString(options.weightPrecision));
        at::Tensor tau = options.weightPrecision.to(at::kDouble);
        if (!(tau > 0).all().item<bool>() || !at::isfinite(tau).all().item<bool>())
            throw OpenMMException(where + ": weight precisions must be positive and finite");
        priorDiagonal.narrow(1, 0, width).copy_(tau.t());
    }
    CGLaplacePosterior posterior(model.clone());  // the MAP it was made at, whatever later training does
    if (options.curvature == CGLaplaceOptions::Curvature::Kronecker) {
        if (options.weightPrecision.defined() || options.ard || options.hiddenLayers)
            throw OpenMMException(where + ": the Kronecker curvature covers every layer with an isotropic prior per "
                                  "layer; weightPrecision, ard and hiddenLayers belong to the output-layer curvature");
        posterior.kroneckerLayers = fitKroneckerLayers(model, latent, options);
        return posterior;
    }
    posterior.precision = gram.unsqueeze(0) * at::exp(-logVariance).reshape({n, 1, 1}) + at::diag_embed(priorDiagonal);
    posterior.choleskyFactor = at::linalg_cholesky(posterior.precision);
    if (options.hiddenLayers)
        posterior.hiddenPrecision = hiddenLayerPrecision(model, latent, options);
    return posterior;
}

at::Tensor CGLaplacePosterior::covariance() const {
    if (!choleskyFactor.defined())
        throw OpenMMException("CGLaplacePosterior::covariance: a Kronecker-factored posterior has no output-layer "
                              "blocks (see getKroneckerLayers and layerPrecision)");
    return at::cholesky_inverse(choleskyFactor);
}

at::Tensor CGLaplacePosterior::layerPrecision(int layer) const {
    if (layer < 0 || layer >= (int) kroneckerLayers.size())
        throw OpenMMException("CGLaplacePosterior::layerPrecision: no Kronecker-factored layer " + std::to_string(layer) +
                              " (there are " + std::to_string(kroneckerLayers.size()) + ")");
    const CGKroneckerLayer& k = kroneckerLayers[layer];
    // theta = U_a X U_g^T flattened row by row is (U_a (x) U_g) vec(X).
    const at::Tensor basis = at::kron(k.inputBasis, k.outputBasis);
    return at::matmul(basis * k.eigenPrecision().reshape({1, -1}), basis.t());
}

CGLatentModel CGLaplacePosterior::drawModel(at::Generator& generator) const {
    return modelAt(drawOffsets(generator));
}

std::vector<at::Tensor> CGLaplacePosterior::drawOffsets(at::Generator& generator) const {
    at::NoGradGuard noGrad;
    const std::vector<at::Tensor> parameters = model.decoderParameters();
    std::vector<at::Tensor> offsets;
    for (const at::Tensor& p : parameters)
        offsets.push_back(at::zeros_like(p).detach());
    if (!kroneckerLayers.empty()) {
        for (size_t l = 0; l < kroneckerLayers.size(); l++) {
            const CGKroneckerLayer& k = kroneckerLayers[l];
            const int64_t in = parameters[2 * l].size(0), out = parameters[2 * l].size(1);
            const at::Tensor eps = at::normal(0.0, 1.0, {in + 1, out}, generator, at::kDouble);
            const at::Tensor offset =
                at::matmul(at::matmul(k.inputBasis, eps / at::sqrt(k.eigenPrecision())), k.outputBasis.t());
            offsets[2 * l].copy_(offset.narrow(0, 0, in));
            offsets[2 * l + 1].copy_(offset.select(0, in));
        }
        return offsets;
    }
    const size_t outputLayer = parameters.size() - 3;  // the last weight, then its bias and the log-variances
    const int64_t n = precision.size(0), width = precision.size(1) - 1;
    // theta_d = MAP_d + L_d^-T eps_d has covariance (L_d L_d^T)^-1 = A_d^-1.
    at::Tensor eps = at::normal(0.0, 1.0, {n, width + 1, 1}, generator, at::kDouble);
    at::Tensor offset = at::linalg_solve_triangular(choleskyFactor.transpose(1, 2), eps, true).squeeze(2);
    offsets[outputLayer].narrow(1, 0, n).copy_(offset.narrow(1, 0, width).t());
    offsets[outputLayer + 1].narrow(0, 0, n).copy_(offset.select(1, width));
    for (size_t i = 0; i < hiddenPrecision.size(); i++)
        offsets[i].copy_(at::normal(0.0, 1.0, hiddenPrecision[i].sizes(), generator, at::kDouble) /
                         at::sqrt(hiddenPrecision[i]));
    return offsets;
}

CGLatentModel CGLaplacePosterior::modelAt(const std::vector<at::Tensor>& offsets, double scale) const {
    CGLatentModel copy = model.clone();
    const std::vector<at::Tensor> parameters = copy.decoderParameters();
    if (offsets.size() != parameters.size())
        throw OpenMMException("CGLaplacePosterior: " + std::to_string(offsets.size()) + " offsets for " +
                              std::to_string(parameters.size()) + " decoder parameters");
    at::NoGradGuard noGrad;
    for (size_t i = 0; i < parameters.size(); i++) {
        if (!offsets[i].sizes().equals(parameters[i].sizes()))
            throw OpenMMException("CGLaplacePosterior: offset " + std::to_string(i) + " is " +
                                  shapeString(offsets[i]) + ", its parameter " + shapeString(parameters[i]));
        at::Tensor p = parameters[i];
        p.add_(offsets[i].to(at::kDouble), scale);
    }
    return copy;
}

at::Tensor CGLaplacePosterior::linearizedMean(const std::vector<at::Tensor>& offsets, const at::Tensor& latent) const {
    // Relative to the offsets: small against their scale, large against rounding.
    const double h = 1e-5;
    at::NoGradGuard noGrad;
    const at::Tensor plus = modelAt(offsets, h).decode(latent).mean, minus = modelAt(offsets, -h).decode(latent).mean;
    return model.decode(latent).mean + (plus - minus) / (2 * h);
}

at::Tensor CGLaplacePosterior::sampleLinearized(const std::vector<at::Tensor>& offsets, int64_t count,
                                                at::Generator& generator) const {
    if (count < 1)
        throw OpenMMException("CGLaplacePosterior::sampleLinearized: the count must be positive");
    at::NoGradGuard noGrad;
    const at::Tensor z = at::normal(0.0, 1.0, {count, (int64_t) model.getLatentDim()}, generator, at::kDouble);
    const at::Tensor mean = linearizedMean(offsets, z);
    const at::Tensor sigma = at::exp(0.5 * model.decoderLogVariance().detach()).unsqueeze(0);
    return (mean + sigma * at::normal(0.0, 1.0, mean.sizes(), generator, at::kDouble))
        .reshape({count, model.getNumParticles(), 3});
}

namespace {

/**
 * log[q(x|z_k) q(z_k) / r(z_k|x)] [B, K] for `draws` reparameterised latent
 * draws z_k ~ r(z|x): each ratio is an unbiased estimate of q(x), so the log
 * of their mean is a lower bound of log q(x) on average (docs/cg_latent.md).
 */
at::Tensor importanceLogRatios(const CGLatentModel& model, const at::Tensor& x, const CGEncoding& encoding,
                               int draws, at::Generator& generator) {
    const int64_t b = x.size(0), n = x.size(1), d = encoding.mean.size(1);
    const at::Tensor latent = drawLatent(encoding, draws, generator);  // [B, K, d]
    const at::Tensor logEncoder = logNormalDiagonal(latent - encoding.mean.unsqueeze(1),
                                                    encoding.logVariance.unsqueeze(1), 2);
    const CGDecoding decoding = model.decode(latent.reshape({b * draws, d}));
    const at::Tensor logDecoder = logNormalDiagonal(x.unsqueeze(1) - decoding.mean.reshape({b, draws, n}),
                                                    decoding.logVariance.reshape({b, draws, n}), 2);
    const at::Tensor logPrior = -0.5 * (latent * latent + LOG_2PI).sum(2);
    return logDecoder + logPrior - logEncoder;
}

/**
 * An upper bound of log q_theta(x) [B] for x drawn from q_theta(x|z0), z0 ~ q(z).
 * `drawnTerm` is log q(x|z0) + log q(z0) - log r(z0|x), whose mean over the
 * posterior of z0 exceeds log q(x) by KL(q(z|x) || r(z|x)). With K =
 * `extraDraws` latent draws z_k ~ r(z|x) besides z0, the log of the mean of
 * the K + 1 ratios q(x, z_k) / r(z_k|x) is a bound that tightens towards
 * log q(x) as K grows (Sobolev and Vetrov 2019); K = 0 is paper 002's bound.
 */
at::Tensor modelLogDensityBound(const CGLatentModel& model, const at::Tensor& x, const at::Tensor& drawnTerm,
                                const CGEncoding& encoding, int extraDraws, at::Generator& generator) {
    if (extraDraws == 0)
        return drawnTerm;
    const at::Tensor ratios = importanceLogRatios(model, x, encoding, extraDraws, generator);
    return at::logsumexp(at::cat({drawnTerm.unsqueeze(1), ratios}, 1), 1) - std::log((double) (extraDraws + 1));
}

/** The importance-weighted lower bound of log q(x) [B] for x [B, 3N] (Burda et al. 2016). */
at::Tensor importanceWeightedLowerBound(const CGLatentModel& model, const at::Tensor& x, int draws,
                                        at::Generator& generator) {
    return at::logsumexp(importanceLogRatios(model, x, model.encodeCoordinates(x), draws, generator), 1) -
           std::log((double) draws);
}

/** Draws of the model, x = mu(z) + sigma(z) eps with z ~ N(0, I), with an upper bound of log q(x). */
struct ModelDraws {
    at::Tensor coordinates;  // [B, 3N] nm
    at::Tensor logDensity;   // [B] modelLogDensityBound
};

ModelDraws drawWithDensityBound(const CGLatentModel& model, int64_t count, int extraDraws, at::Generator& generator) {
    const int64_t d = model.getLatentDim(), n = 3 * (int64_t) model.getNumParticles();
    const at::Tensor z = at::normal(0.0, 1.0, {count, d}, generator, at::kDouble);
    const at::Tensor eps = at::normal(0.0, 1.0, {count, n}, generator, at::kDouble);
    const CGDecoding decoding = model.decode(z);
    const at::Tensor x = decoding.mean + at::exp(0.5 * decoding.logVariance) * eps;
    const at::Tensor logDecoder = -0.5 * (LOG_2PI + decoding.logVariance + eps * eps).sum(1);
    const at::Tensor logPrior = -0.5 * (z * z + LOG_2PI).sum(1);
    const CGEncoding encoding = model.encodeCoordinates(x);
    const at::Tensor logEncoder = logNormalDiagonal(z - encoding.mean, encoding.logVariance, 1);
    return {x, modelLogDensityBound(model, x, logDecoder + logPrior - logEncoder, encoding, extraDraws, generator)};
}

/**
 * The model's own samples with their reduced energies u and bounds of log q(x),
 * for the mode-covering term: resampled in proportion to exp(-beta_s u) / q(x),
 * they stand for the tempered target, so maximum likelihood on them pulls the
 * model towards every well its samples reached, in proportion to the well's
 * weight at beta_s (after TA-BG's annealing, Schopmans and Friederich 2024).
 */
class CoveringBuffer {
public:
    void refill(const CGLatentModel& model, const OpenMMEnergy& energy, int64_t count, int draws,
                at::Generator& generator) {
        at::NoGradGuard noGrad;
        const ModelDraws drawn = drawWithDensityBound(model, count, draws, generator);
        const at::Tensor u = energy.reducedEnergy(drawn.coordinates.reshape({count, -1, 3}));
        const at::Tensor x = drawn.coordinates, logDensity = drawn.logDensity;
        const at::Tensor kept = (at::isfinite(u) & at::isfinite(logDensity)).nonzero().reshape({-1});
        coordinates = x.index_select(0, kept);
        reducedEnergy = u.index_select(0, kept);
        logModelDensity = logDensity.index_select(0, kept);
    }

    /** log-weights of the buffer's samples at beta_s = fraction * beta. */
    at::Tensor logWeights(double fraction) const { return -fraction * reducedEnergy - logModelDensity; }

    /** `count` samples [count, 3N] drawn with replacement in proportion to their weights at beta_s. */
    at::Tensor resample(double fraction, int64_t count, at::Generator& generator) const {
        if (coordinates.size(0) < 2)
            throw OpenMMException("trainCGLatentModelFromEnergy: fewer than 2 of the covering buffer's samples "
                                  "have a finite energy");
        const at::Tensor picked = at::multinomial(at::softmax(logWeights(fraction), 0), count, true, generator);
        return coordinates.index_select(0, picked);
    }

    bool empty() const { return !coordinates.defined(); }

private:
    at::Tensor coordinates;      // [M, 3N] nm
    at::Tensor reducedEnergy;    // [M] u at the energy's temperature
    at::Tensor logModelDensity;  // [M] upper bound of log q(x)
};

} // namespace

at::Tensor estimateCGLogDensity(const CGLatentModel& model, const at::Tensor& frames, int draws,
                                at::Generator& generator) {
    if (draws < 1)
        throw OpenMMException("estimateCGLogDensity: draws must be positive, got " + std::to_string(draws));
    at::NoGradGuard noGrad;
    return importanceWeightedLowerBound(model, model.align(frames).reshape({frames.size(0), -1}), draws, generator);
}

CGPhysicsSummary trainCGLatentModelFromEnergy(CGLatentModel& model, const OpenMMEnergy& energy,
                                              const CGPhysicsOptions& options, const CGPhysicsCallback& progress) {
    const std::string where = "trainCGLatentModelFromEnergy";
    if (energy.getNumParticles() != model.getNumParticles())
        throw OpenMMException(where + ": the energy's System has " + std::to_string(energy.getNumParticles()) +
                              " particles, the model " + std::to_string(model.getNumParticles()));
    if (options.maxSteps < 1 || options.stepsAtTarget < 0 || options.batchSize < 2 || options.temperingInterval < 1 ||
        options.progressInterval < 0)
        throw OpenMMException(where + ": maxSteps and temperingInterval must be positive, the batch at least 2");
    if (!(options.learningRate > 0) || !std::isfinite(options.learningRate) || !(options.gradientClip >= 0))
        throw OpenMMException(where + ": the learning rate must be positive and the gradient clip non-negative");
    if (!(options.temperingStart > 0) || !(options.temperingStart <= 1))
        throw OpenMMException(where + ": temperingStart (beta_s / beta at the start) must be in (0, 1], got " +
                              std::to_string(options.temperingStart));
    if (!(options.temperingThreshold > 0) || !std::isfinite(options.temperingThreshold))
        throw OpenMMException(where + ": the tempering threshold must be positive (nats), got " +
                              std::to_string(options.temperingThreshold));
    if (!(options.temperingMaxRatio > 1) || !std::isfinite(options.temperingMaxRatio))
        throw OpenMMException(where + ": temperingMaxRatio must be above 1");
    if (options.importanceSamples < 0 || options.coveringImportanceSamples < 0)
        throw OpenMMException(where + ": importanceSamples and coveringImportanceSamples must be non-negative");
    if (!(options.coveringWeight >= 0) || !std::isfinite(options.coveringWeight))
        throw OpenMMException(where + ": coveringWeight must be non-negative (0: no covering term)");
    if (options.coveringWeight > 0 && options.coveringSamples < 2)
        throw OpenMMException(where + ": the covering buffer needs at least 2 samples");
    const int64_t b = options.batchSize;
    at::Generator generator = at::detail::createCPUGenerator(options.seed);
    std::vector<at::Tensor> parameters = model.encoderParameters();
    for (const at::Tensor& p : model.decoderParameters())
        parameters.push_back(p);
    torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(options.learningRate));
    CGPhysicsSummary summary;
    double fraction = options.temperingStart;
    int64_t atTarget = 0;
    CoveringBuffer buffer;
    const auto start = std::chrono::steady_clock::now();
    for (int64_t step = 1; step <= options.maxSteps; step++) {
        const ModelDraws drawn = drawWithDensityBound(model, b, options.importanceSamples, generator);
        const at::Tensor u = energy.reducedEnergy(drawn.coordinates.reshape({b, -1, 3}));
        const at::Tensor rest = -drawn.logDensity;
        const at::Tensor finite = at::isfinite(u) & at::isfinite(rest);
        const int64_t kept = finite.sum().item<int64_t>();
        if (kept < 2)
            throw OpenMMException(where + ": at step " + std::to_string(step) + " fewer than 2 of " +
                                  std::to_string(b) + " samples have a finite energy (set an energy cut in "
                                  "OpenMMEnergy::Options, or start closer to a valid structure)");
        const at::Tensor index = finite.nonzero().reshape({-1});
        const at::Tensor logWeight = -fraction * u.index_select(0, index) + rest.index_select(0, index);
        at::Tensor loss = -logWeight.mean();
        if (options.coveringWeight > 0) {
            // The buffer is redrawn from the model every temperingInterval steps (at every rise, and at beta).
            if ((step - 1) % options.temperingInterval == 0)
                buffer.refill(model, energy, options.coveringSamples, options.coveringImportanceSamples, generator);
            // Maximum likelihood on samples that stand for the target at beta_s.
            const at::Tensor resampled = buffer.resample(fraction, b, generator);
            loss = loss - options.coveringWeight *
                              importanceWeightedLowerBound(model, resampled, std::max(options.importanceSamples, 1),
                                                           generator).mean();
        }
        optimizer.zero_grad();
        loss.backward();
        if (options.gradientClip > 0 && !std::isfinite(clipGradientNorm(parameters, options.gradientClip)))
            throw OpenMMException(where + ": the gradient became non-finite at step " + std::to_string(step));
        optimizer.step();
        const bool rise = fraction < 1 && step % options.temperingInterval == 0;
        if (rise) {
            fraction *= largestTemperingFactor(u.detach() * fraction, rest.detach(),
                                               std::min(options.temperingMaxRatio, 1.0 / fraction),
                                               options.temperingThreshold, options.temperingOnIncrease);
            if (fraction > 1 - 1e-12)
                fraction = 1;
            summary.betaFractions.push_back(fraction);
            if (fraction == 1 && summary.stepsToTarget < 0) {
                summary.reachedTarget = true;
                summary.stepsToTarget = step;
            }
        }
        if (fraction == 1 && !rise)
            atTarget++;
        const bool last = step == options.maxSteps || (fraction == 1 && atTarget >= options.stepsAtTarget);
        const bool due = progress && (options.progressInterval > 0 ? step % options.progressInterval == 0 : rise);
        summary.steps = step;
        if (!due && !last)
            continue;
        // The report (also the summary's last one) is made only when it is read.
        CGPhysicsProgress& report = summary.last;
        report.step = step;
        report.betaFraction = fraction;
        report.bound = logWeight.mean().item<double>();
        report.meanReducedEnergy = u.index_select(0, index).mean().item<double>();
        report.klEstimate = klEstimateFromLogWeights(logWeight.detach());
        report.fractionNonFinite = 1.0 - (double) kept / (double) b;
        report.coveringEss = buffer.empty() ? 0.0 : kishEffectiveSampleSize(buffer.logWeights(fraction), 0.0);
        report.stepsPerSecond =
            (double) step / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (progress)
            progress(report);
        if (last)
            break;
    }
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return summary;
}

} // namespace OpenMMBG
