// Coarse-grained latent-variable models of alanine dipeptide (paper 002):
// data-driven training with ARD, Laplace credible bands, latent maps.
//
//   cg_latent md     [--output DIR] [--temperature 330] [--train-ns 5] [--reference-ns 10]
//   cg_latent rg     [--output DIR] [--sizes 50,200,500] [--steps 20000] [--draws 100] [--per-draw 20000]
//                    [--curvature kronecker|diagonal|output] [--prior evidence|PRECISION]
//                    [--predictive linearized|network]
//   cg_latent ard    [--output DIR] [--size 50] [--steps 20000]
//   cg_latent map    [--output DIR] [--model 500]  (after rg: its model of that N)
//   cg_latent physics [--output DIR] [--max-steps 80000] [--adp-covering 0]
//                    (no data: double well, then alanine dipeptide; --adp-covering WEIGHT adds the
//                    mode-covering term there too: 8 importance draws, 5000 stored samples)
//
// md runs Langevin MD (Reference platform, 1 fs, friction 1/ps) from the
// minimized structure: a training run with one frame per 10 ps (DIR/train.dcd)
// and an independent reference run with one frame per ps (DIR/reference.dcd).
// The other commands read them and write CSV files and summary.json/.txt to
// DIR; examples/cg_latent/plot_cg_latent.py draws the figures. physics trains
// from the force field alone (tempered from 1e-10 beta): the 2D double well at
// its unit temperature against quadrature, with paper 002's objective and with
// the mode-covering term (the model at every rise of beta_s in
// DIR/physics_double_well.csv and physics_double_well_covering.csv), then alanine dipeptide at
// --temperature; its comparison with MD needs reference.dcd. Training sets
// of size N are the first N frames of train.dcd. rg's credible bands come from
// a Laplace approximation (docs/cg_latent.md): by default Kronecker-factored
// over every decoder layer with prior precision 1 nm^-2 per weight
// (--prior evidence: fitted per layer), samples of the decoder linearised
// around the MAP for each posterior draw; --curvature diagonal (the output
// layer exact, hidden layers diagonal, ARD precisions as prior) or output
// (the output layer alone), --predictive network (samples of the drawn
// network itself).

#include "AlanineDipeptide.h"

#include "openmmbg/CGLatentModel.h"
#include "openmmbg/CGLatentTraining.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/Positions.h"
#include "openmmbg/tools/ToySystems.h"
#include "openmmbg/tools/DCDFile.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <thread>

using namespace OpenMMBG;
using namespace OpenMMBG::alanine;

namespace {

struct Options {
    std::string command;
    std::string output = "cg_latent_output";
    double temperature = 330.0;  // K
    double trainNs = 5.0, referenceNs = 10.0;
    std::vector<int> sizes = {50, 200, 500};
    int size = 50;
    int mapModel = 500;  // N of the rg model the latent map is drawn for
    int64_t maxSteps = 80000;  // physics: at most this many steps per system
    double adpCovering = 0;    // physics: weight of the mode-covering term for alanine dipeptide (0: off)
    std::string curvature = "kronecker";  // rg: the Laplace approximation's curvature (runRgCommand)
    bool evidencePrior = false;           // rg, kronecker: each layer's prior precision fitted to the evidence
    double priorPrecision = 1.0;          // rg, kronecker: otherwise this one (1/nm^2) for every layer
    bool linearized = true;               // rg: samples of the decoder linearised around the MAP, not of drawn networks
    int64_t steps = 20000;
    int draws = 100;       // posterior draws of the decoder's parameters
    int64_t perDraw = 20000;  // configurations sampled per draw
};

std::vector<int> parseSizes(const std::string& text) {
    std::vector<int> sizes;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ','))
        sizes.push_back(std::stoi(item));
    return sizes;
}

