// Metrics against closed-form answers.

#include "TestSupport.h"
#include "openmmbg/tools/Metrics.h"

#include <gtest/gtest.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

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

TEST(Metrics, StudentTAndChiSquareAgainstClosedForms) {
    for (double p : {0.6, 0.841345, 0.975}) {
        // dof 1 (Cauchy): t = tan(pi (p - 1/2)); dof 2: t = a sqrt(2 / (1 - a^2)), a = 2p - 1.
        EXPECT_NEAR(studentTQuantile(p, 1), std::tan(M_PI * (p - 0.5)), 1e-7);
        const double a = 2 * p - 1;
        EXPECT_NEAR(studentTQuantile(p, 2), a * std::sqrt(2 / (1 - a * a)), 1e-7);
    }
    EXPECT_NEAR(studentTQuantile(0.841345, 100000), 1.0, 1e-4);  // the normal's one standard deviation
    EXPECT_NEAR(studentTQuantile(0.5, 3), 0.0, 1e-12);
    EXPECT_THROW(studentTQuantile(1.0, 3), OpenMM::OpenMMException);
    EXPECT_THROW(studentTQuantile(0.7, 0), OpenMM::OpenMMException);
    // Both branches of the incomplete gamma function (x below and above dof/2 + 1).
    for (double x : {0.0, 0.3, 1.5, 4.0, 12.0, 60.0}) {
        EXPECT_NEAR(chiSquareUpperTail(x, 1), std::erfc(std::sqrt(x / 2)), 1e-12) << x;
        EXPECT_NEAR(chiSquareUpperTail(x, 2), std::exp(-x / 2), 1e-12) << x;
        EXPECT_NEAR(chiSquareUpperTail(x, 4), std::exp(-x / 2) * (1 + x / 2), 1e-12) << x;
    }
    EXPECT_EQ(chiSquareUpperTail(INFINITY, 3), 0.0);
}

TEST(Metrics, IndependentChainsPhiFreeEnergyDifference) {
    // Chains of 10 values with 2, 3 and 4 positive: f = 0.3, spread 0.1, two blocks each.
    auto chain = [](int positive) {
        std::vector<double> phi(10, -1.0);
        for (int i = 0; i < positive; i++)
            phi[2 * i] = 1.0;
        return at::tensor(phi, at::kDouble);
    };
    const std::vector<at::Tensor> chains = {chain(2), chain(3), chain(4)};
    const ChainsEstimate e = independentChainsPhiFreeEnergyDifference(chains, 2);
    const double a = 2 * 0.841345 - 1, t2 = a * std::sqrt(2 / (1 - a * a));
    EXPECT_NEAR(e.estimate.value, -std::log(0.3 / 0.7), 1e-12);
    EXPECT_NEAR(e.estimate.error, t2 * std::sqrt(0.01 / 3) / (0.3 * 0.7), 1e-7);
    ASSERT_EQ(e.perChain.size(), 3u);
    EXPECT_NEAR(e.perChain[0], -std::log(0.2 / 0.8), 1e-12);
    double chiSquare = 0;
    for (int i = 0; i < 3; i++) {
        const Estimate f = blockAverage((chains[i] > 0).to(at::kDouble), 2);
        chiSquare += (f.value - 0.3) * (f.value - 0.3) / (f.error * f.error);
    }
    EXPECT_NEAR(e.agreement, chiSquareUpperTail(chiSquare, 2), 1e-12);
    // A chain that never reaches phi > 0 has block error 0: it disagrees with the others outright.
    const ChainsEstimate missed = independentChainsPhiFreeEnergyDifference({chain(0), chain(3), chain(4)}, 2);
    EXPECT_EQ(missed.agreement, 0.0);
    EXPECT_EQ(missed.perChain[0], INFINITY);
    EXPECT_TRUE(std::isfinite(missed.estimate.value));
    // No chain there: dF = +inf with an infinite error.
    const ChainsEstimate none = independentChainsPhiFreeEnergyDifference({chain(0), chain(0)}, 2);
    EXPECT_EQ(none.estimate.value, INFINITY);
    EXPECT_EQ(none.estimate.error, INFINITY);
    EXPECT_EQ(none.agreement, 1.0);
    EXPECT_THROW(independentChainsPhiFreeEnergyDifference({chain(2)}, 2), OpenMM::OpenMMException);
}

/**
 * Coverage on a double well that Metropolis chains cross about 13 times
 * each: over 400 experiments of 4 chains (fixed seed), dF from the chains'
 * spread lies within its error bar of the exact value in 68.3% of them
 * within three binomial standard deviations, where block averages of the
 * same frames cover clearly less (their blocks hold about one crossing).
 */
