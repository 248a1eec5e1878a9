#include "AlanineDipeptide.h"

#include "openmmbg/tools/DCDFile.h"
#include "openmmbg/tools/Reweighting.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/Positions.h"
#include "openmmbg/ReplicaExchange.h"
#include "openmmbg/Stereochemistry.h"
#include "openmmbg/Topology.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <openmm/Context.h>
#include <openmm/LangevinMiddleIntegrator.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/State.h>

#include <chrono>
#include <cerrno>
#include <algorithm>
#include <cmath>
#include <csignal>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

/**
 * Adds one chain's acceptance rates and energy evaluations to `result`: one
 * evaluation per step() call (its starting configuration), one per proposal
 * that reached OpenMM.
 */
void addMoveStatistics(ChainResult& result, const MoveStatistics& s, long long stepCalls) {
    result.energyEvaluations += stepCalls + s.proposed[0] + s.proposed[1] - s.outOfDomain - s.stereoFlips;
    result.acceptance.push_back(s.acceptanceRate(MoveKind::RandomWalk));
    result.independence.push_back(s.acceptanceRate(MoveKind::Independence));
}

/**
 * Runs `integrator` in a Reference Context from the minimized structure:
 * warm-up, then options.steps steps with the Context's configuration (for
 * parallel tempering replica 0, T_1) recorded every options.interval steps.
 * `collect` adds the integrator's statistics to the result while the Context
 * still exists (its kernel holds them); it gets the number of step() calls.
 */
ChainResult runChain(const Molecule& molecule, FlowMoveIntegrator& integrator, const ChainOptions& options,
                     const std::function<void(double)>& progress,
                     const std::function<void(long long, ChainResult&)>& collect) {
    integrator.setRandomNumberSeed(options.seed);
    Context context(*molecule.system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(molecule.structure.positions);
    ChainResult result;
    if (options.warmUpSteps > 0)
        integrator.warmUp(options.warmUpSteps, options.targetAcceptance);
    result.latentStepSize = integrator.getLatentStepSize();
    std::vector<at::Tensor> x;
    const long long records = options.steps / options.interval;
    auto begin = std::chrono::steady_clock::now();
    for (long long i = 0; i < records; i++) {
        integrator.step(options.interval);
        x.push_back(positionsToTensor(context.getState(State::Positions).getPositions()));
        if (progress && (i + 1) % std::max(1LL, records / 20) == 0)
            progress((double) (i + 1) / records);
    }
    result.seconds = secondsSince(begin);
    collect(records, result);
    const at::Tensor frames = at::cat(x);
    result.samples = describe(molecule, frames, energiesOf(molecule, frames));
    return result;
}

} // namespace

Molecule loadMolecule(const std::string& dataDirectory) {
    return loadMolecule(dataDirectory + "/alanine_dipeptide_system.xml", dataDirectory + "/alanine_dipeptide.pdb", "ALA");
}