Options parse(int argc, char** argv) {
    if (argc < 2)
        throw UsageError("usage: cg_latent md|rg|ard|map|physics [options] (see the comment at the top of cg_latent.cpp)");
    Options o;
    o.command = argv[1];
    if (o.command != "md" && o.command != "rg" && o.command != "ard" && o.command != "map" && o.command != "physics")
        throw UsageError("unknown command '" + o.command + "' (md, rg, ard, map or physics)");
    forEachOption(argc - 1, argv + 1, [&](const std::string& option, const std::function<std::string()>& value) {
        if (option == "--output") o.output = value();
        else if (option == "--temperature") o.temperature = std::stod(value());
        else if (option == "--train-ns") o.trainNs = std::stod(value());
        else if (option == "--reference-ns") o.referenceNs = std::stod(value());
        else if (option == "--sizes") o.sizes = parseSizes(value());
        else if (option == "--size") o.size = std::stoi(value());
        else if (option == "--steps") o.steps = std::stoll(value());
        else if (option == "--draws") o.draws = std::stoi(value());
        else if (option == "--model") o.mapModel = std::stoi(value());
        else if (option == "--per-draw") o.perDraw = std::stoll(value());
        else if (option == "--max-steps") o.maxSteps = std::stoll(value());
        else if (option == "--adp-covering") {
            o.adpCovering = std::stod(value());
            if (!(o.adpCovering >= 0))
                throw UsageError("--adp-covering must be a non-negative weight");
        }
        else if (option == "--curvature") o.curvature = value();
        else if (option == "--predictive") {
            const std::string predictive = value();
            if (predictive != "linearized" && predictive != "network")
                throw UsageError("unknown predictive '" + predictive + "' (linearized or network)");
            o.linearized = predictive == "linearized";
        }
        else if (option == "--prior") {
            const std::string prior = value();
            o.evidencePrior = prior == "evidence";
            if (!o.evidencePrior)
                o.priorPrecision = std::stod(prior);
        }
        else throw UsageError("unknown option " + option);
    });
    if (o.curvature != "kronecker" && o.curvature != "diagonal" && o.curvature != "output")
        throw UsageError("unknown curvature '" + o.curvature + "' (kronecker, diagonal or output)");
    if (!(o.priorPrecision > 0) || !std::isfinite(o.priorPrecision))
        throw UsageError("the prior precision must be positive (or 'evidence')");
    if (!(o.temperature > 0) || o.steps < 1 || o.draws < 2 || o.size < 1 || o.perDraw < 1)
        throw UsageError("temperature, steps, draws and size must be positive (draws at least 2)");
    return o;
}

std::string path(const Options& o, const std::string& name) { return o.output + "/" + name; }

/** DIR/summary.json and summary.txt from the parts the commands have written so far. */
void writeAllSummaries(const Options& o) {
    Summary all;
    for (const char* part : {"md.summary", "rg.summary", "ard.summary", "map.summary", "physics.summary"})
        if (pathExists(path(o, part)))
            all.load(path(o, part));
    all.write(o.output);
}

/** The training model of paper 002 (d_z = 2, the architecture of docs/cg_latent.md). */
CGLatentModel trainModel(const Molecule& molecule, const at::Tensor& frames, bool ard, const Options& o,
                         const std::string& label, CGTrainingSummary& summary) {
    CGModelConfig config;
    CGLatentModel model = CGLatentModel::create(*molecule.system, frames, config);
    CGTrainingOptions options;
    options.steps = o.steps;
    options.batchSize = std::min<int64_t>(32, frames.size(0));
    options.ard = ard;
    options.learningRate = 1e-3;
    std::printf("  %s: N = %lld, %s, %lld steps\n", label.c_str(), (long long) frames.size(0),
                ard ? "ARD" : "no ARD", (long long) o.steps);
    summary = trainCGLatentModel(model, frames, options, [&](const CGTrainingProgress& p) {
        std::printf("    step %6lld  ELBO %9.2f  KL %6.2f  active weights %5.1f%%  %.0f steps/s\n", (long long) p.step,
                    p.elbo, p.kl, 100 * p.activeWeightFraction, p.stepsPerSecond);
        std::fflush(stdout);
    });
    model.setMetadata(label + ", N = " + std::to_string(frames.size(0)) + (ard ? ", ARD" : ""));
    return model;
}

void runMDCommand(const Options& o, const Molecule& molecule) {
    makeDirectories(o.output);
    // Two independent runs in two threads: training frames every 10 ps, reference frames every ps.
    MDOptions train, reference;
    train.temperature = reference.temperature = o.temperature;
    train.steps = (long long) std::llround(o.trainNs * 1e6);
    train.interval = 10000;
    train.seed = 11;
    train.dcdPath = path(o, "train.dcd");
    reference.steps = (long long) std::llround(o.referenceNs * 1e6);
    reference.interval = 1000;
    reference.seed = 12;
    reference.dcdPath = path(o, "reference.dcd");
    const double start = processCpuSeconds();
    std::thread second([&] { runMD(molecule, train); });
    runMD(molecule, reference, progressPrinter("reference MD"));
    second.join();
    Summary summary;
    summary.number("md_temperature_K", o.temperature);
    summary.number("md_train_ns", o.trainNs);
    summary.number("md_reference_ns", o.referenceNs);
    summary.number("md_cpu_seconds", processCpuSeconds() - start);
    summary.saveSince(0, path(o, "md.summary"));
    writeAllSummaries(o);
    std::printf("MD done: %s, %s\n", train.dcdPath.c_str(), reference.dcdPath.c_str());
}

struct Data {
    at::Tensor train, reference;  // [F, N, 3] nm
};

Data readData(const Options& o, const Molecule& molecule) {
    for (const char* name : {"train.dcd", "reference.dcd"})
        if (!pathExists(path(o, name)))
            throw UsageError("no " + path(o, name) + ": run 'cg_latent md --output " + o.output + "' first");
    const int atoms = molecule.system->getNumParticles();
    return {readDcd(path(o, "train.dcd"), atoms), readDcd(path(o, "reference.dcd"), atoms)};
}

