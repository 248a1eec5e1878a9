// CPU seconds to an error bar on dF_phi(300 K): flow moves against
// replica-exchange MD on the same temperature range and cores, from finished
// default pipeline runs: --run DIR for the flow methods (its Metropolis
// chains, parallel-tempering runs, flow samples, flow, and the CPU seconds
// of its MD and training, their fixed cost), --md DIR for replica exchange
// (its md<T>.csv rungs; default: the same run; a longer run of the same
// seed, e.g. the long preset's, measures replica exchange's error at larger
// budgets).
//
// Every method is estimated from the first fraction f of its samples
// (--fractions, default 1/8, 1/4, 1/2, 1), each at the CPU seconds that
// fraction cost, with its error bar:
//   - replica-exchange MD, every rung pooled by MBAR at 300 K
//     (ladderFreeEnergyDifferences, block bootstrap), and the 300 K rung
//     alone (block averages): f of every rung's frames at f times the MD's
//     CPU seconds;
//   - Metropolis chains and parallel-tempering runs: the first f of each of
//     the independent chains (error from their spread), at f times the
//     sampler's seconds (one core each);
//   - reweighted flow samples: the first f of each of the five sets (error
//     from their spread, independentSetsPhiFreeEnergyDifference), at the
//     seconds the flow takes to draw and weigh them (timed here).
// Printed: every point; for each flow method, its whole run (fixed cost
// included) against the CPU seconds replica exchange needs for the same
// error, interpolated in log-log between its points (beyond the last one
// as t^-1/2); and the CPU seconds to +-target kT extrapolated from each
// whole run as 1/sqrt(t), with the exponent b of err ~ t^-b fitted over the
// fractions (1/2 for independent samples), which shows how far that holds.
// The points share their samples (f = 1/2 holds f = 1/4), and each error
// bar is itself an estimate (of 4 chains for the samplers): the figures are
// indications of one run, not a distribution over runs.
//
//   build/bench/time_to_accuracy --run DIR [--md DIR] [--fractions 0.125,0.25,0.5,1] [--target 0.1]

#include "AlanineDipeptide.h"
#include "BenchSupport.h"
#include "ProgramSupport.h"

#include "openmmbg/tools/Metrics.h"
#include "openmmbg/tools/Reweighting.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>

using namespace OpenMMBG;
using namespace OpenMMBG::bench;

