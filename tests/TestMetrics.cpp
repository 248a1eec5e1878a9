// Metrics against closed-form answers.

#include "TestSupport.h"
#include "openmmbg/tools/Metrics.h"

#include <gtest/gtest.h>
#include <openmm/OpenMMException.h>

#include <cmath>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

TEST(Metrics, KishEffectiveSampleSize) {
    EXPECT_NEAR(kishEffectiveSampleSize(at::zeros({100}, at::kDouble)), 1.0, 1e-12);
    // One weight e^50 times the others: ESS close to one sample.
    at::Tensor dominated = at::zeros({100}, at::kDouble);
    dominated[3] = 50.0;
    EXPECT_NEAR(kishEffectiveSampleSize(dominated), 0.01, 1e-6);
    // Half the weights zero (log-weight -inf): half the samples.
    at::Tensor half = at::zeros({100}, at::kDouble);
    half.narrow(0, 0, 50).fill_(-std::numeric_limits<double>::infinity());
    EXPECT_NEAR(kishEffectiveSampleSize(half), 0.5, 1e-12);
    // Clipping the top 1% lowers the dominant weight to the 99% quantile.
    at::Tensor spread = at::arange(1000, at::kDouble) * 0.01;
    spread[999] = 100.0;
    EXPECT_LT(kishEffectiveSampleSize(spread), 0.01);
    EXPECT_GT(kishEffectiveSampleSize(spread, 0.01), 0.2);
}

TEST(Metrics, KLEstimateOfShiftedGaussian) {
    // Samples of q = N(0, 1), unnormalised target p = N(mu, 1): KL(q || p) = mu^2 / 2.
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(3);
    at::Tensor z = at::randn({200000}, generator, at::kDouble);
    const double mu = 0.8;
    at::Tensor logWeights = -0.5 * (z - mu).square() + 0.5 * z.square() + 7.0;  // any constant
    // The estimator's bias is O(var(w)/N), its noise O(mu/sqrt(N)).
    EXPECT_NEAR(klEstimateFromLogWeights(logWeights), mu * mu / 2, 0.01);
    EXPECT_NEAR(klEstimateFromLogWeights(at::full({10}, 3.0, at::kDouble)), 0.0, 1e-12);
}

TEST(Metrics, BlockAverageAndAutocorrelation) {
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(4);
    // AR(1) with rho: integrated autocorrelation time (1 + rho) / (1 - rho).
    const double rho = 0.8;
    const int64_t n = 200000;
    at::Tensor noise = at::randn({n}, generator, at::kDouble);
    std::vector<double> x(n);
    x[0] = 0;
    for (int64_t i = 1; i < n; i++)
        x[i] = rho * x[i - 1] + std::sqrt(1 - rho * rho) * noise[i].item<double>();
    at::Tensor series = at::tensor(x, at::kDouble);
    EXPECT_NEAR(integratedAutocorrelationTime(series), (1 + rho) / (1 - rho), 0.5);
    // Block error of correlated data: sqrt(tau / N) for unit variance.
    Estimate mean = blockAverage(series, 20);
    EXPECT_NEAR(mean.value, 0.0, 4 * std::sqrt(9.0 / n));
    EXPECT_NEAR(mean.error, std::sqrt(9.0 / n), 0.5 * std::sqrt(9.0 / n));
    EXPECT_NEAR(integratedAutocorrelationTime(noise), 1.0, 0.1);
    EXPECT_THROW(blockAverage(at::zeros({5}, at::kDouble), 20), OpenMM::OpenMMException);
}

TEST(Metrics, PhiFreeEnergyDifference) {
    // 25% of independent values positive: dF = -ln(1/3) = ln 3.
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(5);
    at::Tensor u = at::rand({100000}, generator, at::kDouble);
    at::Tensor phi = at::where(u < 0.25, at::full_like(u, 1.0), at::full_like(u, -2.0));
    Estimate dF = phiFreeEnergyDifference(phi);
    // Error of f: sqrt(f (1 - f) / N); of dF: that over f (1 - f).
    double expectedError = std::sqrt(0.25 * 0.75 / 100000) / (0.25 * 0.75);
    EXPECT_NEAR(dF.value, std::log(3.0), 4 * expectedError);
    EXPECT_NEAR(dF.error, expectedError, 0.4 * expectedError);
}

