#include "SamplerChecks.h"

#include "openmmbg/CartesianCoordinates.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/TSFFlow.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <openmm/Context.h>
#include <openmm/CustomExternalForce.h>
#include <openmm/Platform.h>
#include <openmm/State.h>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace OpenMMBG {
namespace testing {

namespace {

size_t binOf(const std::vector<double>& edges, double x) {
    size_t b = std::upper_bound(edges.begin(), edges.end(), x) - edges.begin();
    return std::min(std::max(b, (size_t) 1), edges.size() - 1) - 1;
}

/** The quantile edges with every bin of exact probability under 2% merged into a neighbour. */
std::vector<double> mergedEdges(const DoubleWell& well, double temperature) {
    std::vector<double> edges = exactQuantileEdges(well, temperature, 10);
    std::vector<double> probability = well.marginalBinProbabilities(temperature, edges);
    for (size_t b = 0; b < probability.size() && edges.size() > 3;) {
        if (probability[b] < 0.02) {
            edges.erase(edges.begin() + (b + 1 < probability.size() ? b + 1 : b));
            probability = well.marginalBinProbabilities(temperature, edges);
            b = 0;
        } else {
            b++;
        }
    }
    return edges;
}

} // namespace

std::vector<double> exactQuantileEdges(const DoubleWell& well, double temperature, int bins) {
    const int points = 16001;
    std::vector<double> grid(points);
    for (int i = 0; i < points; i++)
        grid[i] = -8.0 + 16.0 * i / (points - 1);
    std::vector<double> p = well.marginalBinProbabilities(temperature, grid);
    std::vector<double> edges = {-8.0};
    double cumulative = 0;
    int next = 1;
    for (int i = 0; i + 1 < points && next < bins; i++) {
        cumulative += p[i];
        if (cumulative >= (double) next / bins) {
            edges.push_back(grid[i + 1]);
            next++;
        }
    }
    edges.push_back(0.0);
    edges.push_back(8.0);
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end(), [](double a, double b) { return std::abs(a - b) < 1e-9; }),
                edges.end());
    return edges;
}

StratifiedStarts stratifiedStarts(const DoubleWell& well, double temperature, int chainsPerStratum, uint64_t seed) {
    std::vector<double> edges = exactQuantileEdges(well, temperature, 10);
    StratifiedStarts starts;
    starts.stratumProbability = well.marginalBinProbabilities(temperature, edges);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    at::Tensor pool = well.sampleExact(400000, temperature, generator);
    std::vector<int> taken(edges.size() - 1, 0);
    std::vector<at::Tensor> chosen;
    for (int64_t i = 0; i < pool.size(0); i++) {
        size_t s = binOf(edges, pool[i][0][0].item<double>());
        if (taken[s] < chainsPerStratum) {
            taken[s]++;
            chosen.push_back(pool[i]);
            starts.stratum.push_back((int) s);
        }
        if ((int) chosen.size() == chainsPerStratum * (int) taken.size())
            break;
    }
    starts.positions = at::stack(chosen);
    return starts;
}

StationarityCheck checkStationarity(const std::vector<std::vector<double>>& chains, const StratifiedStarts& starts,
                                    const DoubleWell& well, double temperature) {
    std::vector<double> edges = mergedEdges(well, temperature);
    StationarityCheck check;
    check.expected = well.marginalBinProbabilities(temperature, edges);
    const size_t numBins = check.expected.size(), numStrata = starts.stratumProbability.size();
    // frequency[s][k][b]: chains grouped by stratum.
    std::vector<std::vector<std::vector<double>>> frequency(numStrata);
    for (size_t k = 0; k < chains.size(); k++) {
        std::vector<double> f(numBins, 0.0);
        for (double x : chains[k])
            f[binOf(edges, x)] += 1.0 / chains[k].size();
        frequency[starts.stratum[k]].push_back(f);
    }
    for (size_t b = 0; b < numBins; b++) {
        double estimate = 0, variance = 0;
        for (size_t s = 0; s < numStrata; s++) {
            const auto& group = frequency[s];
            const double m = (double) group.size();
            double mean = 0, var = 0;
            for (const auto& f : group)
                mean += f[b] / m;
            for (const auto& f : group)
                var += (f[b] - mean) * (f[b] - mean) / (m - 1);
            estimate += starts.stratumProbability[s] * mean;
            variance += starts.stratumProbability[s] * starts.stratumProbability[s] * var / m;
        }
        double error = std::sqrt(variance);
        double z = error > 0 ? (estimate - check.expected[b]) / error : 1e9;
        check.observed.push_back(estimate);
        check.z.push_back(z);
        check.maxAbsZ = std::max(check.maxAbsZ, std::abs(z));
        check.meanSquaredZ += z * z / numBins;
    }
    return check;
}

