// Coarse-grained latent-variable models (paper 002): ELBO and Laplace
// approximation against closed forms of linear-Gaussian models, the ARD
// update, alignment, files and bad input.

#include "TestSupport.h"

#include "openmmbg/CGLatentModel.h"
#include "openmmbg/CGLatentTraining.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/internal/Tempering.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/tools/ToySystems.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <openmm/OpenMMException.h>
#include <openmm/System.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <fstream>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

std::unique_ptr<OpenMM::System> particles(int count) {
    auto system = std::make_unique<OpenMM::System>();
    for (int i = 0; i < count; i++)
        system->addParticle(1.0 + i);
    return system;
}

/** A model with linear decoder and encoder on raw coordinates of `count` particles. */
CGLatentModel linearModel(const OpenMM::System& system, int latentDim) {
    CGModelConfig config;
    config.latentDim = latentDim;
    config.decoderWidths = {};
    config.encoderWidths = {};
    config.alignFrames = false;
    return CGLatentModel::create(system, at::zeros({1, system.getNumParticles(), 3}, at::kDouble), config);
}

void setTensor(const at::Tensor& target, const at::Tensor& value) {
    at::NoGradGuard noGrad;
    at::Tensor t = target;
    t.copy_(value);
}

/**
 * The linear-Gaussian model x = b + z W + e, z ~ N(0, I), e ~ N(0, s^2 I),
 * with orthogonal rows of W [d, n], so that the exact posterior of z is a
 * diagonal Gaussian: precision P = I + W W^T / s^2, mean (x - b) W^T P^-1 / s^2.
 */
struct LinearGaussian {
    at::Tensor w, b;  // [d, n], [n]
    double s;

    at::Tensor posteriorVariance() const { return 1.0 / (1.0 + (w * w).sum(1) / (s * s)); }  // [d]
    at::Tensor posteriorMeanMap() const { return w.t() * posteriorVariance().unsqueeze(0) / (s * s); }  // [n, d]
    /** log N(x; b, W^T W + s^2 I) [B] for x [B, n]. */
    at::Tensor logMarginal(const at::Tensor& x) const {
        const int64_t n = b.numel();
        at::Tensor covariance = at::matmul(w.t(), w) + s * s * at::eye(n, at::kDouble);
        at::Tensor r = x - b;
        at::Tensor solved = at::linalg_solve(covariance, r.t()).t();
        return -0.5 * ((r * solved).sum(1) + at::logdet(covariance) + n * std::log(2 * M_PI));
    }
};

/** Sets a linear model to the decoder of `lg` and an encoder with the given mean map and bias. */
void setLinearModel(const CGLatentModel& model, const LinearGaussian& lg, const at::Tensor& meanMap,
                    const at::Tensor& meanBias, const at::Tensor& logVariance) {
    const int64_t d = lg.w.size(0), n = lg.w.size(1);
    at::Tensor reference = model.getReference().reshape({n});
    setTensor(model.decoderOutputWeight(), lg.w);
    setTensor(model.decoderOutputBias(), lg.b - reference);
    setTensor(model.decoderLogVariance(), at::full({n}, std::log(lg.s * lg.s), at::kDouble));
    // The encoder sees u = (x - reference) / 0.05 (initialStd of a one-frame model).
    std::vector<at::Tensor> encoder = model.encoderParameters();
    at::Tensor weight = at::zeros({n, 2 * d}, at::kDouble), bias = at::zeros({2 * d}, at::kDouble);
    weight.narrow(1, 0, d).copy_(0.05 * meanMap);
    bias.narrow(0, 0, d).copy_(meanBias + at::matmul(reference.unsqueeze(0), meanMap).squeeze(0));
    bias.narrow(0, d, d).copy_(logVariance);
    setTensor(encoder[0], weight);
    setTensor(encoder[1], bias);
}

LinearGaussian exampleModel() {
    LinearGaussian lg;
    lg.w = at::tensor({1.0, 1.0, 0.0, 0.0, 1.0, -1.0, 1.0, -1.0, 1.0, 1.0, 0.0, 0.0}, at::kDouble).reshape({2, 6});
    lg.w.select(0, 0).mul_(0.4);
    lg.w.select(0, 1).mul_(0.25);
    lg.b = at::tensor({0.1, -0.2, 0.3, 0.0, 0.05, -0.1}, at::kDouble);
    lg.s = 0.3;
    return lg;
}

/** Per-draw E_r terms: the expected log-likelihood at each of `draws` single latent draws of one frame. */
at::Tensor perDrawLogLikelihood(const CGLatentModel& model, const at::Tensor& frame, const at::Tensor& latent) {
    const int64_t draws = latent.size(0);
    at::Tensor frames = frame.expand({draws, frame.size(1), 3}).contiguous();
    return evidenceLowerBoundAt(model, frames, latent.unsqueeze(1)).expectedLogLikelihood.detach();
}

/**
 * A model of three particles with decoder layers of 5 and 4 units and an
 * encoder layer of 4, made from `count` perturbed frames; decoder variances
 * from lowVariance to highVariance (nm^2) over the 9 coordinates.
 */
CGLatentModel smallModel(int count, uint64_t seed, double lowVariance, double highVariance) {
    auto system = particles(3);
    CGModelConfig config;
    config.decoderWidths = {5, 4};
    config.encoderWidths = {4};
    at::Tensor frames = perturbedFrames(at::rand({1, 3, 3}, at::kDouble), count, 0.1, seed);
    CGLatentModel model = CGLatentModel::create(*system, frames, config);
    setTensor(model.decoderLogVariance(), at::log(at::linspace(lowVariance, highVariance, 9, at::kDouble)));
    return model;
}

} // namespace

