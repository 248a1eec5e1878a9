#include "openmmbg/tools/Reweighting.h"

#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/internal/TensorChecks.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

double logSumExp(const double* values, int count) {
    double top = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < count; i++)
        top = std::max(top, values[i]);
    if (!std::isfinite(top))
        return top;
    double sum = 0;
    for (int i = 0; i < count; i++)
        sum += std::exp(values[i] - top);
    return top + std::log(sum);
}

} // namespace

MBAR::MBAR(const at::Tensor& reducedEnergies, const std::vector<long long>& counts) {
    if (reducedEnergies.dim() != 2 || reducedEnergies.size(0) != (int64_t) counts.size() || counts.empty())
        throw OpenMMException("MBAR: reduced energies must be [K, N] with one count per state");
    numStates = (int) counts.size();
    numSamples = reducedEnergies.size(1);
    long long total = 0;
    for (long long n : counts) {
        if (n <= 0)
            throw OpenMMException("MBAR: every state needs at least one sample");
        total += n;
        logCounts.push_back(std::log((double) n));
    }
    if (total != numSamples)
        throw OpenMMException("MBAR: the counts sum to " + std::to_string(total) + ", not to the " +
                              std::to_string(numSamples) + " samples");
    energies = toDoubleVector(reducedEnergies);
    for (double u : energies)
        if (!std::isfinite(u))
            throw OpenMMException("MBAR: reduced energies must be finite");

    const int K = numStates;
    const int64_t N = numSamples;
    freeEnergies.assign(K, 0.0);
    logDenominator.assign(N, 0.0);
    std::vector<double> terms(K), probability((size_t) K * N);
    // Objective F(f) = sum_n ln sum_k N_k exp(f_k - u_kn) - sum_k N_k f_k; its
    // gradient vanishes at the MBAR solution. Returns F, and fills the
    // per-sample state probabilities p_nk when asked.
    auto evaluate = [&](const std::vector<double>& f, bool fillProbabilities) {
        double objective = 0;
        for (int64_t n = 0; n < N; n++) {
            for (int k = 0; k < K; k++)
                terms[k] = logCounts[k] + f[k] - energies[(size_t) k * N + n];
            double logDen = logSumExp(terms.data(), K);
            logDenominator[n] = logDen;
            objective += logDen;
            if (fillProbabilities)
                for (int k = 0; k < K; k++)
                    probability[(size_t) k * N + n] = std::exp(terms[k] - logDen);
        }
        for (int k = 0; k < K; k++)
            objective -= std::exp(logCounts[k]) * f[k];
        return objective;
    };
    // A few self-consistent updates bring f near the solution, where Newton converges fast.
    for (int sweep = 0; sweep < 3 && K > 1; sweep++) {
        evaluate(freeEnergies, false);
        std::vector<double> next(K);
        std::vector<double> column(N);
        for (int k = 0; k < K; k++) {
            for (int64_t n = 0; n < N; n++)
                column[n] = -energies[(size_t) k * N + n] - logDenominator[n];
            next[k] = -logSumExp(column.data(), (int) N);
        }
        for (int k = K - 1; k >= 0; k--)
            freeEnergies[k] = next[k] - next[0];
    }
    double objective = evaluate(freeEnergies, true);
    for (iterations = 0; K > 1 && iterations < 200; iterations++) {
        // Gradient and Hessian in f_1 ... f_K-1 (f_0 = 0 fixes the free constant).
        const int M = K - 1;
        at::Tensor gradient = at::zeros({M}, at::kDouble), hessian = at::zeros({M, M}, at::kDouble);
        double* g = gradient.data_ptr<double>();
        double* h = hessian.data_ptr<double>();
        double largest = 0;
        for (int a = 0; a < M; a++) {
            const double* pa = &probability[(size_t) (a + 1) * N];
            double sum = 0;
            for (int64_t n = 0; n < N; n++)
                sum += pa[n];
            g[a] = sum - std::exp(logCounts[a + 1]);
            largest = std::max(largest, std::abs(g[a]) / std::exp(logCounts[a + 1]));
            h[a * M + a] = sum;
            for (int b = 0; b < M; b++) {
                const double* pb = &probability[(size_t) (b + 1) * N];
                double cross = 0;
                for (int64_t n = 0; n < N; n++)
                    cross += pa[n] * pb[n];
                h[a * M + b] -= cross;
            }
        }
        if (largest < 1e-12)
            break;
        std::vector<double> step = toDoubleVector(at::linalg_solve(hessian, gradient));
        // Backtracking keeps every step downhill on the convex objective.
        double scale = 1.0;
        for (int tries = 0; tries < 50; tries++, scale *= 0.5) {
            std::vector<double> trial = freeEnergies;
            for (int a = 0; a < M; a++)
                trial[a + 1] -= scale * step[a];
            double value = evaluate(trial, false);
            if (value <= objective + 1e-12 * std::abs(objective)) {
                freeEnergies = trial;
                break;
            }
        }
        objective = evaluate(freeEnergies, true);
    }
    // Normalisation of f: -ln(Z_k / Z_0), with the log-denominators of the final f.
    evaluate(freeEnergies, false);
}

