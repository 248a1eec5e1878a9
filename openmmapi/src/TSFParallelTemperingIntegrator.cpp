#include "openmmbg/TSFParallelTemperingIntegrator.h"

#include "openmmbg/BGKernels.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/internal/IntegratorSupport.h"
#include "openmmbg/internal/ReplicaExchange.h"

#include <ATen/ATen.h>
#include <openmm/Context.h>
#include <openmm/OpenMMException.h>
#include <openmm/internal/ContextImpl.h>

#include <cmath>

using namespace OpenMM;

namespace OpenMMBG {

// ---------------------------------------------------------------------------
// ReplicaState

void ReplicaState::resize(int count, int particles) {
    positions.assign(count, std::vector<Vec3>(particles));
    energies.assign(count, 0.0);
    walkers.resize(count);
    heading.assign(count, 0);
    for (int r = 0; r < count; r++)
        walkers[r] = r;
    heading[0] = +1;  // walker 0 starts at T_1
    moves.assign(count, MoveStatistics());
    exchangeAttempts.assign(count - 1, 0);
    exchangeAcceptances.assign(count - 1, 0);
    setByUser.assign(count, false);
}

void ReplicaState::swap(int r) {
    std::swap(positions[r], positions[r + 1]);
    std::swap(energies[r], energies[r + 1]);
    std::swap(walkers[r], walkers[r + 1]);
}

void ReplicaState::recordExtremes() {
    int& bottom = heading[walkers.front()];
    if (bottom == -1)
        roundTrips++;
    bottom = +1;
    int& top = heading[walkers.back()];
    if (top == +1)
        top = -1;
}

void ReplicaState::resetStatistics() {
    for (MoveStatistics& m : moves)
        m = MoveStatistics();
    std::fill(exchangeAttempts.begin(), exchangeAttempts.end(), 0);
    std::fill(exchangeAcceptances.begin(), exchangeAcceptances.end(), 0);
    roundTrips = 0;
    // Round trips are counted afresh: only the walker now at T_1 has a known heading.
    std::fill(heading.begin(), heading.end(), 0);
    heading[walkers.front()] = +1;
}

std::vector<int> decideExchanges(const std::vector<double>& energies, const std::vector<double>& temperatures,
                                 bool oddPairs, at::Generator& generator, ReplicaState& state) {
    const int pairs = (int) temperatures.size() - 1;
    const int first = oddPairs ? 1 : 0;
    const int count = first < pairs ? (pairs - first + 1) / 2 : 0;
    std::vector<int> accepted;
    if (count == 0)
        return accepted;
    at::Tensor uniform = at::rand({count}, generator, at::kDouble);
    for (int k = 0; k < count; k++) {
        const int r = first + 2 * k;
        const double betaLow = 1.0 / (OpenMMEnergy::BOLTZMANN * temperatures[r]);
        const double betaHigh = 1.0 / (OpenMMEnergy::BOLTZMANN * temperatures[r + 1]);
        const double logA = (betaLow - betaHigh) * (energies[r] - energies[r + 1]);
        state.exchangeAttempts[r]++;
        if (std::isfinite(logA) && std::log(uniform[k].item<double>()) < logA) {
            state.exchangeAcceptances[r]++;
            accepted.push_back(r);
        }
    }
    return accepted;
}

// ---------------------------------------------------------------------------
// TSFParallelTemperingIntegrator

TSFParallelTemperingIntegrator::TSFParallelTemperingIntegrator(const FlowModel& model,
                                                               const std::vector<double>& temperatures,
                                                               double latentStepSize, double independenceProbability)
    : model(std::make_shared<FlowModel>(model)), temperatures(temperatures), latentStepSize(latentStepSize),
      independenceProbability(independenceProbability), replicas(std::make_unique<ReplicaState>()) {
    const std::string who = "TSFParallelTemperingIntegrator";
    if (temperatures.size() < 2)
        throw OpenMMException(who + ": parallel tempering needs at least 2 temperatures, got "
                              + std::to_string(temperatures.size()));
    for (size_t r = 0; r < temperatures.size(); r++) {
        checkTemperature(temperatures[r], who);
        if (r > 0 && !(temperatures[r] > temperatures[r - 1]))
            throw OpenMMException(who + ": temperatures must be strictly increasing (" + std::to_string(temperatures[r - 1])
                                  + " K is followed by " + std::to_string(temperatures[r]) + " K)");
    }
    setLatentStepSize(latentStepSize);
    setIndependenceProbability(independenceProbability);
    replicas->resize((int) temperatures.size(), model.getNumParticles());
    setStepSize(0.0);  // Monte Carlo steps take no simulated time
}

TSFParallelTemperingIntegrator::TSFParallelTemperingIntegrator(const std::string& flowFile,
                                                               const std::vector<double>& temperatures,
                                                               double latentStepSize, double independenceProbability)
    : TSFParallelTemperingIntegrator(FlowModel::load(flowFile), temperatures, latentStepSize, independenceProbability) {}

TSFParallelTemperingIntegrator::~TSFParallelTemperingIntegrator() = default;

std::vector<double> TSFParallelTemperingIntegrator::geometricLadder(double lowest, double highest, int count) {
    checkTemperature(lowest, "geometricLadder");
    checkTemperature(highest, "geometricLadder");
    if (count < 2 || !(highest > lowest))
        throw OpenMMException("geometricLadder: need count >= 2 and highest > lowest");
    std::vector<double> ladder(count);
    for (int r = 0; r < count; r++)
        ladder[r] = lowest * std::pow(highest / lowest, (double) r / (count - 1));
    ladder.back() = highest;
    return ladder;
}

void TSFParallelTemperingIntegrator::checkReplica(int replica) const {
    if (replica < 0 || replica >= getNumReplicas())
        throw OpenMMException("TSFParallelTemperingIntegrator: replica index " + std::to_string(replica)
                              + " is out of range (0 to " + std::to_string(getNumReplicas() - 1) + ")");
}

double TSFParallelTemperingIntegrator::getTemperature(int replica) const {
    checkReplica(replica);
    return temperatures[replica];
}

void TSFParallelTemperingIntegrator::setLatentStepSize(double sigma) {
    if (!(sigma >= 0) || !std::isfinite(sigma))
        throw OpenMMException("TSFParallelTemperingIntegrator: the latent step size must be >= 0, got "
                              + std::to_string(sigma));
    latentStepSize = sigma;
}

void TSFParallelTemperingIntegrator::setIndependenceProbability(double probability) {
    if (!(probability >= 0 && probability <= 1))
        throw OpenMMException("TSFParallelTemperingIntegrator: the independence probability must lie in [0, 1], got "
                              + std::to_string(probability));
    independenceProbability = probability;
}

void TSFParallelTemperingIntegrator::setFlowMovesPerStep(int moves) {
    if (moves < 0)
        throw OpenMMException("TSFParallelTemperingIntegrator: flowMovesPerStep must be >= 0");
    flowMovesPerStep = moves;
}

void TSFParallelTemperingIntegrator::setRandomNumberSeed(int seed) {
    randomNumberSeed = seed;
}

void TSFParallelTemperingIntegrator::setCheckStereochemistry(bool check) {
    if (context != nullptr)
        throw OpenMMException("TSFParallelTemperingIntegrator: set the stereochemistry check before creating the Context");
    checkStereochemistry = check;
}

std::vector<Vec3> TSFParallelTemperingIntegrator::getReplicaPositions(int replica) const {
    checkReplica(replica);
    if (replica == 0 && context != nullptr) {
        // Replica 0 lives in the Context, which MD may have moved.
        std::vector<Vec3> positions;
        context->getPositions(positions);
        return positions;
    }
    if (!replicas->started && !replicas->setByUser[replica])
        throw OpenMMException("TSFParallelTemperingIntegrator: replica " + std::to_string(replica)
                              + " has no positions before the first step; they start from the Context's");
    return replicas->positions[replica];
}

void TSFParallelTemperingIntegrator::setReplicaPositions(int replica, const std::vector<Vec3>& positions) {
    checkReplica(replica);
    if ((int) positions.size() != model->getNumParticles())
        throw OpenMMException("TSFParallelTemperingIntegrator: got " + std::to_string(positions.size())
                              + " positions, the System has " + std::to_string(model->getNumParticles()));
    checkFinitePositions(positions, "TSFParallelTemperingIntegrator");
    replicas->positions[replica] = positions;
    replicas->setByUser[replica] = true;
    if (replica == 0 && context != nullptr)
        context->setPositions(positions);
    if (replicas->started)
        kernel.getAs<IntegrateTSFParallelTemperingStepKernel>().invalidate();
}

double TSFParallelTemperingIntegrator::getReplicaPotentialEnergy(int replica) const {
    checkReplica(replica);
    if (!replicas->started)
        throw OpenMMException("TSFParallelTemperingIntegrator: replica energies exist after the first step");
    return replicas->energies[replica];
}

int TSFParallelTemperingIntegrator::getWalkerAtReplica(int replica) const {
    checkReplica(replica);
    return replicas->walkers[replica];
}

const MoveStatistics& TSFParallelTemperingIntegrator::getMoveStatistics(int replica) const {
    checkReplica(replica);
    return replicas->moves[replica];
}

long long TSFParallelTemperingIntegrator::getExchangeAttempts(int pair) const {
    if (pair < 0 || pair >= getNumReplicas() - 1)
        throw OpenMMException("TSFParallelTemperingIntegrator: pair index " + std::to_string(pair) + " is out of range");
    return replicas->exchangeAttempts[pair];
}

long long TSFParallelTemperingIntegrator::getExchangeAcceptances(int pair) const {
    getExchangeAttempts(pair);  // checks the index
    return replicas->exchangeAcceptances[pair];
}

double TSFParallelTemperingIntegrator::getExchangeAcceptanceRate(int pair) const {
    long long attempts = getExchangeAttempts(pair);
    return attempts > 0 ? (double) replicas->exchangeAcceptances[pair] / (double) attempts : 0.0;
}

long long TSFParallelTemperingIntegrator::getNumRoundTrips() const {
    return replicas->roundTrips;
}

void TSFParallelTemperingIntegrator::resetStatistics() {
    replicas->resetStatistics();
}

at::Tensor TSFParallelTemperingIntegrator::getRandomState() const {
    if (!generator)
        throw OpenMMException("TSFParallelTemperingIntegrator: the random state exists once the integrator is bound to a Context");
    return generator->get_state();
}

void TSFParallelTemperingIntegrator::setRandomState(const at::Tensor& state) {
    generator = makeGenerator(randomNumberSeed);
    generator->set_state(state);
}

void TSFParallelTemperingIntegrator::initialize(ContextImpl& contextRef) {
    if (owner != nullptr && &contextRef.getOwner() != owner)
        throw OpenMMException("This Integrator is already bound to a context");
    checkSystemForFlowMoves(contextRef.getSystem(), *model, "TSFParallelTemperingIntegrator");
    context = &contextRef;
    owner = &contextRef.getOwner();
    if (!generator)
        generator = makeGenerator(randomNumberSeed);
    kernel = context->getPlatform().createKernel(IntegrateTSFParallelTemperingStepKernel::Name(), contextRef);
    kernel.getAs<IntegrateTSFParallelTemperingStepKernel>().initialize(contextRef.getSystem(), *this);
}

void TSFParallelTemperingIntegrator::cleanup() {
    kernel = Kernel();
}

std::vector<std::string> TSFParallelTemperingIntegrator::getKernelNames() {
    return {IntegrateTSFParallelTemperingStepKernel::Name()};
}

double TSFParallelTemperingIntegrator::computeKineticEnergy() {
    return kineticEnergyFromVelocities(*context);
}

void TSFParallelTemperingIntegrator::run(int steps, bool warmUp) {
    if (context == nullptr)
        throw OpenMMException("TSFParallelTemperingIntegrator: the integrator is not bound to a Context");
    if (steps < 0)
        throw OpenMMException("TSFParallelTemperingIntegrator: the number of steps must be >= 0");
    kernel.getAs<IntegrateTSFParallelTemperingStepKernel>().execute(*context, *this, steps, warmUp);
}

void TSFParallelTemperingIntegrator::step(int steps) {
    run(steps, false);
    // Like OpenMM's integrators, steps advance the Context's step count (not
    // its time): app.Simulation counts its steps by it. Warm-up moves do not.
    context->setStepCount(context->getStepCount() + steps);
}

void TSFParallelTemperingIntegrator::warmUp(int steps, double targetAcceptance) {
    if (!(targetAcceptance > 0 && targetAcceptance < 1))
        throw OpenMMException("TSFParallelTemperingIntegrator::warmUp: the target acceptance must lie in (0, 1)");
    warmUpTarget = targetAcceptance;
    run(steps, true);
    resetStatistics();
}

void TSFParallelTemperingIntegrator::createCheckpoint(std::ostream& stream) const {
    // Replica positions beyond the Context's own, walkers and energies travel as numbers.
    std::vector<double> values = {latentStepSize, (double) replicas->steps, (double) replicas->roundTrips,
                                  replicas->started ? 1.0 : 0.0};
    for (int r = 0; r < getNumReplicas(); r++) {
        values.push_back(replicas->energies[r]);
        values.push_back(replicas->walkers[r]);
        values.push_back(replicas->heading[r]);
        values.push_back(r < getNumReplicas() - 1 ? (double) replicas->exchangeAttempts[r] : 0.0);
        values.push_back(r < getNumReplicas() - 1 ? (double) replicas->exchangeAcceptances[r] : 0.0);
        for (const Vec3& p : replicas->positions[r])
            values.insert(values.end(), {p[0], p[1], p[2]});
    }
    std::vector<const MoveStatistics*> stats;
    for (const MoveStatistics& m : replicas->moves)
        stats.push_back(&m);
    writeIntegratorCheckpoint(stream, generator.get(), values, stats);
}

void TSFParallelTemperingIntegrator::loadCheckpoint(std::istream& stream) {
    std::vector<double> values;
    std::vector<MoveStatistics*> stats;
    for (MoveStatistics& m : replicas->moves)
        stats.push_back(&m);
    readIntegratorCheckpoint(stream, generator, randomNumberSeed, values, stats);
    const int n = model->getNumParticles(), perReplica = 5 + 3 * n;
    if (values.size() != 4 + (size_t) perReplica * getNumReplicas())
        throw OpenMMException("TSFParallelTemperingIntegrator: the checkpoint was written by another integrator");
    latentStepSize = values[0];
    replicas->steps = (long long) values[1];
    replicas->roundTrips = (long long) values[2];
    replicas->started = values[3] != 0;
    for (int r = 0; r < getNumReplicas(); r++) {
        const double* v = &values[4 + (size_t) r * perReplica];
        replicas->energies[r] = v[0];
        replicas->walkers[r] = (int) v[1];
        replicas->heading[r] = (int) v[2];
        if (r < getNumReplicas() - 1) {
            replicas->exchangeAttempts[r] = (long long) v[3];
            replicas->exchangeAcceptances[r] = (long long) v[4];
        }
        for (int i = 0; i < n; i++)
            replicas->positions[r][i] = Vec3(v[5 + 3 * i], v[6 + 3 * i], v[7 + 3 * i]);
    }
    if (context != nullptr)
        kernel.getAs<IntegrateTSFParallelTemperingStepKernel>().invalidate();
}

} // namespace OpenMMBG
