// Paper 001, multi-dimensional double well (d = 5 and d = 20): a
// temperature-steerable flow (TSF) against RealNVP with about as many
// parameters, both trained by maximum likelihood on reference samples at
// T = 1 (the well's unit temperature, 300 K), then scored by their test NLL
// on reference samples at temperatures from T = 0.1 to T = 10.
//
// Reference samples come from Gaussian-increment Metropolis MCMC combined
// with parallel tempering over the same temperature ladder, vectorized over
// independent chains and replicas in LibTorch. Half of the chains give the
// training data, the other half the test data.
//
//   seed_multi_double_well [--preset quick|long] [results-directory]
//
// Writes mdw_nll.csv, mdw_reference.csv, mdw_marginals.csv,
// mdw_training.csv and mdw_info.txt.

#include "SeedCommon.h"

#include "openmmbg/FlowModel.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/RealNVPFlow.h"
#include "openmmbg/TSFFlow.h"
#include "openmmbg/tools/ToySystems.h"

#include <ATen/core/grad_mode.h>
#include <cmath>
#include <functional>

using namespace OpenMMBG;

namespace {

struct Preset {
    FlowConfig tsf;
    int64_t steps, batchSize;
    double learningRate, finalLearningRate;
};

Preset makePreset(const std::string& name) {
    Preset p;
    p.tsf.numBlocks = 4;
    p.tsf.hiddenLayers = 2;
    p.tsf.hiddenWidth = 64;
    p.batchSize = 256;
    p.learningRate = 1e-3;
    p.finalLearningRate = 1e-5;
    p.steps = name == "long" ? 10000 : 3000;
    return p;
}

/** Reference samples from Gaussian-increment MCMC with parallel tempering. */
struct Reference {
    at::Tensor samples;             // [K, chains, S, d]
    at::Tensor moveAcceptance;      // [K] during production
    at::Tensor exchangeAcceptance;  // [K - 1] pairs (k, k + 1) during production
    at::Tensor stepSizes;           // [K] after burn-in adaptation
    double seconds = 0;
};

/**
 * `chains` independent PT ladders over `temperatures` (units of the well's
 * unit temperature). Each step: one Metropolis move in every replica, then
 * exchange attempts between neighbours, even pairs on even steps and odd
 * pairs on odd steps. Step sizes adapt during burn-in only (towards 30%
 * acceptance); samples are kept every `thin` steps after burn-in.
 */
Reference parallelTempering(const MultiDoubleWell& well, const std::vector<double>& temperatures, int64_t chains,
                            int64_t burnIn, int64_t samplesPerChain, int64_t thin, uint64_t seed) {
    at::NoGradGuard noGrad;
    seed::Stopwatch watch;
    at::Generator generator = seed::generator(seed);
    const int64_t K = (int64_t) temperatures.size(), d = well.dim;
    at::Tensor temperature = at::tensor(temperatures, at::kDouble);
    at::Tensor beta = 1.0 / temperature;
    auto energy = [&](const at::Tensor& x) { return well.energy(x.reshape({-1, d})).reshape({chains, K}); };
    at::Tensor x = at::randn({chains, K, d}, generator, at::kDouble) * 0.5;
    at::Tensor u = energy(x);
    at::Tensor sigma = 0.2 * temperature.sqrt() / std::sqrt((double) d);
    at::Tensor moves = at::zeros({K}, at::kDouble), exchanges = at::zeros({K - 1}, at::kDouble);
    at::Tensor exchangeAttempts = at::zeros({K - 1}, at::kDouble);
    std::vector<at::Tensor> kept;
    const int64_t total = burnIn + samplesPerChain * thin, adaptInterval = 100;
    for (int64_t step = 1; step <= total; step++) {
        // Metropolis move with Gaussian increments in every replica.
        at::Tensor proposal = x + at::randn({chains, K, d}, generator, at::kDouble) * sigma.view({1, K, 1});
        at::Tensor uProposal = energy(proposal);
        at::Tensor logAccept = -(uProposal - u) * beta.view({1, K});
        at::Tensor accept = at::log(at::rand({chains, K}, generator, at::kDouble)) < logAccept;
        x = at::where(accept.unsqueeze(2), proposal, x);
        u = at::where(accept, uProposal, u);
        moves += accept.to(at::kDouble).sum(0);
        // Replica exchange between neighbours.
        at::Tensor low = at::arange(step % 2, K - 1, 2, at::kLong), high = low + 1;
        if (low.numel() > 0) {
            at::Tensor uLow = u.index_select(1, low), uHigh = u.index_select(1, high);
            at::Tensor logExchange = (beta.index_select(0, low) - beta.index_select(0, high)).view({1, -1})
                                     * (uLow - uHigh);
            at::Tensor swap = at::log(at::rand(uLow.sizes(), generator, at::kDouble)) < logExchange;
            at::Tensor xLow = x.index_select(1, low), xHigh = x.index_select(1, high);
            x = x.index_copy(1, low, at::where(swap.unsqueeze(2), xHigh, xLow))
                    .index_copy(1, high, at::where(swap.unsqueeze(2), xLow, xHigh));
            u = u.index_copy(1, low, at::where(swap, uHigh, uLow)).index_copy(1, high, at::where(swap, uLow, uHigh));
            exchanges.index_add_(0, low, swap.to(at::kDouble).sum(0));
            exchangeAttempts.index_add_(0, low, at::full({low.numel()}, (double) chains, at::kDouble));
        }
        if (step <= burnIn && step % adaptInterval == 0) {
            at::Tensor rate = moves / (double) (adaptInterval * chains);
            sigma = sigma * at::exp(rate - 0.3);
            moves.zero_();
        }
        if (step == burnIn) {
            moves.zero_();
            exchanges.zero_();
            exchangeAttempts.zero_();
        }
        if (step > burnIn && (step - burnIn) % thin == 0)
            kept.push_back(x.clone());
        if (step % 2000 == 0) {
            std::printf("  PT d=%lld step %lld/%lld (%s)  %.1f s\n", (long long) d, (long long) step,
                        (long long) total, step <= burnIn ? "burn-in" : "production", watch.seconds());
            std::fflush(stdout);
        }
    }
    Reference ref;
    ref.samples = at::stack(kept, 2).permute({1, 0, 2, 3}).contiguous();  // [K, chains, S, d]
    ref.moveAcceptance = moves / (double) ((total - burnIn) * chains);
    ref.exchangeAcceptance = exchanges / exchangeAttempts.clamp_min(1);
    ref.stepSizes = sigma;
    ref.seconds = watch.seconds();
    return ref;
}

/** q [B, d] to configurations [B, particles, 3] (unused coordinates 0). */
at::Tensor toFrames(const MultiDoubleWell& well, const at::Tensor& q) {
    const int64_t particles = well.getNumParticles();
    at::Tensor padded = at::zeros({q.size(0), 3 * particles}, at::kDouble);
    padded.narrow(1, 0, well.dim).copy_(q);
    return padded.reshape({q.size(0), particles, 3});
}

at::Tensor toQ(const MultiDoubleWell& well, const at::Tensor& frames) {
    return frames.reshape({frames.size(0), -1}).narrow(1, 0, well.dim);
}

/** The RealNVP width whose parameter count is closest to `target`. */
FlowConfig matchParameters(int n, const FlowConfig& like, int64_t target) {
    FlowConfig best = like;
    int64_t bestDifference = -1;
    for (int width = std::max(4, like.hiddenWidth / 2); width <= 2 * like.hiddenWidth; width++) {
        FlowConfig c = like;
        c.hiddenWidth = width;
        int64_t difference = std::llabs(RealNVPFlow(n, c).getNumParameters() - target);
        if (bestDifference < 0 || difference < bestDifference) {
            best = c;
            bestDifference = difference;
        }
    }
    return best;
}

/** Normalised histograms (densities) of q[:, coordinate] over fixed bins. */
at::Tensor density(const at::Tensor& values, int bins, double lo, double hi) {
    return at::histc(values, bins, lo, hi) / (values.size(0) * (hi - lo) / bins);
}

} // namespace