TEST(Metrics, IndependentChainsErrorBarsCoverADoubleWell) {
    // V(x) = 5 (x^2 - 1)^2 + x / 2 in kT; exact P(x > 0) by Simpson's rule on [-3, 3].
    auto potential = [](double x) { return 5 * (x * x - 1) * (x * x - 1) + 0.5 * x; };
    double positive = 0, total = 0;
    const int intervals = 600000;
    for (int i = 0; i <= intervals; i++) {
        const double x = -3 + 6.0 * i / intervals;
        const double w = (i == 0 || i == intervals ? 1 : i % 2 == 1 ? 4 : 2) * std::exp(-potential(x));
        total += w;
        positive += x > 0 ? w : 0;
    }
    const double exact = -std::log(positive / (total - positive));
    std::mt19937_64 random(2024);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    auto runChain = [&](int steps) {
        double x = -1, u = potential(x);
        std::vector<double> series;
        for (int i = 0; i < 1000 + steps; i++) {  // 1000 steps of burn-in from the lower well's bottom
            const double y = x + 0.6 * (2 * uniform(random) - 1), uy = potential(y);
            if (uniform(random) < std::exp(std::min(0.0, u - uy))) {
                x = y;
                u = uy;
            }
            if (i >= 1000)
                series.push_back(x);
        }
        return at::tensor(series, at::kDouble);
    };
    const int experiments = 400, chains = 4;
    int chainsCovered = 0, blocksCovered = 0;
    for (int e = 0; e < experiments; e++) {
        std::vector<at::Tensor> series;
        for (int c = 0; c < chains; c++)
            series.push_back(runChain(5000));
        const Estimate fromChains = independentChainsPhiFreeEnergyDifference(series).estimate;
        const Estimate fromBlocks = phiFreeEnergyDifference(at::cat(series));
        chainsCovered += std::abs(fromChains.value - exact) <= fromChains.error;
        blocksCovered += std::abs(fromBlocks.value - exact) <= fromBlocks.error;
    }
    const double nominal = 0.682689, tolerance = 3 * std::sqrt(nominal * (1 - nominal) / experiments);
    EXPECT_NEAR((double) chainsCovered / experiments, nominal, tolerance);
    EXPECT_LT((double) blocksCovered / experiments, nominal - tolerance);
    std::printf("coverage of 68.3%% error bars over %d experiments: independent chains %.3f, block averages %.3f\n",
                experiments, (double) chainsCovered / experiments, (double) blocksCovered / experiments);
}

