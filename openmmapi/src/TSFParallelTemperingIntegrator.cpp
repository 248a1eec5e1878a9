#include "openmmbg/TSFParallelTemperingIntegrator.h"

#include "openmmbg/BGKernels.h"
#include "openmmbg/ReplicaExchange.h"
#include "openmmbg/internal/IntegratorSupport.h"

#include <openmm/OpenMMException.h>

using namespace OpenMM;

namespace OpenMMBG {

TSFParallelTemperingIntegrator::TSFParallelTemperingIntegrator(FlowModel&& model,
                                                               const std::vector<double>& temperatures,
                                                               double latentStepSize, double independenceProbability,
                                                               bool)
    : FlowMoveIntegrator(std::move(model), latentStepSize, independenceProbability, "TSFParallelTemperingIntegrator"),
      temperatures(temperatures) {
    ReplicaExchange::checkLadder(temperatures, getClassName());
}

TSFParallelTemperingIntegrator::TSFParallelTemperingIntegrator(const FlowModel& model,
                                                               const std::vector<double>& temperatures,
                                                               double latentStepSize, double independenceProbability)
    : TSFParallelTemperingIntegrator(model.clone(), temperatures, latentStepSize, independenceProbability, true) {}

TSFParallelTemperingIntegrator::TSFParallelTemperingIntegrator(const std::string& flowFile,
                                                               const std::vector<double>& temperatures,
                                                               double latentStepSize, double independenceProbability)
    : TSFParallelTemperingIntegrator(FlowModel::load(flowFile), temperatures, latentStepSize,
                                     independenceProbability, true) {}

std::vector<double> TSFParallelTemperingIntegrator::geometricLadder(double lowest, double highest, int count) {
    return ReplicaExchange::geometricLadder(lowest, highest, count);
}

void TSFParallelTemperingIntegrator::checkReplica(int replica) const {
    if (replica < 0 || replica >= getNumReplicas())
        throw OpenMMException(getClassName() + ": replica index " + std::to_string(replica)
                              + " is out of range (0 to " + std::to_string(getNumReplicas() - 1) + ")");
}

void TSFParallelTemperingIntegrator::checkPair(int pair) const {
    if (pair < 0 || pair >= getNumReplicas() - 1)
        throw OpenMMException(getClassName() + ": pair index " + std::to_string(pair) + " is out of range (0 to "
                              + std::to_string(getNumReplicas() - 2) + ")");
}

double TSFParallelTemperingIntegrator::getTemperature(int replica) const {
    checkReplica(replica);
    return temperatures[replica];
}

void TSFParallelTemperingIntegrator::setFlowMovesPerStep(int moves) {
    if (moves < 0)
        throw OpenMMException(getClassName() + ": flowMovesPerStep must be >= 0");
    flowMovesPerStep = moves;
}

std::vector<Vec3> TSFParallelTemperingIntegrator::getReplicaPositions(int replica) const {
    checkReplica(replica);
    return getKernel<IntegrateTSFParallelTemperingStepKernel>().getReplicaPositions(*context, replica);
}

void TSFParallelTemperingIntegrator::setReplicaPositions(int replica, const std::vector<Vec3>& positions) {
    checkReplica(replica);
    if ((int) positions.size() != getFlowModel().getNumParticles())
        throw OpenMMException(getClassName() + ": got " + std::to_string(positions.size())
                              + " positions, the System has " + std::to_string(getFlowModel().getNumParticles()));
    checkFinitePositions(positions, getClassName());
    getKernel<IntegrateTSFParallelTemperingStepKernel>().setReplicaPositions(*context, replica, positions);
}

double TSFParallelTemperingIntegrator::getReplicaPotentialEnergy(int replica) const {
    checkReplica(replica);
    return getKernel<IntegrateTSFParallelTemperingStepKernel>().getReplicaPotentialEnergy(replica);
}

int TSFParallelTemperingIntegrator::getWalkerAtReplica(int replica) const {
    checkReplica(replica);
    if (context == nullptr)
        return replica;  // no exchange yet
    return getKernel<IntegrateTSFParallelTemperingStepKernel>().getWalkerAtReplica(replica);
}

MoveStatistics TSFParallelTemperingIntegrator::getMoveStatistics(int replica) const {
    checkReplica(replica);
    if (context == nullptr)
        return MoveStatistics();
    return getKernel<IntegrateTSFParallelTemperingStepKernel>().getMoveStatistics(replica);
}

ExchangeStatistics TSFParallelTemperingIntegrator::getExchangeStatistics() const {
    if (context != nullptr)
        return getKernel<IntegrateTSFParallelTemperingStepKernel>().getExchangeStatistics();
    ExchangeStatistics none;  // no exchange yet
    none.attempts.assign(getNumReplicas() - 1, 0);
    none.acceptances.assign(getNumReplicas() - 1, 0);
    return none;
}

long long TSFParallelTemperingIntegrator::getExchangeAttempts(int pair) const {
    checkPair(pair);
    return getExchangeStatistics().attempts[pair];
}

long long TSFParallelTemperingIntegrator::getExchangeAcceptances(int pair) const {
    checkPair(pair);
    return getExchangeStatistics().acceptances[pair];
}

double TSFParallelTemperingIntegrator::getExchangeAcceptanceRate(int pair) const {
    checkPair(pair);
    return getExchangeStatistics().acceptanceRate(pair);
}

long long TSFParallelTemperingIntegrator::getNumRoundTrips() const {
    return getExchangeStatistics().roundTrips;
}

std::string TSFParallelTemperingIntegrator::getKernelName() const {
    return IntegrateTSFParallelTemperingStepKernel::Name();
}

void TSFParallelTemperingIntegrator::initializeKernel(const System& system) {
    getKernel<IntegrateTSFParallelTemperingStepKernel>().initialize(system, *this);
}

} // namespace OpenMMBG
