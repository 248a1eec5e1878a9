// Paper 000, harmonic oscillator with a box constraint:
//   H(x1, x2) = k (x2 - x1)^2 if 0 <= x1 <= R, else infinity   (kT units)
// A RealNVP flow trained by example only, and its learned map z = F^-1(x)
// compared with the exact one, z1 = Phi^-1(x1 / R), z2 = sqrt(2k) (x2 - x1).
//
//   seed_harmonic_box [--preset quick|paper] [results-directory]
//
// Writes ho_summary.csv, ho_map.csv, ho_points.csv, ho_training.csv and ho_info.txt.

#include "SeedCommon.h"

#include "openmmbg/FlowModel.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/OpenMMEnergy.h"

#include <ATen/core/grad_mode.h>
#include <openmm/CustomExternalForce.h>
#include <openmm/System.h>

#include <cmath>

using namespace OpenMMBG;

namespace {

const double T = 300.0;  // energies in kT at 300 K
const double k = 1.0, R = 1.0;

struct Preset {
    FlowConfig flow;
    int64_t steps, batchSize;
    double learningRate, finalLearningRate;
};

Preset makePreset(const std::string& name) {
    Preset p;
    // Paper 000: as for the double well (4 blocks, 3 hidden layers) but batch 128 and 100 units per layer.
    p.flow.numBlocks = 4;
    p.flow.hiddenLayers = 3;
    p.flow.hiddenWidth = 100;
    p.batchSize = 128;
    if (name == "paper") {
        p.steps = 20000;
        p.learningRate = 1e-4;
        p.finalLearningRate = -1;
    } else {
        p.steps = 6000;
        p.learningRate = 1e-3;
        p.finalLearningRate = 1e-5;
    }
    return p;
}

/** The System a FlowModel needs: one particle, k (y - x)^2 in kT; the box exists only in the data. */
std::unique_ptr<OpenMM::System> createSystem() {
    auto system = std::make_unique<OpenMM::System>();
    system->addParticle(1.0);
    auto* force = new OpenMM::CustomExternalForce("unit*k*(y-x)^2");
    force->addGlobalParameter("unit", OpenMMEnergy::BOLTZMANN * T);
    force->addGlobalParameter("k", k);
    force->addParticle(0);
    system->addForce(force);
    return system;
}

/** Exact samples [count, 1, 3]: x1 ~ U(0, R), x2 - x1 ~ N(0, 1/(2k)), z = 0. */
at::Tensor sampleExact(int64_t count, at::Generator& generator) {
    at::Tensor x1 = at::rand({count}, generator, at::kDouble) * R;
    at::Tensor x2 = x1 + at::randn({count}, generator, at::kDouble) * std::sqrt(1.0 / (2 * k));
    return at::stack({x1, x2, at::zeros_like(x1)}, 1).unsqueeze(1);
}

/** The exact map of the paper: z1 = Phi^-1(x1 / R), z2 = sqrt(2k) (x2 - x1). */
at::Tensor exactMap(const at::Tensor& x1, const at::Tensor& x2) {
    at::Tensor z1 = std::sqrt(2.0) * at::erfinv(2 * (x1 / R) - 1);
    at::Tensor z2 = std::sqrt(2 * k) * (x2 - x1);
    return at::stack({z1, z2}, 1);
}

/** z = F^-1(x): the latent vector of configurations [B, 1, 3]. */
at::Tensor learnedMap(const FlowModel& model, const at::Tensor& x) {
    return model.inverse(model.normalize(model.getCoordinates().forward(x).first)).first;
}

double rms(const at::Tensor& a) {
    return a.square().mean().sqrt().item<double>();
}

double correlation(const at::Tensor& a, const at::Tensor& b) {
    at::Tensor da = a - a.mean(), db = b - b.mean();
    return ((da * db).sum() / (da.square().sum() * db.square().sum()).sqrt()).item<double>();
}

} // namespace

