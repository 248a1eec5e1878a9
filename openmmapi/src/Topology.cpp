#include "openmmbg/Topology.h"

#include <openmm/HarmonicBondForce.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace OpenMMBG {

std::vector<std::pair<int, int>> bondsOfSystem(const OpenMM::System& system) {
    std::set<std::pair<int, int>> bonds;
    auto add = [&](int a, int b) {
        if (a != b)
            bonds.insert({std::min(a, b), std::max(a, b)});
    };
    for (int f = 0; f < system.getNumForces(); f++) {
        if (auto* force = dynamic_cast<const OpenMM::HarmonicBondForce*>(&system.getForce(f))) {
            for (int i = 0; i < force->getNumBonds(); i++) {
                int a, b;
                double length, k;
                force->getBondParameters(i, a, b, length, k);
                add(a, b);
            }
        }
    }
    for (int i = 0; i < system.getNumConstraints(); i++) {
        int a, b;
        double distance;
        system.getConstraintParameters(i, a, b, distance);
        add(a, b);
    }
    return {bonds.begin(), bonds.end()};
}

std::vector<std::vector<int>> neighbourLists(int numParticles, const std::vector<std::pair<int, int>>& bonds) {
    std::vector<std::vector<int>> neighbours(numParticles);
    for (const auto& bond : bonds) {
        neighbours[bond.first].push_back(bond.second);
        neighbours[bond.second].push_back(bond.first);
    }
    for (auto& list : neighbours)
        std::sort(list.begin(), list.end());
    return neighbours;
}

SystemFingerprint SystemFingerprint::of(const OpenMM::System& system) {
    SystemFingerprint fingerprint;
    fingerprint.numParticles = system.getNumParticles();
    for (int i = 0; i < system.getNumParticles(); i++)
        fingerprint.masses.push_back(system.getParticleMass(i));
    fingerprint.bonds = bondsOfSystem(system);
    return fingerprint;
}

std::string SystemFingerprint::difference(const SystemFingerprint& other) const {
    if (numParticles != other.numParticles)
        return "it has " + std::to_string(other.numParticles) + " particles, the flow was made for "
               + std::to_string(numParticles);
    for (int i = 0; i < numParticles; i++)
        if (std::abs(masses[i] - other.masses[i]) > 1e-6 * std::max(1.0, std::abs(masses[i])))
            return "the mass of particle " + std::to_string(i) + " is " + std::to_string(other.masses[i])
                   + " Da, the flow was made for " + std::to_string(masses[i]) + " Da";
    if (bonds != other.bonds) {
        std::set<std::pair<int, int>> mine(bonds.begin(), bonds.end()), theirs(other.bonds.begin(), other.bonds.end());
        for (const auto& bond : mine)
            if (!theirs.count(bond))
                return "it lacks the bond " + std::to_string(bond.first) + "-" + std::to_string(bond.second)
                       + " of the flow's molecule";
        for (const auto& bond : theirs)
            if (!mine.count(bond))
                return "it has a bond " + std::to_string(bond.first) + "-" + std::to_string(bond.second)
                       + " that the flow's molecule lacks";
    }
    return "";
}

} // namespace OpenMMBG