/** Bin edges (nm) of the R_g densities. */
std::vector<double> rgEdges(const at::Tensor& referenceRg) {
    const double low = referenceRg.min().item<double>() - 0.01, high = referenceRg.max().item<double>() + 0.01;
    std::vector<double> edges;
    const int bins = 40;
    for (int i = 0; i <= bins; i++)
        edges.push_back(low + (high - low) * i / bins);
    return edges;
}

/** Density (1/nm) of values in bins; values outside count toward the normalisation only. */
std::vector<double> density(const at::Tensor& values, const std::vector<double>& edges) {
    const double width = edges[1] - edges[0];
    std::vector<double> d(edges.size() - 1, 0.0);
    at::Tensor v = values.contiguous();
    const double* p = v.data_ptr<double>();
    for (int64_t i = 0; i < v.numel(); i++) {
        const int bin = (int) std::floor((p[i] - edges[0]) / width);
        if (bin >= 0 && bin < (int) d.size())
            d[bin] += 1.0;
    }
    for (double& x : d)
        x /= (double) v.numel() * width;
    return d;
}

void runRgCommand(const Options& o, const Molecule& molecule) {
    const Data data = readData(o, molecule);
    const at::Tensor masses = at::tensor(SystemFingerprint::of(*molecule.system).masses, at::kDouble);
    const at::Tensor referenceRg = radiusOfGyration(data.reference, masses);
    const std::vector<double> edges = rgEdges(referenceRg);
    const std::vector<double> reference = density(referenceRg, edges);
    Summary summary;
    summary.number("reference_frames", (double) data.reference.size(0));
    summary.number("reference_rg_mean_nm", referenceRg.mean().item<double>());
    summary.text("laplace_curvature", o.curvature);
    std::ostringstream prior;
    if (o.curvature != "kronecker")
        prior << "ARD";
    else if (o.evidencePrior)
        prior << "evidence";
    else
        prior << o.priorPrecision << " nm^-2";
    summary.text("laplace_prior", prior.str());
    summary.text("laplace_predictive", o.linearized ? "linearized" : "network");
    std::ostringstream csv;
    csv << "# R_g densities (1/nm): reference MD, and per training size N the 5/50/95 % quantiles over "
        << o.draws << " posterior draws\nsize,bin_low_nm,bin_high_nm,reference,q05,q50,q95\n";
    for (int n : o.sizes) {
        if (n > data.train.size(0))
            throw UsageError("train.dcd has " + std::to_string(data.train.size(0)) + " frames, fewer than N = " +
                             std::to_string(n));
        const at::Tensor frames = data.train.narrow(0, 0, n);
        CGTrainingSummary training;
        const double start = processCpuSeconds();
        CGLatentModel model = trainModel(molecule, frames, true, o, "R_g model", training);
        model.save(path(o, "model_N" + std::to_string(n) + ".bgcg"));
        CGLaplaceOptions laplace;
        if (o.curvature == "kronecker") {
            laplace.curvature = CGLaplaceOptions::Curvature::Kronecker;
            laplace.evidencePrior = o.evidencePrior;
            laplace.priorPrecision = o.priorPrecision;  // with evidencePrior, where the fit starts
        } else {
            // The ARD precisions of training's last E-step as the prior.
            laplace.weightPrecision = training.outputWeightPrecision;
            laplace.hiddenLayers = o.curvature == "diagonal";
            laplace.ard = true;
        }
        CGLaplacePosterior posterior = CGLaplacePosterior::fit(model, frames, laplace);
        at::Generator generator = at::detail::createCPUGenerator(100 + n);
        std::vector<std::vector<double>> perDraw;  // [draw][bin]
        std::vector<double> drawMeans;
        at::NoGradGuard noGrad;
        for (int d = 0; d < o.draws; d++) {
            const std::vector<at::Tensor> offsets = posterior.drawOffsets(generator);
            const at::Tensor rg = radiusOfGyration(o.linearized ? posterior.sampleLinearized(offsets, o.perDraw, generator)
                                                                : posterior.modelAt(offsets).sample(o.perDraw, generator),
                                                   masses);
            perDraw.push_back(density(rg, edges));
            drawMeans.push_back(rg.mean().item<double>());
        }
        const double seconds = processCpuSeconds() - start;
        // Quantiles per bin over draws; coverage: the reference density inside the 90 % band, weighted by its mass.
        std::vector<double> flat;
        for (const auto& row : perDraw)
            flat.insert(flat.end(), row.begin(), row.end());
        const at::Tensor table = at::tensor(flat, at::kDouble).reshape({o.draws, (int64_t) reference.size()});
        const at::Tensor q = at::quantile(table, at::tensor({0.05, 0.5, 0.95}, at::kDouble), 0);  // [3, bins]
        double covered = 0, total = 0, bandWidth = 0;
        const double binWidth = edges[1] - edges[0];
        for (size_t b = 0; b < reference.size(); b++) {
            const double lo = q[0][b].item<double>(), mid = q[1][b].item<double>(), hi = q[2][b].item<double>();
            csv << n << "," << edges[b] << "," << edges[b + 1] << "," << reference[b] << "," << lo << "," << mid << ","
                << hi << "\n";
            total += reference[b] * binWidth;
            if (reference[b] >= lo && reference[b] <= hi)
                covered += reference[b] * binWidth;
            bandWidth += (hi - lo) * binWidth;
        }
        const at::Tensor means = at::tensor(drawMeans, at::kDouble);
        const std::string key = "N" + std::to_string(n);
        summary.number(key + "_final_elbo", training.finalElbo);
        summary.number(key + "_active_weights", training.activeWeightFraction);
        summary.number(key + "_rg_band_coverage", covered / total);
        summary.number(key + "_rg_band_integrated_width", bandWidth);
        summary.estimate(key + "_rg_mean_nm", means.mean().item<double>(), means.std().item<double>());
        summary.number(key + "_cpu_seconds", seconds);
        std::printf("  N = %d: reference mass inside the 90%% band %.1f%%, integrated band width %.3f, "
                    "mean R_g %.4f +- %.4f nm (reference %.4f), %.0f CPU s\n",
                    n, 100 * covered / total, bandWidth, means.mean().item<double>(), means.std().item<double>(),
                    referenceRg.mean().item<double>(), seconds);
    }
    writeAtomically(path(o, "rg_density.csv"), csv.str());
    summary.saveSince(0, path(o, "rg.summary"));
    writeAllSummaries(o);
}