int main(int argc, char** argv) {
    try {
        seed::CommandLine line = seed::parseCommandLine(argc, argv, {"quick", "long"});
        seed::setUp();
        const std::string dir = line.resultsDir + "/";
        const Preset preset = makePreset(line.preset);
        seed::Stopwatch total;

        // 17 temperatures log-spaced from 0.1 to 10; index 8 is T = 1.
        const int K = 17, trainIndex = 8;
        std::vector<double> temperatures;
        for (int i = 0; i < K; i++)
            temperatures.push_back(std::pow(10.0, -1.0 + 2.0 * i / (K - 1)));
        temperatures[trainIndex] = 1.0;
        const int64_t chains = 1000, burnIn = 4000, samplesPerChain = 40, thin = 100;

        seed::Csv nllCsv(dir + "mdw_nll.csv", {"dim", "T", "model", "nll", "nll_err", "mean_u_samples", "median_u_samples", "ess"});
        seed::Csv referenceCsv(dir + "mdw_reference.csv",
                               {"dim", "T", "mean_u_train", "mean_u_test", "mean_u_err", "median_u_test", "move_acceptance",
                                "step_size", "exchange_acceptance_to_next"});
        seed::Csv marginalCsv(dir + "mdw_marginals.csv", {"dim", "coordinate", "model", "lo", "hi", "density"});
        seed::TrainingLog log(dir + "mdw_training.csv");
        std::ofstream info(dir + "mdw_info.txt");
        info << "preset " << line.preset << "\n"
             << "temperatures " << K << " log-spaced 0.1..10 (units of 300 K); PT chains " << chains << " burn-in "
             << burnIn << " samples/chain " << samplesPerChain << " thin " << thin << "\n"
             << "training: ML at T = 1, steps " << preset.steps << " batch " << preset.batchSize << " lr "
             << preset.learningRate << " -> " << preset.finalLearningRate << "\n";

        for (int d : {5, 20}) {
            MultiDoubleWell well = MultiDoubleWell::random(d, 1000 + d);
            auto system = well.createSystem();
            std::printf("multi double well d = %d: parallel tempering, %lld chains x %d temperatures\n", d,
                        (long long) chains, K);
            std::fflush(stdout);
            Reference ref = parallelTempering(well, temperatures, chains, burnIn, samplesPerChain, thin, 300 + d);
            // Chains [0, chains/2) train, [chains/2, chains) test: independent sets.
            const int64_t half = chains / 2;
            auto split = [&](int k, bool train) {
                return ref.samples[k].narrow(0, train ? 0 : half, half).reshape({-1, d});
            };
            for (int k = 0; k < K; k++) {
                at::Tensor uTrain = well.energy(split(k, true)), uTest = well.energy(split(k, false));
                // Error of the test mean from the spread of per-chain means (chains are independent).
                at::Tensor perChain = well.energy(ref.samples[k].narrow(0, half, half).reshape({-1, d}))
                                          .reshape({half, -1})
                                          .mean(1);
                referenceCsv.row(d, temperatures[k], uTrain.mean().item<double>(), uTest.mean().item<double>(),
                                 perChain.std().item<double>() / std::sqrt((double) half), uTest.median().item<double>(),
                                 ref.moveAcceptance[k].item<double>(), ref.stepSizes[k].item<double>(),
                                 k + 1 < K ? ref.exchangeAcceptance[k].item<double>() : NAN);
            }
            std::printf("  PT done in %.1f s; exchange acceptance min %.3f max %.3f, move acceptance %.3f..%.3f\n",
                        ref.seconds, ref.exchangeAcceptance.min().item<double>(),
                        ref.exchangeAcceptance.max().item<double>(), ref.moveAcceptance.min().item<double>(),
                        ref.moveAcceptance.max().item<double>());
            info << "d " << d << " PT seconds " << ref.seconds << "\n";

            const double unit = well.unitTemperature;
            at::Tensor trainFrames = toFrames(well, split(trainIndex, true));

            // Scores one model at every temperature: test NLL on the reference samples, and the mean and
            // median energy and Kish ESS of 20000 of its own samples; then marginals at T = 1.
            // logDensity(q, T) gives log q_T(q) [B]; draw(count, T) gives samples q and their log-weights.
            using LogDensity = std::function<at::Tensor(const at::Tensor&, int)>;
            using Draw = std::function<std::pair<at::Tensor, at::Tensor>(int64_t, int)>;
            auto score = [&](const std::string& name, const LogDensity& logDensity, const Draw& draw) {
                at::NoGradGuard noGrad;
                for (int k = 0; k < K; k++) {
                    at::Tensor logq = logDensity(split(k, false), k);
                    double nll = -logq.mean().item<double>();
                    double error = logq.std().item<double>() / std::sqrt((double) logq.size(0));
                    auto [q, lw] = draw(20000, k);
                    at::Tensor u = well.energy(q);
                    double meanU = u.mean().item<double>(), medianU = u.median().item<double>();
                    double ess = kishEffectiveSampleSize(lw);
                    nllCsv.row(d, temperatures[k], name, nll, error, meanU, medianU, ess);
                    std::printf("    T %7.4f  NLL %9.4f +- %.4f  U of samples: mean %9.3f median %8.3f  ESS %.4f\n",
                                temperatures[k], nll, error, meanU, medianU, ess);
                }
                at::Tensor q = draw(20000, trainIndex).first;
                for (int c = 0; c < std::min(d, 5); c++) {
                    const int bins = 60;
                    at::Tensor h = density(q.select(1, c).contiguous(), bins, -4.0, 4.0);
                    for (int b = 0; b < bins; b++)
                        marginalCsv.row(d, c, name, -4.0 + 8.0 * b / bins, -4.0 + 8.0 * (b + 1) / bins,
                                        h[b].item<double>());
                }
            };

            // Baseline: a Gaussian fitted to the training samples at T = 1, its covariance scaled by T
            // (exactly temperature steerable).
            {
                std::printf("  d = %d Gaussian fitted at T = 1, covariance scaled by T\n", d);
                at::Tensor q = split(trainIndex, true);
                at::Tensor mean = q.mean(0), centred = q - mean;
                at::Tensor cholesky = at::linalg_cholesky(centred.t().matmul(centred) / (double) (q.size(0) - 1));
                const double logDet = 2 * at::log(cholesky.diagonal()).sum().item<double>();
                at::Generator generator = seed::generator(800 + d);
                auto logDensity = [&](const at::Tensor& x, int k) {
                    at::Tensor white = at::linalg_solve_triangular(cholesky, (x - mean).t(), false).t();
                    const double t = temperatures[k];
                    return -white.square().sum(1) / (2 * t) - 0.5 * logDet - 0.5 * d * std::log(2 * M_PI * t);
                };
                auto draw = [&](int64_t count, int k) {
                    at::Tensor x = mean + std::sqrt(temperatures[k])
                                              * at::randn({count, d}, generator, at::kDouble).matmul(cholesky.t());
                    at::Tensor lw = -well.energy(x) / temperatures[k] - logDensity(x, k);
                    return std::make_pair(x, lw);
                };
                score("Gaussian", logDensity, draw);
            }

            // The flows. Output layers start random (outputInitScale = 1): with an exact identity start
            // (outputInitScale = 0), ML training of the TSF hardly moves (see README); "TSF (identity
            // init)", trained with the quick preset only, shows it.
            FlowConfig tsfConfig = preset.tsf;
            tsfConfig.outputInitScale = 1.0;
            tsfConfig.seed = 31 + d;
            FlowModel tsf = FlowModel::createCartesian(*system, well.coordinateIndices(), trainFrames, "tsf",
                                                       tsfConfig, unit);
            FlowConfig nvpConfig = matchParameters(d, tsfConfig, tsf.getFlow().getNumParameters());
            FlowModel nvp = FlowModel::createCartesian(*system, well.coordinateIndices(), trainFrames, "realnvp",
                                                       nvpConfig, unit);
            FlowConfig identityConfig = tsfConfig;
            identityConfig.outputInitScale = 0.0;
            FlowModel tsfIdentity = FlowModel::createCartesian(*system, well.coordinateIndices(), trainFrames,
                                                               "tsf", identityConfig, unit);
            std::vector<std::pair<std::string, FlowModel>> models = {{"RealNVP", nvp}, {"TSF", tsf}};
            if (line.preset == "quick")
                models.emplace_back("TSF (identity init)", tsfIdentity);
            for (auto& entry : models) {
                const std::string& name = entry.first;
                const FlowModel& model = entry.second;
                std::printf("  d = %d %s: %d blocks x %d hidden layers of %d, %lld parameters\n", d, name.c_str(),
                            model.getFlow().getConfig().numBlocks, model.getFlow().getConfig().hiddenLayers,
                            model.getFlow().getConfig().hiddenWidth, (long long) model.getFlow().getNumParameters());
                std::fflush(stdout);
                TrainerOptions options;
                options.numThreads = 1;
                options.logInterval = 250;
                options.printProgress = true;
                options.seed = 7 + d;
                options.progress = log.callback("d" + std::to_string(d) + " " + name);
                FlowTrainer trainer(model, options);
                trainer.setData(trainFrames, unit);
                const TrainingStage stage = TrainingStage::maximumLikelihood(
                    "ml", preset.steps, preset.batchSize, preset.learningRate, preset.finalLearningRate);
                TrainingSummary summary = trainer.train(stage);
                double trainNLL = trainer.testNLL(trainFrames, unit);
                info << "d " << d << " " << name << " blocks " << model.getFlow().getConfig().numBlocks
                     << " hidden_layers " << model.getFlow().getConfig().hiddenLayers << " width "
                     << model.getFlow().getConfig().hiddenWidth << " identity_init "
                     << (model.getFlow().getConfig().outputInitScale == 0.0) << " parameters "
                     << model.getFlow().getNumParameters() << " train_seconds " << summary.seconds
                     << " train_set_nll_T1 " << trainNLL << "\n";

                at::Generator generator = seed::generator(900 + d);
                auto logDensity = [&](const at::Tensor& q, int k) {
                    return model.logProb(toFrames(well, q), temperatures[k] * unit, generator);
                };
                auto draw = [&](int64_t count, int k) {
                    const double temperature = temperatures[k] * unit;
                    FlowSample sample = model.sample(count, temperature, generator);
                    at::Tensor q = toQ(well, sample.x);
                    at::Tensor lw = model.logImportanceWeights(sample, well.energy(q) / temperatures[k], temperature);
                    return std::make_pair(q, lw);
                };
                score(name, logDensity, draw);
            }
            {
                at::Tensor q = split(trainIndex, false);
                for (int c = 0; c < std::min(d, 5); c++) {
                    const int bins = 60;
                    at::Tensor h = density(q.select(1, c).contiguous(), bins, -4.0, 4.0);
                    for (int b = 0; b < bins; b++)
                        marginalCsv.row(d, c, "reference", -4.0 + 8.0 * b / bins, -4.0 + 8.0 * (b + 1) / bins,
                                        h[b].item<double>());
                }
            }
        }
        info << "total seconds " << total.seconds() << "\n";
        std::printf("total %.1f s\n", total.seconds());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
