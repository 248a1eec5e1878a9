// MBAR and the ladder estimator against exact answers: harmonic oscillators
// (closed-form free energies) and a 1D double well (numerical quadrature),
// with the bootstrap error bars' coverage checked over many independent
// experiments.

#include "TestSupport.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/tools/Reweighting.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <random>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

const double KB = OpenMMEnergy::BOLTZMANN;  // kJ/mol/K

/** A tilted double well U(x) = H (x^2 - 1)^2 + C x (kJ/mol, x in nm): the x > 0 well is the higher one. */
const double H = 10.0, C = 2.5;
double doubleWell(double x) { return H * (x * x - 1) * (x * x - 1) + C * x; }

/** Exact dF = -ln(P(x > 0) / P(x < 0)) at T by Simpson's rule on [-3, 3]. */
double exactDoubleWellDF(double temperature) {
    const int n = 60000;  // even
    const double a = -3, b = 3, h = (b - a) / n;
    double positive = 0, negative = 0;
    for (int i = 0; i <= n; i++) {
        const double x = a + i * h;
        const double weight = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
        const double p = weight * std::exp(-doubleWell(x) / (KB * temperature));
        (x > 0 ? positive : negative) += p;  // x = 0 exactly has measure zero
    }
    return -std::log(positive / negative);
}

/** Exact samples of the double well at T by rejection from a uniform on [-2.5, 2.5]. */
double sampleDoubleWell(double temperature, std::mt19937_64& random) {
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    double lowest = INFINITY;
    for (double x = -1.2; x < 1.2; x += 1e-4)
        lowest = std::min(lowest, doubleWell(x));
    while (true) {
        const double x = -2.5 + 5.0 * uniform(random);
        if (uniform(random) < std::exp(-(doubleWell(x) - lowest) / (KB * temperature)))
            return x;
    }
}

/** One run of `frames` frames of independent samples at every temperature: energy and x [F, K]. */
LadderRun doubleWellRun(const std::vector<double>& temperatures, int frames, std::mt19937_64& random) {
    const int K = (int) temperatures.size();
    at::Tensor x = at::zeros({frames, K}, at::kDouble), energy = at::zeros({frames, K}, at::kDouble);
    for (int f = 0; f < frames; f++)
        for (int k = 0; k < K; k++) {
            const double value = sampleDoubleWell(temperatures[k], random);
            x[f][k] = value;
            energy[f][k] = doubleWell(value);
        }
    return {energy, x};
}

/** A periodic potential V(a) = 4 cos 2a + 3 sin a (kJ/mol, a in rad): wells at -pi/2 (deep) and pi/2, barriers at 0 and pi. */
double torsionPotential(double a) { return 4 * std::cos(2 * a) + 3 * std::sin(a); }

/** Exact dF = -ln(P(a > 0) / P(a < 0)) at T by the midpoint rule on [-pi, pi) (spectrally exact for a periodic integrand). */
double exactTorsionDF(double temperature) {
    const int n = 20000;
    double positive = 0, negative = 0;
    for (int i = 0; i < n; i++) {
        const double a = -M_PI + (i + 0.5) * 2 * M_PI / n;
        (a > 0 ? positive : negative) += std::exp(-torsionPotential(a) / (KB * temperature));
    }
    return -std::log(positive / negative);
}

/** Exact samples of V + the periodic umbrella bias around `center`, by rejection from a uniform angle. */
class TorsionWindowSampler {
public:
    TorsionWindowSampler(double temperature, double center, double forceConstant)
        : kT(KB * temperature), center(center), forceConstant(forceConstant) {
        for (double a = -M_PI; a < M_PI; a += 1e-4)
            lowest = std::min(lowest, energy(a));
        lowest -= 1e-6;  // the grid's minimum may sit a little above the true one
    }
    double operator()(std::mt19937_64& random) const {
        std::uniform_real_distribution<double> uniform(0.0, 1.0);
        while (true) {
            const double a = -M_PI + 2 * M_PI * uniform(random);
            if (uniform(random) < std::exp(-(energy(a) - lowest) / kT))
                return a;
        }
    }

private:
    double energy(double a) const {
        // The bias written out here, independently of periodicUmbrellaBias.
        double d = std::fmod(std::abs(a - center), 2 * M_PI);
        d = std::min(d, 2 * M_PI - d);
        return torsionPotential(a) + 0.5 * forceConstant * d * d;
    }
    double kT, center, forceConstant, lowest = INFINITY;
};

} // namespace

TEST(MBAR, OneStateWeighsEverySampleEqually) {
    at::Tensor u = at::randn({1, 50}, at::kDouble);
    MBAR mbar(u, {50});
    EXPECT_EQ(mbar.getFreeEnergies().size(), 1u);
    EXPECT_EQ(mbar.getFreeEnergies()[0], 0.0);
    EXPECT_TRUE(at::allclose(mbar.logWeights(u[0]), at::full({50}, -std::log(50.0), at::kDouble)));
}