/** Conformation classes (regions of the Ramachandran plane, degrees): 0 alpha, 1 beta-1, 2 beta-2, 3 other. */
at::Tensor conformationClass(const at::Tensor& phi, const at::Tensor& psi) {
    const at::Tensor phiDeg = phi * (180.0 / M_PI), psiDeg = psi * (180.0 / M_PI);
    const at::Tensor leftHalf = phiDeg < 0;
    const at::Tensor alpha = leftHalf & (psiDeg > -120) & (psiDeg < 50);
    const at::Tensor beta = leftHalf & alpha.logical_not();
    at::Tensor c = at::full(phi.sizes(), 3, at::kLong);
    c.masked_fill_(alpha, 0);
    c.masked_fill_(beta & (phiDeg < -100), 1);  // extended (C5/beta)
    c.masked_fill_(beta & (phiDeg >= -100), 2); // polyproline II
    return c;
}

/** The fraction of each of the four conformation classes. */
std::vector<double> classFractions(const at::Tensor& classes) {
    std::vector<double> fractions;
    for (int c = 0; c < 4; c++)
        fractions.push_back((classes == c).to(at::kDouble).mean().item<double>());
    return fractions;
}

/** Test frames: every 5th reference frame (2000 of 10000). */
at::Tensor testFrames(const at::Tensor& reference) {
    return reference.slice(0, 0, reference.size(0), 5);
}

/**
 * Leave-one-out k-nearest-neighbour accuracy (k = 10) of the classes from
 * latent points [F, d]: how well the encodings separate the classes.
 */
double knnAccuracy(const at::Tensor& z, const at::Tensor& classes) {
    const int64_t k = 10;
    at::Tensor distance = at::cdist(z, z);
    distance.fill_diagonal_(std::numeric_limits<double>::infinity());
    const at::Tensor nearest = std::get<1>(distance.topk(k, 1, false));  // [F, k]
    const at::Tensor votes = at::one_hot(classes.index({nearest.reshape({-1})}).reshape({-1, k}), 4).sum(1);
    return (votes.argmax(1) == classes).to(at::kDouble).mean().item<double>();
}

void runArdCommand(const Options& o, const Molecule& molecule) {
    const Data data = readData(o, molecule);
    if (o.size > data.train.size(0))
        throw UsageError("train.dcd has fewer than " + std::to_string(o.size) + " frames");
    const at::Tensor frames = data.train.narrow(0, 0, o.size);
    const at::Tensor test = testFrames(data.reference);
    const at::Tensor phi = dihedralAngles(test, molecule.dihedrals.phi), psi = dihedralAngles(test, molecule.dihedrals.psi);
    const at::Tensor classes = conformationClass(phi, psi);
    Summary summary;
    std::ostringstream csv;
    csv << "# encodings (mean of r(z|x)) of test frames; class 0 alpha, 1 beta-1 (phi < -100), 2 beta-2, 3 other\n"
        << "ard,z1,z2,phi,psi,class\n";
    for (int ard = 0; ard < 2; ard++) {
        CGTrainingSummary training;
        CGLatentModel model = trainModel(molecule, frames, ard == 1, o, "ARD comparison", training);
        at::NoGradGuard noGrad;
        const at::Tensor z = model.encode(test).mean.detach();
        // Standardise each latent axis before measuring distances, so that scale does not matter.
        const at::Tensor zs = (z - z.mean(0)) / z.std(0).clamp_min(1e-12);
        const double accuracy = knnAccuracy(zs, classes);
        for (int64_t i = 0; i < z.size(0); i++)
            csv << ard << "," << z[i][0].item<double>() << "," << z[i][1].item<double>() << "," << phi[i].item<double>()
                << "," << psi[i].item<double>() << "," << classes[i].item<int64_t>() << "\n";
        const std::string key = ard ? "ard" : "no_ard";
        summary.number(key + "_knn_accuracy", accuracy);
        summary.number(key + "_final_elbo", training.finalElbo);
        summary.number(key + "_active_weights", training.activeWeightFraction);
        std::printf("  %s: 10-NN accuracy of the conformation classes from z: %.1f%%, active weights %.1f%%\n",
                    key.c_str(), 100 * accuracy, 100 * training.activeWeightFraction);
    }
    summary.list("test_class_fractions", classFractions(classes));
    summary.number("ard_training_frames", o.size);
    writeAtomically(path(o, "ard_encodings.csv"), csv.str());
    summary.saveSince(0, path(o, "ard.summary"));
    writeAllSummaries(o);
}

