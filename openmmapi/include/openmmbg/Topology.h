#ifndef OPENMMBG_TOPOLOGY_H_
#define OPENMMBG_TOPOLOGY_H_

#include <openmm/System.h>

#include <string>
#include <utility>
#include <vector>

namespace OpenMMBG {

/** Covalent bonds (i < j, sorted) of a System: HarmonicBondForce bonds and constraints. */
std::vector<std::pair<int, int>> bondsOfSystem(const OpenMM::System& system);

/** Neighbour lists of a bond graph. */
std::vector<std::vector<int>> neighbourLists(int numParticles, const std::vector<std::pair<int, int>>& bonds);

/**
 * What identifies a molecule for a flow: particle count, masses and bond
 * graph. A flow file records it so that a flow is never used on another System.
 */
struct SystemFingerprint {
    int numParticles = 0;
    std::vector<double> masses;                // Da
    std::vector<std::pair<int, int>> bonds;    // i < j, sorted

    static SystemFingerprint of(const OpenMM::System& system);

    /** Empty if `other` is the same molecule, otherwise a sentence naming the first difference. */
    std::string difference(const SystemFingerprint& other) const;
};

} // namespace OpenMMBG

#endif