TEST(MBAR, HarmonicOscillatorsAtThreeTemperaturesGiveTheExactFreeEnergies) {
    // U = x^2 / 2 (kJ/mol): Z_k = sqrt(2 pi kB T_k), so f_k - f_0 = -ln(T_k / T_0) / 2.
    const std::vector<double> temperatures = {300, 400, 600};
    const int perState = 4000;
    std::mt19937_64 random(3);
    std::vector<double> energies;
    for (double t : temperatures) {
        std::normal_distribution<double> gauss(0.0, std::sqrt(KB * t));
        for (int i = 0; i < perState; i++) {
            const double x = gauss(random);
            energies.push_back(0.5 * x * x);
        }
    }
    const at::Tensor U = at::tensor(energies, at::kDouble);
    const std::vector<long long> counts(3, perState);
    MBAR mbar(reducedEnergiesAtTemperatures(U, temperatures), counts);
    EXPECT_LT(mbar.getIterations(), 50);
    // Tolerance: 4 bootstrap standard deviations of the estimate (resampling within each state).
    std::vector<std::vector<double>> copies(3);
    for (int c = 0; c < 40; c++) {
        std::vector<int64_t> index;
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < perState; i++)
                index.push_back(k * perState + (int64_t) (random() % perState));
        at::Tensor resampled = U.index_select(0, at::tensor(index, at::kLong));
        MBAR copy(reducedEnergiesAtTemperatures(resampled, temperatures), counts);
        for (int k = 0; k < 3; k++)
            copies[k].push_back(copy.getFreeEnergies()[k]);
    }
    for (int k = 1; k < 3; k++) {
        const at::Tensor values = at::tensor(copies[k], at::kDouble);
        const double sd = values.std().item<double>();
        const double exact = -0.5 * std::log(temperatures[k] / temperatures[0]);
        EXPECT_NEAR(mbar.getFreeEnergies()[k], exact, 4 * sd) << "state " << k;
        EXPECT_LT(sd, 0.05);  // 4000 samples per state pin f_k down to a few hundredths
    }
    // The weights at T_0 reproduce <U> = kB T_0 / 2 within 4 standard errors of a 4000-sample mean.
    const at::Tensor w = at::exp(mbar.logWeights(U / (KB * temperatures[0])));
    const double meanU = (w * U).sum().item<double>();
    const double sdU = KB * temperatures[0] / std::sqrt(2.0);  // sd of U for a 1D Gaussian
    EXPECT_NEAR(meanU, 0.5 * KB * temperatures[0], 4 * sdU / std::sqrt((double) perState));
}

TEST(MBAR, LadderErrorBarsCoverTheExactDoubleWellAnswer) {
    // 100 independent experiments, each two runs of 60 frames on a 300 ... 675 K
    // ladder; estimates at the lowest rung and at 375 K, which no rung samples.
    // An honest standard error puts the exact answer within 1 and 1.96 of them
    // in 68.3% and 95% of the experiments; the bounds below are those
    // probabilities +-3 binomial standard deviations for 100 experiments.
    const std::vector<double> temperatures = {300, 450, 675};
    const std::vector<double> targets = {300, 375};
    const int experiments = 100;
    std::mt19937_64 random(11);
    std::vector<int> withinOne(2, 0), withinTwo(2, 0);
    std::vector<double> meanZ(2, 0);
    for (int e = 0; e < experiments; e++) {
        std::vector<LadderRun> runs = {doubleWellRun(temperatures, 60, random), doubleWellRun(temperatures, 60, random)};
        LadderEstimates estimates = ladderFreeEnergyDifferences(runs, temperatures, targets, 10, 100, 1000 + e);
        ASSERT_EQ(estimates.perRun.size(), 2u);
        for (size_t t = 0; t < targets.size(); t++) {
            const Estimate& dF = estimates.pooled[t];
            ASSERT_TRUE(std::isfinite(dF.error));
            const double z = (dF.value - exactDoubleWellDF(targets[t])) / dF.error;
            withinOne[t] += std::abs(z) <= 1.0;
            withinTwo[t] += std::abs(z) <= 1.96;
            meanZ[t] += z / experiments;
        }
    }
    for (size_t t = 0; t < targets.size(); t++) {
        SCOPED_TRACE("target " + std::to_string(targets[t]) + " K");
        EXPECT_GE(withinOne[t], 54);
        EXPECT_LE(withinOne[t], 82);
        EXPECT_GE(withinTwo[t], 88);
        EXPECT_LT(std::abs(meanZ[t]), 0.35);  // no bias beyond 3.5 standard errors of a 100-sample mean of z
    }
    // The exact answers themselves differ enough between the targets for the check to mean something.
    EXPECT_GT(exactDoubleWellDF(300) - exactDoubleWellDF(375), 0.3);
}