TEST(CGLatent, ElboOfALinearGaussianModelIsTheMarginalLikelihoodMinusTheKLToTheExactPosterior) {
    auto system = particles(2);
    const LinearGaussian lg = exampleModel();
    CGLatentModel model = linearModel(*system, 2);
    const at::Tensor meanMap = lg.posteriorMeanMap();
    const at::Tensor variance = lg.posteriorVariance();
    at::Generator generator = at::detail::createCPUGenerator(5);
    const at::Tensor x = at::normal(0.0, 0.5, {3, 6}, generator, at::kDouble);
    const int64_t draws = 20000;
    for (double shift : {0.0, 0.7}) {
        // shift = 0: the encoder is the exact posterior, so ELBO = log p(x);
        // otherwise ELBO = log p(x) - KL(r || p(z|x)) with r's mean moved by `shift`.
        setLinearModel(model, lg, meanMap, -at::matmul(lg.b.unsqueeze(0), meanMap).squeeze(0) + shift,
                       at::log(variance));
        const at::Tensor logMarginal = lg.logMarginal(x);
        for (int64_t f = 0; f < x.size(0); f++) {
            at::Tensor frame = x[f].reshape({1, 2, 3});
            CGEncoding encoding = model.encode(frame);
            const at::Tensor exactMean = at::matmul((x[f] - lg.b).unsqueeze(0), meanMap);
            ASSERT_TRUE(at::allclose(encoding.mean, exactMean + shift, 1e-12, 1e-12));
            ASSERT_TRUE(at::allclose(encoding.logVariance, at::log(variance).unsqueeze(0), 1e-12, 1e-12));
            at::Tensor z = encoding.mean + at::sqrt(variance) * at::normal(0.0, 1.0, {draws, 2}, generator, at::kDouble);
            at::Tensor perDraw = perDrawLogLikelihood(model, frame, z);
            const double error = perDraw.std().item<double>() / std::sqrt((double) draws);
            CGElboTerms terms = evidenceLowerBoundAt(model, frame, z.unsqueeze(0));
            // KL(N(m, v) || N(0, I)), and KL(N(m + shift, v) || N(m, v)) = sum_j shift^2 / (2 v_j).
            const at::Tensor m = encoding.mean, v = at::exp(encoding.logVariance);
            const double kl = 0.5 * (m * m + v - 1.0 - at::log(v)).sum().item<double>();
            EXPECT_NEAR(terms.kl.item<double>(), kl, 1e-12);
            const double expected = logMarginal[f].item<double>() - (0.5 * shift * shift / v).sum().item<double>();
            EXPECT_NEAR(terms.elbo.item<double>(), expected, 5 * error + 1e-9)
                << "frame " << f << ", shift " << shift << ", MC error " << error;
            EXPECT_NEAR(terms.expectedLogLikelihood.item<double>(), perDraw.mean().item<double>(), 1e-9);
        }
    }
}

TEST(CGLatent, ImportanceWeightedLogDensityRisesToTheMarginalLikelihood) {
    auto system = particles(2);
    const LinearGaussian lg = exampleModel();
    CGLatentModel model = linearModel(*system, 2);
    const at::Tensor meanMap = lg.posteriorMeanMap(), variance = lg.posteriorVariance();
    const at::Tensor bias = -at::matmul(lg.b.unsqueeze(0), meanMap).squeeze(0);
    at::Generator generator = at::detail::createCPUGenerator(8);
    const at::Tensor x = at::normal(0.0, 0.5, {3, 6}, generator, at::kDouble);
    const at::Tensor logMarginal = lg.logMarginal(x);
    // The exact posterior as encoder: every ratio q(x, z) / r(z|x) is q(x), whatever z.
    setLinearModel(model, lg, meanMap, bias, at::log(variance));
    for (int draws : {1, 7})
        EXPECT_TRUE(at::allclose(estimateCGLogDensity(model, x.reshape({3, 2, 3}), draws, generator), logMarginal,
                                 0, 1e-10));
    // Its mean moved by 0.3: log w = log q(x) - KL + a Gaussian term, so one draw
    // falls short of log q(x) by KL(r || p(z|x)) = sum_j 0.3^2 / (2 v_j) on
    // average, more draws by less (about Var[w] / (2 K E[w]^2)).
    const double shift = 0.3;
    setLinearModel(model, lg, meanMap, bias + shift, at::log(variance));
    const double kl = (0.5 * shift * shift / variance).sum().item<double>();
    const int64_t repeats = 4000;
    const at::Tensor frame = x[0].reshape({1, 2, 3}).expand({repeats, 2, 3}).contiguous();
    std::vector<double> gaps;
    for (int draws : {1, 10, 1000}) {
        const at::Tensor estimates = estimateCGLogDensity(model, frame, draws, generator);
        const double gap = logMarginal[0].item<double>() - estimates.mean().item<double>();
        const double error = estimates.std().item<double>() / std::sqrt((double) repeats);
        if (draws == 1)
            EXPECT_NEAR(gap, kl, 5 * error) << "one draw: the ELBO";
        EXPECT_GT(gap, -5 * error) << draws << " draws: a lower bound";
        gaps.push_back(gap);
    }
    EXPECT_GT(gaps[0], 3 * gaps[1]);
    EXPECT_LT(gaps[2], 0.01 * kl);
    expectMessage([&] { estimateCGLogDensity(model, frame, 0, generator); }, "draws must be positive");
}

TEST(CGLatent, DecoderSigmaStaysUnderItsBoundAndTheBoundIsSaved) {
    auto system = particles(2);
    CGModelConfig config;
    config.alignFrames = false;
    config.varianceDependsOnLatent = true;
    config.initialStd = 0.1;
    config.maxStd = 0.2;
    CGLatentModel model = CGLatentModel::create(*system, at::zeros({1, 2, 3}, at::kDouble), config);
    // The variance head's bias far up (sigma e^4 times its start unbounded): sigma approaches the bound from below.
    const at::Tensor bias = model.decoderParameters().back();  // the output layer's: 6 means, 6 log-variances
    ASSERT_EQ(bias.numel(), 12);
    setTensor(bias.narrow(0, 6, 6), at::full({6}, 100.0, at::kDouble));
    at::Generator generator = at::detail::createCPUGenerator(2);
    const at::Tensor z = 5 * at::normal(0.0, 1.0, {200, 2}, generator, at::kDouble);
    const at::Tensor sigma = at::exp(0.5 * model.decode(z).logVariance).detach();
    EXPECT_LE(sigma.max().item<double>(), 0.2);
    EXPECT_GT(sigma.max().item<double>(), 0.19);
    std::stringstream file;
    model.save(file);
    CGLatentModel loaded = CGLatentModel::load(file, "a test model");
    EXPECT_EQ(loaded.getConfig().maxStd, 0.2);
    EXPECT_TRUE(at::equal(loaded.decode(z).logVariance, model.decode(z).logVariance));

    config.maxStd = -1;
    expectMessage([&] { CGLatentModel::create(*system, at::zeros({1, 2, 3}, at::kDouble), config); }, "maxStd");
    config.maxStd = 0.2;
    config.varianceDependsOnLatent = false;
    expectMessage([&] { CGLatentModel::create(*system, at::zeros({1, 2, 3}, at::kDouble), config); }, "maxStd");
}