namespace {

/** One estimate of a method at a fraction of its samples. */
struct Point {
    double cpuSeconds;  // what the samples cost (the fixed cost not included)
    Estimate estimate;
};

/** A method's points and the cost its points do not include (CPU s: for flow methods, the MD and the training). */
struct Method {
    std::string name;
    double fixedSeconds = 0;
    std::vector<Point> points;
};

/** b of err ~ t^-b, least squares in log-log over the points with finite errors (NaN for fewer than 2). */
double errorExponent(const std::vector<Point>& points) {
    std::vector<double> x, y;
    for (const Point& p : points)
        if (std::isfinite(p.estimate.error) && p.estimate.error > 0) {
            x.push_back(std::log(p.cpuSeconds));
            y.push_back(std::log(p.estimate.error));
        }
    const double n = (double) x.size();
    if (n < 2)
        return NAN;
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (size_t i = 0; i < x.size(); i++) {
        mx += x[i] / n;
        my += y[i] / n;
    }
    for (size_t i = 0; i < x.size(); i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
    }
    return -sxy / sxx;
}

double summaryNumber(const alanine::Summary& summary, const std::string& key, const std::string& file) {
    const std::string text = summary.valueOf(key);
    if (text.empty())
        throw alanine::UsageError("'" + file + "' has no " + key + ": is it a finished pipeline run?");
    return std::stod(text);
}

/** The first `fraction` of each of `parts` equal consecutive parts of a series. */
std::vector<at::Tensor> firstOfEachPart(const at::Tensor& series, int parts, double fraction) {
    const int64_t length = series.size(0) / parts, kept = std::max<int64_t>(1, std::llround(fraction * length));
    std::vector<at::Tensor> pieces;
    for (int i = 0; i < parts; i++)
        pieces.push_back(series.narrow(0, i * length, kept));
    return pieces;
}

/** Replica exchange's points: every rung pooled by MBAR and the 300 K rung alone, on the first fractions of `folder`'s MD. */
std::pair<Method, Method> replicaExchangePoints(const std::string& folder, const alanine::Preset& preset,
                                                const std::vector<double>& fractions) {
    alanine::Summary summary;
    summary.load(folder + "/md.summary");
    const double mdSeconds = summaryNumber(summary, "cpu_seconds_md", folder + "/md.summary");
    std::vector<alanine::Samples> rungs;
    for (double t : preset.mdLadder)
        rungs.push_back(alanine::readSeries(alanine::rungPath(folder, t) + ".csv"));
    Method pooled{"replica-exchange MD, all rungs by MBAR"}, rung300{"replica-exchange MD, 300 K rung"};
    for (double f : fractions) {
        const int64_t frames = std::max<int64_t>(1, std::llround(f * (double) rungs.front().phi.size(0)));
        std::vector<at::Tensor> energy, phi;
        for (const alanine::Samples& r : rungs) {
            energy.push_back(r.energy.narrow(0, 0, frames));
            phi.push_back(r.phi.narrow(0, 0, frames));
        }
        const LadderRun ladder{at::stack(energy, 1), at::stack(phi, 1)};
        const LadderEstimates estimates =
            ladderFreeEnergyDifferences({ladder}, preset.mdLadder, {preset.plan.temperature});
        pooled.points.push_back({f * mdSeconds, estimates.pooled.front()});
        rung300.points.push_back({f * mdSeconds, phiFreeEnergyDifference(phi.front())});
    }
    return {pooled, rung300};
}

/** The flow methods of a pipeline run: its samplers' chains and its reweighted flow samples. */
std::vector<Method> flowMethodPoints(const std::string& folder, const alanine::Preset& preset,
                                     const alanine::Molecule& molecule, const std::vector<double>& fractions) {
    alanine::Summary summary;
    for (const char* part : {"md", "training", "mcmc300", "pt300"})
        summary.load(folder + "/" + part + ".summary");
    const double fixedSeconds = summaryNumber(summary, "cpu_seconds_md", folder + "/md.summary") +
                                summaryNumber(summary, "cpu_seconds_training", folder + "/training.summary");
    std::vector<Method> methods = {{"LatentMetropolisIntegrator chains", fixedSeconds},
                                   {"TSFParallelTemperingIntegrator runs", fixedSeconds},
                                   {"flow samples, reweighted", fixedSeconds}};
    // The samplers: independent chains one after the other, each series their concatenation.
    const struct {
        std::string series, chains, seconds;
    } samplers[] = {{"mcmc300", "mcmc_chains", "mcmc_seconds_sampling"}, {"pt300", "pt_chains", "pt_seconds_sampling"}};
    for (int i = 0; i < 2; i++) {
        const at::Tensor phi = alanine::readSeries(folder + "/" + samplers[i].series + ".csv").phi;
        const std::string file = folder + "/" + samplers[i].series + ".summary";
        const int chains = (int) summaryNumber(summary, samplers[i].chains, file);
        const double seconds = summaryNumber(summary, samplers[i].seconds, file);
        for (double f : fractions)
            methods[i].points.push_back(
                {f * seconds, independentChainsPhiFreeEnergyDifference(firstOfEachPart(phi, chains, f)).estimate});
    }
    // Reweighted flow samples, five sets: what one set costs on this core, timed here with the run's flow.
    const alanine::Samples samples = alanine::readSeries(folder + "/flow300.csv");
    const int sets = 5;
    const FlowModel flow = FlowModel::load(folder + "/flow.bgflow", *molecule.system);
    const auto begin = std::chrono::steady_clock::now();
    alanine::sampleFlow(molecule, flow, preset.plan.temperature, (int) (samples.phi.size(0) / sets), 99);
    const double secondsPerSet = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    for (double f : fractions)
        methods[2].points.push_back(
            {f * sets * secondsPerSet,
             independentSetsPhiFreeEnergyDifference(firstOfEachPart(samples.phi, sets, f),
                                                    firstOfEachPart(samples.logWeight, sets, f)).estimate});
    return methods;
}

/**
 * The CPU seconds at which `curve` (points in increasing CPU s) reaches the
 * error `error`: log-log interpolation between its points, and beyond its
 * last point err ~ t^-1/2 (independent samples). NaN if the error lies above
 * the whole curve.
 */
double secondsToError(const Method& curve, double error) {
    const std::vector<Point>& p = curve.points;
    if (error >= p.front().estimate.error)
        return NAN;
    for (size_t i = 1; i < p.size(); i++)
        if (error >= p[i].estimate.error) {
            const double b = std::log(p[i - 1].estimate.error / p[i].estimate.error) /
                             std::log(p[i].cpuSeconds / p[i - 1].cpuSeconds);
            return p[i].cpuSeconds * std::pow(p[i].estimate.error / error, 1 / b);
        }
    const double ratio = p.back().estimate.error / error;
    return p.back().cpuSeconds * ratio * ratio;
}

void printPoints(const Method& m, const std::vector<double>& fractions) {
    for (size_t i = 0; i < m.points.size(); i++)
        std::printf("%-40s %9.3f %10.0f %10.0f %10.2f +- %.2f\n", i == 0 ? m.name.c_str() : "", fractions[i],
                    m.points[i].cpuSeconds, m.fixedSeconds, m.points[i].estimate.value, m.points[i].estimate.error);
}

void run(int argc, char** argv) {
    std::string folder, mdFolder;
    std::vector<double> fractions = {0.125, 0.25, 0.5, 1.0};
    double target = 0.1;
    alanine::forEachOption(argc, argv, [&](const std::string& option, const std::function<std::string()>& value) {
        if (option == "--run") folder = value();
        else if (option == "--md") mdFolder = value();
        else if (option == "--fractions") {
            fractions.clear();
            for (const std::string& item : parseNames(value()))
                fractions.push_back(std::stod(item));
        } else if (option == "--target") target = std::stod(value());
        else throw alanine::UsageError("unknown option " + option);
    });
    if (folder.empty())
        throw alanine::UsageError("usage: time_to_accuracy --run DIR [--md DIR] [--fractions 0.125,0.25,0.5,1] "
                                  "[--target 0.1]");
    if (mdFolder.empty())
        mdFolder = folder;
    for (double f : fractions)
        if (!(f > 0 && f <= 1))
            throw alanine::UsageError("fractions must lie in (0, 1]");
    // The whole run comes last: the extrapolations start from it.
    std::sort(fractions.begin(), fractions.end());
    if (fractions.back() != 1.0)
        fractions.push_back(1.0);
    if (!(target > 0))
        throw alanine::UsageError("--target must be positive (kT)");
    loadPlugins();
    const alanine::Preset preset = alanine::presetNamed("default");
    const alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    const auto [pooled, rung300] = replicaExchangePoints(mdFolder, preset, fractions);
    const std::vector<Method> flowMethods = flowMethodPoints(folder, preset, molecule, fractions);

    std::printf("flow methods: run %s (fixed cost: its MD and training, %.0f CPU s); replica exchange: %s "
                "(%zu rungs %.0f ... %.0f K, %.0f CPU s)\n\n", folder.c_str(), flowMethods.front().fixedSeconds,
                mdFolder.c_str(), preset.mdLadder.size(), preset.mdLadder.front(), preset.mdLadder.back(),
                pooled.points.back().cpuSeconds);
    std::printf("%-40s %9s %10s %10s %18s\n", "method", "fraction", "CPU s", "+ fixed", "dF_phi(300 K), kT");
    for (const Method* m : {&pooled, &rung300})
        printPoints(*m, fractions);
    for (const Method& m : flowMethods)
        printPoints(m, fractions);

    std::printf("\nAt the same error: each flow method's whole run (CPU s with the fixed cost, error) against the CPU "
                "s replica exchange (all rungs by MBAR) needs for that error, interpolated between its points "
                "(beyond the last one as t^-1/2)\n");
    std::printf("%-40s %10s %8s %16s %8s\n", "method", "CPU s", "error", "replica exch. s", "ratio");
    for (const Method& m : flowMethods) {
        const Point& whole = m.points.back();
        const double total = m.fixedSeconds + whole.cpuSeconds, md = secondsToError(pooled, whole.estimate.error);
        std::printf("%-40s %10.0f %8.3f %16.0f %7.1fx\n", m.name.c_str(), total, whole.estimate.error, md, md / total);
    }

    std::printf("\nTo +-%.2f kT: fixed cost + t (err / %.2f)^2 from each whole run (t, err); b of err ~ t^-b over the "
                "fractions (1/2 for independent samples); ratio of replica exchange's CPU s to the method's\n", target,
                target);
    std::printf("%-40s %6s %12s %14s %14s\n", "method", "b", "CPU s", "vs MBAR pooled", "vs 300 K rung");
    std::vector<const Method*> methods = {&pooled, &rung300};
    for (const Method& m : flowMethods)
        methods.push_back(&m);
    std::vector<double> totals;
    for (const Method* m : methods) {
        const Point& whole = m->points.back();
        const double scale = whole.estimate.error / target;
        totals.push_back(m->fixedSeconds + whole.cpuSeconds * scale * scale);
    }
    for (size_t i = 0; i < methods.size(); i++)
        std::printf("%-40s %6.2f %12.0f %13.1fx %13.1fx\n", methods[i]->name.c_str(), errorExponent(methods[i]->points),
                    totals[i], totals[0] / totals[i], totals[1] / totals[i]);
}

} // namespace

int main(int argc, char** argv) {
    return alanine::runReportingErrors([&] { run(argc, argv); });
}