TEST(MBAR, PeriodicUmbrellaBiasWrapsTheAngle) {
    // 0.5 k d^2 with d the shortest signed distance on the circle.
    const at::Tensor angles = at::tensor({M_PI - 0.1, -M_PI + 0.1, 0.3, -2.0}, at::kDouble);
    const at::Tensor bias = periodicUmbrellaBias(angles, -M_PI + 0.1, 10.0);
    const double expected[] = {0.5 * 10 * 0.04, 0.0, 0.5 * 10 * std::pow(M_PI - 0.2, 2), 0.5 * 10 * std::pow(M_PI - 2.1, 2)};
    for (int i = 0; i < 4; i++)
        EXPECT_NEAR(bias[i].item<double>(), expected[i], 1e-12) << i;
}

TEST(MBAR, UmbrellaErrorBarsCoverTheExactTorsionAnswer) {
    // 100 independent experiments, each two runs of 30 exact samples in 6
    // windows on a periodic potential whose barriers (4.4 kT above the deep
    // well) and 2.4 kT between the wells make P(a > 0) small; the bounds are
    // the coverage probabilities +-3 binomial standard deviations, as above.
    const double temperature = 300, forceConstant = 10;  // K, kJ/mol/rad^2: neighbouring windows overlap
    std::vector<double> centers;
    for (int k = 0; k < 6; k++)
        centers.push_back(-M_PI + k * M_PI / 3);
    const double exact = exactTorsionDF(temperature);
    const int experiments = 100, frames = 30;
    std::vector<TorsionWindowSampler> windows;
    for (double center : centers)
        windows.emplace_back(temperature, center, forceConstant);
    std::mt19937_64 random(17);
    int withinOne = 0, withinTwo = 0;
    double meanZ = 0;
    for (int e = 0; e < experiments; e++) {
        std::vector<LadderRun> runs;
        for (int r = 0; r < 2; r++) {
            std::vector<double> values;
            for (int f = 0; f < frames; f++)
                for (int k = 0; k < 6; k++)
                    values.push_back(windows[k](random));
            const at::Tensor angle = at::tensor(values, at::kDouble).reshape({frames, 6});
            runs.push_back({angle, angle});
        }
        const LadderEstimates estimates = umbrellaFreeEnergyDifferences(runs, centers, forceConstant, temperature, 10,
                                                                         100, 2000 + e);
        ASSERT_EQ(estimates.pooled.size(), 1u);
        const double z = (estimates.pooled[0].value - exact) / estimates.pooled[0].error;
        ASSERT_TRUE(std::isfinite(z));
        withinOne += std::abs(z) <= 1.0;
        withinTwo += std::abs(z) <= 1.96;
        meanZ += z / experiments;
    }
    EXPECT_GE(withinOne, 54);
    EXPECT_LE(withinOne, 82);
    EXPECT_GE(withinTwo, 88);
    EXPECT_LT(std::abs(meanZ), 0.35);
    EXPECT_GT(exact, 1.5);  // the x > 0 well is rare enough for the check to mean something
}

TEST(MBAR, BadInputIsRefused) {
    at::Tensor u = at::zeros({2, 10}, at::kDouble);
    expectMessage([&] { MBAR(u, {5, 4}); }, "sum to 9");
    expectMessage([&] { MBAR(u, {10, 0}); }, "at least one sample");
    expectMessage([&] { MBAR(u, {10}); }, "one count per state");
    at::Tensor bad = u.clone();
    bad[1][3] = NAN;
    expectMessage([&] { MBAR(bad, {5, 5}); }, "finite");
    expectMessage([&] { reducedEnergiesAtTemperatures(at::zeros({3}, at::kDouble), {300, -1}); }, "positive");
    LadderRun run{at::zeros({30, 2}, at::kDouble), at::zeros({30, 2}, at::kDouble)};
    expectMessage([&] { ladderFreeEnergyDifferences({run}, {300, 400, 500}, {300}); }, "[frames, 3]");
    expectMessage([&] { ladderFreeEnergyDifferences({run}, {300, 400}, {0}); }, "positive");
    expectMessage([&] { ladderFreeEnergyDifferences({run}, {300, 400}, {300}, 40); }, "fewer than 40 blocks");
    expectMessage([&] { umbrellaFreeEnergyDifferences({run}, {0, 1, 2}, 10, 300); }, "[frames, 3]");
    expectMessage([&] { umbrellaFreeEnergyDifferences({run}, {0, 1}, -1, 300); }, "force constant");
    expectMessage([&] { umbrellaFreeEnergyDifferences({run}, {0, 1}, 10, 0); }, "temperature must be positive");
    expectMessage([&] { umbrellaFreeEnergyDifferences({run}, {}, 10, 300); }, "at least one window");
    expectMessage([&] { pooledFreeEnergyDifferences({run}, 2, 1, [](const at::Tensor& s) { return s.reshape({1, -1}); }); },
                  "must be [3, samples]");
}