at::Tensor MBAR::logWeights(const at::Tensor& reducedEnergies) const {
    std::vector<double> u = toDoubleVector(reducedEnergies);
    if ((int64_t) u.size() != numSamples)
        throw OpenMMException("MBAR::logWeights: need one reduced energy per pooled sample");
    std::vector<double> logWeight(numSamples);
    for (int64_t n = 0; n < numSamples; n++)
        logWeight[n] = -u[n] - logDenominator[n];
    double norm = logSumExp(logWeight.data(), (int) numSamples);
    for (double& w : logWeight)
        w -= norm;
    return at::tensor(logWeight, at::kDouble);
}

at::Tensor reducedEnergiesAtTemperatures(const at::Tensor& energies, const std::vector<double>& temperatures) {
    std::vector<double> beta;
    for (double t : temperatures) {
        if (!(t > 0) || !std::isfinite(t))
            throw OpenMMException("reducedEnergiesAtTemperatures: temperatures must be positive and finite");
        beta.push_back(1.0 / (OpenMMEnergy::BOLTZMANN * t));
    }
    at::Tensor u = energies.detach().to(at::kCPU).to(at::kDouble).reshape({1, -1});
    return at::tensor(beta, at::kDouble).reshape({-1, 1}) * u;
}

namespace {

/** Frames [begin, end) of one run. */
struct Block {
    size_t run;
    int64_t begin, end;
};

/** dF at every target and P(c > 0), by MBAR over the frames of `blocks`. */
std::pair<std::vector<double>, std::vector<double>> estimateFromBlocks(const std::vector<LadderRun>& runs, int numStates,
                                                                      int numTargets, const ReducedEnergies& reduced,
                                                                      const std::vector<Block>& blocks) {
    std::vector<at::Tensor> stateParts, coordinateParts;
    long long frames = 0;
    for (const Block& b : blocks) {
        // State-major order: the samples of state k are those of column k.
        stateParts.push_back(runs[b.run].energy.narrow(0, b.begin, b.end - b.begin));
        coordinateParts.push_back(runs[b.run].coordinate.narrow(0, b.begin, b.end - b.begin));
        frames += b.end - b.begin;
    }
    const at::Tensor state = at::cat(stateParts).t().contiguous().reshape({-1});
    const at::Tensor positive = (at::cat(coordinateParts).t().contiguous().reshape({-1}) > 0);
    const at::Tensor u = reduced(state);
    if (u.dim() != 2 || u.size(0) != numStates + numTargets || u.size(1) != state.size(0))
        throw OpenMMException("pooledFreeEnergyDifferences: the reduced energies must be [" +
                              std::to_string(numStates + numTargets) + ", samples]");
    MBAR mbar(u.narrow(0, 0, numStates), std::vector<long long>(numStates, frames));
    std::vector<double> dF, fraction;
    for (int t = 0; t < numTargets; t++) {
        at::Tensor w = at::exp(mbar.logWeights(u[numStates + t]));
        double p = w.masked_select(positive).sum().item<double>();
        double q = w.masked_select(positive.logical_not()).sum().item<double>();
        dF.push_back(-std::log(p / q));
        fraction.push_back(p / (p + q));
    }
    return {dF, fraction};
}

double standardDeviation(const std::vector<double>& values) {
    double mean = 0, variance = 0;
    for (double v : values)
        mean += v;
    mean /= (double) values.size();
    for (double v : values)
        variance += (v - mean) * (v - mean);
    return std::sqrt(variance / (double) (values.size() - 1));
}

} // namespace

LadderEstimates ladderFreeEnergyDifferences(const std::vector<LadderRun>& runs, const std::vector<double>& temperatures,
                                            const std::vector<double>& targets, int blocks, int resamples,
                                            uint64_t seed) {
    if (temperatures.empty() || targets.empty())
        throw OpenMMException("ladderFreeEnergyDifferences: need runs, temperatures and targets");
    for (double t : targets)
        if (!(t > 0) || !std::isfinite(t))
            throw OpenMMException("ladderFreeEnergyDifferences: target temperatures must be positive");
    std::vector<double> all = temperatures;
    all.insert(all.end(), targets.begin(), targets.end());
    return pooledFreeEnergyDifferences(
        runs, (int) temperatures.size(), (int) targets.size(),
        [&](const at::Tensor& energy) { return reducedEnergiesAtTemperatures(energy, all); }, blocks, resamples, seed);
}

