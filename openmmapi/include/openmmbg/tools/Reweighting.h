#ifndef OPENMMBG_REWEIGHTING_H_
#define OPENMMBG_REWEIGHTING_H_

#include "openmmbg/tools/Metrics.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace OpenMMBG {

/**
 * The multistate Bennett acceptance ratio estimator (MBAR, Shirts and
 * Chodera 2008; docs/math.md, "Reweighting between temperatures"): samples
 * pooled from K states become one weighted sample of any state whose
 * reduced energy can be evaluated on them. The reduced free energies solve
 *   f_k = -ln sum_n exp(-u_k(x_n)) / sum_j N_j exp(f_j - u_j(x_n)),
 * found by Newton's method on MBAR's convex objective with f_0 = 0.
 */
class MBAR {
public:
    /**
     * reducedEnergies [K, N]: u_k(x_n), dimensionless, finite, for every
     * pooled sample n in every state k; counts[k] samples were drawn from
     * state k (K entries, each > 0, summing to N).
     */
    MBAR(const at::Tensor& reducedEnergies, const std::vector<long long>& counts);

    /** f_k = -ln(Z_k / Z_0), k = 0 ... K-1. */
    const std::vector<double>& getFreeEnergies() const { return freeEnergies; }
    /** Newton iterations the solution took. */
    int getIterations() const { return iterations; }

    /**
     * Normalised log-weights [N] (logsumexp = 0) of the pooled samples in the
     * state whose reduced energies on them are `reducedEnergies` [N].
     */
    at::Tensor logWeights(const at::Tensor& reducedEnergies) const;

private:
    std::vector<double> energies;    // u_k(x_n), row-major [K, N]
    std::vector<double> logCounts;   // ln N_k
    std::vector<double> logDenominator;  // per sample: ln sum_j N_j exp(f_j - u_j(x_n))
    std::vector<double> freeEnergies;
    int numStates = 0;
    int64_t numSamples = 0;
    int iterations = 0;
};

/** u_k(x_n) = U_n / (k_B T_k) [K, N] for potential energies U [N] (kJ/mol) at temperatures T_k (K). */
at::Tensor reducedEnergiesAtTemperatures(const at::Tensor& energies, const std::vector<double>& temperatures);

/**
 * One run of K states sampled side by side (the rungs of a temperature
 * ladder, by replica exchange or independent chains; umbrella windows):
 * frame f holds a configuration of every state k. Frames follow each other
 * in time; the states of one frame may be correlated (by exchanges).
 */
struct LadderRun {
    // [F, K] what the states' reduced energies are functions of: the
    // potential energy (kJ/mol) on a temperature ladder, the restrained
    // angle (rad) for umbrella windows.
    at::Tensor energy;
    at::Tensor coordinate;  // [F, K] the coordinate whose sign defines the two states (e.g. phi, rad)
};

/** What ladderFreeEnergyDifferences estimates, at each requested temperature. */
struct LadderEstimates {
    std::vector<Estimate> pooled;              // all runs together, bootstrap error
    std::vector<std::vector<double>> perRun;   // [run][temperature]: each run alone (no error)
    std::vector<double> runSpread;             // per temperature: standard error from the spread of the runs
    std::vector<double> fractionPositive;      // per temperature: pooled P(coordinate > 0)
};

/**
 * dF = -ln(P(c > 0) / P(c < 0)) in kT at each of `targets` (K), by MBAR over
 * every rung of every run (`temperatures`, K, one per rung). Its error is
 * the standard deviation over `resamples` bootstrap copies that each draw
 * blocks of frames with replacement: every run is cut into `blocks`
 * consecutive blocks of frames (all rungs of a frame stay together, so the
 * correlations in time and across rungs are kept), and a copy draws as many
 * blocks as there are, uniformly from all runs' blocks. With two runs or
 * more, each is also estimated alone and `runSpread` is the standard
 * error of their mean (sample standard deviation / sqrt(runs)): independent
 * runs that disagree beyond it show a basin some of them missed, which
 * the bootstrap alone cannot see.
 */
LadderEstimates ladderFreeEnergyDifferences(const std::vector<LadderRun>& runs,
                                            const std::vector<double>& temperatures,
                                            const std::vector<double>& targets, int blocks = 20,
                                            int resamples = 200, uint64_t seed = 1);

/**
 * Reduced energies [K + T, N] of N pooled samples from their LadderRun
 * `energy` values [N]: rows 0 ... K-1 in the K sampled states, rows K ...
 * K+T-1 in the T target states.
 */
using ReducedEnergies = std::function<at::Tensor(const at::Tensor& stateVariable)>;

/**
 * The estimator behind ladderFreeEnergyDifferences for any K sampled states
 * and T targets whose reduced energies `reduced` gives: dF at every target
 * by MBAR, with the same block bootstrap and run spread.
 */
LadderEstimates pooledFreeEnergyDifferences(const std::vector<LadderRun>& runs, int numStates, int numTargets,
                                            const ReducedEnergies& reduced, int blocks = 20, int resamples = 200,
                                            uint64_t seed = 1);

/** 0.5 k d^2 (kJ/mol) with d = angle - center wrapped into [-pi, pi): a harmonic restraint on a periodic angle (rad). */
at::Tensor periodicUmbrellaBias(const at::Tensor& angles, double center, double forceConstant);

/**
 * Umbrella sampling on a periodic angle at `temperature` (K): state k
 * samples exp(-(U + periodicUmbrellaBias(angle, centers[k], forceConstant)) / kT)
 * (kJ/mol/rad^2), and each run's `energy` holds the restrained angle (rad)
 * of every frame. dF = -ln(P(c > 0) / P(c < 0)) of the unbiased
 * distribution (one target), by MBAR over every window.
 */
LadderEstimates umbrellaFreeEnergyDifferences(const std::vector<LadderRun>& runs, const std::vector<double>& centers,
                                              double forceConstant, double temperature, int blocks = 20,
                                              int resamples = 200, uint64_t seed = 1);

} // namespace OpenMMBG

#endif
