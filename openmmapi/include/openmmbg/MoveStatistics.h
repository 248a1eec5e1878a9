#ifndef OPENMMBG_MOVESTATISTICS_H_
#define OPENMMBG_MOVESTATISTICS_H_

namespace OpenMMBG {

/** The two kinds of flow moves (docs/math.md, "Monte Carlo moves"). */
enum class MoveKind { RandomWalk = 0, Independence = 1 };

/** Counts of proposed and accepted flow moves, and why proposals were rejected before the energy test. */
struct MoveStatistics {
    long long proposed[2] = {0, 0};  // indexed by MoveKind
    long long accepted[2] = {0, 0};
    long long outOfDomain = 0;       // rejected: outside the coordinates' domain
    long long stereoFlips = 0;       // rejected: a stereocentre changed handedness
    long long failedEnergies = 0;    // rejected: non-finite proposal or energy, or an exception in OpenMM

    long long getProposed(MoveKind kind) const { return proposed[(int) kind]; }
    long long getAccepted(MoveKind kind) const { return accepted[(int) kind]; }
    double acceptanceRate(MoveKind kind) const {
        return proposed[(int) kind] > 0 ? (double) accepted[(int) kind] / (double) proposed[(int) kind] : 0.0;
    }
    double acceptanceRate() const {
        long long p = proposed[0] + proposed[1];
        return p > 0 ? (double) (accepted[0] + accepted[1]) / (double) p : 0.0;
    }
};

} // namespace OpenMMBG

#endif