TEST(CGLatent, LaplaceOfALinearGaussianDecoderIsTheExactPosteriorOfItsWeights) {
    // With a linear decoder and known latent values z_n, the output layer's
    // posterior is that of Bayesian linear regression, built here as one
    // matrix over all (W, b) and inverted whole.
    auto system = particles(2);
    const LinearGaussian lg = exampleModel();
    CGLatentModel model = linearModel(*system, 2);
    setLinearModel(model, lg, lg.posteriorMeanMap(), at::zeros({2}, at::kDouble), at::zeros({2}, at::kDouble));
    at::Tensor logVariance = at::log(at::tensor({0.01, 0.02, 0.04, 0.01, 0.03, 0.05}, at::kDouble));
    setTensor(model.decoderLogVariance(), logVariance);
    at::Generator generator = at::detail::createCPUGenerator(11);
    const int64_t frames = 7, d = 2, n = 6, p = d + 1;
    const at::Tensor z = at::normal(0.0, 1.0, {frames, 1, d}, generator, at::kDouble);
    CGLaplaceOptions options;
    options.weightPrecision = at::rand({d, n}, generator, at::kDouble) + 0.5;
    options.priorPrecision = 2.0;
    CGLaplacePosterior posterior = CGLaplacePosterior::fitAt(model, z, options);

    at::Tensor design = at::zeros({frames * n, n * p}, at::kDouble), noisePrecision = at::zeros({frames * n}, at::kDouble);
    at::Tensor prior = at::zeros({n * p}, at::kDouble);
    for (int64_t c = 0; c < n; c++) {
        for (int64_t j = 0; j < d; j++)
            prior[c * p + j] = options.weightPrecision[j][c];
        prior[c * p + d] = options.priorPrecision;
        for (int64_t f = 0; f < frames; f++) {
            for (int64_t j = 0; j < d; j++)
                design[f * n + c][c * p + j] = z[f][0][j];
            design[f * n + c][c * p + d] = 1.0;
            noisePrecision[f * n + c] = std::exp(-logVariance[c].item<double>());
        }
    }
    at::Tensor fullPrecision = at::matmul(design.t() * noisePrecision.unsqueeze(0), design) + at::diag(prior);
    at::Tensor fullCovariance = at::inverse(fullPrecision);
    at::Tensor blocks = posterior.covariance();
    ASSERT_EQ(blocks.size(0), n);
    for (int64_t c = 0; c < n; c++)
        for (int64_t c2 = 0; c2 < n; c2++) {
            at::Tensor exact = fullCovariance.narrow(0, c * p, p).narrow(1, c2 * p, p);
            at::Tensor ours = c == c2 ? blocks[c] : at::zeros({p, p}, at::kDouble);
            EXPECT_TRUE(at::allclose(ours, exact, 1e-9, 1e-12)) << "block " << c << ", " << c2;
        }

    // Draws from the posterior have its covariance.
    const int draws = 3000;
    std::vector<at::Tensor> samples;
    for (int i = 0; i < draws; i++) {
        CGLatentModel drawn = posterior.drawModel(generator);
        samples.push_back(at::cat({drawn.decoderOutputWeight().select(1, 2), drawn.decoderOutputBias().narrow(0, 2, 1)})
                              .detach());
    }
    at::Tensor s = at::stack(samples);
    at::Tensor centred = s - s.mean(0, true);
    at::Tensor sampleCovariance = at::matmul(centred.t(), centred) / (double) (draws - 1);
    at::Tensor exactBlock = blocks[2];
    for (int64_t i = 0; i < p; i++) {
        const double exact = exactBlock[i][i].item<double>();
        // The variance of a sample variance: 2 sigma^4 / (draws - 1).
        EXPECT_NEAR(sampleCovariance[i][i].item<double>(), exact, 5 * exact * std::sqrt(2.0 / (draws - 1)));
    }
    // The model the draws start from is unchanged.
    EXPECT_TRUE(at::allclose(model.decoderOutputWeight(), lg.w));
}