at::Tensor periodicUmbrellaBias(const at::Tensor& angles, double center, double forceConstant) {
    // The difference wrapped into [-pi, pi): the bias is periodic like the angle.
    const at::Tensor d = at::remainder(angles - center + M_PI, 2 * M_PI) - M_PI;
    return 0.5 * forceConstant * d * d;
}

LadderEstimates umbrellaFreeEnergyDifferences(const std::vector<LadderRun>& runs, const std::vector<double>& centers,
                                              double forceConstant, double temperature, int blocks, int resamples,
                                              uint64_t seed) {
    if (centers.empty())
        throw OpenMMException("umbrellaFreeEnergyDifferences: need at least one window");
    if (!(forceConstant >= 0) || !std::isfinite(forceConstant))
        throw OpenMMException("umbrellaFreeEnergyDifferences: the force constant must be finite and non-negative");
    if (!(temperature > 0) || !std::isfinite(temperature))
        throw OpenMMException("umbrellaFreeEnergyDifferences: the temperature must be positive and finite");
    const double beta = 1.0 / (OpenMMEnergy::BOLTZMANN * temperature);
    return pooledFreeEnergyDifferences(
        runs, (int) centers.size(), 1,
        [&](const at::Tensor& angles) {
            std::vector<at::Tensor> rows;
            for (double center : centers)
                rows.push_back(beta * periodicUmbrellaBias(angles, center, forceConstant));
            rows.push_back(at::zeros_like(angles));  // the target: no bias
            return at::stack(rows);
        },
        blocks, resamples, seed);
}

LadderEstimates pooledFreeEnergyDifferences(const std::vector<LadderRun>& runs, int numStates, int numTargets,
                                            const ReducedEnergies& reduced, int blocks, int resamples, uint64_t seed) {
    const int64_t K = numStates;
    if (runs.empty() || K <= 0 || numTargets <= 0)
        throw OpenMMException("pooledFreeEnergyDifferences: need runs, states and targets");
    if (blocks < 2 || resamples < 2)
        throw OpenMMException("pooledFreeEnergyDifferences: need at least 2 blocks and 2 bootstrap resamples");
    std::vector<Block> all;
    std::vector<std::vector<Block>> perRunBlocks;
    for (size_t r = 0; r < runs.size(); r++) {
        const LadderRun& run = runs[r];
        if (run.energy.dim() != 2 || run.energy.size(1) != K || !run.coordinate.sizes().equals(run.energy.sizes()))
            throw OpenMMException("pooledFreeEnergyDifferences: run " + std::to_string(r) +
                                  ": energy and coordinate must both be [frames, " + std::to_string(K) + "]");
        const int64_t F = run.energy.size(0);
        if (F < blocks)
            throw OpenMMException("pooledFreeEnergyDifferences: run " + std::to_string(r) + " has " +
                                  std::to_string(F) + " frames, fewer than " + std::to_string(blocks) + " blocks");
        perRunBlocks.emplace_back();
        for (int b = 0; b < blocks; b++) {
            Block block{r, F * b / blocks, F * (b + 1) / blocks};
            all.push_back(block);
            perRunBlocks.back().push_back(block);
        }
    }
    const size_t T = (size_t) numTargets;
    LadderEstimates result;
    auto [pooled, fraction] = estimateFromBlocks(runs, numStates, numTargets, reduced, all);
    result.fractionPositive = fraction;

    std::mt19937_64 random(seed);
    std::uniform_int_distribution<size_t> pick(0, all.size() - 1);
    std::vector<std::vector<double>> copies(T);
    for (int c = 0; c < resamples; c++) {
        std::vector<Block> drawn;
        for (size_t i = 0; i < all.size(); i++)
            drawn.push_back(all[pick(random)]);
        std::vector<double> dF = estimateFromBlocks(runs, numStates, numTargets, reduced, drawn).first;
        for (size_t t = 0; t < T; t++)
            copies[t].push_back(dF[t]);
    }
    for (size_t t = 0; t < T; t++) {
        bool finite = std::all_of(copies[t].begin(), copies[t].end(), [](double v) { return std::isfinite(v); });
        result.pooled.push_back({pooled[t], finite ? standardDeviation(copies[t])
                                                   : std::numeric_limits<double>::infinity()});
    }
    for (const std::vector<Block>& own : perRunBlocks)
        result.perRun.push_back(estimateFromBlocks(runs, numStates, numTargets, reduced, own).first);
    for (size_t t = 0; t < T; t++) {
        std::vector<double> values;
        for (const std::vector<double>& run : result.perRun)
            values.push_back(run[t]);
        bool finite = std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
        result.runSpread.push_back(runs.size() < 2 ? std::numeric_limits<double>::quiet_NaN()
                                   : finite       ? standardDeviation(values) / std::sqrt((double) values.size())
                                                  : std::numeric_limits<double>::infinity());
    }
    return result;
}

} // namespace OpenMMBG