/** The largest R^2 of a linear fit of (cos a, sin a) from z, for an angle a [F]. */
double angleR2(const at::Tensor& z, const at::Tensor& angle) {
    const at::Tensor design = at::cat({z, at::ones({z.size(0), 1}, z.options())}, 1);
    double explained = 0, total = 0;
    for (const at::Tensor& target : {at::cos(angle), at::sin(angle)}) {
        const at::Tensor coefficients = std::get<0>(at::linalg_lstsq(design, target.unsqueeze(1)));
        const at::Tensor residual = target.unsqueeze(1) - at::matmul(design, coefficients);
        explained += (residual * residual).sum().item<double>();
        total += ((target - target.mean()) * (target - target.mean())).sum().item<double>();
    }
    return 1.0 - explained / total;
}

void runMapCommand(const Options& o, const Molecule& molecule) {
    const std::string modelPath = path(o, "model_N" + std::to_string(o.mapModel) + ".bgcg");
    if (!pathExists(modelPath))
        throw UsageError("no " + modelPath + ": run 'cg_latent rg --output " + o.output + "' first");
    const Data data = readData(o, molecule);
    CGLatentModel model = CGLatentModel::load(modelPath, *molecule.system);
    at::NoGradGuard noGrad;
    const at::Tensor test = testFrames(data.reference);
    const at::Tensor phi = dihedralAngles(test, molecule.dihedrals.phi), psi = dihedralAngles(test, molecule.dihedrals.psi);
    const at::Tensor z = model.encode(test).mean.detach();
    Summary summary;
    summary.number("map_r2_phi", angleR2(z, phi));
    summary.number("map_r2_psi", angleR2(z, psi));
    // A grid of z over [-3, 3]^2 and a path along z_1 (z_2 = 0): phi, psi of the decoded means.
    std::ostringstream grid;
    grid << "# decoded means of a latent grid and of the path z2 = 0\nkind,z1,z2,phi,psi,class\n";
    auto decodeRow = [&](const std::string& kind, const at::Tensor& points) {
        const at::Tensor x = model.decodeConfigurations(points);
        const at::Tensor a = dihedralAngles(x, molecule.dihedrals.phi), b = dihedralAngles(x, molecule.dihedrals.psi);
        const at::Tensor c = conformationClass(a, b);
        for (int64_t i = 0; i < points.size(0); i++)
            grid << kind << "," << points[i][0].item<double>() << "," << points[i][1].item<double>() << ","
                 << a[i].item<double>() << "," << b[i].item<double>() << "," << c[i].item<int64_t>() << "\n";
        return c;
    };
    const at::Tensor axis = at::linspace(-3, 3, 25, at::kDouble);
    const std::vector<at::Tensor> mesh = at::meshgrid({axis, axis}, "ij");
    const at::Tensor gridClasses = decodeRow("grid", at::stack({mesh[0].reshape({-1}), mesh[1].reshape({-1})}, 1));
    const at::Tensor line = at::linspace(-3, 3, 61, at::kDouble);
    decodeRow("path", at::stack({line, at::zeros_like(line)}, 1));
    const std::vector<double> gridFractions = classFractions(gridClasses);
    summary.list("map_grid_class_fractions", gridFractions);
    std::ostringstream encodings;
    encodings << "# encodings of test frames by the N = " << o.mapModel << " model\nz1,z2,phi,psi\n";
    for (int64_t i = 0; i < z.size(0); i++)
        encodings << z[i][0].item<double>() << "," << z[i][1].item<double>() << "," << phi[i].item<double>() << ","
                  << psi[i].item<double>() << "\n";
    writeAtomically(path(o, "latent_grid.csv"), grid.str());
    writeAtomically(path(o, "latent_encodings.csv"), encodings.str());
    std::printf("  latent map: R^2 of (cos, sin) phi from z %.2f, of psi %.2f; decoded grid classes "
                "alpha %.0f%%, beta-1 %.0f%%, beta-2 %.0f%%, other %.0f%%\n",
                angleR2(z, phi), angleR2(z, psi), 100 * gridFractions[0], 100 * gridFractions[1],
                100 * gridFractions[2], 100 * gridFractions[3]);
    summary.saveSince(0, path(o, "map.summary"));
    writeAllSummaries(o);
}