TEST(CGLatent, LaplacePrecisionIsMinusTheAutogradHessianOfTheLogPosterior) {
    auto system = particles(3);
    CGModelConfig config;
    config.decoderWidths = {5, 4};
    config.encoderWidths = {6, 4};
    at::Tensor frames = perturbedFrames(at::rand({1, 3, 3}, at::kDouble), 5, 0.1, 3);
    CGLatentModel model = CGLatentModel::create(*system, frames, config);
    at::Generator generator = at::detail::createCPUGenerator(2);
    const at::Tensor latent = at::normal(0.0, 1.0, {5, 3, 2}, generator, at::kDouble);
    CGLaplaceOptions options;
    options.weightPrecision = at::rand({4, 9}, generator, at::kDouble) + 0.1;
    options.priorPrecision = 0.3;
    CGLaplacePosterior posterior = CGLaplacePosterior::fitAt(model, latent, options);

    // The log posterior in the output layer's parameters theta = [W (4 x 9), b (9)], from the model's own ELBO.
    const at::Tensor w0 = model.decoderOutputWeight().detach().clone(), b0 = model.decoderOutputBias().detach().clone();
    const at::Tensor features = model.decoderFeatures(latent.reshape({15, 2})).detach();
    const at::Tensor x = model.align(frames).reshape({5, 1, 9});
    const at::Tensor logVariance = model.decoderLogVariance().detach();
    const at::Tensor reference = model.getReference().reshape({1, 9});
    auto logPosterior = [&](const at::Tensor& theta) {
        at::Tensor w = theta.narrow(1, 0, 36).reshape({4, 9}), b = theta.narrow(1, 36, 9).reshape({9});
        at::Tensor mean = (reference + at::matmul(features, w) + b).reshape({5, 3, 9});
        at::Tensor r = x - mean;
        at::Tensor logLikelihood = (-0.5 * (std::log(2 * M_PI) + logVariance + r * r * at::exp(-logVariance))).sum(2);
        return logLikelihood.mean(1).sum() - 0.5 * (options.weightPrecision * w * w).sum() -
               0.5 * options.priorPrecision * (b * b).sum();
    };
    const at::Tensor theta0 = at::cat({w0.reshape({1, 36}), b0.reshape({1, 9})}, 1);
    // The function above is the model's: its likelihood part equals evidenceLowerBoundAt's.
    const double ours = evidenceLowerBoundAt(model, frames, latent).expectedLogLikelihood.sum().item<double>();
    const double prior = -0.5 * (options.weightPrecision * w0 * w0).sum().item<double>() -
                         0.5 * options.priorPrecision * (b0 * b0).sum().item<double>();
    ASSERT_NEAR(logPosterior(theta0).item<double>(), ours + prior, 1e-9);
    auto gradient = [&](const at::Tensor& theta) {
        return torch::autograd::grad({logPosterior(theta)}, {theta}, {}, true, true)[0];
    };
    const at::Tensor hessian = bruteForceJacobian(gradient, theta0);  // [45, 45]
    const at::Tensor precision = posterior.getPrecision();             // [9, 5, 5]
    for (int64_t c = 0; c < 9; c++)
        for (int64_t i = 0; i < 5; i++)
            for (int64_t c2 = 0; c2 < 9; c2++)
                for (int64_t j = 0; j < 5; j++) {
                    const int64_t a = i < 4 ? i * 9 + c : 36 + c, bIndex = j < 4 ? j * 9 + c2 : 36 + c2;
                    const double expected = c == c2 ? precision[c][i][j].item<double>() : 0.0;
                    EXPECT_NEAR(-hessian[a][bIndex].item<double>(), expected, 1e-8 * (1 + std::abs(expected)))
                        << "coordinates " << c << ", " << c2 << ", entries " << i << ", " << j;
                }
}

TEST(CGLatent, ARDUpdateFollowsItsFormulaAndPrunesWeightsTheDataDoNotNeed) {
    const at::Tensor w = at::tensor({0.0, 1e-3, -0.5, 2.0}, at::kDouble);
    ARDPrior prior{0.3, 0.02};
    at::Tensor tau = ardExpectedPrecision(w, prior);
    for (int i = 0; i < 4; i++) {
        const double v = w[i].item<double>();
        EXPECT_NEAR(tau[i].item<double>(), (0.3 + 0.5) / (0.02 + 0.5 * v * v), 1e-12);
    }
    expectMessage([&] { ardExpectedPrecision(w, ARDPrior{1e-6, 0.0}); }, "rate > 0");

    // Data of a one-dimensional latent model in 6 coordinates, fitted with 2 latent dimensions.
    auto system = particles(2);
    at::Generator generator = at::detail::createCPUGenerator(4);
    const at::Tensor t = at::normal(0.0, 1.0, {60, 1}, generator, at::kDouble);
    const at::Tensor direction = at::tensor({0.3, -0.2, 0.1, 0.25, 0.0, 0.15}, at::kDouble).reshape({1, 6});
    const at::Tensor frames =
        (at::tanh(t) * direction + 0.01 * at::normal(0.0, 1.0, {60, 6}, generator, at::kDouble)).reshape({60, 2, 3});
    CGModelConfig config;
    config.decoderWidths = {8};
    config.encoderWidths = {8};
    config.alignFrames = false;
    CGTrainingOptions options;
    options.steps = 1500;
    options.batchSize = 30;
    options.learningRate = 3e-3;
    double fraction[2];
    double elbo[2];
    for (int ard = 0; ard < 2; ard++) {
        CGLatentModel model = CGLatentModel::create(*system, frames, config);
        options.ard = ard == 1;
        CGTrainingSummary summary = trainCGLatentModel(model, frames, options);
        fraction[ard] = summary.activeWeightFraction;
        elbo[ard] = summary.finalElbo;
        EXPECT_EQ(summary.outputWeightPrecision.defined(), options.ard);
    }
    // Without ARD almost every weight stays in use (|theta| above 1 % of its
    // layer's largest; measured 94 %); with it most are switched off at almost
    // no cost in ELBO (measured 11 % in use; ELBO 15.30 against 15.34 nats per frame).
    EXPECT_GT(fraction[0], 0.85);
    EXPECT_LT(fraction[1], 0.4);
    EXPECT_GT(elbo[1], elbo[0] - 0.5);
}

TEST(CGLatent, AlignmentRemovesRigidBodyMotion) {
    AlanineDipeptide adp = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(adp.positions(), 6, 0.01, 8);
    CGLatentModel model = CGLatentModel::create(*adp.system, frames, CGModelConfig());
    // Rotate and translate each frame at random.
    at::Generator generator = at::detail::createCPUGenerator(9);
    at::Tensor q = std::get<0>(at::linalg_qr(at::normal(0.0, 1.0, {6, 3, 3}, generator, at::kDouble)));
    q = q * at::sign(at::linalg_det(q)).reshape({6, 1, 1});  // rotations, not reflections
    at::Tensor moved = at::matmul(frames, q) + at::normal(0.0, 1.0, {6, 1, 3}, generator, at::kDouble);
    EXPECT_TRUE(at::allclose(model.align(moved), model.align(frames), 1e-9, 1e-10));
    EXPECT_TRUE(at::allclose(model.encode(moved).mean, model.encode(frames).mean, 1e-8, 1e-9));
    // Aligned frames keep their shape (pairwise distances).
    EXPECT_TRUE(at::allclose(at::cdist(model.align(frames), model.align(frames)), at::cdist(frames, frames), 1e-9, 1e-10));
    // The radius of gyration by hand for the first frame.
    at::Tensor m = model.getMasses();
    at::Tensor com = (frames[0] * m.unsqueeze(1)).sum(0) / m.sum();
    const double rg = std::sqrt(((frames[0] - com).pow(2).sum(1) * m).sum().item<double>() / m.sum().item<double>());
    EXPECT_NEAR(radiusOfGyration(moved, m)[0].item<double>(), rg, 1e-10);
}

