#include "openmmbg/tools/ToySystems.h"

#include "openmmbg/OpenMMEnergy.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <openmm/CustomCompoundBondForce.h>
#include <openmm/CustomExternalForce.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <sstream>

namespace OpenMMBG {

std::unique_ptr<OpenMM::System> DoubleWell::createSystem(double mass) const {
    auto system = std::make_unique<OpenMM::System>();
    system->addParticle(mass);
    auto* force = new OpenMM::CustomExternalForce("unit*(a/4*x^4 - b/2*x^2 + c*x + d/2*y^2 + d/2*z^2)");
    force->addGlobalParameter("unit", OpenMMEnergy::BOLTZMANN * unitTemperature);
    force->addGlobalParameter("a", a);
    force->addGlobalParameter("b", b);
    force->addGlobalParameter("c", c);
    force->addGlobalParameter("d", d);
    force->addParticle(0);
    system->addForce(force);
    return system;
}

double DoubleWell::xEnergy(double x) const {
    return a / 4 * x * x * x * x - b / 2 * x * x + c * x;
}

std::vector<double> DoubleWell::marginalBinProbabilities(double temperature, const std::vector<double>& edges) const {
    if (!(temperature > 0))
        throw OpenMM::OpenMMException("DoubleWell: the temperature must be positive");
    const double scale = unitTemperature / temperature;
    const double limit = 8.0;  // exp(-u) is negligible beyond |x| = 8 for any sensible parameters
    const int intervals = 400000;
    const double h = 2 * limit / intervals;
    // Cumulative integral of exp(-u(x)/kT) on the grid (Simpson on pairs of intervals).
    auto density = [&](double x) { return std::exp(-scale * xEnergy(x)); };
    std::vector<double> cumulative(intervals / 2 + 1, 0.0);
    for (int i = 0; i < intervals / 2; i++) {
        double x0 = -limit + 2 * i * h;
        cumulative[i + 1] = cumulative[i] + h / 3 * (density(x0) + 4 * density(x0 + h) + density(x0 + 2 * h));
    }
    auto cdf = [&](double x) {
        double position = (std::min(std::max(x, -limit), limit) + limit) / (2 * h);
        int i = std::min((int) position, intervals / 2 - 1);
        double f = position - i;
        return cumulative[i] + f * (cumulative[i + 1] - cumulative[i]);
    };
    const double total = cumulative.back();
    std::vector<double> probabilities;
    for (size_t i = 0; i + 1 < edges.size(); i++)
        probabilities.push_back((cdf(edges[i + 1]) - cdf(edges[i])) / total);
    return probabilities;
}

double DoubleWell::entropy(double temperature) const {
    const int bins = 20000;
    std::vector<double> edges(bins + 1);
    for (int i = 0; i <= bins; i++)
        edges[i] = -8.0 + 16.0 * i / bins;
    const std::vector<double> p = marginalBinProbabilities(temperature, edges);
    const double width = 16.0 / bins;
    double hx = 0;
    for (double pi : p)
        if (pi > 0)
            hx -= pi * std::log(pi / width);
    // y is Gaussian with variance T / (T_unit d).
    const double variance = temperature / (unitTemperature * d);
    return hx + 0.5 * std::log(2 * M_PI * M_E * variance);
}

double DoubleWell::freeEnergyDifference(double temperature) const {
    std::vector<double> p = marginalBinProbabilities(temperature, {-8.0, 0.0, 8.0});
    return -std::log(p[1] / p[0]);
}

at::Tensor DoubleWell::sampleExact(int64_t count, double temperature, at::Generator& generator) const {
    // The CDF on a grid of 8001 edges over [-8, 8], inverted by linear interpolation.
    const int points = 8001;
    std::vector<double> edges(points);
    for (int i = 0; i < points; i++)
        edges[i] = -8.0 + 16.0 * i / (points - 1);
    std::vector<double> probabilities = marginalBinProbabilities(temperature, edges);
    std::vector<double> cdf(points, 0.0);
    for (int i = 1; i < points; i++)
        cdf[i] = cdf[i - 1] + probabilities[i - 1];
    at::Tensor uniform = at::rand({count}, generator, at::kDouble) * cdf.back();
    at::Tensor grid = at::tensor(cdf, at::kDouble), x = at::tensor(edges, at::kDouble);
    at::Tensor upper = at::searchsorted(grid, uniform).clamp(1, points - 1);
    at::Tensor lower = upper - 1;
    at::Tensor c0 = grid.index_select(0, lower), c1 = grid.index_select(0, upper);
    at::Tensor fraction = ((uniform - c0) / (c1 - c0).clamp_min(1e-300)).clamp(0, 1);
    at::Tensor xs = x.index_select(0, lower) + fraction * (x.index_select(0, upper) - x.index_select(0, lower));
    // y: exp(-(T_u/T) d/2 y^2), a Gaussian of variance T / (T_u d).
    at::Tensor ys = at::randn({count}, generator, at::kDouble) * std::sqrt(temperature / (unitTemperature * d));
    return at::stack({xs, ys, at::zeros_like(xs)}, 1).unsqueeze(1);
}

MultiDoubleWell MultiDoubleWell::random(int dim, uint64_t seed) {
    if (dim < 1)
        throw OpenMM::OpenMMException("MultiDoubleWell: dim must be positive");
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    MultiDoubleWell well;
    well.dim = dim;
    well.linear = at::rand({dim}, generator, at::kDouble) - 0.5;
    // A random correlation matrix: M = B B^T + I, scaled to unit diagonal.
    at::Tensor b = at::randn({dim, dim}, generator, at::kDouble) / std::sqrt((double) dim);
    at::Tensor m = b.matmul(b.t()) + at::eye(dim, at::kDouble);
    at::Tensor inverseSqrtDiagonal = m.diagonal().rsqrt();
    well.mixing = inverseSqrtDiagonal.unsqueeze(1) * m * inverseSqrtDiagonal.unsqueeze(0);
    return well;
}

std::vector<int> MultiDoubleWell::coordinateIndices() const {
    std::vector<int> indices(dim);
    for (int i = 0; i < dim; i++)
        indices[i] = i;
    return indices;
}

std::unique_ptr<OpenMM::System> MultiDoubleWell::createSystem() const {
    const int particles = getNumParticles();
    auto system = std::make_unique<OpenMM::System>();
    static const char* axes[] = {"x", "y", "z"};
    auto coordinate = [&](int index) { return std::string(axes[index % 3]) + std::to_string(index / 3 + 1); };
    std::ostringstream expression;
    expression.precision(17);
    expression << "unit*(";
    for (int i = 0; i < dim; i++)
        expression << (i ? " + " : "") << linear[i].item<double>() << "*w" << i << " + " << quadratic << "*w" << i
                   << "^2 + " << quartic << "*w" << i << "^4";
    // Coordinates beyond dim feel a unit harmonic well.
    for (int k = dim; k < 3 * particles; k++)
        expression << " + 0.5*" << coordinate(k) << "^2";
    expression << ")";
    for (int i = 0; i < dim; i++) {
        expression << "; w" << i << " = ";
        for (int j = 0; j < dim; j++)
            expression << (j ? " + " : "") << "(" << mixing[i][j].item<double>() << ")*" << coordinate(j);
    }
    auto* force = new OpenMM::CustomCompoundBondForce(particles, expression.str());
    force->addGlobalParameter("unit", OpenMMEnergy::BOLTZMANN * unitTemperature);
    std::vector<int> all(particles);
    for (int i = 0; i < particles; i++) {
        system->addParticle(1.0);
        all[i] = i;
    }
    force->addBond(all);
    system->addForce(force);
    return system;
}

at::Tensor MultiDoubleWell::energy(const at::Tensor& q) const {
    at::Tensor w = q.matmul(mixing.t());
    return (linear * w + quadratic * w.square() + quartic * w.square().square()).sum(1);
}

} // namespace OpenMMBG
