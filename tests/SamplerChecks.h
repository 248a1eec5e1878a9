#ifndef OPENMMBG_SAMPLERCHECKS_H_
#define OPENMMBG_SAMPLERCHECKS_H_

// Statistical checks of samplers against the double well's exact marginal.
//
// Stationarity: chains start from exact samples; if a kernel leaves the
// target invariant, the marginal of every later step is exactly the target,
// whether or not the chains cross the barrier. The starts are stratified: a
// fixed number of chains begins in each stratum s of the exact distribution
// (each well a stratum of its own), so that the estimate of each bin,
// sum_s p_s mean_{k in s} f_k, carries no noise from where chains happened
// to start, and its variance sum_s p_s^2 var_s / m_s is estimated from
// independent chains. z = (estimate - exact) / sqrt(variance).

#include "FlowMoveIntegratorTests.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/tools/ToySystems.h"

#include <ATen/ATen.h>
#include <openmm/System.h>
#include <openmm/Vec3.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {
namespace testing {

/** Edges of `bins` bins of equal exact probability of x at T, plus an edge at x = 0 (the barrier). */
std::vector<double> exactQuantileEdges(const DoubleWell& well, double temperature, int bins);

struct StratifiedStarts {
    at::Tensor positions;                   // [K, 1, 3]: x, y exact within the stratum, z = 0
    std::vector<int> stratum;               // of each chain
    std::vector<double> stratumProbability;  // exact p_s
};

/** chainsPerStratum exact starts in each of the strata given by exactQuantileEdges(well, T, 10). */
StratifiedStarts stratifiedStarts(const DoubleWell& well, double temperature, int chainsPerStratum, uint64_t seed);

struct StationarityCheck {
    std::vector<double> expected, observed, z;
    double maxAbsZ = 0, meanSquaredZ = 0;
    std::string describe() const;
};

/**
 * Compares per-chain samples of x (chains[k] started as starts says) with
 * the exact marginal at T, on bins of equal probability in which bins under
 * 2% are merged with a neighbour.
 */
StationarityCheck checkStationarity(const std::vector<std::vector<double>>& chains, const StratifiedStarts& starts,
                                    const DoubleWell& well, double temperature);
/** The same for chains started in strata of known probability, against given bins and their exact probabilities. */
StationarityCheck checkStationarity(const std::vector<std::vector<double>>& chains, const std::vector<int>& stratum,
                                    const std::vector<double>& stratumProbability, const std::vector<double>& edges,
                                    const std::vector<double>& expected);

/**
 * The same comparison for one long chain that crosses the barrier often:
 * each bin's frequency averaged over `blocks` consecutive blocks, with the
 * standard error from the spread of the block averages.
 */
StationarityCheck checkBlockAverages(const std::vector<double>& chain, const DoubleWell& well, double temperature,
                                     int blocks = 20);
/** The same against given bins (edges) and their exact probabilities. */
StationarityCheck checkBlockAverages(const std::vector<double>& chain, const std::vector<double>& edges,
                                     const std::vector<double>& expected, int blocks = 20);

/** Number of sign changes of x along a chain. */
int countCrossings(const std::vector<double>& chain);

// Double-well flows shared by the sampler tests (the well's unit temperature, 300 K, is T_ref).

/** 10000 exact samples at 300 K: training data, and the normalisation of every flow here. */
at::Tensor exactDoubleWellData();
/** A flow with random, untrained networks (normalisation fitted to data, like every FlowModel). */
FlowModel untrainedDoubleWellFlow(const OpenMM::System& system);
/**
 * A flow (4 blocks, 2 x 64) trained by maximum likelihood on exact samples at
 * 300 K (about 8 s); with `tsfSplineCouplings` a TSF of 2 blocks with spline couplings.
 */
FlowModel trainedDoubleWellFlow(const OpenMM::System& system, const std::string& type, bool tsfSplineCouplings = false);

/**
 * LatentMetropolisIntegrator chains of 150 moves from stratified exact starts
 * (12 per stratum) at T_ref and 2 T_ref, checked for stationarity against the
 * exact marginal; the moves must be accepted often enough to mean something.
 */
void expectStationaryLatentMetropolis(const FlowModel& model, double sigma, double independence, int seed,
                                      const std::string& platform,
                                      const PlatformProperties& properties = PlatformProperties());

/**
 * One LatentMetropolisIntegrator chain (sigma 0.5, independence probability
 * 0.5) started in the left well crosses the barrier and gives the exact free
 * energy difference of the wells within 4 block-averaged errors (20000
 * moves, 20 blocks).
 */
void expectDoubleWellFreeEnergy(const FlowModel& model, double temperature, int seed, const std::string& platform,
                                const PlatformProperties& properties = PlatformProperties());

/**
 * Four atoms in a chain with harmonic bonds and angles and a torsion energy
 * u(phi) = 1.5 (1 + cos phi) + 2 (1 + cos 2 phi) kT at 300 K, with two wells
 * near +-1.8 rad and barriers of 4 kT (through pi) and 7 kT (through 0).
 * The volume element of internal coordinates does not depend on the
 * torsion, so its exact marginal is exp(-u(phi)) on [-pi, pi).
 */
struct TorsionChain {
    static constexpr double BOND = 0.15, ANGLE = 1.9;         // nm, rad
    static constexpr double BOND_K = 5000.0, ANGLE_K = 100.0;  // kJ/mol/nm^2, kJ/mol/rad^2
    std::unique_ptr<OpenMM::System> system;
    std::vector<OpenMM::Vec3> positions;  // nm, with torsion `phi`

    explicit TorsionChain(double phi);
    static double reducedTorsionEnergy(double phi);
    /** Exact probabilities of the torsion bins between `edges` (rad), by quadrature. */
    static std::vector<double> binProbabilities(const std::vector<double>& edges);
    /** The same for a bond length (nm), r^2 exp(-k (r - r0)^2 / 2kT). */
    static std::vector<double> bondBinProbabilities(const std::vector<double>& edges);
    /** Independent exact torsions at 300 K (rad). */
    static std::vector<double> sampleTorsions(int count, at::Generator& generator);
    /** Exact configurations [count, 4, 3] with these torsions (bonds and angles drawn exactly), in the frame of `positions`. */
    at::Tensor sampleExact(const std::vector<double>& torsions, at::Generator& generator) const;
};

/**
 * An untrained spline flow with random splines on TorsionChain and
 * LatentMetropolisIntegrator chains of 150 moves at 300 K from exact starts
 * (30 per well; random walks wrapped on the circle, independence moves from
 * the uniform torsion prior): the histograms of the torsion and of a bond
 * must match their exact marginals within the errors of independent chains.
 */
void expectExactTorsionMarginalWithSplineMoves(const std::string& platform,
                                               const PlatformProperties& properties = PlatformProperties());

// A harmonic oscillator with a flow that is exact for it at every temperature.

/** U = k/2 |r|^2 for one particle, in units of kT at 300 K (k = 1, through the global parameter "unit"). */
std::unique_ptr<OpenMM::System> harmonicSystem();

/** A TSF exact for harmonicSystem() at every temperature (identity flow, Boltzmann width at 300 K). */
FlowModel exactHarmonicFlow(const OpenMM::System& system);

} // namespace testing
} // namespace OpenMMBG

#endif