TEST(CGLatent, FilesRoundTripAndBadFilesAreRefused) {
    AlanineDipeptide adp = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(adp.positions(), 4, 0.01, 1);
    CGModelConfig config;
    config.latentDim = 3;
    CGLatentModel model = CGLatentModel::create(*adp.system, frames, config);
    model.setMetadata("test model");
    const std::string path = temporaryPath(".bgcg");
    model.save(path);
    CGLatentModel loaded = CGLatentModel::load(path, *adp.system);
    EXPECT_EQ(loaded.getMetadata(), "test model");
    EXPECT_EQ(loaded.getLatentDim(), 3);
    EXPECT_EQ(loaded.getNumParameters(), model.getNumParameters());
    EXPECT_TRUE(at::equal(loaded.encode(frames).mean, model.encode(frames).mean));
    at::Tensor z = at::randn({5, 3}, at::kDouble);
    EXPECT_TRUE(at::equal(loaded.decode(z).mean, model.decode(z).mean));
    EXPECT_TRUE(at::equal(loaded.decode(z).logVariance, model.decode(z).logVariance));

    auto other = particles(22);
    expectMessage([&] { CGLatentModel::load(path, *other); }, "made for another System");
    expectMessage([&] { CGLatentModel::load(temporaryPath(".missing")); }, "cannot open");
    expectMessage([&] { FlowModel::load(path); }, "is not an OpenMM-BG flow file");
    // One changed byte.
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const std::string corrupt = temporaryPath(".bgcg");
    std::string changed = bytes;
    changed[bytes.size() / 2] ^= 0x20;
    std::ofstream(corrupt, std::ios::binary) << changed;
    expectMessage([&] { CGLatentModel::load(corrupt); }, "checksum");
    std::ofstream(corrupt, std::ios::binary) << bytes.substr(0, bytes.size() - 10);
    expectMessage([&] { CGLatentModel::load(corrupt); }, "truncated");
    // A flow file is not a CG model.
    FlowConfig flowConfig;
    FlowModel flow = FlowModel::createCartesian(*particles(1), {0, 1}, at::Tensor(), "realnvp", flowConfig, 300.0);
    flow.save(corrupt);
    expectMessage([&] { CGLatentModel::load(corrupt); }, "not an OpenMM-BG coarse-grained latent model file");
    // Non-finite weights are refused on loading.
    {
        at::NoGradGuard noGrad;
        at::Tensor bias = model.decoderOutputBias();
        bias[0] = std::nan("");
    }
    model.save(corrupt);
    expectMessage([&] { CGLatentModel::load(corrupt); }, "not finite");
}

TEST(CGLatent, BadInputIsRefused) {
    AlanineDipeptide adp = loadAlanineDipeptide();
    at::Tensor frames = perturbedFrames(adp.positions(), 8, 0.01, 2);
    CGModelConfig config;
    CGLatentModel model = CGLatentModel::create(*adp.system, frames, config);
    CGTrainingOptions options;
    options.batchSize = 16;
    expectMessage([&] { trainCGLatentModel(model, frames, options); }, "larger than the number of frames");
    options.batchSize = 4;
    at::Tensor nanFrames = frames.clone();
    nanFrames[3][5][1] = std::nan("");
    expectMessage([&] { trainCGLatentModel(model, nanFrames, options); }, "NaN");
    expectMessage([&] { model.encode(nanFrames); }, "NaN");
    expectMessage([&] { trainCGLatentModel(model, frames.narrow(1, 0, 10), options); }, "22");
    options.learningRate = 0;
    expectMessage([&] { trainCGLatentModel(model, frames, options); }, "learning rate");
    options.learningRate = 1e-3;
    options.ard = true;
    options.ardPrior.rate = -1;
    expectMessage([&] { trainCGLatentModel(model, frames, options); }, "rate > 0");
    config.latentDim = 0;
    expectMessage([&] { CGLatentModel::create(*adp.system, frames, config); }, "latent dimension");
    config.latentDim = 2;
    expectMessage([&] { CGLatentModel::create(*particles(3), frames, config); }, "22");
    expectMessage([&] { model.decode(at::zeros({4, 3}, at::kDouble)); }, "latent vectors must be");
    CGLaplaceOptions laplace;
    laplace.priorPrecision = 0;
    expectMessage([&] { CGLaplacePosterior::fit(model, frames, laplace); }, "prior precision");
    laplace.priorPrecision = 1;
    laplace.weightPrecision = at::ones({3, 3}, at::kDouble);
    expectMessage([&] { CGLaplacePosterior::fit(model, frames, laplace); }, "weightPrecision must be");
    config.varianceDependsOnLatent = true;
    CGLatentModel physics = CGLatentModel::create(*adp.system, frames, config);
    expectMessage([&] { CGLaplacePosterior::fit(physics, frames); }, "depends on z");
}

