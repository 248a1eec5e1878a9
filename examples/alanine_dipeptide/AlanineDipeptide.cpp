#include "AlanineDipeptide.h"

#include "openmmbg/DCDFile.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/internal/IntegratorSupport.h"

#include <ATen/CPUGeneratorImpl.h>
#include <openmm/Context.h>
#include <openmm/LangevinMiddleIntegrator.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/State.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

using namespace OpenMM;

namespace OpenMMBG {
namespace alanine {

namespace {

double secondsSince(std::chrono::steady_clock::time_point begin) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
}

/** Energies (kJ/mol) of many frames, in parallel on the Reference platform. */
at::Tensor energiesOf(const Molecule& molecule, const at::Tensor& x) {
    OpenMMEnergy::Options options;
    options.platform = "Reference";
    OpenMMEnergy bridge(*molecule.system, 300.0, options);
    return bridge.evaluate(x).potentialEnergy;
}

std::vector<double> acceptanceOf(const MoveStatistics& statistics, MoveKind kind) {
    return {statistics.acceptanceRate(kind)};
}

/** Energy evaluations of a chain: one per step() call (its starting configuration), one per proposal that reached OpenMM. */
long long energyEvaluationsOf(const MoveStatistics& s, long long stepCalls) {
    return stepCalls + s.proposed[0] + s.proposed[1] - s.outOfDomain - s.stereoFlips;
}

/**
 * Warm-up, then options.steps steps with `frame()` recorded every
 * options.interval steps. Sets result.seconds and result.latentStepSize;
 * returns the recorded frames [records, N, 3].
 */
template <class Integrator>
at::Tensor recordChain(Integrator& integrator, const ChainOptions& options, const std::function<at::Tensor()>& frame,
                       const std::function<void(double)>& progress, ChainResult& result) {
    if (options.warmUpSteps > 0)
        integrator.warmUp(options.warmUpSteps, options.targetAcceptance);
    result.latentStepSize = integrator.getLatentStepSize();
    std::vector<at::Tensor> x;
    const long long records = options.steps / options.interval;
    auto begin = std::chrono::steady_clock::now();
    for (long long i = 0; i < records; i++) {
        integrator.step(options.interval);
        x.push_back(frame());
        if (progress && (i + 1) % std::max(1LL, records / 20) == 0)
            progress((double) (i + 1) / records);
    }
    result.seconds = secondsSince(begin);
    return at::cat(x);
}

} // namespace

Molecule loadMolecule(const std::string& dataDirectory) {
    Molecule molecule;
    molecule.system = loadSystemXml(dataDirectory + "/alanine_dipeptide_system.xml");
    molecule.structure = readPdb(dataDirectory + "/alanine_dipeptide.pdb");
    if ((int) molecule.structure.atoms.size() != molecule.system->getNumParticles())
        throw OpenMMException("the PDB file has " + std::to_string(molecule.structure.atoms.size())
                              + " atoms, the System " + std::to_string(molecule.system->getNumParticles()));
    molecule.dihedrals = BackboneDihedrals::find(molecule.structure);
    return molecule;
}

Samples describe(const Molecule& molecule, const at::Tensor& x, const at::Tensor& energy) {
    Samples samples;
    samples.x = x;
    samples.phi = dihedralAngles(x, molecule.dihedrals.phi);
    samples.psi = dihedralAngles(x, molecule.dihedrals.psi);
    samples.energy = energy;
    return samples;
}

Samples runMD(const Molecule& molecule, const MDOptions& options, const std::function<void(double)>& progress) {
    if (options.steps <= 0 || options.interval <= 0 || options.steps < options.interval)
        throw OpenMMException("runMD: need steps >= interval > 0");
    LangevinMiddleIntegrator integrator(options.temperature, options.friction, options.timestep);
    integrator.setRandomNumberSeed(options.seed);
    Context context(*molecule.system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(molecule.structure.positions);
    context.setVelocitiesToTemperature(options.temperature, options.seed);
    integrator.step((int) options.equilibrationSteps);
    const long long frames = options.steps / options.interval;
    std::unique_ptr<DcdWriter> dcd;
    if (!options.dcdPath.empty())
        dcd = std::make_unique<DcdWriter>(options.dcdPath, molecule.system->getNumParticles(), options.interval,
                                          options.timestep);
    std::vector<at::Tensor> x;
    std::vector<double> energy;
    for (long long f = 0; f < frames; f++) {
        integrator.step(options.interval);
        State state = context.getState(State::Positions | State::Energy);
        x.push_back(positionsToTensor(state.getPositions()));
        energy.push_back(state.getPotentialEnergy());
        if (dcd)
            dcd->write(state.getPositions());
        if (progress && (f + 1) % std::max(1LL, frames / 20) == 0)
            progress((double) (f + 1) / frames);
    }
    return describe(molecule, at::cat(x), at::tensor(energy, at::kDouble));
}

void writeAtomically(const std::string& path, const std::string& text) {
    const std::string part = path + ".part";
    {
        std::ofstream out(part, std::ios::binary);
        out << text;
        out.close();
        if (!out)
            throw OpenMMException("cannot write '" + part + "'");
    }
    if (std::rename(part.c_str(), path.c_str()) != 0)
        throw OpenMMException("cannot rename '" + part + "' to '" + path + "'");
}

void writeSeries(const Samples& samples, const std::string& path) {
    std::ostringstream out;
    out.precision(10);
    out << "phi,psi,energy" << (samples.logWeight.defined() ? ",log_weight" : "") << "\n";
    for (int64_t i = 0; i < samples.phi.size(0); i++) {
        out << samples.phi[i].item<double>() << "," << samples.psi[i].item<double>() << ","
            << samples.energy[i].item<double>();
        if (samples.logWeight.defined())
            out << "," << samples.logWeight[i].item<double>();
        out << "\n";
    }
    writeAtomically(path, out.str());
}

Samples readSeries(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw OpenMMException("cannot open '" + path + "'");
    std::string line;
    std::getline(in, line);
    const bool weighted = line.find("log_weight") != std::string::npos;
    std::vector<double> phi, psi, energy, weight;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string value;
        std::vector<double> row;
        while (std::getline(fields, value, ',')) {
            char* end = nullptr;
            row.push_back(std::strtod(value.c_str(), &end));
            if (end == value.c_str() || *end != '\0')
                throw OpenMMException("'" + path + "' has a malformed line: " + line);
        }
        if (row.size() != (weighted ? 4u : 3u))
            throw OpenMMException("'" + path + "' has a malformed line: " + line);
        phi.push_back(row[0]);
        psi.push_back(row[1]);
        energy.push_back(row[2]);
        if (weighted)
            weight.push_back(row[3]);
    }
    Samples samples;
    samples.phi = at::tensor(phi, at::kDouble);
    samples.psi = at::tensor(psi, at::kDouble);
    samples.energy = at::tensor(energy, at::kDouble);
    if (weighted)
        samples.logWeight = at::tensor(weight, at::kDouble);
    return samples;
}

FlowModel trainFlow(const Molecule& molecule, const at::Tensor& frames, const TrainingPlan& plan,
                    const std::string& checkpointPath,
                    const std::function<void(const TrainingProgress&)>& progress,
                    const std::function<void(const FlowTrainer&)>& resumed) {
    FlowModel model = FlowModel::createForMolecule(*molecule.system, frames, "tsf", plan.flow, plan.temperature);
    TrainerOptions options;
    options.seed = plan.seed;
    options.numThreads = plan.threads;
    options.logInterval = 100;
    options.progress = progress;
    options.checkpointPath = checkpointPath;
    options.checkpointInterval = 250;
    FlowTrainer trainer(model, options);
    if (!checkpointPath.empty() && std::ifstream(checkpointPath)) {
        trainer.loadCheckpoint(checkpointPath);
        if (resumed)
            resumed(trainer);
    }
    trainer.setData(frames, plan.temperature);
    OpenMMEnergy::Options bridgeOptions;
    bridgeOptions.platform = "Reference";
    bridgeOptions.energyCut = plan.energyCut;
    trainer.setEnergy(std::make_shared<OpenMMEnergy>(*molecule.system, plan.temperature, bridgeOptions));

    TrainingStage ml;
    ml.name = "ml";
    ml.steps = plan.mlSteps;
    ml.batchSize = plan.batchSize;
    ml.learningRate = plan.learningRate;
    ml.finalLearningRate = plan.mlFinalLearningRate;
    trainer.train(ml);
    TrainingStage mixed;
    mixed.name = "mixed";
    mixed.steps = plan.mixedSteps;
    mixed.batchSize = plan.batchSize;
    mixed.learningRate = plan.mixedLearningRate;
    mixed.finalLearningRate = plan.mixedLearningRate / 10;
    mixed.lambdaStart = 0.0;
    mixed.lambdaEnd = plan.mixedLambda;
    trainer.train(mixed);
    return model;
}

Samples sampleFlow(const Molecule& molecule, const FlowModel& model, double temperature, int count, int seed) {
    at::NoGradGuard noGrad;
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>((uint64_t) seed);
    // Put the samples in the frame of the minimized structure, so that they overlay it.
    at::Tensor external = model.getCoordinates().forward(positionsToTensor(molecule.structure.positions)).second;
    FlowSample sample = model.sample(count, temperature, generator, external.expand({count, -1}).contiguous());
    OpenMMEnergy::Options options;
    options.platform = "Reference";
    OpenMMEnergy bridge(*molecule.system, temperature, options);
    EnergyBatch energy = bridge.evaluate(sample.x);
    Samples samples = describe(molecule, sample.x, energy.potentialEnergy);
    samples.logWeight = model.logTarget(sample.gamma, energy.reducedEnergy, sample.logJ, model.tau(temperature),
                                        sample.inDomain & energy.finite)
                        - sample.logq;
    return samples;
}

ChainResult runLatentMetropolis(const Molecule& molecule, const FlowModel& model, double temperature,
                                const ChainOptions& options, const std::function<void(double)>& progress) {
    LatentMetropolisIntegrator integrator(model, temperature, options.latentStepSize, options.independenceProbability);
    integrator.setRandomNumberSeed(options.seed);
    Context context(*molecule.system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(molecule.structure.positions);
    ChainResult result;
    at::Tensor frames = recordChain(integrator, options,
                                    [&] { return positionsToTensor(context.getState(State::Positions).getPositions()); },
                                    progress, result);
    const MoveStatistics& s = integrator.getStatistics();
    result.energyEvaluations = energyEvaluationsOf(s, frames.size(0));
    result.acceptance = acceptanceOf(s, MoveKind::RandomWalk);
    result.independence = acceptanceOf(s, MoveKind::Independence);
    result.samples = describe(molecule, frames, energiesOf(molecule, frames));
    return result;
}

ChainResult runParallelTempering(const Molecule& molecule, const FlowModel& model, const std::vector<double>& ladder,
                                 const ChainOptions& options, const std::function<void(double)>& progress) {
    TSFParallelTemperingIntegrator integrator(model, ladder, options.latentStepSize, options.independenceProbability);
    integrator.setRandomNumberSeed(options.seed);
    Context context(*molecule.system, integrator, Platform::getPlatformByName("CPU"));
    context.setPositions(molecule.structure.positions);
    ChainResult result;
    at::Tensor frames = recordChain(integrator, options, [&] { return positionsToTensor(integrator.getReplicaPositions(0)); },
                                    progress, result);
    const int replicas = integrator.getNumReplicas();
    for (int r = 0; r < replicas; r++) {
        const MoveStatistics& s = integrator.getMoveStatistics(r);
        result.energyEvaluations += energyEvaluationsOf(s, frames.size(0));
        result.acceptance.push_back(s.acceptanceRate(MoveKind::RandomWalk));
        result.independence.push_back(s.acceptanceRate(MoveKind::Independence));
    }
    for (int pair = 0; pair + 1 < replicas; pair++)
        result.exchangeAcceptance.push_back(integrator.getExchangeAcceptanceRate(pair));
    result.roundTrips = integrator.getNumRoundTrips();
    result.samples = describe(molecule, frames, energiesOf(molecule, frames));
    return result;
}

long long phiTransitions(const at::Tensor& phi) {
    at::Tensor positive = phi > 0;
    return (positive.narrow(0, 1, phi.size(0) - 1) != positive.narrow(0, 0, phi.size(0) - 1)).sum().item<int64_t>();
}

Preset presetNamed(const std::string& name) {
    Preset p;
    p.plan.flow.numBlocks = 4;
    p.plan.flow.hiddenLayers = 2;
    p.plan.flow.hiddenWidth = 128;
    p.replicas = 5;
    p.chain.latentStepSize = p.pt.latentStepSize = 0.05;
    p.chain.independenceProbability = p.pt.independenceProbability = 0.1;
    if (name == "default") {
        // Dense frames (every 0.1 ps): with one frame per ps the flow overfits
        // (test NLL 40 nats worse than training NLL), with 40000 it does not.
        p.mdSteps = 4000000;  // 4 ns
        p.mdInterval = 100;
        p.plan.mlSteps = 3000;
        p.plan.mixedSteps = 1500;
        p.flowSamples = 20000;
        p.chain.steps = 80000;
        p.chain.interval = 10;
        p.pt.steps = 40000;
        p.pt.interval = 10;
    } else if (name == "long") {
        p.mdSteps = 20000000;  // 20 ns
        p.mdInterval = 200;
        p.plan.mlSteps = 10000;
        p.plan.mixedSteps = 4000;
        p.flowSamples = 50000;
        p.chain.steps = 200000;
        p.chain.interval = 10;
        p.pt.steps = 100000;
        p.pt.interval = 10;
    } else if (name == "smoke") {
        // Seconds, for tests of the pipeline itself; the numbers mean nothing.
        p.mdSteps = 20000;
        p.mdInterval = 100;
        p.plan.flow.hiddenWidth = 32;
        p.plan.mlSteps = 40;
        p.plan.mixedSteps = 20;
        p.plan.batchSize = 64;
        p.flowSamples = 500;
        p.chain.steps = p.pt.steps = 400;
        p.chain.interval = p.pt.interval = 10;
        p.chain.warmUpSteps = p.pt.warmUpSteps = 100;
        p.replicas = 3;
    } else {
        throw std::invalid_argument("unknown preset '" + name + "' (use default, long or smoke)");
    }
    return p;
}

} // namespace alanine
} // namespace OpenMMBG