TEST(Metrics, WeightedPhiFreeEnergyDifference) {
    // Independent samples from N(0, 1) reweighted to N(0.5, 1): log w = 0.5 phi - 1/8.
    // P(phi > 0) under N(0.5, 1) is Phi(0.5); the error is the delta method's.
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(6);
    const int64_t n = 200000;
    at::Tensor phi = at::randn({n}, generator, at::kDouble);
    at::Tensor logWeights = 0.5 * phi - 0.125;
    const double f = 0.5 * std::erfc(-0.5 / std::sqrt(2.0));
    const double exact = -std::log(f / (1 - f));
    const at::Tensor w = at::exp(logWeights);
    const at::Tensor inside = (phi > 0).to(at::kDouble);
    const double estimated = (w * inside).sum().item<double>() / w.sum().item<double>();
    const double fractionError = (w * (inside - estimated)).norm().item<double>() / w.sum().item<double>();
    const double expectedError = fractionError / (estimated * (1 - estimated));
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

TEST(Metrics, WeightedErrorBarsCoverGaussianImportanceSampling) {
    // Samples x ~ N(0, 1) reweighted to N(0, s^2), the indicator x > t (phi =
    // x - t): the heaviest weights lie in the small tail that is counted, as
    // with a flow that covers a rare basin thinly. Exact P(x > t) =
    // erfc(t / (s sqrt 2)) / 2. Over 400 experiments of 4000 samples the
    // delta-method error bar must cover the exact dF at the nominal 68.3%
    // (+- 7%, three binomial standard deviations); the Kish error bar,
    // sqrt(f (1 - f) / n_eff), covers less (58% at t = 1.5 with this seed) and, the
    // thinner the tail's coverage, far less (asserted at t = 2.5: 37%).
    const double s = 1.3;
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(12);
    const int experiments = 400;
    const int64_t n = 4000;
    for (double t : {1.5, 2.5}) {
        const double f = 0.5 * std::erfc(t / (s * std::sqrt(2.0)));
        const double exact = -std::log(f / (1 - f));
        int covered = 0, kishCovered = 0;
        for (int e = 0; e < experiments; e++) {
            const at::Tensor x = at::randn({n}, generator, at::kDouble);
            const at::Tensor logWeights = x.square() * (0.5 - 0.5 / (s * s));
            const Estimate dF = weightedPhiFreeEnergyDifference(x - t, logWeights);
            const double fraction = 1 / (1 + std::exp(dF.value));
            const double kishError = std::sqrt(fraction * (1 - fraction) / (kishEffectiveSampleSize(logWeights) * n))
                                     / (fraction * (1 - fraction));
            covered += std::abs(dF.value - exact) < dF.error;
            kishCovered += std::abs(dF.value - exact) < kishError;
        }
        const double coverage = (double) covered / experiments, kishCoverage = (double) kishCovered / experiments;
        std::printf("threshold %.1f: delta-method error bars cover %.1f%%, Kish error bars %.1f%%\n", t,
                    100 * coverage, 100 * kishCoverage);
        EXPECT_NEAR(coverage, 0.683, 0.07) << "threshold " << t;
        if (t > 2)
            EXPECT_LT(kishCoverage, 0.683 - 0.14) << "threshold " << t;
    }
}

TEST(Metrics, IndependentSetsOfWeightedSamples) {
    // Two sets of four samples whose weights put 0.2 and 0.3 of the mass at phi > 0.
    const at::Tensor phi = at::tensor({1.0, -1.0, -1.0, -1.0}, at::kDouble);
    auto logWeights = [](double f) {
        return at::log(at::tensor({f, (1 - f) / 3, (1 - f) / 3, (1 - f) / 3}, at::kDouble));
    };
    const ChainsEstimate e = independentSetsPhiFreeEnergyDifference({phi, phi}, {logWeights(0.2), logWeights(0.3)});
    const double a = 2 * 0.841345 - 1, t1 = std::tan(M_PI * a / 2);  // Student's t with 1 degree of freedom
    EXPECT_NEAR(e.estimate.value, std::log(3.0), 1e-12);
    EXPECT_NEAR(e.estimate.error, t1 * 0.05 / (0.25 * 0.75), 1e-6);
    ASSERT_EQ(e.perChain.size(), 2u);
    EXPECT_NEAR(e.perChain[0], std::log(4.0), 1e-12);
    EXPECT_NEAR(e.perChain[1], -std::log(0.3 / 0.7), 1e-12);
    double chiSquare = 0;
    for (double f : {0.2, 0.3}) {
        const double d = f - 0.25, w = 1 - f;  // delta-method variance: f^2 (1 - f)^2 + 3 ((1 - f) / 3)^2 f^2
        chiSquare += d * d / (f * f * w * w + w * w * f * f / 3);
    }
    EXPECT_NEAR(e.agreement, chiSquareUpperTail(chiSquare, 1), 1e-9);
    EXPECT_THROW(independentSetsPhiFreeEnergyDifference({phi}, {logWeights(0.2)}), OpenMM::OpenMMException);
    EXPECT_THROW(independentSetsPhiFreeEnergyDifference({phi, phi}, {logWeights(0.2)}), OpenMM::OpenMMException);
    const ChainsEstimate empty =
        independentSetsPhiFreeEnergyDifference({phi, phi}, {logWeights(0.2), at::full({4}, -INFINITY, at::kDouble)});
    EXPECT_TRUE(std::isnan(empty.estimate.value));
    EXPECT_EQ(empty.estimate.error, INFINITY);

    // Coverage: 5 sets of 800 samples x ~ N(0, 1) reweighted to N(0, 1.3^2),
    // indicator x > 1.5 (as in the test above): over 400 experiments the
    // spread-based error bar covers the exact dF at the nominal 68.3% within
    // three binomial standard deviations.
    const double s = 1.3, t = 1.5, f = 0.5 * std::erfc(t / (s * std::sqrt(2.0))), exact = -std::log(f / (1 - f));
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(13);
    const int experiments = 400;
    int covered = 0;
    for (int experiment = 0; experiment < experiments; experiment++) {
        std::vector<at::Tensor> sets, weights;
        for (int k = 0; k < 5; k++) {
            const at::Tensor x = at::randn({800}, generator, at::kDouble);
            sets.push_back(x - t);
            weights.push_back(x.square() * (0.5 - 0.5 / (s * s)));
        }
        const Estimate dF = independentSetsPhiFreeEnergyDifference(sets, weights).estimate;
        covered += std::abs(dF.value - exact) < dF.error;
    }
    const double nominal = 0.682689, tolerance = 3 * std::sqrt(nominal * (1 - nominal) / experiments);
    std::printf("independent sets of weighted samples: error bars cover %.1f%%\n", 100.0 * covered / experiments);
    EXPECT_NEAR((double) covered / experiments, nominal, tolerance);
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