Molecule loadMolecule(const std::string& systemXmlPath, const std::string& pdbPath, const std::string& residueName) {
    Molecule molecule;
    molecule.system = loadSystemXml(systemXmlPath);
    molecule.structure = readPdb(pdbPath);
    if ((int) molecule.structure.atoms.size() != molecule.system->getNumParticles())
        throw OpenMMException("the PDB file '" + pdbPath + "' has " + std::to_string(molecule.structure.atoms.size())
                              + " atoms, the System " + std::to_string(molecule.system->getNumParticles()));
    std::string residue = residueName;
    for (const PdbAtom& atom : molecule.structure.atoms)
        if (residue.empty() && atom.residueName != "ACE" && atom.residueName != "NME")
            residue = atom.residueName;
    if (residue.empty())
        throw OpenMMException("'" + pdbPath + "' has no residue besides the caps ACE and NME");
    molecule.dihedrals = BackboneDihedrals::find(molecule.structure, residue);
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

namespace {

/** A replica's configuration after a block of steps. */
struct ReplicaState {
    double energy = 0;       // kJ/mol
    std::vector<Vec3> x, v;  // nm, nm/ps
};

/** The Langevin replicas of rungs [first, last), equilibrated from the minimized structure. */
class ReplicaBlock {
public:
    ReplicaBlock(const Molecule& molecule, const ReplicaExchangeOptions& options, int first, int last) : first(first) {
        for (int r = first; r < last; r++) {
            const double temperature = options.temperatures[r];
            const int seed = options.seed * 1000 + r;
            integrators.push_back(std::make_unique<LangevinMiddleIntegrator>(temperature, options.friction,
                                                                             options.timestep));
            integrators.back()->setRandomNumberSeed(seed);
            contexts.push_back(std::make_unique<Context>(*molecule.system, *integrators.back(),
                                                         Platform::getPlatformByName("Reference")));
            contexts.back()->setPositions(molecule.structure.positions);
            contexts.back()->setVelocitiesToTemperature(temperature, seed);
            integrators.back()->step((int) options.equilibrationSteps);
        }
    }

    /** Every replica `steps` steps on; their states, in rung order. */
    std::vector<ReplicaState> advance(int steps) {
        std::vector<ReplicaState> states;
        for (size_t i = 0; i < contexts.size(); i++) {
            integrators[i]->step(steps);
            const State state = contexts[i]->getState(State::Positions | State::Velocities | State::Energy);
            states.push_back({state.getPotentialEnergy(), state.getPositions(), state.getVelocities()});
        }
        return states;
    }

    /** Puts a configuration from another rung into rung r (velocities already rescaled to it). */
    void assign(int r, const ReplicaState& state) {
        contexts[r - first]->setPositions(state.x);
        contexts[r - first]->setVelocities(state.v);
    }

private:
    const int first;
    std::vector<std::unique_ptr<LangevinMiddleIntegrator>> integrators;
    std::vector<std::unique_ptr<Context>> contexts;
};

/** Sends exactly `bytes` (no SIGPIPE if the other end is gone); false on failure. */
bool sendAll(int socket, const void* data, size_t bytes) {
    const char* at = static_cast<const char*>(data);
    while (bytes > 0) {
        const ssize_t sent = ::send(socket, at, bytes, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return false;
        at += sent;
        bytes -= (size_t) sent;
    }
    return true;
}

/** Receives exactly `bytes`; false at end of stream or on failure. */
bool receiveAll(int socket, void* data, size_t bytes) {
    char* at = static_cast<char*>(data);
    while (bytes > 0) {
        const ssize_t got = ::recv(socket, at, bytes, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        at += got;
        bytes -= (size_t) got;
    }
    return true;
}

/** A replica state through a socket: the energy (if `energy`), positions and velocities. */
bool sendState(int socket, const ReplicaState& state, bool energy) {
    const size_t bytes = state.x.size() * sizeof(Vec3);
    return (!energy || sendAll(socket, &state.energy, sizeof(double))) && sendAll(socket, state.x.data(), bytes)
           && sendAll(socket, state.v.data(), bytes);
}

bool receiveState(int socket, ReplicaState& state, int particles, bool energy) {
    state.x.resize(particles);
    state.v.resize(particles);
    const size_t bytes = particles * sizeof(Vec3);
    return (!energy || receiveAll(socket, &state.energy, sizeof(double))) && receiveAll(socket, state.x.data(), bytes)
           && receiveAll(socket, state.v.data(), bytes);
}

/**
 * Rungs [first, last) run by a child process, driven through a socket: per
 * round the parent sends the number of steps (0: finish), the child answers
 * with every replica's state, and the parent sends each replica a flag and,
 * if set, the configuration exchanged into it. The child uses OpenMM only.
 */
class ReplicaProcess {
public:
    ReplicaProcess(const Molecule& molecule, const ReplicaExchangeOptions& options, int first, int last)
        : first(first), count(last - first), particles(molecule.system->getNumParticles()) {
        int sockets[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sockets) != 0)
            throw OpenMMException("runReplicaExchangeMD: cannot make a socket pair for a worker process");
        std::fflush(stdout);  // a child must not write the parent's buffered output again
        std::fflush(stderr);
        pid = fork();
        if (pid < 0) {
            close(sockets[0]);
            close(sockets[1]);
            throw OpenMMException("runReplicaExchangeMD: cannot start a worker process");
        }
        if (pid == 0) {
            close(sockets[0]);
            int status = 1;
            try {
                status = serve(sockets[1], molecule, options, first, last) ? 0 : 1;
            } catch (...) {
            }
            _exit(status);
        }
        close(sockets[1]);
        socket = sockets[0];
    }

    ~ReplicaProcess() {
        if (pid > 0) {
            close(socket);  // a child still waiting for a command reads end of stream and stops
            if (!finished)
                kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }

    /** Starts `steps` steps of every replica; collect() waits for their states. */
    void advance(int steps) {
        const int32_t command = steps;
        if (!sendAll(socket, &command, sizeof(command)))
            fail();
    }

    std::vector<ReplicaState> collect() {
        std::vector<ReplicaState> states(count);
        for (ReplicaState& state : states)
            if (!receiveState(socket, state, particles, true))
                fail();
        return states;
    }

    /** Rung r keeps its configuration (state null) or gets `state`; called for every rung of the process in order. */
    void assign(const ReplicaState* state) {
        const int32_t flag = state != nullptr;
        if (!sendAll(socket, &flag, sizeof(flag)) || (state && !sendState(socket, *state, false)))
            fail();
    }

    /** Ends the child; the CPU seconds it spent stepping. */
    double finish() {
        const int32_t command = 0;
        double cpuSeconds = 0;
        if (!sendAll(socket, &command, sizeof(command)) || !receiveAll(socket, &cpuSeconds, sizeof(cpuSeconds)))
            fail();
        finished = true;
        return cpuSeconds;
    }

    int firstRung() const { return first; }
    int size() const { return count; }

private:
    [[noreturn]] void fail() {
        throw OpenMMException("runReplicaExchangeMD: the worker process of rungs " + std::to_string(first) + " ... "
                              + std::to_string(first + count - 1) + " stopped");
    }

    /** The child's side of the protocol; false if the parent went away. */
    static bool serve(int socket, const Molecule& molecule, const ReplicaExchangeOptions& options, int first,
                      int last) {
        ReplicaBlock block(molecule, options, first, last);
        double cpuSeconds = 0;
        for (int32_t command; receiveAll(socket, &command, sizeof(command));) {
            if (command == 0)
                return sendAll(socket, &cpuSeconds, sizeof(cpuSeconds));
            const std::clock_t begin = std::clock();
            for (const ReplicaState& state : block.advance(command))
                if (!sendState(socket, state, true))
                    return false;
            cpuSeconds += (double) (std::clock() - begin) / CLOCKS_PER_SEC;
            for (int r = first; r < last; r++) {
                int32_t flag = 0;
                ReplicaState state;
                if (!receiveAll(socket, &flag, sizeof(flag))
                    || (flag && !receiveState(socket, state, molecule.system->getNumParticles(), false)))
                    return false;
                if (flag)
                    block.assign(r, state);
            }
        }
        return false;
    }

    const int first, count, particles;
    pid_t pid = -1;
    int socket = -1;
    bool finished = false;
};

} // namespace

ReplicaExchangeResult runReplicaExchangeMD(const Molecule& molecule, const ReplicaExchangeOptions& options,
                                           const std::function<void(double)>& progress) {
    const std::vector<double>& ladder = options.temperatures;
    ReplicaExchange::checkLadder(ladder, "runReplicaExchangeMD");
    if (options.steps <= 0 || options.interval <= 0 || options.steps < options.interval)
        throw OpenMMException("runReplicaExchangeMD: need steps >= interval > 0");
    const int replicas = (int) ladder.size();
    if (options.processes < 1 || options.processes > replicas)
        throw OpenMMException("runReplicaExchangeMD: need 1 <= processes <= replicas");
    // This process runs the lowest rungs; each worker process an equal share of the rest.
    const int own = (replicas + options.processes - 1) / options.processes;
    std::vector<std::unique_ptr<ReplicaProcess>> workers;
    if (options.processes > 1) {
        const int share = (replicas - own + options.processes - 2) / (options.processes - 1);
        for (int first = own; first < replicas; first += share)
            workers.push_back(std::make_unique<ReplicaProcess>(molecule, options, first, std::min(replicas, first + share)));
    }
    ReplicaBlock block(molecule, options, 0, own);
    ReplicaExchange exchange(ladder);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed * 1000 + 999);
    const long long frames = options.steps / options.interval;
    std::vector<std::vector<at::Tensor>> x(replicas);
    std::vector<std::vector<double>> energy(replicas);
    const std::clock_t start = std::clock();
    // Rung k stays at temperature ladder[k]; configurations move between rungs.
    for (long long f = 0; f < frames; f++) {
        for (auto& worker : workers)
            worker->advance(options.interval);  // the workers step while this process steps its own rungs
        std::vector<ReplicaState> states = block.advance(options.interval);
        for (auto& worker : workers)
            for (ReplicaState& state : worker->collect())
                states.push_back(std::move(state));
        std::vector<double> energies;
        for (const ReplicaState& state : states)
            energies.push_back(state.energy);
        std::vector<int> swapped(replicas);
        for (int r = 0; r < replicas; r++)
            swapped[r] = r;
        for (int r : exchange.exchange(energies, generator))
            std::swap(swapped[r], swapped[r + 1]);
        std::vector<ReplicaState> arriving(replicas);  // at rung k: the configuration exchanged into it, if any
        for (int k = 0; k < replicas; k++)
            if (swapped[k] != k) {
                arriving[k] = states[swapped[k]];
                const double scale = std::sqrt(ladder[k] / ladder[swapped[k]]);
                for (Vec3& vi : arriving[k].v)
                    vi *= scale;
            }
        for (int k = 0; k < own; k++)
            if (swapped[k] != k)
                block.assign(k, arriving[k]);
        for (auto& worker : workers)
            for (int k = worker->firstRung(); k < worker->firstRung() + worker->size(); k++)
                worker->assign(swapped[k] != k ? &arriving[k] : nullptr);
        for (int k = 0; k < replicas; k++) {
            x[k].push_back(positionsToTensor(states[swapped[k]].x));
            energy[k].push_back(energies[swapped[k]]);
        }
        if (progress && (f + 1) % std::max(1LL, frames / 20) == 0)
            progress((double) (f + 1) / frames);
    }
    ReplicaExchangeResult result;
    result.cpuSeconds = (double) (std::clock() - start) / CLOCKS_PER_SEC;
    for (auto& worker : workers)
        result.cpuSeconds += worker->finish();
    for (int k = 0; k < replicas; k++) {
        result.rungs.push_back(describe(molecule, at::cat(x[k]), at::tensor(energy[k], at::kDouble)));
        if (!options.keepPositions)
            result.rungs.back().x = at::Tensor();
    }
    const ExchangeStatistics& statistics = exchange.getStatistics();
    for (int p = 0; p + 1 < replicas; p++)
        result.exchangeAcceptance.push_back(statistics.acceptanceRate(p));
    result.roundTrips = statistics.roundTrips;
    return result;
}

const std::vector<RamachandranRegion>& ramachandranRegions() {
    // alpha_L with C7ax; the other two basins are what lies outside it.
    static const auto alphaL = [](const at::Tensor& phi) { return (phi > 0).logical_and(phi < 2.2); };
    static const std::vector<RamachandranRegion> all = {
        {"phi > 0", "phi", "0 < phi < pi", [](const at::Tensor& phi, const at::Tensor&) { return phi > 0; }},
        {"alpha_L", "alpha_L", "0 < phi < 2.2 (alpha_L and C7ax)",
         [](const at::Tensor& phi, const at::Tensor&) { return alphaL(phi); }},
        {"alpha_R", "alpha_R", "outside alpha_L, -2.0 < psi < 0.5",
         [](const at::Tensor& phi, const at::Tensor& psi) {
             return alphaL(phi).logical_not().logical_and(psi > -2.0).logical_and(psi < 0.5);
         }},
        {"C7eq/beta", "C7eq_beta", "outside alpha_L, psi > 0.5 or psi < -2.0",
         [](const at::Tensor& phi, const at::Tensor& psi) {
             return alphaL(phi).logical_not().logical_and((psi >= 0.5).logical_or(psi <= -2.0));
         }},
    };
    return all;
}

std::vector<ReferenceEstimate> readReference(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw OpenMMException("cannot open the reference '" + path + "'");
    // One estimate per line: {"region": "...", "temperature_K": T, "dF_kT": v, ..., "error_kT": e, ...}
    auto field = [&](const std::string& line, const std::string& key) {
        const size_t at = line.find("\"" + key + "\": ");
        if (at == std::string::npos)
            throw OpenMMException("the reference '" + path + "' has no " + key + " in: " + line);
        return line.substr(at + key.size() + 4);
    };
    std::vector<ReferenceEstimate> estimates;
    std::string line;
    while (std::getline(in, line)) {
        if (line.find("\"region\"") == std::string::npos)
            continue;
        const std::string region = field(line, "region");
        ReferenceEstimate e;
        e.region = region.substr(1, region.find('"', 1) - 1);
        e.temperature = std::strtod(field(line, "temperature_K").c_str(), nullptr);
        e.dF = {std::strtod(field(line, "dF_kT").c_str(), nullptr), std::strtod(field(line, "error_kT").c_str(), nullptr)};
        e.source = path;
        estimates.push_back(e);
    }
    if (estimates.empty())
        throw OpenMMException("the reference '" + path + "' holds no estimates");
    return estimates;
}

std::vector<ReferenceEstimate> readReferences(const std::string& paths) {
    std::vector<ReferenceEstimate> best;
    std::stringstream list(paths);
    std::string path;
    while (std::getline(list, path, ',')) {
        for (const ReferenceEstimate& e : readReference(path)) {
            auto same = std::find_if(best.begin(), best.end(), [&](const ReferenceEstimate& b) {
                return b.region == e.region && std::abs(b.temperature - e.temperature) < 0.01;
            });
            if (same == best.end())
                best.push_back(e);
            else if (e.dF.error < same->dF.error)
                *same = e;
        }
    }
    if (best.empty())
        throw OpenMMException("no reference named in '" + paths + "'");
    return best;
}

std::string committedReferencePaths(const std::string& sourceDir) {
    const std::string results = sourceDir + "/examples/alanine_dipeptide/results/";
    return results + "reference/summary.json," + results + "reference_umbrella/summary.json," + results +
           "reference_umbrella_300k/summary.json";
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

TrainingSet heldOutSplit(const at::Tensor& frames, double validationFraction) {
    if (validationFraction < 0 || validationFraction >= 1)
        throw OpenMMException("heldOutSplit: validationFraction must be in [0, 1)");
    const int64_t held = (int64_t) std::floor(validationFraction * (double) frames.size(0));
    TrainingSet data;
    data.frames = frames.narrow(0, 0, frames.size(0) - held);
    data.validation = frames.narrow(0, frames.size(0) - held, held);
    data.setupFrames = data.frames;
    data.effectiveFrames = (double) data.frames.size(0);
    return data;
}

TrainingSet pooledRungs(const std::vector<Samples>& rungs, const std::vector<double>& temperatures,
                        double validationFraction, double target) {
    if (rungs.empty() || rungs.size() != temperatures.size())
        throw OpenMMException("pooledRungs: one temperature per rung needed, got " + std::to_string(rungs.size())
                              + " rungs and " + std::to_string(temperatures.size()) + " temperatures");
    std::vector<at::Tensor> frames, energies;
    std::vector<long long> counts;
    // A flow trained for `target` is validated on frames of about that temperature.
    size_t nearest = 0;
    for (size_t k = 1; k < temperatures.size(); k++)
        if (std::abs(temperatures[k] - target) < std::abs(temperatures[nearest] - target))
            nearest = k;
    TrainingSet validating;
    for (size_t k = 0; k < rungs.size(); k++) {
        if (!rungs[k].x.defined() || !rungs[k].energy.defined() || rungs[k].x.size(0) != rungs[k].energy.size(0))
            throw OpenMMException("pooledRungs: rung " + std::to_string(k) + " needs positions and one energy per frame");
        const TrainingSet split = heldOutSplit(rungs[k].x, validationFraction);
        if (k == nearest)
            validating = split;
        frames.push_back(split.frames);
        energies.push_back(rungs[k].energy.narrow(0, 0, split.frames.size(0)));
        counts.push_back(split.frames.size(0));
    }
    const at::Tensor pooledEnergies = at::cat(energies);
    const MBAR mbar(reducedEnergiesAtTemperatures(pooledEnergies, temperatures), counts);
    TrainingSet data;
    data.frames = at::cat(frames);
    data.logWeights = mbar.logWeights(reducedEnergiesAtTemperatures(pooledEnergies, {target}).reshape({-1}));
    data.validation = validating.validation;
    data.setupFrames = validating.frames;
    data.effectiveFrames = kishEffectiveSampleSize(data.logWeights) * (double) data.frames.size(0);
    return data;
}

FlowModel trainFlow(const Molecule& molecule, const at::Tensor& frames, const TrainingPlan& plan,
                    const std::string& checkpointPath,
                    const std::function<void(const TrainingProgress&)>& progress,
                    const std::function<void(const FlowTrainer&)>& resumed) {
    return trainFlow(molecule, heldOutSplit(frames, plan.validationFraction), plan, checkpointPath, progress, resumed);
}

FlowModel trainFlow(const Molecule& molecule, const TrainingSet& data, const TrainingPlan& plan,
                    const std::string& checkpointPath,
                    const std::function<void(const TrainingProgress&)>& progress,
                    const std::function<void(const FlowTrainer&)>& resumed) {
    FlowModel model =
        FlowModel::createForMolecule(*molecule.system, data.setupFrames, plan.flowType, plan.flow, plan.temperature);
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
    if (data.logWeights.defined())
        trainer.setData(data.frames, plan.temperature, data.logWeights);
    else
        trainer.setData(data.frames, plan.temperature);
    const bool validated = data.validation.defined() && data.validation.size(0) > 0;
    if (validated)
        trainer.setValidationData(data.validation);
    OpenMMEnergy::Options bridgeOptions;
    bridgeOptions.platform = "Reference";
    bridgeOptions.energyCut = plan.energyCut;
    trainer.setEnergy(std::make_shared<OpenMMEnergy>(*molecule.system, plan.temperature, bridgeOptions));

    TrainingStage ml =
        TrainingStage::maximumLikelihood("ml", plan.mlSteps, plan.batchSize, plan.learningRate, plan.mlFinalLearningRate);
    if (validated) {
        ml.validationInterval = plan.validationInterval;
        ml.validationPatience = plan.validationPatience;
    }
    trainer.train(ml);
    // The mixed stage ramps the KL weight from 0 to plan.mixedLambda.
    TrainingStage mixed = TrainingStage::maximumLikelihood("mixed", plan.mixedSteps, plan.batchSize,
                                                           plan.mixedLearningRate, plan.mixedLearningRate / 10);
    mixed.lambdaEnd = plan.mixedLambda;
    trainer.train(mixed);
    return model;
}

Samples concatenated(const std::vector<Samples>& parts) {
    if (parts.empty())
        throw OpenMMException("concatenated: no samples");
    Samples joined;
    for (at::Tensor Samples::*series :
         {&Samples::x, &Samples::phi, &Samples::psi, &Samples::energy, &Samples::logWeight, &Samples::otherHandedness}) {
        if (!(parts.front().*series).defined())
            continue;
        std::vector<at::Tensor> pieces;
        for (const Samples& part : parts) {
            if (!(part.*series).defined())
                throw OpenMMException("concatenated: a series that some parts have and others lack");
            pieces.push_back(part.*series);
        }
        joined.*series = at::cat(pieces);
    }
    return joined;
}

at::Tensor otherHandedness(const Molecule& molecule, const at::Tensor& x) {
    const Stereochemistry stereo(molecule.system->getNumParticles(), bondsOfSystem(*molecule.system));
    return ~stereo.matches(x, stereo.referenceSigns(positionsToTensor(molecule.structure.positions),
                                                    "the minimized structure"));
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
    samples.otherHandedness = otherHandedness(molecule, sample.x);
    samples.logWeight = model.logImportanceWeights(sample, energy.reducedEnergy, temperature,
                                                   energy.finite & ~samples.otherHandedness);
    return samples;
}

std::vector<Samples> sampleFlowSets(const Molecule& molecule, const FlowModel& model, double temperature, int count,
                                    int sets) {
    std::vector<Samples> result;
    for (int set = 0; set < sets; set++) {
        result.push_back(sampleFlow(molecule, model, temperature, count, set == 0 ? 22 : set));
        result.back().x = at::Tensor();  // the series are kept, not the configurations
    }
    return result;
}

namespace {

/** Element by element mean of the chains' vectors (acceptance rates). */
std::vector<double> meanOf(const std::vector<ChainResult>& results, std::vector<double> ChainResult::*member) {
    std::vector<double> mean((results.front().*member).size(), 0.0);
    for (const ChainResult& result : results)
        for (size_t i = 0; i < mean.size(); i++)
            mean[i] += (result.*member)[i] / (double) results.size();
    return mean;
}

/**
 * options.chains runs of `runOne` (one chain each, with steps / chains steps
 * and seed + c), merged into one result whose samples follow one another.
 */
ChainResult runIndependentChains(const ChainOptions& options, const std::function<void(double)>& progress,
                                 const std::function<ChainResult(const ChainOptions&, const std::function<void(double)>&)>& runOne) {
    if (options.chains < 1 || options.interval < 1 || options.steps / options.chains < options.interval)
        throw OpenMMException("independent chains: need chains >= 1 and steps / chains >= interval >= 1, got "
                              + std::to_string(options.chains) + " chains of " + std::to_string(options.steps)
                              + " steps in all, interval " + std::to_string(options.interval));
    std::vector<ChainResult> results;
    for (int c = 0; c < options.chains; c++) {
        ChainOptions one = options;
        one.steps = options.steps / options.chains;
        one.seed = options.seed + c;
        one.chains = 1;
        results.push_back(runOne(one, [&](double fraction) {
            if (progress)
                progress((c + fraction) / options.chains);
        }));
    }
    ChainResult merged;
    std::vector<Samples> samples;
    for (const ChainResult& result : results) {
        samples.push_back(result.samples);
        merged.seconds += result.seconds;
        merged.energyEvaluations += result.energyEvaluations;
        merged.roundTrips += result.roundTrips;
        merged.latentStepSize += result.latentStepSize / (double) results.size();
    }
    merged.samples = concatenated(samples);
    merged.acceptance = meanOf(results, &ChainResult::acceptance);
    merged.independence = meanOf(results, &ChainResult::independence);
    merged.exchangeAcceptance = meanOf(results, &ChainResult::exchangeAcceptance);
    return merged;
}

} // namespace

ChainResult runLatentMetropolis(const Molecule& molecule, const FlowModel& model, double temperature,
                                const ChainOptions& options, const std::function<void(double)>& progress) {
    return runIndependentChains(options, progress, [&](const ChainOptions& one, const std::function<void(double)>& report) {
        LatentMetropolisIntegrator integrator(model, temperature, one.latentStepSize, one.independenceProbability);
        return runChain(molecule, integrator, one, report, [&](long long stepCalls, ChainResult& result) {
            addMoveStatistics(result, integrator.getStatistics(), stepCalls);
        });
    });
}

ChainResult runParallelTempering(const Molecule& molecule, const FlowModel& model, const std::vector<double>& ladder,
                                 const ChainOptions& options, const std::function<void(double)>& progress) {
    return runIndependentChains(options, progress, [&](const ChainOptions& one, const std::function<void(double)>& report) {
        TSFParallelTemperingIntegrator integrator(model, ladder, one.latentStepSize, one.independenceProbability);
        return runChain(molecule, integrator, one, report, [&](long long stepCalls, ChainResult& result) {
            const int replicas = integrator.getNumReplicas();
            for (int r = 0; r < replicas; r++)
                addMoveStatistics(result, integrator.getMoveStatistics(r), stepCalls);
            for (int pair = 0; pair + 1 < replicas; pair++)
                result.exchangeAcceptance.push_back(integrator.getExchangeAcceptanceRate(pair));
            result.roundTrips = integrator.getNumRoundTrips();
        });
    });
}

std::string rungPath(const std::string& folder, double temperature) {
    return folder + "/md" + std::to_string(std::lround(temperature));
}

Samples readRung(const Molecule& molecule, const std::string& path) {
    Samples rung = readSeries(path + ".csv");
    rung.x = readDcd(path + ".dcd", molecule.system->getNumParticles());
    return rung;
}

long long recordedSamples(const ChainOptions& options) {
    return options.chains * (options.steps / options.chains / options.interval);
}

long long phiTransitions(const at::Tensor& phi) {
    at::Tensor positive = phi > 0;
    return (positive.narrow(0, 1, phi.size(0) - 1) != positive.narrow(0, 0, phi.size(0) - 1)).sum().item<int64_t>();
}

namespace {

/** How long each stage of a preset runs. */
struct RunLengths {
    long long mdSteps;  // 1 fs steps per replica
    int mdInterval;     // steps between frames
    long long mlSteps, mixedSteps;
    int flowSamples;
    long long chainSteps, ptSteps;  // recorded every 10 steps
};

} // namespace

Preset presetNamed(const std::string& name) {
    // default: replica-exchange MD on 4 rungs from 300 to 600 K, 5 ns each (20
    // ns of MD in all), frames every 0.2 ps: 300 K MD alone does not find
    // alpha_L in a few ns, and a flow trained at 600 K is a poor proposal at
    // 300 K (README). A flow fits these frames better the longer the MD
    // behind them, while more training steps or a mixed (ML + KL) stage buy
    // nothing measurable (bench/training_budget, README), so the default
    // spends its time on MD and trains by maximum likelihood only, stopping
    // early on the held-out last tenth of the 300 K frames. Lengths chosen to
    // keep the run within 20 minutes on 2 cores; the chains take the time left
    // (60000 Metropolis moves gave error bars of 0.12 to 0.16 kT, README).
    // long: the same training on 8 times the MD (40 ns per rung; 10 and 20 ns
    // gave median ESS of 23 and 36% at 300 K, README) and 2000 ML steps,
    // within 2 hours.
    // smoke: seconds, for tests of the pipeline itself; the numbers mean nothing.
    static const std::map<std::string, RunLengths> lengths = {
        {"default", {5000000, 200, 1000, 0, 20000, 240000, 60000}},
        {"long", {40000000, 200, 2000, 0, 50000, 200000, 100000}},
        {"smoke", {20000, 100, 40, 20, 500, 400, 400}},
    };
    const auto found = lengths.find(name);
    if (found == lengths.end())
        throw std::invalid_argument("unknown preset '" + name + "' (use default, long or smoke)");
    const RunLengths& length = found->second;
    Preset p;
    p.mdSteps = length.mdSteps;
    p.mdInterval = length.mdInterval;
    p.mdLadder = ReplicaExchange::geometricLadder(p.plan.temperature, 600.0, 4);
    p.plan.mixedLambda = 0.5;
    p.plan.flow.numBlocks = 4;
    p.plan.flow.hiddenLayers = 2;
    // Measured for the default with bench/training_budget (README): networks
    // of 128 units overfit its frames (64 units: a median Kish ESS 3 to 4
    // times larger), and frames reweighted to 330 K rather than 300 K gave a
    // median ESS at 300 K of 5.6 to 8.3% against 3.5 to 7.1% (four seeds).
    p.plan.flow.hiddenWidth = 64;
    p.trainingDataTemperature = name == "smoke" ? 0.0 : 330.0;
    // Batches of 512 frames: a held-out NLL lower by 0.2 to 0.3 nats and a
    // median ESS of 8.9 to 10.6% against 5.6 to 8.3% (four seeds), for 1.8
    // times the training time.
    p.plan.batchSize = name == "smoke" ? 64 : 512;
    // Torsions, then angles given torsions, then bonds given both (docs/math.md):
    // a held-out NLL lower by 0.08 to 0.34 nats and a median ESS of 11.2 to
    // 16.3% against 8.9 to 10.6% with the same seeds (four), for 1.2 times the training time.
    p.plan.flow.conditionByLevel = true;
    // TSFs (--flow-type tsf) with volume-preserving spline couplings: on this
    // preset's MD, a held-out NLL 3.9 nats lower than the affine TSF's and a
    // median Kish ESS of 4.2% at 300 K and 1.9% at 600 K against 0.21% and
    // 0.09% (bench/training_budget --flow-type tsf, README).
    p.plan.flow.tsfSplineCouplings = true;
    p.plan.mlSteps = length.mlSteps;
    p.plan.mixedSteps = length.mixedSteps;
    p.flowSamples = length.flowSamples;
    p.replicas = 5;
    for (ChainOptions* chain : {&p.chain, &p.pt}) {
        chain->latentStepSize = 0.05;
        chain->independenceProbability = 0.1;
        chain->interval = 10;
    }
    // Metropolis chains at 300 K: nine moves in ten independence proposals.
    // With the default flow (independence acceptance 26%) chains of 30000
    // moves scatter as much as with one in ten (standard deviation of dF_phi
    // over chains 0.26 kT for both; bench/metropolis_chains.py, README) at a
    // third of the CPU time: a random-walk move evaluates the flow for one
    // configuration, while independence proposals come in blocks of one
    // batched call.
    p.chain.independenceProbability = 0.9;
    p.chain.steps = length.chainSteps;
    p.pt.steps = length.ptSteps;
    // Independent chains (the same energy evaluations in all, plus a warm-up
    // each): error bars from their spread cover what block averages of one
    // chain miss (TestMetrics, the double-well coverage test).
    p.chain.chains = p.pt.chains = name == "smoke" ? 2 : 4;
    if (name == "smoke") {
        p.plan.flow.hiddenWidth = 32;
        p.chain.warmUpSteps = p.pt.warmUpSteps = 100;
        p.replicas = 3;
        p.mdLadder = ReplicaExchange::geometricLadder(p.plan.temperature, 600.0, 3);
        p.plan.validationInterval = 20;
        p.mdEquilibrationSteps = 2000;
    }
    return p;
}

TrainingSet trainingSetOf(const Preset& preset, const std::vector<Samples>& rungs) {
    if (rungs.empty())
        throw OpenMMException("trainingSetOf: no replica-exchange rungs");
    return preset.trainOnAllRungs ? pooledRungs(rungs, preset.mdLadder, preset.plan.validationFraction,
                                                preset.dataTemperature())
                                  : heldOutSplit(rungs.front().x, preset.plan.validationFraction);
}

ReplicaExchangeOptions replicaExchangeOf(const Preset& preset, int seed) {
    ReplicaExchangeOptions options;
    options.temperatures = preset.mdLadder;
    options.steps = preset.mdSteps;
    options.interval = preset.mdInterval;
    options.seed = seed;
    options.equilibrationSteps = preset.mdEquilibrationSteps;
    options.keepPositions = true;
    options.processes = std::min(2, (int) preset.mdLadder.size());  // this machine's 2 cores
    return options;
}

} // namespace alanine
} // namespace OpenMMBG
