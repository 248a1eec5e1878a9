// Paper 000, 2D double well: a RealNVP Boltzmann generator trained by
// example (maximum likelihood on exact samples), then by energy (reverse KL
// through the OpenMM energy bridge), against exact answers from quadrature.
//
// After the ML stage the run branches into two copies of the flow:
//   "ml+kl":    reverse KL only (lambda = 1), the paper's "training by energy";
//   "ml+mixed": (1 - lambda) ML + lambda KL with lambda = 0.1.
//
//   seed_double_well [--preset quick|paper] [results-directory]
//
// Writes dw_summary.csv, dw_histograms.csv, dw_points_<model>.csv,
// dw_training.csv and dw_info.txt.

#include "SeedCommon.h"

#include "openmmbg/FlowModel.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/tools/ToySystems.h"

#include <ATen/core/grad_mode.h>
#include <cmath>
#include <map>

using namespace OpenMMBG;

namespace {

const double T = 300.0;  // the double well's unit temperature: kT = 1

struct Preset {
    FlowConfig flow;
    int64_t mlSteps, klSteps, batchSize;
    double mlLearningRate, mlFinalLearningRate, klLearningRate;
};

Preset makePreset(const std::string& name) {
    Preset p;
    if (name == "paper") {
        // Paper 000: Adam, lr 1e-4, batch 1000, 4 RealNVP blocks, 3 hidden layers of 256.
        p.flow.numBlocks = 4;
        p.flow.hiddenLayers = 3;
        p.flow.hiddenWidth = 256;
        p.mlSteps = 3000;
        p.klSteps = 1000;
        p.batchSize = 1000;
        p.mlLearningRate = 1e-4;
        p.mlFinalLearningRate = -1;
        p.klLearningRate = 1e-4;
    } else {
        p.flow.numBlocks = 4;
        p.flow.hiddenLayers = 2;
        p.flow.hiddenWidth = 64;
        p.mlSteps = 2000;
        p.klSteps = 1000;
        p.batchSize = 1000;
        p.mlLearningRate = 1e-3;
        p.mlFinalLearningRate = 1e-4;
        p.klLearningRate = 2e-4;
    }
    return p;
}

double freeEnergy(const at::Tensor& right, const at::Tensor& weights) {
    double p = (weights * right).sum().item<double>() / weights.sum().item<double>();
    return -std::log(p / (1 - p));
}

struct Evaluation {
    double fractionRight, dfFlow, dfFlowError, dfWeighted, dfWeightedError, ess, essClipped, kl, nll;
};

/**
 * count flow samples at T: unweighted and importance-weighted
 * -ln(P(x > 0) / P(x < 0)) with errors from 10 independent chunks, Kish ESS,
 * KL estimate, test NLL, and x-marginal histograms.
 */
Evaluation evaluate(const FlowModel& model, OpenMMEnergy& bridge, const at::Tensor& test, int64_t count,
                    uint64_t seed, const std::vector<double>& edges, std::vector<double>& histFlow,
                    std::vector<double>& histWeighted) {
    at::NoGradGuard noGrad;
    at::Generator generator = seed::generator(seed);
    bridge.setTemperature(T);
    const int chunks = 10;
    std::vector<at::Tensor> xs, logWeights;
    for (int c = 0; c < chunks; c++) {
        FlowSample sample = model.sample(count / chunks, T, generator);
        EnergyBatch energy = bridge.evaluate(sample.x);
        logWeights.push_back(model.logImportanceWeights(sample, energy.reducedEnergy, T));
        xs.push_back(sample.x.select(2, 0).select(1, 0));
    }
    at::Tensor x = at::cat(xs), lw = at::cat(logWeights);
    at::Tensor w = at::exp(lw - lw.max());
    at::Tensor right = (x > 0).to(at::kDouble);
    Evaluation e;
    e.fractionRight = right.mean().item<double>();
    e.dfFlow = freeEnergy(right, at::ones_like(w));
    e.dfWeighted = freeEnergy(right, w);
    std::vector<double> flowChunks, weightedChunks;
    const int64_t size = count / chunks;
    for (int c = 0; c < chunks; c++) {
        at::Tensor r = right.narrow(0, c * size, size), wc = w.narrow(0, c * size, size);
        flowChunks.push_back(freeEnergy(r, at::ones_like(wc)));
        weightedChunks.push_back(freeEnergy(r, wc));
    }
    auto standardError = [&](const std::vector<double>& values) {
        at::Tensor t = at::tensor(values, at::kDouble);
        return t.std().item<double>() / std::sqrt((double) values.size());
    };
    e.dfFlowError = standardError(flowChunks);
    e.dfWeightedError = standardError(weightedChunks);
    e.ess = kishEffectiveSampleSize(lw);
    e.essClipped = kishEffectiveSampleSize(lw, 1e-4);
    e.kl = klEstimateFromLogWeights(lw);
    e.nll = -model.logProb(test, T, generator).mean().item<double>();
    // Histograms of x over the bins [edges[i], edges[i+1]).
    const int bins = (int) edges.size() - 1;
    const double lo = edges.front(), width = (edges.back() - edges.front()) / bins;
    at::Tensor index = at::floor((x - lo) / width).to(at::kLong);
    at::Tensor inside = (index >= 0) & (index < bins);
    at::Tensor safeIndex = index.clamp(0, bins - 1);
    at::Tensor countsFlow = at::zeros({bins}, at::kDouble).index_add_(0, safeIndex, inside.to(at::kDouble));
    at::Tensor countsWeighted =
        at::zeros({bins}, at::kDouble).index_add_(0, safeIndex, at::where(inside, w, at::zeros_like(w)));
    countsFlow /= (double) x.size(0);
    countsWeighted /= w.sum();
    histFlow.assign(countsFlow.data_ptr<double>(), countsFlow.data_ptr<double>() + bins);
    histWeighted.assign(countsWeighted.data_ptr<double>(), countsWeighted.data_ptr<double>() + bins);
    return e;
}

/** Points for the four panels: prior samples, data mapped to latent space, flow samples, data. */
void writePoints(const std::string& path, const FlowModel& model, const at::Tensor& data, int64_t count,
                 uint64_t seed) {
    at::NoGradGuard noGrad;
    at::Generator generator = seed::generator(seed);
    FlowSample sample = model.sample(count, T, generator);
    at::Tensor d = data.narrow(0, 0, count);
    at::Tensor dataLatent = model.inverse(model.normalize(model.getCoordinates().forward(d).first)).first;
    seed::Csv csv(path, {"kind", "u", "v"});
    csv.rows(sample.latent, "latent");
    csv.rows(sample.x.select(1, 0).narrow(1, 0, 2), "flow_x");
    csv.rows(dataLatent, "data_latent");
    csv.rows(d.select(1, 0).narrow(1, 0, 2), "data_x");
}

} // namespace