/** Prints every tempering rise and the last report of training without data. */
CGPhysicsCallback physicsPrinter() {
    return [](const CGPhysicsProgress& p) {
        std::printf("    step %6lld  beta_s/beta %9.3g  bound %10.2f  <u> %12.4g kT  KL %7.3f  %.0f steps/s",
                    (long long) p.step, p.betaFraction, p.bound, p.meanReducedEnergy, p.klEstimate, p.stepsPerSecond);
        if (p.coveringEss > 0)
            std::printf("  covering ESS %.3f", p.coveringEss);
        std::printf("\n");
        std::fflush(stdout);
    };
}

/** The double well's model at one rise of beta_s (traceDoubleWell). */
struct DoubleWellTraceRow {
    int64_t step;
    double betaFraction;
    double modelRight, exactRight;  // P(x1 > 0); exact NaN below beta_s = 0.05 (beyond the quadrature's range)
    double latentShare;             // Var[mu_x1(z)] / Var[x1]
};

/**
 * How the double well's model follows the tempering: P(x1 > 0) of 20000
 * samples against the exact value at beta_s, and the share of x1's variance
 * that comes through z, Var[mu(z)] / (Var[mu(z)] + E[sigma^2(z)]). A model
 * whose x1 spread comes from the decoder's noise rather than from z is one
 * Gaussian in x1, which cannot keep two wells apart once the barrier rises.
 */
DoubleWellTraceRow traceDoubleWell(const CGLatentModel& model, const DoubleWell& well, const CGPhysicsProgress& p) {
    at::NoGradGuard noGrad;
    at::Generator generator = at::detail::createCPUGenerator(5);
    const int64_t count = 20000;
    const CGDecoding decoding =
        model.decode(at::normal(0.0, 1.0, {count, (int64_t) model.getLatentDim()}, generator, at::kDouble));
    const at::Tensor mean = decoding.mean.select(1, 0), variance = at::exp(decoding.logVariance.select(1, 0));
    const at::Tensor x1 = mean + at::sqrt(variance) * at::normal(0.0, 1.0, {count}, generator, at::kDouble);
    const double latentVariance = mean.var().item<double>();
    DoubleWellTraceRow row;
    row.step = p.step;
    row.betaFraction = p.betaFraction;
    row.modelRight = (x1 > 0).to(at::kDouble).mean().item<double>();
    row.exactRight = p.betaFraction >= 0.05
        ? 1.0 / (1.0 + std::exp(well.freeEnergyDifference(well.unitTemperature / p.betaFraction)))
        : NAN;
    row.latentShare = latentVariance / (latentVariance + variance.mean().item<double>());
    return row;
}

/**
 * Trains the double well of docs/math.md at its unit temperature (beta = 1)
 * without data and compares it with quadrature: with paper 002's objective
 * (keys dw_..., trace in physics_double_well.csv) or with the mode-covering
 * term (keys dw_covering_..., physics_double_well_covering.csv).
 */