TEST(CGLatent, TemperingStepIsTheLargestWithinTheKLThreshold) {
    at::Generator generator = at::detail::createCPUGenerator(6);
    const at::Tensor u = at::normal(0.0, 1.0, {500}, generator, at::kDouble).abs() * 0.1;
    const at::Tensor rest = 0.02 * at::normal(0.0, 1.0, {500}, generator, at::kDouble);
    auto kl = [&](double f) { return klEstimateFromLogWeights(-f * u + rest); };
    for (bool increase : {false, true}) {
        // Absolute: KL(f) <= 0.2; on the increase: KL(f) - KL(1) <= 0.2.
        const double base = increase ? kl(1.0) : 0.0;
        const double f = largestTemperingFactor(u, rest, 50.0, 0.2, increase);
        ASSERT_GT(f, 1.0);
        ASSERT_LT(f, 50.0);
        EXPECT_LE(kl(f) - base, 0.2 + 1e-9);
        EXPECT_GT(kl(f * 1.001) - base, 0.2 - 1e-9) << "not the largest factor";
    }
    // A KL already beyond the (absolute) threshold stops the rise; non-finite energies are left out.
    EXPECT_EQ(largestTemperingFactor(u * 100, rest, 10.0, 0.2, false), 1.0);
    at::Tensor withInf = u.clone();
    withInf[0] = std::numeric_limits<double>::infinity();
    EXPECT_NEAR(largestTemperingFactor(withInf, rest, 50.0, 0.2), largestTemperingFactor(u.narrow(0, 1, 499),
                rest.narrow(0, 1, 499), 50.0, 0.2), 1e-12);
}

TEST(CGLatent, TrainingWithoutDataTempersToBetaAndFindsTheDeeperWellOfTheDoubleWell) {
    // The 2D double well (docs/math.md) at its unit temperature, from beta_s = 1e-10 beta.
    DoubleWell well;
    auto system = well.createSystem();
    OpenMMEnergy::Options energyOptions;
    energyOptions.numWorkers = 1;
    OpenMMEnergy energy(*system, well.unitTemperature, energyOptions);
    CGModelConfig config;
    config.alignFrames = false;  // one particle: nothing to align
    config.varianceDependsOnLatent = true;
    config.initialStd = 1.0;
    CGLatentModel model = CGLatentModel::create(*system, at::zeros({1, 1, 3}, at::kDouble), config);
    CGPhysicsOptions options;
    options.maxSteps = 5000;
    options.stepsAtTarget = 2000;
    std::vector<double> reported;
    CGPhysicsSummary summary = trainCGLatentModelFromEnergy(
        model, energy, options, [&](const CGPhysicsProgress& p) { reported.push_back(p.betaFraction); });
    ASSERT_TRUE(summary.reachedTarget);
    EXPECT_EQ(summary.steps, summary.stepsToTarget + options.stepsAtTarget);
    ASSERT_FALSE(summary.betaFractions.empty());
    EXPECT_GT(summary.betaFractions.front(), 1e-10);
    EXPECT_EQ(summary.betaFractions.back(), 1.0);
    for (size_t i = 1; i < summary.betaFractions.size(); i++)
        EXPECT_GE(summary.betaFractions[i], summary.betaFractions[i - 1]);
    EXPECT_EQ(reported.back(), 1.0);
    // The deeper (left) well: its conditional mean and spread of x against
    // exact samples (1e6: -2.481 and 0.290 nm), and y ~ N(0, 1). Measured:
    // -2.475 and 0.291. The shallow well (exact weight 0.83 %) is lost, as
    // reverse-KL training tends to (docs/cg_latent.md), so it is not tested.
    at::Generator generator = at::detail::createCPUGenerator(3);
    at::NoGradGuard noGrad;
    const at::Tensor x = model.sample(100000, generator);
    const at::Tensor exact = well.sampleExact(400000, well.unitTemperature, generator);
    const at::Tensor left = x.select(2, 0).select(1, 0), exactX = exact.select(2, 0).select(1, 0);
    const at::Tensor modelLeft = left.masked_select(left < 0), exactLeft = exactX.masked_select(exactX < 0);
    EXPECT_NEAR(modelLeft.mean().item<double>(), exactLeft.mean().item<double>(), 0.05);
    EXPECT_NEAR(modelLeft.std().item<double>() / exactLeft.std().item<double>(), 1.0, 0.1);
    EXPECT_NEAR(x.select(2, 1).std().item<double>(), 1.0, 0.1);
    EXPECT_GT((left < 0).to(at::kDouble).mean().item<double>(), 0.9);

    expectMessage([&] { trainCGLatentModelFromEnergy(model, energy, [] { CGPhysicsOptions o; o.temperingStart = 0; return o; }()); },
                  "temperingStart");
    expectMessage([&] { trainCGLatentModelFromEnergy(model, energy, [] { CGPhysicsOptions o; o.temperingThreshold = -1; return o; }()); },
                  "threshold");
    expectMessage([&] { trainCGLatentModelFromEnergy(model, energy, [] { CGPhysicsOptions o; o.importanceSamples = -1; return o; }()); },
                  "importanceSamples");
    expectMessage([&] { trainCGLatentModelFromEnergy(model, energy, [] { CGPhysicsOptions o; o.coveringWeight = -1; return o; }()); },
                  "coveringWeight");
    expectMessage([&] {
        CGPhysicsOptions o;
        o.coveringWeight = 1;
        o.coveringSamples = 1;
        trainCGLatentModelFromEnergy(model, energy, o);
    }, "at least 2 samples");
    auto other = particles(2);
    OpenMMEnergy otherEnergy(*other, 300.0, energyOptions);
    expectMessage([&] { trainCGLatentModelFromEnergy(model, otherEnergy, options); }, "particles");
}

