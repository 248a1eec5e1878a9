#ifndef OPENMMBG_METRICS_H_
#define OPENMMBG_METRICS_H_

#include "openmmbg/tools/MoleculeIO.h"

#include <ATen/core/Tensor.h>

#include <array>
#include <vector>

namespace OpenMMBG {

/**
 * Kish effective sample size as a fraction of the sample count,
 * (sum w)^2 / sum w^2 / N, from log-weights [N] (non-finite entries count as
 * weight 0). With clipFraction > 0 the largest clipFraction of the weights are
 * lowered to the weight at that quantile first (docs/math.md: 1e-4).
 */
double kishEffectiveSampleSize(const at::Tensor& logWeights, double clipFraction = 0.0);

/**
 * Estimate of KL(q || p) from log-weights log p~ - log q of samples drawn
 * from q: log mean exp(w) - mean(w), which needs no normalising constant and
 * is >= 0.
 */
double klEstimateFromLogWeights(const at::Tensor& logWeights);

/** The four atoms of each backbone dihedral of a peptide with one central residue. */
struct BackboneDihedrals {
    std::array<int, 4> phi;  // C(prev)-N-CA-C
    std::array<int, 4> psi;  // N-CA-C-N(next)
    /** phi and psi of the residue `residueName` (e.g. "ALA"), by atom names; throws if atoms are missing. */
    static BackboneDihedrals find(const PdbStructure& structure, const std::string& residueName = "ALA");
};

/** Dihedral angles (rad, (-pi, pi]) [B] of configurations x [B, N, 3]. */
at::Tensor dihedralAngles(const at::Tensor& x, const std::array<int, 4>& atoms);

/** Normalised 2D histogram [bins, bins] of angle pairs over [-pi, pi)^2, optionally weighted. */
at::Tensor ramachandranHistogram(const at::Tensor& phi, const at::Tensor& psi, int bins = 64,
                                 const at::Tensor& weights = at::Tensor());

/** KL(reference || model) of two histograms, each normalised after adding eps to every bin. */
double histogramKL(const at::Tensor& reference, const at::Tensor& model, double eps = 1e-10);

/** A value with its statistical error. */
struct Estimate {
    double value;
    double error;
};

/**
 * dF = -ln(P(phi > 0) / P(phi < 0)) in kT from a time series of phi (rad),
 * with the error from block averaging of the indicator phi > 0 over
 * `blocks` blocks, propagated to dF.
 */
Estimate phiFreeEnergyDifference(const at::Tensor& phi, int blocks = 20);

/**
 * dF = -ln(P(phi > 0) / P(phi < 0)) in kT from independent samples of phi
 * (rad) with importance log-weights (undefined: equal weights; non-finite
 * entries weigh 0). The error is that of the self-normalised weighted
 * fraction f = sum w I / sum w by the delta method,
 * sqrt(sum w^2 (I - f)^2) / sum w (I = 1 for phi > 0), propagated to dF;
 * with equal weights it is sqrt(f (1 - f) / n). With no weight on one side the value is +-inf, the error inf.
 */
Estimate weightedPhiFreeEnergyDifference(const at::Tensor& phi, const at::Tensor& logWeights = at::Tensor());

/**
 * The Ramachandran KL divergence of the metrics (docs/math.md):
 * KL(reference || model) of 64 x 64 histograms over [-pi, pi)^2 with eps
 * 1e-10, the model's samples weighted by exp(logWeights) if given.
 */
double ramachandranKL(const at::Tensor& referencePhi, const at::Tensor& referencePsi, const at::Tensor& phi,
                      const at::Tensor& psi, const at::Tensor& logWeights = at::Tensor());

/** What independentChainsPhiFreeEnergyDifference finds. */
struct ChainsEstimate {
    Estimate estimate;             // dF (kT) from the chains' mean fraction; error: see below
    std::vector<double> perChain;  // dF of each chain alone (+-inf where it never or always had phi > 0)
    double agreement = 1.0;        // p-value of the chains' agreement with their own block errors
};

/**
 * dF = -ln(P(phi > 0) / P(phi < 0)) in kT from K >= 2 independent chains of
 * equal length (their own seeds and warm-ups), each a time series of phi
 * (rad). The estimate takes the mean f of the chains' fractions f_i; its
 * error is the half-width of the 68.3% Student-t interval of that mean
 * (K - 1 degrees of freedom, from the spread of the f_i), propagated to dF.
 * Unlike block averages within one chain, the spread sees a basin that some
 * chains visit too rarely. `agreement` is the p-value of chi^2 = sum_i
 * (f_i - f)^2 / e_i^2 with K - 1 degrees of freedom, e_i chain i's block
 * error (`blocks` blocks): below 0.01 the chains disagree beyond their own
 * error bars (they mix too slowly for block averages to hold; 0 when a
 * chain with block error 0 differs from the mean).
 */
ChainsEstimate independentChainsPhiFreeEnergyDifference(const std::vector<at::Tensor>& phi, int blocks = 20);

/**
 * The same for K >= 2 independent sets of weighted samples (phi[k] rad,
 * logWeights[k] importance log-weights, non-finite ones weigh 0): each set's
 * self-normalised fraction of phi > 0 with its delta-method error
 * (weightedPhiFreeEnergyDifference) takes the place of a chain's. With
 * heavy-tailed weights the delta method's error of one set is itself noisy;
 * the spread of independent sets shows it. A set whose weights are all 0
 * makes the value NaN and the error inf. Throws for fewer than 2 sets or a
 * set without one log-weight per sample.
 */
ChainsEstimate independentSetsPhiFreeEnergyDifference(const std::vector<at::Tensor>& phi,
                                                      const std::vector<at::Tensor>& logWeights);

/** The p quantile of Student's t distribution with `dof` >= 1 degrees of freedom, 0.5 <= p < 1. */
double studentTQuantile(double p, int dof);

/** P(X > x) for X chi-square distributed with `dof` >= 1 degrees of freedom. */
double chiSquareUpperTail(double x, int dof);

/** Block-averaged mean of a time series [T] with the standard error from `blocks` blocks. */
Estimate blockAverage(const at::Tensor& series, int blocks = 20);

/** Integrated autocorrelation time (in steps) of a time series, with Sokal's automatic window (c = 5). */
double integratedAutocorrelationTime(const at::Tensor& series);

} // namespace OpenMMBG

#endif