StationarityCheck checkBlockAverages(const std::vector<double>& chain, const DoubleWell& well, double temperature,
                                     int blocks) {
    std::vector<double> edges = mergedEdges(well, temperature);
    StationarityCheck check;
    check.expected = well.marginalBinProbabilities(temperature, edges);
    const size_t numBins = check.expected.size(), length = chain.size() / blocks;
    std::vector<std::vector<double>> frequency(blocks, std::vector<double>(numBins, 0.0));
    for (int k = 0; k < blocks; k++)
        for (size_t i = 0; i < length; i++)
            frequency[k][binOf(edges, chain[k * length + i])] += 1.0 / length;
    for (size_t b = 0; b < numBins; b++) {
        double mean = 0, variance = 0;
        for (int k = 0; k < blocks; k++)
            mean += frequency[k][b] / blocks;
        for (int k = 0; k < blocks; k++)
            variance += (frequency[k][b] - mean) * (frequency[k][b] - mean) / (blocks - 1);
        double error = std::sqrt(variance / blocks);
        double z = error > 0 ? (mean - check.expected[b]) / error : 1e9;
        check.observed.push_back(mean);
        check.z.push_back(z);
        check.maxAbsZ = std::max(check.maxAbsZ, std::abs(z));
        check.meanSquaredZ += z * z / numBins;
    }
    return check;
}

int countCrossings(const std::vector<double>& chain) {
    int crossings = 0;
    for (size_t i = 1; i < chain.size(); i++)
        crossings += (chain[i] > 0) != (chain[i - 1] > 0);
    return crossings;
}

at::Tensor exactDoubleWellData() {
    DoubleWell well;
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(11);
    return well.sampleExact(10000, well.unitTemperature, generator);
}

FlowModel untrainedDoubleWellFlow(const OpenMM::System& system) {
    FlowConfig config;
    config.numBlocks = 2;
    config.hiddenLayers = 2;
    config.hiddenWidth = 16;
    config.outputInitScale = 1.0;  // random weights: non-zero log-determinants everywhere
    config.seed = 3;
    return FlowModel::createCartesian(system, {0, 1}, exactDoubleWellData(), "realnvp", config, DoubleWell().unitTemperature);
}

FlowModel trainedDoubleWellFlow(const OpenMM::System& system, const std::string& type) {
    at::Tensor data = exactDoubleWellData();
    const double temperature = DoubleWell().unitTemperature;
    FlowConfig config;
    config.numBlocks = 4;
    config.hiddenLayers = 2;
    config.hiddenWidth = 64;
    FlowModel model = FlowModel::createCartesian(system, {0, 1}, data, type, config, temperature);
    TrainerOptions options;
    options.numThreads = 1;
    options.logInterval = 1000;
    FlowTrainer trainer(model, options);
    trainer.setData(data, temperature);
    TrainingStage stage;
    stage.steps = 1000;
    trainer.train(stage);
    return model;
}

namespace {

double xOf(OpenMM::Context& context) {
    return context.getState(OpenMM::State::Positions).getPositions()[0][0];
}

} // namespace

