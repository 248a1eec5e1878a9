#include "openmmbg/ReplicaExchange.h"

#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/internal/Checkpoint.h"
#include "openmmbg/internal/IntegratorSupport.h"

#include <ATen/ops/rand.h>
#include <openmm/OpenMMException.h>

#include <cmath>

using OpenMM::OpenMMException;

namespace OpenMMBG {

void ReplicaExchange::checkLadder(const std::vector<double>& temperatures, const std::string& who) {
    if (temperatures.size() < 2)
        throw OpenMMException(who + ": replica exchange needs at least 2 temperatures, got "
                              + std::to_string(temperatures.size()));
    for (size_t r = 0; r < temperatures.size(); r++) {
        checkTemperature(temperatures[r], who);
        if (r > 0 && !(temperatures[r] > temperatures[r - 1]))
            throw OpenMMException(who + ": temperatures must be strictly increasing (" + std::to_string(temperatures[r - 1])
                                  + " K is followed by " + std::to_string(temperatures[r]) + " K)");
    }
}

ReplicaExchange::ReplicaExchange(const std::vector<double>& temperatures) : temperatures(temperatures) {
    checkLadder(temperatures, "ReplicaExchange");
    const int count = (int) temperatures.size();
    walkers.resize(count);
    for (int r = 0; r < count; r++)
        walkers[r] = r;
    heading.assign(count, 0);
    heading[0] = +1;  // walker 0 starts at T_1
    statistics.attempts.assign(count - 1, 0);
    statistics.acceptances.assign(count - 1, 0);
}

std::vector<double> ReplicaExchange::geometricLadder(double lowest, double highest, int count) {
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

std::vector<int> ReplicaExchange::exchange(const std::vector<double>& energies, at::Generator& generator) {
    const int pairs = getNumReplicas() - 1;
    if ((int) energies.size() != getNumReplicas())
        throw OpenMMException("replica exchange: got " + std::to_string(energies.size()) + " energies for "
                              + std::to_string(getNumReplicas()) + " replicas");
    const int first = rounds % 2 == 1 ? 1 : 0;
    const int count = first < pairs ? (pairs - first + 1) / 2 : 0;
    std::vector<int> accepted;
    if (count > 0) {
        at::Tensor uniform = at::rand({count}, generator, at::kDouble);
        for (int k = 0; k < count; k++) {
            const int r = first + 2 * k;
            const double betaLow = 1.0 / (OpenMMEnergy::BOLTZMANN * temperatures[r]);
            const double betaHigh = 1.0 / (OpenMMEnergy::BOLTZMANN * temperatures[r + 1]);
            const double logA = (betaLow - betaHigh) * (energies[r] - energies[r + 1]);
            statistics.attempts[r]++;
            if (std::isfinite(logA) && std::log(uniform[k].item<double>()) < logA) {
                statistics.acceptances[r]++;
                std::swap(walkers[r], walkers[r + 1]);
                accepted.push_back(r);
            }
        }
    }
    recordExtremes();
    rounds++;
    return accepted;
}

void ReplicaExchange::recordExtremes() {
    int& bottom = heading[walkers.front()];
    if (bottom == -1)
        statistics.roundTrips++;
    bottom = +1;
    int& top = heading[walkers.back()];
    if (top == +1)
        top = -1;
}

void ReplicaExchange::resetStatistics() {
    std::fill(statistics.attempts.begin(), statistics.attempts.end(), 0);
    std::fill(statistics.acceptances.begin(), statistics.acceptances.end(), 0);
    statistics.roundTrips = 0;
    // Only the walker now at T_1 has a known heading.
    std::fill(heading.begin(), heading.end(), 0);
    heading[walkers.front()] = +1;
}

void ReplicaExchange::writeState(std::ostream& stream) const {
    checkpoint::writeTag(stream, "ReplicaExchange");
    checkpoint::writeVector(stream, walkers);
    checkpoint::writeVector(stream, heading);
    checkpoint::writeVector(stream, statistics.attempts);
    checkpoint::writeVector(stream, statistics.acceptances);
    checkpoint::write(stream, statistics.roundTrips);
    checkpoint::write(stream, rounds);
}

void ReplicaExchange::readState(std::istream& stream) {
    checkpoint::readTag(stream, "ReplicaExchange");
    const size_t count = temperatures.size();
    walkers = checkpoint::readVector<int>(stream, count, "the replica ladder");
    heading = checkpoint::readVector<int>(stream, count, "the replica ladder");
    statistics.attempts = checkpoint::readVector<long long>(stream, count - 1, "the exchange counts");
    statistics.acceptances = checkpoint::readVector<long long>(stream, count - 1, "the exchange counts");
    statistics.roundTrips = checkpoint::read<long long>(stream);
    rounds = checkpoint::read<long long>(stream);
}

} // namespace OpenMMBG
