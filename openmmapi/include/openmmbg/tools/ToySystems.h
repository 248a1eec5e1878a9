#ifndef OPENMMBG_TOYSYSTEMS_H_
#define OPENMMBG_TOYSYSTEMS_H_

// Toy systems with exact answers, for tests, examples and benchmarks.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <openmm/System.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace OpenMMBG {

/**
 * The 2D double well of docs/math.md, u(x, y) = a/4 x^4 - b/2 x^2 + c x + d/2 y^2
 * in units of kT at `unitTemperature` (x, y in nm), as a one-particle OpenMM
 * System. The particle's z feels d/2 z^2 so that MD stays bound; flows model
 * (x, y) only (CartesianCoordinates {0, 1}).
 */
struct DoubleWell {
    double a = 1, b = 6, c = 1, d = 1;
    double unitTemperature = 300.0;  // K: k_B * unitTemperature is the energy unit

    /** One particle of mass `mass` (Da) with the potential above, in kJ/mol. */
    std::unique_ptr<OpenMM::System> createSystem(double mass = 1.0) const;
    /** The x part a/4 x^4 - b/2 x^2 + c x, in units of kT at unitTemperature. */
    double xEnergy(double x) const;
    /**
     * Exact probabilities of the bins [edges[i], edges[i+1]) of the x-marginal
     * at temperature T (K), by Simpson quadrature on a fine grid.
     */
    std::vector<double> marginalBinProbabilities(double temperature, const std::vector<double>& edges) const;
    /** Exact -ln(P(x > 0) / P(x < 0)) at temperature T, in kT. */
    double freeEnergyDifference(double temperature) const;
    /** Differential entropy (nats) of the (x, y) distribution at T, by quadrature: the lowest possible test NLL. */
    double entropy(double temperature) const;
    /**
     * Independent exact samples [count, 1, 3] (nm) at temperature T: x by
     * inverse transform of the quadrature CDF, y Gaussian, z = 0.
     */
    at::Tensor sampleExact(int64_t count, double temperature, at::Generator& generator) const;
};

/**
 * The multi-dimensional double well of paper 001: U(q) = sum_i a_i w_i + b w_i^2 + c w_i^4
 * with w = A q, q in R^dim (nm), in units of kT at `unitTemperature`, random
 * a and a random correlation matrix A. As an OpenMM System: ceil(dim/3)
 * particles whose first `dim` coordinates are q (the rest feel a harmonic well).
 */
struct MultiDoubleWell {
    int dim = 5;
    at::Tensor linear;  // a [dim]
    double quadratic = -2.0, quartic = 0.5;
    at::Tensor mixing;  // A [dim, dim]
    double unitTemperature = 300.0;

    static MultiDoubleWell random(int dim, uint64_t seed);
    int getNumParticles() const { return (dim + 2) / 3; }
    /** The first dim of the 3 * particles flattened coordinates. */
    std::vector<int> coordinateIndices() const;
    std::unique_ptr<OpenMM::System> createSystem() const;
    /** U(q) [B] in kT at unitTemperature for q [B, dim]: the same function in LibTorch. */
    at::Tensor energy(const at::Tensor& q) const;
};

} // namespace OpenMMBG

#endif