TEST(CGLatent, HiddenLayerLaplacePrecisionIsTheGaussNewtonDiagonalPlusThePrior) {
    auto system = particles(3);
    CGModelConfig config;
    config.decoderWidths = {5, 4};
    config.encoderWidths = {4};
    at::Tensor frames = perturbedFrames(at::rand({1, 3, 3}, at::kDouble), 5, 0.1, 4);
    CGLatentModel model = CGLatentModel::create(*system, frames, config);
    at::Generator generator = at::detail::createCPUGenerator(8);
    const int64_t draws = 3;
    const at::Tensor latent = at::normal(0.0, 1.0, {5, draws, 2}, generator, at::kDouble);
    CGLaplaceOptions options;
    options.hiddenLayers = true;
    options.ard = true;
    options.probes = 5000;
    CGLaplacePosterior posterior = CGLaplacePosterior::fitAt(model, latent, options);
    const std::vector<at::Tensor> parameters = model.decoderHiddenParameters();
    ASSERT_EQ(posterior.getHiddenPrecision().size(), parameters.size());
    // The exact diagonal: sum over every draw and coordinate of (d mean / d theta)^2 / (sigma^2 S).
    std::vector<at::Tensor> exact;
    for (const at::Tensor& p : parameters)
        exact.push_back(at::zeros_like(p).detach());
    const at::Tensor mean = model.decode(latent.reshape({-1, 2})).mean;
    const at::Tensor variance = at::exp(model.decoderLogVariance().detach());
    for (int64_t m = 0; m < mean.size(0); m++)
        for (int64_t d = 0; d < mean.size(1); d++) {
            std::vector<at::Tensor> g = torch::autograd::grad({mean[m][d]}, parameters, {}, true);
            for (size_t i = 0; i < g.size(); i++)
                exact[i] += g[i].square() / (variance[d].item<double>() * draws);
        }
    // Random signs: each probe's g^2 has a relative standard deviation of at most sqrt(2).
    const double tolerance = 5 * std::sqrt(2.0 / options.probes);
    for (size_t i = 0; i < parameters.size(); i++) {
        const at::Tensor prior = parameters[i].dim() == 2 ? ardExpectedPrecision(parameters[i], options.ardPrior)
                                                         : at::full_like(exact[i], options.priorPrecision);
        const at::Tensor estimated = posterior.getHiddenPrecision()[i] - prior;
        EXPECT_TRUE(at::allclose(estimated, exact[i], tolerance, 1e-10 * exact[i].max().item<double>()))
            << "parameter " << i << ": largest relative difference "
            << ((estimated - exact[i]).abs() / exact[i].clamp_min(1e-300)).max().item<double>();
    }
    // Draws move the hidden layers with that spread.
    CGLatentModel drawn = posterior.drawModel(generator);
    EXPECT_FALSE(at::equal(drawn.decoderHiddenParameters()[0], parameters[0]));
    EXPECT_TRUE(at::equal(model.decoderHiddenParameters()[0], parameters[0]));
}

TEST(CGLatent, KroneckerLaplaceOfTheOutputLayerIsItsExactPosterior) {
    // The output layer's likelihood is Gaussian in its weights with G =
    // diag(sigma^-2): its Kronecker factors are exact, and with an isotropic
    // prior they give the output-layer curvature's exact blocks.
    CGLatentModel model = smallModel(6, 5, 0.01, 0.05);
    at::Generator generator = at::detail::createCPUGenerator(12);
    const at::Tensor latent = at::normal(0.0, 1.0, {6, 3, 2}, generator, at::kDouble);
    CGLaplaceOptions options;
    options.priorPrecision = 0.7;
    const at::Tensor blocks = CGLaplacePosterior::fitAt(model, latent, options).getPrecision();  // [9, 5, 5]
    options.curvature = CGLaplaceOptions::Curvature::Kronecker;
    CGLaplacePosterior kronecker = CGLaplacePosterior::fitAt(model, latent, options);
    ASSERT_EQ(kronecker.getKroneckerLayers().size(), 3u);
    const at::Tensor precision = kronecker.layerPrecision(2);  // theta [5, 9] row by row
    ASSERT_EQ(precision.size(0), 45);
    for (int64_t c = 0; c < 9; c++)
        for (int64_t i = 0; i < 5; i++)
            for (int64_t c2 = 0; c2 < 9; c2++)
                for (int64_t j = 0; j < 5; j++) {
                    const double expected = c == c2 ? blocks[c][i][j].item<double>() : 0.0;
                    EXPECT_NEAR(precision[i * 9 + c][j * 9 + c2].item<double>(), expected,
                                1e-9 * (1 + std::abs(expected)))
                        << "coordinates " << c << ", " << c2 << ", entries " << i << ", " << j;
                }
    EXPECT_THROW(kronecker.covariance(), OpenMM::OpenMMException);
    EXPECT_THROW(kronecker.layerPrecision(3), OpenMM::OpenMMException);
    options.hiddenLayers = true;
    EXPECT_THROW(CGLaplacePosterior::fitAt(model, latent, options), OpenMM::OpenMMException);
}

TEST(CGLatent, KroneckerLaplaceOfOneSampleIsTheExactGaussNewtonBlockOfEveryLayer) {
    // For one frame and one latent draw, A (x) G is exactly the Gauss-Newton
    // block (a a^T) (x) (J^T diag(sigma^-2) J) of each layer; with more samples
    // K-FAC approximates the mean of products by the product of means.
    CGLatentModel model = smallModel(4, 6, 0.02, 0.06);
    at::Generator generator = at::detail::createCPUGenerator(13);
    const at::Tensor latent = at::normal(0.0, 1.0, {1, 1, 2}, generator, at::kDouble);
    CGLaplaceOptions options;
    options.curvature = CGLaplaceOptions::Curvature::Kronecker;
    options.priorPrecision = 0.4;
    CGLaplacePosterior posterior = CGLaplacePosterior::fitAt(model, latent, options);
    const std::vector<at::Tensor> parameters = model.decoderParameters();
    const at::Tensor mean = model.decode(latent.reshape({1, 2})).mean;
    const at::Tensor variance = at::exp(model.decoderLogVariance().detach());
    for (int l = 0; l < 3; l++) {
        const at::Tensor weight = parameters[2 * l], bias = parameters[2 * l + 1];
        const int64_t count = weight.numel() + bias.numel();
        at::Tensor exact = options.priorPrecision * at::eye(count, at::kDouble);
        for (int64_t k = 0; k < 9; k++) {
            std::vector<at::Tensor> g = torch::autograd::grad({mean[0][k]}, {weight, bias}, {}, true);
            const at::Tensor row = at::cat({g[0].reshape({-1}), g[1].reshape({-1})});
            exact += at::outer(row, row) / variance[k].item<double>();
        }
        EXPECT_TRUE(at::allclose(posterior.layerPrecision(l), exact, 1e-9, 1e-9))
            << "layer " << l << ": largest difference "
            << (posterior.layerPrecision(l) - exact).abs().max().item<double>();
    }
}

