#include "openmmbg/tools/Metrics.h"

#include "openmmbg/internal/Geometry.h"
#include "openmmbg/internal/TensorChecks.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

using OpenMM::OpenMMException;

namespace OpenMMBG {

double kishEffectiveSampleSize(const at::Tensor& logWeights, double clipFraction) {
    std::vector<double> lw = toDoubleVector(logWeights);
    const size_t n = lw.size();
    if (n == 0)
        return 0.0;
    std::vector<double> finite;
    for (double v : lw)
        if (std::isfinite(v))
            finite.push_back(v);
    if (finite.empty())
        return 0.0;
    double top = *std::max_element(finite.begin(), finite.end());
    if (clipFraction > 0) {
        // Lower the largest weights to the (1 - clipFraction) quantile.
        std::vector<double> sorted = finite;
        std::sort(sorted.begin(), sorted.end());
        size_t index = (size_t) std::floor((1.0 - clipFraction) * (double) (sorted.size() - 1));
        top = sorted[index];
    }
    double sum = 0, sumSquares = 0;
    for (double v : finite) {
        double w = std::exp(std::min(v, top) - top);
        sum += w;
        sumSquares += w * w;
    }
    return sum * sum / sumSquares / (double) n;
}

double klEstimateFromLogWeights(const at::Tensor& logWeights) {
    std::vector<double> lw = toDoubleVector(logWeights);
    std::vector<double> finite;
    for (double v : lw)
        if (std::isfinite(v))
            finite.push_back(v);
    if (finite.empty())
        return std::numeric_limits<double>::infinity();
    double top = *std::max_element(finite.begin(), finite.end()), sum = 0, mean = 0;
    for (double v : finite) {
        sum += std::exp(v - top);
        mean += v;
    }
    mean /= (double) finite.size();
    return top + std::log(sum / (double) finite.size()) - mean;
}

BackboneDihedrals BackboneDihedrals::find(const PdbStructure& structure, const std::string& residueName) {
    int residue = -1;
    for (const PdbAtom& atom : structure.atoms)
        if (atom.residueName == residueName) {
            residue = atom.residueNumber;
            break;
        }
    if (residue < 0)
        throw OpenMMException("BackboneDihedrals: no residue named " + residueName);
    auto atomOf = [&](int number, const std::string& name) {
        for (size_t i = 0; i < structure.atoms.size(); i++)
            if (structure.atoms[i].residueNumber == number && structure.atoms[i].name == name)
                return (int) i;
        throw OpenMMException("BackboneDihedrals: residue " + std::to_string(number) + " has no atom " + name);
    };
    BackboneDihedrals d;
    d.phi = {atomOf(residue - 1, "C"), atomOf(residue, "N"), atomOf(residue, "CA"), atomOf(residue, "C")};
    d.psi = {atomOf(residue, "N"), atomOf(residue, "CA"), atomOf(residue, "C"), atomOf(residue + 1, "N")};
    return d;
}

at::Tensor dihedralAngles(const at::Tensor& x, const std::array<int, 4>& atoms) {
    return geometry::dihedral(x.select(1, atoms[0]), x.select(1, atoms[1]), x.select(1, atoms[2]),
                              x.select(1, atoms[3]));
}

at::Tensor ramachandranHistogram(const at::Tensor& phi, const at::Tensor& psi, int bins, const at::Tensor& weights) {
    auto binOf = [&](const at::Tensor& angle) {
        at::Tensor wrapped = at::remainder(angle.detach().to(at::kCPU).to(at::kDouble) + M_PI, 2 * M_PI);
        return at::floor(wrapped / (2 * M_PI) * bins).to(at::kLong).clamp(0, bins - 1);
    };
    at::Tensor index = binOf(phi) * bins + binOf(psi);
    at::Tensor w = weights.defined() ? weights.detach().to(at::kCPU).to(at::kDouble) : at::ones({index.numel()}, at::kDouble);
    w = at::where(at::isfinite(w), w, at::zeros_like(w));
    at::Tensor histogram = at::zeros({bins * bins}, at::kDouble).index_add_(0, index, w);
    double total = histogram.sum().item<double>();
    if (total > 0)
        histogram /= total;
    return histogram.reshape({bins, bins});
}

double histogramKL(const at::Tensor& reference, const at::Tensor& model, double eps) {
    at::Tensor p = reference.to(at::kDouble) + eps, q = model.to(at::kDouble) + eps;
    p = p / p.sum();
    q = q / q.sum();
    return (p * at::log(p / q)).sum().item<double>();
}

namespace {

/** dF = -ln(f / (1 - f)) and its error from the error of f (+-inf, inf at f = 0 or 1). */
Estimate freeEnergyOfFraction(double f, double fractionError) {
    if (f <= 0 || f >= 1)
        return {f <= 0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity(),
                std::numeric_limits<double>::infinity()};
    // d(dF)/df = -1 / (f (1 - f)).
    return {-std::log(f / (1 - f)), fractionError / (f * (1 - f))};
}

/** exp(logWeights - max) with non-finite entries as 0; ones where logWeights is undefined. */
at::Tensor relativeWeights(const at::Tensor& logWeights, const at::Tensor& like) {
    if (!logWeights.defined())
        return at::ones_like(like, at::kDouble);
    const at::Tensor finite = at::isfinite(logWeights);
    if (!finite.any().item<bool>())
        return at::zeros_like(logWeights, at::kDouble);
    const double top = logWeights.masked_select(finite).max().item<double>();
    return at::where(finite, at::exp(logWeights.to(at::kDouble) - top), at::zeros_like(logWeights, at::kDouble));
}

} // namespace

namespace {

/** The weighted fraction of phi > 0 with its delta-method error; value NaN if no sample has weight. */
Estimate weightedPositiveFraction(const at::Tensor& phi, const at::Tensor& logWeights) {
    const at::Tensor w = relativeWeights(logWeights, phi);
    const double total = w.sum().item<double>();
    if (!(total > 0))
        return {NAN, INFINITY};
    const at::Tensor inside = (phi > 0).to(at::kDouble);
    const double f = (w * inside).sum().item<double>() / total;
    // The self-normalised estimate's delta-method variance. Unlike
    // f (1 - f) / n_eff (Kish), it sees where the large weights lie: a flow
    // that covers one side thinly gets that side's few heavy weights, and
    // then the Kish error is several times too small (TestMetrics).
    const double variance = (w * w * (inside - f).square()).sum().item<double>() / (total * total);
    return {f, std::sqrt(variance)};
}

} // namespace

Estimate weightedPhiFreeEnergyDifference(const at::Tensor& phi, const at::Tensor& logWeights) {
    const Estimate fraction = weightedPositiveFraction(phi, logWeights);
    if (std::isnan(fraction.value))
        return {NAN, INFINITY};
    return freeEnergyOfFraction(fraction.value, fraction.error);
}

double ramachandranKL(const at::Tensor& referencePhi, const at::Tensor& referencePsi, const at::Tensor& phi,
                      const at::Tensor& psi, const at::Tensor& logWeights) {
    const at::Tensor weights = logWeights.defined() ? relativeWeights(logWeights, phi) : at::Tensor();
    return histogramKL(ramachandranHistogram(referencePhi, referencePsi, 64), ramachandranHistogram(phi, psi, 64, weights),
                       1e-10);
}

Estimate blockAverage(const at::Tensor& series, int blocks) {
    std::vector<double> values = toDoubleVector(series);
    const size_t n = values.size();
    if (blocks < 2 || n < (size_t) blocks)
        throw OpenMMException("blockAverage: need at least " + std::to_string(std::max(blocks, 2)) + " values");
    const size_t length = n / blocks;
    std::vector<double> means(blocks, 0.0);
    for (int b = 0; b < blocks; b++) {
        for (size_t i = 0; i < length; i++)
            means[b] += values[b * length + i];
        means[b] /= (double) length;
    }
    double mean = 0, variance = 0;
    for (double m : means)
        mean += m;
    mean /= blocks;
    for (double m : means)
        variance += (m - mean) * (m - mean);
    variance /= (blocks - 1);
    return {mean, std::sqrt(variance / blocks)};
}

namespace {

/** The fraction of a time series of phi at phi > 0, block-averaged. */
Estimate positiveFraction(const at::Tensor& phi, int blocks) {
    return blockAverage((phi.detach().to(at::kCPU) > 0).to(at::kDouble), blocks);
}

} // namespace

Estimate phiFreeEnergyDifference(const at::Tensor& phi, int blocks) {
    const Estimate fraction = positiveFraction(phi, blocks);
    return freeEnergyOfFraction(fraction.value, fraction.error);
}

namespace {

/** The regularized upper incomplete gamma function Q(a, x), a > 0. */
double regularizedGammaQ(double a, double x) {
    if (x <= 0)
        return 1.0;
    if (!std::isfinite(x))
        return 0.0;
    const double prefactor = std::exp(-x + a * std::log(x) - std::lgamma(a));
    if (x < a + 1) {
        // P(a, x) = prefactor * sum_n x^n / (a (a + 1) ... (a + n)).
        double term = 1.0 / a, sum = term;
        for (int n = 1; n < 10000 && term > 1e-17 * sum; n++) {
            term *= x / (a + n);
            sum += term;
        }
        return std::max(0.0, 1.0 - prefactor * sum);
    }
    // Q(a, x) = prefactor / (x + 1 - a - 1 (1 - a) / (x + 3 - a - 2 (2 - a) / (x + 5 - a - ...))),
    // evaluated from the front (modified Lentz).
    const double tiny = 1e-300;
    double b = x + 1 - a, c = 1 / tiny, d = 1 / b, fraction = d;
    for (int n = 1; n < 10000; n++) {
        const double numerator = -n * (n - a);
        b += 2;
        d = numerator * d + b;
        c = b + numerator / c;
        d = 1 / (std::abs(d) < tiny ? tiny : d);
        c = std::abs(c) < tiny ? tiny : c;
        fraction *= d * c;
        if (std::abs(d * c - 1) < 1e-15)
            break;
    }
    return prefactor * fraction;
}

/** P(0 < T < t) for Student's t with `dof` degrees of freedom, by Simpson's rule in u = atan(x). */
double studentTCentralMass(double t, int dof) {
    const double nu = dof;
    const double logNorm = std::lgamma((nu + 1) / 2) - std::lgamma(nu / 2) - 0.5 * std::log(nu * M_PI);
    // density(tan u) / cos(u)^2: bounded on [0, pi/2).
    auto integrand = [&](double u) {
        const double x = std::tan(u), c = std::cos(u);
        return std::exp(logNorm - (nu + 1) / 2 * std::log1p(x * x / nu)) / (c * c);
    };
    const int intervals = 2000;
    const double end = std::atan(t), h = end / intervals;
    double sum = integrand(0) + integrand(end);
    for (int i = 1; i < intervals; i++)
        sum += (i % 2 == 1 ? 4 : 2) * integrand(i * h);
    return sum * h / 3;
}

} // namespace

double studentTQuantile(double p, int dof) {
    if (dof < 1 || !(p >= 0.5 && p < 1))
        throw OpenMMException("studentTQuantile: need dof >= 1 and 0.5 <= p < 1");
    double low = 0, high = 1;
    while (0.5 + studentTCentralMass(high, dof) < p)
        high *= 2;
    for (int i = 0; i < 100 && high - low > 1e-12 * high; i++) {
        const double middle = 0.5 * (low + high);
        (0.5 + studentTCentralMass(middle, dof) < p ? low : high) = middle;
    }
    return 0.5 * (low + high);
}

double chiSquareUpperTail(double x, int dof) {
    if (dof < 1)
        throw OpenMMException("chiSquareUpperTail: need dof >= 1");
    return regularizedGammaQ(dof / 2.0, x / 2);
}

namespace {

/**
 * The estimate of independent chains or sample sets from each one's fraction
 * of phi > 0 and its own error: the mean fraction with the Student-t error of
 * their spread, and the chi-square agreement of the spread with their errors.
 */
ChainsEstimate combineIndependentFractions(const std::vector<Estimate>& fractions) {
    const int chains = (int) fractions.size();
    ChainsEstimate result;
    double mean = 0;
    for (const Estimate& f : fractions) {
        result.perChain.push_back(freeEnergyOfFraction(f.value, 0).value);
        mean += f.value / chains;
    }
    double spread = 0, chiSquare = 0;
    for (const Estimate& f : fractions) {
        const double deviation = f.value - mean;
        spread += deviation * deviation / (chains - 1);
        if (deviation != 0)
            chiSquare += f.error > 0 ? deviation * deviation / (f.error * f.error)
                                     : std::numeric_limits<double>::infinity();
    }
    // 0.8413: the upper end of the central 68.27% (one standard deviation of a normal).
    const double halfWidth = studentTQuantile(0.841345, chains - 1) * std::sqrt(spread / chains);
    result.estimate = freeEnergyOfFraction(mean, halfWidth);
    result.agreement = chiSquareUpperTail(chiSquare, chains - 1);
    return result;
}

} // namespace

ChainsEstimate independentChainsPhiFreeEnergyDifference(const std::vector<at::Tensor>& phi, int blocks) {
    if (phi.size() < 2)
        throw OpenMMException("independentChainsPhiFreeEnergyDifference: need at least 2 chains, got "
                              + std::to_string(phi.size()));
    std::vector<Estimate> fractions;
    for (const at::Tensor& series : phi)
        fractions.push_back(positiveFraction(series, blocks));
    return combineIndependentFractions(fractions);
}

ChainsEstimate independentSetsPhiFreeEnergyDifference(const std::vector<at::Tensor>& phi,
                                                      const std::vector<at::Tensor>& logWeights) {
    if (phi.size() < 2 || logWeights.size() != phi.size())
        throw OpenMMException("independentSetsPhiFreeEnergyDifference: need at least 2 sets, each with one log-weight "
                              "per sample");
    std::vector<Estimate> fractions;
    for (size_t k = 0; k < phi.size(); k++) {
        if (!logWeights[k].defined() || logWeights[k].numel() != phi[k].numel())
            throw OpenMMException("independentSetsPhiFreeEnergyDifference: set " + std::to_string(k)
                                  + " needs one log-weight per sample");
        fractions.push_back(weightedPositiveFraction(phi[k], logWeights[k]));
        if (std::isnan(fractions.back().value)) {
            // A set without weight estimates nothing, as weightedPhiFreeEnergyDifference says for one set.
            ChainsEstimate none;
            none.estimate = {NAN, INFINITY};
            none.perChain.assign(phi.size(), NAN);
            none.agreement = NAN;
            return none;
        }
    }
    return combineIndependentFractions(fractions);
}

double integratedAutocorrelationTime(const at::Tensor& series) {
    std::vector<double> x = toDoubleVector(series);
    const size_t n = x.size();
    if (n < 4)
        return 1.0;
    double mean = 0;
    for (double v : x)
        mean += v;
    mean /= (double) n;
    double c0 = 0;
    for (double v : x)
        c0 += (v - mean) * (v - mean);
    c0 /= (double) n;
    if (c0 <= 0)
        return 1.0;
    double tau = 1.0;
    for (size_t lag = 1; lag < n / 2; lag++) {
        double c = 0;
        for (size_t i = 0; i + lag < n; i++)
            c += (x[i] - mean) * (x[i + lag] - mean);
        c /= (double) n * c0;
        tau += 2 * c;
        if ((double) lag >= 5 * tau)  // Sokal's window
            break;
    }
    return std::max(tau, 1.0);
}

} // namespace OpenMMBG