void expectStationaryLatentMetropolis(const FlowModel& model, double sigma, double independence, int seed,
                                      const std::string& platform, const PlatformProperties& properties) {
    DoubleWell well;
    auto system = well.createSystem();
    for (double temperature : {well.unitTemperature, 2 * well.unitTemperature}) {
        StratifiedStarts starts = stratifiedStarts(well, temperature, 6, seed + 1000);
        LatentMetropolisIntegrator integrator(model, temperature, sigma, independence);
        integrator.setRandomNumberSeed(seed);
        OpenMM::Context context(*system, integrator, OpenMM::Platform::getPlatformByName(platform), properties);
        std::vector<std::vector<double>> chains(starts.positions.size(0));
        for (size_t k = 0; k < chains.size(); k++) {
            at::Tensor start = starts.positions[k][0];
            context.setPositions({OpenMM::Vec3(start[0].item<double>(), start[1].item<double>(), 0.0)});
            for (int t = 0; t < 300; t++) {
                integrator.step(1);
                chains[k].push_back(xOf(context));
            }
        }
        StationarityCheck check = checkStationarity(chains, starts, well, temperature);
        // Moves must actually happen, or the check proves nothing.
        EXPECT_GT(integrator.getAcceptanceRate(), 0.02) << "T " << temperature << " on " << platform;
        EXPECT_LT(check.maxAbsZ, 4.5) << "T " << temperature << " on " << platform << "\n" << check.describe();
        EXPECT_LT(check.meanSquaredZ, 2.5) << "T " << temperature << " on " << platform << "\n" << check.describe();
    }
}

void expectDoubleWellFreeEnergy(const FlowModel& model, double temperature, int seed, const std::string& platform,
                                const PlatformProperties& properties) {
    DoubleWell well;
    auto system = well.createSystem();
    LatentMetropolisIntegrator integrator(model, temperature, 0.5, 0.5);
    integrator.setRandomNumberSeed(seed);
    OpenMM::Context context(*system, integrator, OpenMM::Platform::getPlatformByName(platform), properties);
    context.setPositions({OpenMM::Vec3(-2.4, 0.0, 0.0)});
    integrator.step(200);
    std::vector<double> xs;
    for (int i = 0; i < 20000; i++) {
        integrator.step(1);
        xs.push_back(xOf(context));
    }
    Estimate dF = phiFreeEnergyDifference(at::tensor(xs, at::kDouble), 20);
    const double exact = well.freeEnergyDifference(temperature);
    const std::string label = model.getFlow().getTypeName() + " at " + std::to_string(temperature) + " K on " + platform;
    // Enough crossings that 20 blocks each see some: the error bar means something.
    EXPECT_GE(countCrossings(xs), 60) << label;
    EXPECT_NEAR(dF.value, exact, 4 * dF.error) << label << ", error " << dF.error;
    EXPECT_LT(dF.error, 0.3) << label;
}

std::unique_ptr<OpenMM::System> harmonicSystem() {
    auto system = std::make_unique<OpenMM::System>();
    system->addParticle(1.0);
    auto* force = new OpenMM::CustomExternalForce("unit*0.5*(x^2 + y^2 + z^2)");
    force->addGlobalParameter("unit", OpenMMEnergy::BOLTZMANN * DoubleWell().unitTemperature);
    force->addParticle(0);
    system->addForce(force);
    return system;
}

FlowModel exactHarmonicFlow(const OpenMM::System& system) {
    FlowConfig config;
    config.numBlocks = 1;
    config.hiddenLayers = 1;
    config.hiddenWidth = 4;
    config.outputInitScale = 0.0;  // the identity
    auto coordinates = std::make_shared<CartesianCoordinates>(1, std::vector<int>{0, 1});
    return FlowModel(coordinates, at::zeros({2}, at::kDouble), at::ones({2}, at::kDouble),
                     std::make_shared<TSFFlow>(2, config), DoubleWell().unitTemperature, SystemFingerprint::of(system));
}

std::string StationarityCheck::describe() const {
    std::ostringstream out;
    out.precision(4);
    for (size_t b = 0; b < z.size(); b++)
        out << "bin " << b << ": observed " << observed[b] << " expected " << expected[b] << " z " << z[b] << "\n";
    out << "max |z| " << maxAbsZ << ", mean z^2 " << meanSquaredZ;
    return out.str();
}

} // namespace testing
} // namespace OpenMMBG