TEST(CGLatent, KroneckerLaplaceEvidencePriorAndDrawsFollowTheirFormulas) {
    auto system = particles(2);
    CGModelConfig config;
    config.decoderWidths = {3};
    config.encoderWidths = {4};
    at::Tensor frames = perturbedFrames(at::rand({1, 2, 3}, at::kDouble), 8, 0.1, 7);
    CGLatentModel model = CGLatentModel::create(*system, frames, config);
    at::Generator generator = at::detail::createCPUGenerator(14);
    const at::Tensor latent = at::normal(0.0, 1.0, {8, 2, 2}, generator, at::kDouble);
    CGLaplaceOptions options;
    options.curvature = CGLaplaceOptions::Curvature::Kronecker;
    options.evidencePrior = true;
    CGLaplacePosterior posterior = CGLaplacePosterior::fitAt(model, latent, options);
    const std::vector<at::Tensor> parameters = model.decoderParameters();
    for (int l = 0; l < 2; l++) {
        // The evidence's fixed point: tau = P / (|theta|^2 + tr Sigma).
        const CGKroneckerLayer& layer = posterior.getKroneckerLayers()[l];
        const double tau = layer.priorPrecision;
        const double squaredNorm =
            (parameters[2 * l].detach().square().sum() + parameters[2 * l + 1].detach().square().sum()).item<double>();
        const at::Tensor covariance = at::inverse(posterior.layerPrecision(l));
        const int64_t count = covariance.size(0);
        EXPECT_NE(tau, options.priorPrecision);
        EXPECT_NEAR(tau, count / (squaredNorm + at::trace(covariance).item<double>()), 1e-8 * tau) << "layer " << l;

        // Draws have the posterior covariance (sample variances within 5 of their standard errors).
        const int draws = 4000;
        std::vector<at::Tensor> offsets;
        for (int i = 0; i < draws; i++) {
            const std::vector<at::Tensor> drawn = posterior.drawModel(generator).decoderParameters();
            offsets.push_back(at::cat({(drawn[2 * l] - parameters[2 * l]).reshape({-1}),
                                       (drawn[2 * l + 1] - parameters[2 * l + 1]).reshape({-1})}).detach());
        }
        const at::Tensor s = at::stack(offsets);
        const at::Tensor sampleCovariance = at::matmul(s.t(), s) / (double) draws;  // mean offset 0
        for (int64_t i = 0; i < count; i++) {
            const double exact = covariance[i][i].item<double>();
            EXPECT_NEAR(sampleCovariance[i][i].item<double>(), exact, 5 * exact * std::sqrt(2.0 / draws))
                << "layer " << l << ", parameter " << i;
        }
        // Correlations within a layer: the largest off-diagonal entry of the exact covariance is matched too.
        const at::Tensor offDiagonal = (covariance - at::diag(at::diag(covariance))).abs();
        const int64_t flat = offDiagonal.argmax().item<int64_t>(), i = flat / count, j = flat % count;
        const double sd = std::sqrt((covariance[i][i] * covariance[j][j] + covariance[i][j].square()).item<double>() / draws);
        EXPECT_NEAR(sampleCovariance[i][j].item<double>(), covariance[i][j].item<double>(), 5 * sd);
    }
}

TEST(CGLatent, LinearizedPredictiveIsTheMeanPlusTheJacobianTimesTheOffsets) {
    CGLatentModel model = smallModel(6, 9, 0.01, 0.05);
    at::Generator generator = at::detail::createCPUGenerator(15);
    CGLaplaceOptions options;
    options.curvature = CGLaplaceOptions::Curvature::Kronecker;
    CGLaplacePosterior posterior =
        CGLaplacePosterior::fitAt(model, at::normal(0.0, 1.0, {6, 2, 2}, generator, at::kDouble), options);
    const std::vector<at::Tensor> offsets = posterior.drawOffsets(generator);
    const std::vector<at::Tensor> parameters = model.decoderParameters();
    ASSERT_EQ(offsets.size(), parameters.size());
    EXPECT_EQ(offsets.back().abs().max().item<double>(), 0.0);  // the log-variances stay at the MAP
    const at::Tensor z = at::normal(0.0, 1.0, {3, 2}, generator, at::kDouble);
    const at::Tensor mean = model.decode(z).mean;
    at::Tensor expected = mean.detach().clone();
    for (int64_t b = 0; b < 3; b++)
        for (int64_t k = 0; k < 9; k++) {
            const std::vector<at::Tensor> g = torch::autograd::grad({mean[b][k]}, parameters, {}, true, false, true);
            for (size_t i = 0; i < g.size(); i++)
                if (g[i].defined())
                    expected[b][k] += (g[i] * offsets[i]).sum();
        }
    const at::Tensor linearized = posterior.linearizedMean(offsets, z);
    const double effect = (expected - mean).abs().max().item<double>();
    ASSERT_GT(effect, 1e-3);
    EXPECT_LT((linearized - expected).abs().max().item<double>(), 1e-7 * effect);
    // The drawn network differs from the linearised one by the offsets' higher-order effects.
    EXPECT_GT((posterior.modelAt(offsets).decode(z).mean - expected).abs().max().item<double>(), 1e-6 * effect);
    // Samples: the linearised mean plus sigma eps.
    at::Generator a = at::detail::createCPUGenerator(3), b = at::detail::createCPUGenerator(3);
    const at::Tensor x = posterior.sampleLinearized(offsets, 4, a);
    const at::Tensor z4 = at::normal(0.0, 1.0, {4, 2}, b, at::kDouble);
    const at::Tensor residual = (x.reshape({4, 9}) - posterior.linearizedMean(offsets, z4)) /
                                at::exp(0.5 * model.decoderLogVariance().detach());
    const at::Tensor eps = at::normal(0.0, 1.0, {4, 9}, b, at::kDouble);
    EXPECT_TRUE(at::allclose(residual, eps, 1e-8, 1e-8));
    EXPECT_THROW(posterior.modelAt({offsets[0]}), OpenMM::OpenMMException);
}