TEST(Metrics, WeightedPhiFreeEnergyDifference) {
    // Independent samples from N(0, 1) reweighted to N(0.5, 1): log w = 0.5 phi - 1/8.
    // P(phi > 0) under N(0.5, 1) is Phi(0.5); the error follows from the Kish ESS.
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(6);
    const int64_t n = 200000;
    at::Tensor phi = at::randn({n}, generator, at::kDouble);
    at::Tensor logWeights = 0.5 * phi - 0.125;
    const double f = 0.5 * std::erfc(-0.5 / std::sqrt(2.0));
    const double exact = -std::log(f / (1 - f));
    const double effective = kishEffectiveSampleSize(logWeights) * n;
    const at::Tensor w = at::exp(logWeights);
    const double estimated = (w * (phi > 0).to(at::kDouble)).sum().item<double>() / w.sum().item<double>();
    const double expectedError = std::sqrt(estimated * (1 - estimated) / effective) / (estimated * (1 - estimated));
    Estimate dF = weightedPhiFreeEnergyDifference(phi, logWeights);
    EXPECT_NEAR(dF.value, exact, 4 * expectedError);
    EXPECT_NEAR(dF.value, -std::log(estimated / (1 - estimated)), 1e-12);
    EXPECT_NEAR(dF.error, expectedError, 1e-12);
    // Equal weights: the plain fraction, dF = 0 for a symmetric sample.
    Estimate plain = weightedPhiFreeEnergyDifference(at::cat({phi, -phi}));
    EXPECT_NEAR(plain.value, 0.0, 1e-12);
    // Non-finite log-weights weigh nothing; one side empty gives +-inf.
    at::Tensor twoSamples = at::tensor({1.0, -1.0}, at::kDouble);
    EXPECT_EQ(weightedPhiFreeEnergyDifference(twoSamples, at::tensor({-INFINITY, 0.0}, at::kDouble)).value, INFINITY);
    EXPECT_EQ(weightedPhiFreeEnergyDifference(twoSamples, at::tensor({0.0, NAN}, at::kDouble)).value, -INFINITY);
    EXPECT_TRUE(std::isnan(weightedPhiFreeEnergyDifference(twoSamples, at::tensor({NAN, NAN}, at::kDouble)).value));
}

TEST(Metrics, RamachandranHistogramsAndKL) {
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(6);
    at::Tensor phi = at::rand({20000}, generator, at::kDouble) * 2 * M_PI - M_PI;
    at::Tensor psi = at::rand({20000}, generator, at::kDouble) * 2 * M_PI - M_PI;
    at::Tensor h = ramachandranHistogram(phi, psi, 64);
    EXPECT_NEAR(h.sum().item<double>(), 1.0, 1e-12);
    EXPECT_EQ(histogramKL(h, h), 0.0);
    // Angles outside [-pi, pi) wrap.
    EXPECT_TRUE(at::equal(ramachandranHistogram(phi + 2 * M_PI, psi - 2 * M_PI, 64), h));
    // All mass in one bin against a uniform model: KL = ln(64^2).
    at::Tensor point = ramachandranHistogram(at::full({10}, 0.01, at::kDouble), at::full({10}, 0.01, at::kDouble), 64);
    at::Tensor uniform = at::full({64, 64}, 1.0 / 4096, at::kDouble);
    EXPECT_NEAR(histogramKL(point, uniform), std::log(4096.0), 1e-5);
    // Weights: weight 0 removes samples.
    at::Tensor w = at::where(phi > 0, at::ones_like(phi), at::zeros_like(phi));
    at::Tensor right = ramachandranHistogram(phi, psi, 64, w);
    EXPECT_EQ(right.narrow(0, 0, 32).sum().item<double>(), 0.0);
    // ramachandranKL: 64 x 64 bins, eps 1e-10, log-weights (-inf: weight 0).
    EXPECT_EQ(ramachandranKL(phi, psi, phi, psi), 0.0);
    EXPECT_NEAR(ramachandranKL(phi, psi, phi, psi, at::log(w)), histogramKL(h, right, 1e-10), 1e-12);
}

TEST(Metrics, BackboneDihedralsOfAlanineDipeptide) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    BackboneDihedrals d = BackboneDihedrals::find(molecule.structure);
    const PdbStructure& s = molecule.structure;
    EXPECT_EQ(d.phi[0], s.findAtom("ACE", "C"));
    EXPECT_EQ(d.psi[3], s.findAtom("NME", "N"));
    double phi = dihedralAngles(molecule.positions(), d.phi)[0].item<double>();
    EXPECT_NEAR(phi * 180 / M_PI, -77.48, 0.05);  // make_alanine_dipeptide.py's result
    EXPECT_THROW(BackboneDihedrals::find(s, "GLY"), OpenMM::OpenMMException);
}