int main(int argc, char** argv) {
    try {
        seed::CommandLine line = seed::parseCommandLine(argc, argv, {"quick", "paper"});
        seed::setUp();
        const std::string dir = line.resultsDir + "/";
        Preset preset = makePreset(line.preset);
        seed::Stopwatch total;

        DoubleWell well;  // a = 1, b = 6, c = 1, d = 1 in kT at 300 K
        auto system = well.createSystem();
        at::Generator generator = seed::generator(2024);
        at::Tensor data = well.sampleExact(50000, T, generator);
        at::Tensor test = well.sampleExact(20000, T, generator);

        FlowModel model = FlowModel::createCartesian(*system, {0, 1}, data, "realnvp", preset.flow, T);
        OpenMMEnergy::Options bridgeOptions;
        bridgeOptions.platform = "Reference";
        bridgeOptions.numWorkers = 1;
        bridgeOptions.energyCut = 1000.0;
        auto bridge = std::make_shared<OpenMMEnergy>(*system, T, bridgeOptions);

        seed::TrainingLog log(dir + "dw_training.csv");
        TrainerOptions options;
        options.numThreads = 1;
        options.logInterval = 50;
        options.printProgress = true;
        options.seed = 11;

        std::printf("double well, preset %s: RealNVP %d blocks x %d hidden layers of %d, %lld parameters\n",
                    line.preset.c_str(), preset.flow.numBlocks, preset.flow.hiddenLayers, preset.flow.hiddenWidth,
                    (long long) model.getFlow().getNumParameters());
        std::fflush(stdout);

        // Stage 1: training by example.
        options.progress = log.callback("ml");
        FlowTrainer mlTrainer(model, options);
        mlTrainer.setData(data, T);
        const TrainingStage ml = TrainingStage::maximumLikelihood("ml", preset.mlSteps, preset.batchSize,
                                                                  preset.mlLearningRate, preset.mlFinalLearningRate);
        TrainingSummary mlSummary = mlTrainer.train(ml);

        // Stage 2, two branches from the same ML flow.
        FlowModel klModel = model.clone(), mixedModel = model.clone();
        TrainingStage kl;
        kl.name = "kl";
        kl.steps = preset.klSteps;
        kl.batchSize = preset.batchSize;
        kl.learningRate = preset.klLearningRate;
        kl.lambdaStart = kl.lambdaEnd = 1.0;
        options.progress = log.callback("ml+kl");
        FlowTrainer klTrainer(klModel, options);
        klTrainer.setEnergy(bridge);
        TrainingSummary klSummary = klTrainer.train(kl);

        TrainingStage mixed = kl;
        mixed.name = "mixed";
        mixed.lambdaStart = mixed.lambdaEnd = 0.1;
        options.progress = log.callback("ml+mixed");
        FlowTrainer mixedTrainer(mixedModel, options);
        mixedTrainer.setData(data, T);
        mixedTrainer.setEnergy(bridge);
        TrainingSummary mixedSummary = mixedTrainer.train(mixed);

        // Evaluation against quadrature.
        std::vector<double> edges;
        const int bins = 90;
        for (int i = 0; i <= bins; i++)
            edges.push_back(-4.5 + 9.0 * i / bins);
        std::vector<double> exact = well.marginalBinProbabilities(T, edges);
        const double dfExact = well.freeEnergyDifference(T), entropy = well.entropy(T);
        seed::Csv summary(dir + "dw_summary.csv",
                          {"model", "train_seconds", "steps", "test_nll", "exact_entropy", "fraction_right",
                           "df_flow", "df_flow_err", "df_reweighted", "df_reweighted_err", "df_exact", "ess",
                           "ess_clipped", "kl_estimate"});
        seed::Csv histograms(dir + "dw_histograms.csv", {"model", "lo", "hi", "exact", "flow", "reweighted"});
        struct Entry {
            std::string name;
            const FlowModel* model;
            double seconds;
            int64_t steps;
        };
        std::vector<Entry> entries = {
            {"ml", &model, mlSummary.seconds, ml.steps},
            {"ml+kl", &klModel, mlSummary.seconds + klSummary.seconds, ml.steps + kl.steps},
            {"ml+mixed", &mixedModel, mlSummary.seconds + mixedSummary.seconds, ml.steps + mixed.steps}};
        const int64_t evalCount = 200000;
        for (size_t k = 0; k < entries.size(); k++) {
            const Entry& entry = entries[k];
            std::vector<double> hFlow, hWeighted;
            Evaluation e = evaluate(*entry.model, *bridge, test, evalCount, 100 + k, edges, hFlow, hWeighted);
            summary.row(entry.name, entry.seconds, entry.steps, e.nll, entropy, e.fractionRight, e.dfFlow,
                        e.dfFlowError, e.dfWeighted, e.dfWeightedError, dfExact, e.ess, e.essClipped, e.kl);
            for (int i = 0; i < bins; i++)
                histograms.row(entry.name, edges[i], edges[i + 1], exact[i], hFlow[i], hWeighted[i]);
            std::string file = entry.name;
            for (char& c : file)
                if (c == '+')
                    c = '_';
            writePoints(dir + "dw_points_" + file + ".csv", *entry.model, data, 2000, 200 + k);
            std::printf("%-9s NLL %.4f (exact entropy %.4f)  P(x>0) %.4f  dF flow %.3f +- %.3f  reweighted "
                        "%.3f +- %.3f  exact %.3f  ESS %.4f (clipped %.4f)\n",
                        entry.name.c_str(), e.nll, entropy, e.fractionRight, e.dfFlow, e.dfFlowError, e.dfWeighted,
                        e.dfWeightedError, dfExact, e.ess, e.essClipped);
        }
        std::ofstream info(dir + "dw_info.txt");
        info << "preset " << line.preset << "\n"
             << "well a " << well.a << " b " << well.b << " c " << well.c << " d " << well.d
             << " (kT at " << well.unitTemperature << " K)\n"
             << "flow realnvp blocks " << preset.flow.numBlocks << " hidden_layers " << preset.flow.hiddenLayers
             << " width " << preset.flow.hiddenWidth << " parameters " << model.getFlow().getNumParameters() << "\n"
             << "batch " << preset.batchSize << " ml_steps " << preset.mlSteps << " ml_lr " << preset.mlLearningRate
             << " -> " << preset.mlFinalLearningRate << " kl_steps " << preset.klSteps << " kl_lr "
             << preset.klLearningRate << " mixed_lambda 0.1\n"
             << "seconds ml " << mlSummary.seconds << " kl " << klSummary.seconds << " mixed "
             << mixedSummary.seconds << " total " << total.seconds() << "\n";
        std::printf("total %.1f s\n", total.seconds());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