void trainDoubleWell(const Options& o, const OpenMMEnergy::Options& energyOptions, const CGPhysicsOptions& base,
                     bool covering, Summary& summary) {
    const std::string key = covering ? "dw_covering_" : "dw_";
    std::printf("  double well, without data, %s\n", covering ? "with the mode-covering term" : "paper 002's objective");
    DoubleWell well;
    auto system = well.createSystem();
    OpenMMEnergy energy(*system, well.unitTemperature, energyOptions);
    CGModelConfig config;
    config.alignFrames = false;
    config.varianceDependsOnLatent = true;
    config.initialStd = 1.0;
    CGPhysicsOptions options = base;
    options.progressInterval = 0;  // a report at every rise of beta_s
    if (covering) {
        // sigma(z) at most 0.5 nm, below the spread of each coordinate at beta, so the wells have to
        // come through z (one latent variable per coordinate); slower tempering; the covering term.
        config.latentDim = 3;
        config.initialStd = 0.3;
        config.maxStd = 0.5;
        options.temperingInterval = 200;
        options.temperingMaxRatio = 2;
        options.learningRate = 3e-4;
        options.importanceSamples = 8;
        options.coveringWeight = 20;
        options.stepsAtTarget = 8000;  // the shallow well's weight still converges after 2000 steps at beta
    }
    CGLatentModel model = CGLatentModel::create(*system, at::zeros({1, 1, 3}, at::kDouble), config);
    std::vector<DoubleWellTraceRow> trace;
    const CGPhysicsCallback printer = physicsPrinter();
    const CGPhysicsSummary trained = trainCGLatentModelFromEnergy(model, energy, options, [&](const CGPhysicsProgress& p) {
        trace.push_back(traceDoubleWell(model, well, p));
        if (p.step % base.progressInterval == 0 || p.betaFraction == 1)
            printer(p);
    });
    std::ostringstream traceCsv;
    traceCsv << "# double well without data, at every rise of beta_s: P(x1 > 0) of the model and exact, and the "
                "share of x1's variance through z\nstep,beta_fraction,p_right_model,p_right_exact,latent_share\n";
    // The first rise with no model sample in the shallow well, and the last one before it that held some.
    double lostAt = NAN, shareAtLoss = NAN;
    const DoubleWellTraceRow* held = nullptr;
    for (const DoubleWellTraceRow& r : trace) {
        traceCsv << r.step << "," << r.betaFraction << "," << r.modelRight << "," << r.exactRight << ","
                 << r.latentShare << "\n";
        if (!std::isnan(lostAt))
            continue;
        if (r.modelRight > 0) {
            held = &r;
        } else {
            lostAt = r.betaFraction;
            shareAtLoss = r.latentShare;
        }
    }
    writeAtomically(path(o, covering ? "physics_double_well_covering.csv" : "physics_double_well.csv"), traceCsv.str());
    at::Generator generator = at::detail::createCPUGenerator(3);
    at::NoGradGuard noGrad;
    const at::Tensor x = model.sample(100000, generator).select(1, 0);
    const at::Tensor exact = well.sampleExact(1000000, well.unitTemperature, generator).select(1, 0);
    const at::Tensor x1 = x.select(1, 0), e1 = exact.select(1, 0);
    const at::Tensor left = x1.masked_select(x1 < 0), exactLeft = e1.masked_select(e1 < 0);
    const double exactRight = 1.0 / (1.0 + std::exp(well.freeEnergyDifference(well.unitTemperature)));
    const double modelRight = (x1 > 0).to(at::kDouble).mean().item<double>();
    const double leftMean = left.numel() ? left.mean().item<double>() : NAN;
    const double leftStd = left.numel() > 1 ? left.std().item<double>() : NAN;
    summary.number(key + "reached_beta", trained.reachedTarget);
    summary.number(key + "steps_to_beta", (double) trained.stepsToTarget);
    summary.number(key + "seconds", trained.seconds);
    summary.number(key + "model_p_right_well", modelRight);
    summary.number(key + "exact_p_right_well", exactRight);
    summary.number(key + "model_x1_mean", x1.mean().item<double>());
    summary.number(key + "exact_x1_mean", e1.mean().item<double>());
    summary.number(key + "model_x1_std", x1.std().item<double>());
    summary.number(key + "exact_x1_std", e1.std().item<double>());
    summary.number(key + "model_left_well_mean", leftMean);
    summary.number(key + "exact_left_well_mean", exactLeft.mean().item<double>());
    summary.number(key + "model_left_well_std", leftStd);
    summary.number(key + "exact_left_well_std", exactLeft.std().item<double>());
    summary.number(key + "model_x2_std", x.select(1, 1).std().item<double>());
    const at::Tensor right = x1.masked_select(x1 > 0), exactRightSide = e1.masked_select(e1 > 0);
    if (right.numel() > 1) {
        summary.number(key + "model_right_well_mean", right.mean().item<double>());
        summary.number(key + "model_right_well_std", right.std().item<double>());
    }
    summary.number(key + "exact_right_well_mean", exactRightSide.mean().item<double>());
    summary.number(key + "exact_right_well_std", exactRightSide.std().item<double>());
    if (!std::isnan(lostAt)) {
        summary.number(key + "right_well_lost_at_beta_fraction", lostAt);
        summary.number(key + "latent_share_of_x1_variance_when_lost", shareAtLoss);
    }
    if (held) {
        summary.number(key + "last_held_beta_fraction", held->betaFraction);
        summary.number(key + "last_held_p_right_model", held->modelRight);
        summary.number(key + "last_held_p_right_exact", held->exactRight);
        summary.number(key + "last_held_latent_share", held->latentShare);
        if (!std::isnan(lostAt))
            std::printf("  double well: at beta_s/beta %.3g the model still had P(right well) %.4f (exact %.4f) "
                        "with %.2g%% of x1's variance through z; at %.3g it had none\n", held->betaFraction,
                        held->modelRight, held->exactRight, 100 * held->latentShare, lostAt);
    }
    // dF = -ln(P(right) / P(left)) in kT, with the model's sampling error (binomial, 100000 samples).
    const double rightError = std::sqrt(modelRight * (1 - modelRight) / (double) x1.size(0));
    if (modelRight > 0)
        summary.estimate(key + "model_free_energy_difference", -std::log(modelRight / (1 - modelRight)),
                         rightError / (modelRight * (1 - modelRight)));
    summary.number(key + "exact_free_energy_difference", well.freeEnergyDifference(well.unitTemperature));
    if (covering)
        summary.number(key + "buffer_ess_at_beta", trained.last.coveringEss);
    std::printf("  double well: beta reached at step %lld (%.0f s); P(right well) %.4f (exact %.4f); x1 mean %.3f, "
                "std %.3f (exact %.3f, %.3f); left well mean %.3f, std %.3f (exact %.3f, %.3f)\n",
                (long long) trained.stepsToTarget, trained.seconds, modelRight, exactRight, x1.mean().item<double>(),
                x1.std().item<double>(), e1.mean().item<double>(), e1.std().item<double>(), leftMean, leftStd,
                exactLeft.mean().item<double>(), exactLeft.std().item<double>());
}

