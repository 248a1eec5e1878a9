#ifndef OPENMMBG_REPLICAEXCHANGE_H_
#define OPENMMBG_REPLICAEXCHANGE_H_

#include <ATen/core/Generator.h>

#include <iosfwd>
#include <string>
#include <vector>

namespace OpenMMBG {

/** Replica exchange bookkeeping: attempts and acceptances per neighbouring pair, and round trips. */
struct ExchangeStatistics {
    std::vector<long long> attempts, acceptances;  // per pair (r, r + 1)
    long long roundTrips = 0;                      // walkers back at T_1 after visiting T_R since their last visit

    /** Accepted / attempted exchanges of pair (pair, pair + 1); 0 before any attempt. */
    double acceptanceRate(int pair) const {
        return attempts[pair] > 0 ? (double) acceptances[pair] / (double) attempts[pair] : 0.0;
    }
};

/**
 * Temperature replica exchange between neighbours (docs/math.md, "Parallel
 * tempering"). Rounds alternate between the even pairs (0-1, 2-3, ...) and
 * the odd pairs (1-2, 3-4, ...); each pair is accepted with
 * min(1, exp[(beta_r - beta_r+1)(U_r - U_r+1)]). The decision needs only the
 * energies, so TSFParallelTemperingIntegrator and MD-based replica exchange
 * share it; whoever holds the configurations swaps them.
 *
 * Index r is the temperature slot T_r. Walkers are numbered by the slot they
 * started at; the object tracks which walker sits at which temperature, to
 * count round trips T_1 -> T_R -> T_1.
 */
class ReplicaExchange {
public:
    /** temperatures (K): at least two, positive and strictly increasing. */
    explicit ReplicaExchange(const std::vector<double>& temperatures);

    /** Throws unless there are at least two temperatures, positive and strictly increasing; `who` prefixes the message. */
    static void checkLadder(const std::vector<double>& temperatures, const std::string& who);
    /** count >= 2 temperatures spaced geometrically from lowest to highest (K). */
    static std::vector<double> geometricLadder(double lowest, double highest, int count);

    int getNumReplicas() const { return (int) temperatures.size(); }
    const std::vector<double>& getTemperatures() const { return temperatures; }

    /**
     * One round of exchanges. energies[r] is the potential energy (kJ/mol) of
     * the configuration at T_r. Draws one uniform per attempted pair from
     * `generator`, updates walkers and statistics, and returns the accepted r
     * in increasing order: the caller swaps what is at r and r + 1, in that order.
     */
    std::vector<int> exchange(const std::vector<double>& energies, at::Generator& generator);

    /** Rounds done so far; the next round is an odd-pair round if this is odd. */
    long long getNumRounds() const { return rounds; }
    /** The walker at temperature index `replica`. */
    int getWalker(int replica) const { return walkers[replica]; }
    const ExchangeStatistics& getStatistics() const { return statistics; }
    /** Clears the counts; round trips are counted afresh from the walker now at T_1. */
    void resetStatistics();

    /** Walkers, round count and statistics, for Context checkpoints. */
    void writeState(std::ostream& stream) const;
    void readState(std::istream& stream);

private:
    void recordExtremes();

    std::vector<double> temperatures;
    std::vector<int> walkers;  // walker at each temperature
    std::vector<int> heading;  // per walker: +1 after T_1, -1 after T_R, 0 neither yet
    ExchangeStatistics statistics;
    long long rounds = 0;
};

} // namespace OpenMMBG

#endif