int main(int argc, char** argv) {
    try {
        seed::CommandLine line = seed::parseCommandLine(argc, argv, {"quick", "paper"});
        seed::setUp();
        const std::string dir = line.resultsDir + "/";
        Preset preset = makePreset(line.preset);
        seed::Stopwatch total;

        auto system = createSystem();
        at::Generator generator = seed::generator(2000);
        at::Tensor data = sampleExact(20000, generator);
        at::Tensor test = sampleExact(20000, generator);

        FlowModel model = FlowModel::createCartesian(*system, {0, 1}, data, "realnvp", preset.flow, T);
        std::printf("harmonic oscillator in a box (k = %g, R = %g), preset %s: RealNVP %d x %d x %d, %lld parameters\n",
                    k, R, line.preset.c_str(), preset.flow.numBlocks, preset.flow.hiddenLayers,
                    preset.flow.hiddenWidth, (long long) model.getFlow().getNumParameters());
        std::fflush(stdout);

        seed::TrainingLog log(dir + "ho_training.csv");
        TrainerOptions options;
        options.numThreads = 1;
        options.logInterval = 200;
        options.printProgress = true;
        options.seed = 5;
        options.progress = log.callback("ml");
        FlowTrainer trainer(model, options);
        trainer.setData(data, T);
        const TrainingStage ml = TrainingStage::maximumLikelihood("ml", preset.steps, preset.batchSize,
                                                                  preset.learningRate, preset.finalLearningRate);
        TrainingSummary trained = trainer.train(ml);

        at::NoGradGuard noGrad;
        // Learned against exact map over the test data.
        at::Tensor x1 = test.select(1, 0).select(1, 0), x2 = test.select(1, 0).select(1, 1);
        at::Tensor learned = learnedMap(model, test), exact = exactMap(x1, x2);
        at::Tensor difference = learned - exact;
        at::Tensor bulk = ((x1 > 0.05 * R) & (x1 < 0.95 * R)).nonzero().reshape({-1});
        at::Tensor bulkDifference = difference.index_select(0, bulk);
        // Any rotation of the exact map also maps p(x) to N(0, I): compare with the best one as well
        // (orthogonal Procrustes, exact R ~ learned).
        auto [left, singular, right] = at::linalg_svd(exact.t().matmul(learned), false);
        at::Tensor rotation = left.matmul(right);
        at::Tensor rotatedDifference = exact.matmul(rotation) - learned;
        at::Tensor bulkRotatedDifference = rotatedDifference.index_select(0, bulk);
        const double angle = std::atan2(rotation[1][0].item<double>(), rotation[0][0].item<double>()) * 180 / M_PI;
        const double determinant = at::linalg_det(rotation).item<double>();
        {
            seed::Csv map(dir + "ho_map.csv", {"x1", "x2", "z1_learned", "z2_learned", "z1_exact", "z2_exact",
                                               "z1_exact_rotated", "z2_exact_rotated"});
            const int64_t m = 3000;
            map.rows(at::cat({x1.narrow(0, 0, m).unsqueeze(1), x2.narrow(0, 0, m).unsqueeze(1),
                              learned.narrow(0, 0, m), exact.narrow(0, 0, m),
                              exact.matmul(rotation).narrow(0, 0, m)}, 1));
        }

        // The generated distribution: flow samples and their weights under the box-constrained target.
        const int64_t count = 200000;
        at::Generator sampleGenerator = seed::generator(77);
        FlowSample sample = model.sample(count, T, sampleGenerator);
        at::Tensor s1 = sample.x.select(1, 0).select(1, 0), s2 = sample.x.select(1, 0).select(1, 1);
        at::Tensor inBox = (s1 >= 0) & (s1 <= R);
        at::Tensor u = k * (s2 - s1).square();
        at::Tensor logWeights = at::where(inBox, -u - sample.logq,
                                          at::full_like(u, -std::numeric_limits<double>::infinity()));
        double fractionOutside = 1.0 - inBox.to(at::kDouble).mean().item<double>();
        double fractionNearWalls = ((s1 >= 0) & (s1 < 0.05 * R)).to(at::kDouble).mean().item<double>()
                                   + ((s1 <= R) & (s1 > 0.95 * R)).to(at::kDouble).mean().item<double>();
        {
            seed::Csv points(dir + "ho_points.csv", {"kind", "u", "v"});
            const int64_t m = 2000;
            points.rows(sample.latent.narrow(0, 0, m), "latent");
            points.rows(sample.x.select(1, 0).narrow(1, 0, 2).narrow(0, 0, m), "flow_x");
            points.rows(learnedMap(model, data.narrow(0, 0, m)), "data_latent");
            points.rows(data.select(1, 0).narrow(1, 0, 2).narrow(0, 0, m), "data_x");
            // Histogram input: x1 and x2 - x1 of many flow samples, binned here to keep the file small.
            const int bins = 60;
            const double lo = -0.25 * R, hi = 1.25 * R;
            at::Tensor h1 = at::histc(s1, bins, lo, hi) / (double) count;
            at::Tensor h2 = at::histc(s2 - s1, bins, -3.0, 3.0) / (double) count;
            seed::Csv hist(dir + "ho_histograms.csv", {"variable", "lo", "hi", "flow"});
            for (int i = 0; i < bins; i++) {
                hist.row("x1", lo + (hi - lo) * i / bins, lo + (hi - lo) * (i + 1) / bins, h1[i].item<double>());
                hist.row("x2-x1", -3.0 + 6.0 * i / bins, -3.0 + 6.0 * (i + 1) / bins, h2[i].item<double>());
            }
        }
        const double entropy = std::log(R) + 0.5 * std::log(2 * M_PI * M_E / (2 * k));
        const double nll = trainer.testNLL(test, T);
        const double ess = kishEffectiveSampleSize(logWeights);
        seed::Csv summary(dir + "ho_summary.csv",
                          {"train_seconds", "steps", "test_nll", "exact_entropy", "rms_z1", "rms_z2", "rms_z1_bulk",
                           "rms_z2_bulk", "corr_z1", "corr_z2", "rotation_degrees", "rotation_det",
                           "rms_z1_rotated", "rms_z2_rotated", "rms_z1_rotated_bulk", "rms_z2_rotated_bulk", "fraction_outside_box", "fraction_near_walls",
                           "fraction_near_walls_exact", "ess"});
        summary.row(trained.seconds, ml.steps, nll, entropy, rms(difference.select(1, 0)),
                    rms(difference.select(1, 1)), rms(bulkDifference.select(1, 0)), rms(bulkDifference.select(1, 1)),
                    correlation(learned.select(1, 0), exact.select(1, 0)),
                    correlation(learned.select(1, 1), exact.select(1, 1)), angle, determinant,
                    rms(rotatedDifference.select(1, 0)), rms(rotatedDifference.select(1, 1)),
                    rms(bulkRotatedDifference.select(1, 0)), rms(bulkRotatedDifference.select(1, 1)), fractionOutside, fractionNearWalls, 0.1,
                    ess);
        std::printf("test NLL %.4f (exact entropy %.4f)\n", nll, entropy);
        std::printf("RMS(z_learned - z_exact): z1 %.4f  z2 %.4f; for 0.05 R < x1 < 0.95 R: z1 %.4f  z2 %.4f\n",
                    rms(difference.select(1, 0)), rms(difference.select(1, 1)), rms(bulkDifference.select(1, 0)),
                    rms(bulkDifference.select(1, 1)));
        std::printf("best orthogonal map of the exact z onto the learned: angle %.1f deg (det %+.0f); RMS after it: "
                    "z1 %.4f  z2 %.4f; in the bulk z1 %.4f  z2 %.4f\n",
                    angle, determinant, rms(rotatedDifference.select(1, 0)), rms(rotatedDifference.select(1, 1)),
                    rms(bulkRotatedDifference.select(1, 0)), rms(bulkRotatedDifference.select(1, 1)));
        std::printf("flow samples outside the box %.4f, within 0.05 R of a wall %.4f (exact 0.1), ESS %.4f\n",
                    fractionOutside, fractionNearWalls, ess);
        std::ofstream info(dir + "ho_info.txt");
        info << "preset " << line.preset << "\n"
             << "k " << k << " R " << R << " (kT units)\n"
             << "flow realnvp blocks " << preset.flow.numBlocks << " hidden_layers " << preset.flow.hiddenLayers
             << " width " << preset.flow.hiddenWidth << " parameters " << model.getFlow().getNumParameters() << "\n"
             << "batch " << preset.batchSize << " steps " << preset.steps << " lr " << preset.learningRate << " -> "
             << preset.finalLearningRate << "\n"
             << "seconds train " << trained.seconds << " total " << total.seconds() << "\n";
        std::printf("total %.1f s\n", total.seconds());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