void runPhysicsCommand(const Options& o, const Molecule& molecule) {
    Summary summary;
    OpenMMEnergy::Options energyOptions;
    energyOptions.numWorkers = 1;
    CGPhysicsOptions options;
    options.maxSteps = o.maxSteps;
    options.progressInterval = 2000;
    trainDoubleWell(o, energyOptions, options, false, summary);
    trainDoubleWell(o, energyOptions, options, true, summary);
    {
        std::printf("  alanine dipeptide at %.0f K, without data, from the minimized structure\n", o.temperature);
        OpenMMEnergy energy(*molecule.system, o.temperature, energyOptions);
        CGModelConfig config;
        config.varianceDependsOnLatent = true;
        config.initialStd = 0.02;
        at::Tensor start = positionsToTensor(molecule.structure.positions);
        CGLatentModel model = CGLatentModel::create(*molecule.system, start, config);
        options.batchSize = 128;
        if (o.adpCovering > 0) {
            options.coveringWeight = o.adpCovering;
            options.importanceSamples = 8;
            options.coveringSamples = 5000;
        }
        options.stepsAtTarget = 2000;
        const double cpu = processCpuSeconds();
        const CGPhysicsSummary trained = trainCGLatentModelFromEnergy(model, energy, options, physicsPrinter());
        model.setMetadata("alanine dipeptide, trained without data at " + std::to_string(o.temperature) + " K");
        model.save(path(o, "model_physics.bgcg"));
        at::Generator generator = at::detail::createCPUGenerator(4);
        at::NoGradGuard noGrad;
        const at::Tensor latent = at::normal(0.0, 1.0, {5000, 2}, generator, at::kDouble);
        const at::Tensor x = model.sample(5000, generator);
        const at::Tensor phi = dihedralAngles(x, molecule.dihedrals.phi), psi = dihedralAngles(x, molecule.dihedrals.psi);
        const at::Tensor u = energy.evaluate(x).reducedEnergy;
        const at::Tensor classes = conformationClass(phi, psi);
        const std::vector<double> fractions = classFractions(classes);
        summary.number("adp_physics_reached_beta", trained.reachedTarget);
        summary.number("adp_physics_steps_to_beta", (double) trained.stepsToTarget);
        summary.number("adp_physics_steps", (double) trained.steps);
        summary.number("adp_physics_cpu_seconds", processCpuSeconds() - cpu);
        summary.list("adp_physics_class_fractions", fractions);
        summary.number("adp_physics_mean_reduced_energy", u.mean().item<double>());
        // How the latent variables organise the decoded means: R^2 of (cos, sin) phi and psi from z.
        const at::Tensor means = model.decodeConfigurations(latent);
        summary.number("adp_physics_r2_phi", angleR2(latent, dihedralAngles(means, molecule.dihedrals.phi)));
        summary.number("adp_physics_r2_psi", angleR2(latent, dihedralAngles(means, molecule.dihedrals.psi)));
        std::ostringstream csv;
        csv << "# samples of the model trained without data: phi, psi (rad), reduced energy (kT)\nphi,psi,u\n";
        for (int64_t i = 0; i < x.size(0); i++)
            csv << phi[i].item<double>() << "," << psi[i].item<double>() << "," << u[i].item<double>() << "\n";
        writeAtomically(path(o, "physics_samples.csv"), csv.str());
        std::printf("  alanine dipeptide: beta reached: %s (step %lld), %lld steps, %.0f CPU s; classes of 5000 samples: "
                    "alpha %.1f%%, beta-1 %.1f%%, beta-2 %.1f%%, other %.1f%%; <u> %.1f kT\n",
                    trained.reachedTarget ? "yes" : "no", (long long) trained.stepsToTarget, (long long) trained.steps,
                    processCpuSeconds() - cpu, 100 * fractions[0], 100 * fractions[1], 100 * fractions[2],
                    100 * fractions[3], u.mean().item<double>());
        if (pathExists(path(o, "reference.dcd"))) {
            const at::Tensor reference = readDcd(path(o, "reference.dcd"), molecule.system->getNumParticles());
            const at::Tensor md = testFrames(reference);
            const at::Tensor mdU = energy.evaluate(md).reducedEnergy;
            summary.number("adp_md_mean_reduced_energy", mdU.mean().item<double>());
            std::printf("  reference MD: <u> %.1f kT\n", mdU.mean().item<double>());
        }
    }
    summary.saveSince(0, path(o, "physics.summary"));
    writeAllSummaries(o);
}

} // namespace

int main(int argc, char** argv) {
    return runReportingErrors([&] {
        const Options o = parse(argc, argv);
        const Molecule molecule = loadMolecule(BG_DATA_DIR);
        makeDirectories(o.output);
        if (o.command == "md")
            runMDCommand(o, molecule);
        else if (o.command == "rg")
            runRgCommand(o, molecule);
        else if (o.command == "ard")
            runArdCommand(o, molecule);
        else if (o.command == "map")
            runMapCommand(o, molecule);
        else
            runPhysicsCommand(o, molecule);
    });
}
