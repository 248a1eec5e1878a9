#include "openmmbg/ZMatrix.h"

#include "openmmbg/Topology.h"

#include <openmm/OpenMMException.h>

#include <algorithm>
#include <climits>
#include <queue>
#include <sstream>
#include <tuple>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

const double HYDROGEN_MASS_LIMIT = 1.5;  // Da

/** Graph distances from `start`; INT_MAX where unreachable. */
std::vector<int> distancesFrom(int start, const std::vector<std::vector<int>>& neighbours,
                               const std::vector<bool>& allowed) {
    std::vector<int> distance(neighbours.size(), INT_MAX);
    std::queue<int> queue;
    distance[start] = 0;
    queue.push(start);
    while (!queue.empty()) {
        int atom = queue.front();
        queue.pop();
        for (int next : neighbours[atom])
            if (allowed[next] && distance[next] == INT_MAX) {
                distance[next] = distance[atom] + 1;
                queue.push(next);
            }
    }
    return distance;
}

} // namespace

ZMatrix ZMatrix::fromBonds(int numParticles, const std::vector<std::pair<int, int>>& bonds,
                           const std::vector<double>& masses) {
    if (numParticles < 3)
        throw OpenMMException("ZMatrix: internal coordinates need at least 3 atoms, got " + std::to_string(numParticles));
    if ((int) masses.size() != numParticles)
        throw OpenMMException("ZMatrix: need one mass per atom");
    std::vector<std::vector<int>> neighbours = neighbourLists(numParticles, bonds);
    std::vector<bool> heavy(numParticles), everyAtom(numParticles, true);
    for (int i = 0; i < numParticles; i++)
        heavy[i] = masses[i] >= HYDROGEN_MASS_LIMIT;
    std::vector<int> fromZero = distancesFrom(0, neighbours, everyAtom);
    for (int i = 0; i < numParticles; i++)
        if (fromZero[i] == INT_MAX)
            throw OpenMMException("ZMatrix: the bond graph is not connected (atom " + std::to_string(i)
                                  + " cannot be reached from atom 0); give the z-matrix explicitly");

    // Middle seed: the atom of smallest eccentricity within the heavy atoms
    // (all atoms if fewer than three are heavy) that has two neighbours.
    int numHeavy = (int) std::count(heavy.begin(), heavy.end(), true);
    std::vector<bool> core = numHeavy >= 3 ? heavy : everyAtom;
    std::vector<int> coreNeighbourCount(numParticles, 0);
    for (int i = 0; i < numParticles; i++)
        for (int n : neighbours[i])
            coreNeighbourCount[i] += core[n] ? 1 : 0;
    int middle = -1, bestEccentricity = INT_MAX;
    for (int i = 0; i < numParticles; i++) {
        if (!core[i] || coreNeighbourCount[i] < 2)
            continue;
        std::vector<int> distance = distancesFrom(i, neighbours, core);
        int eccentricity = 0;
        for (int j = 0; j < numParticles; j++)
            if (core[j])
                eccentricity = std::max(eccentricity, distance[j]);
        if (eccentricity < bestEccentricity) {
            bestEccentricity = eccentricity;
            middle = i;
        }
    }
    if (middle < 0) {
        // No core atom with two core neighbours: any atom with two neighbours.
        for (int i = 0; i < numParticles && middle < 0; i++)
            if (neighbours[i].size() >= 2)
                middle = i;
        core = everyAtom;
        for (int i = 0; i < numParticles; i++) {
            coreNeighbourCount[i] = (int) neighbours[i].size();
        }
    }
    if (middle < 0)
        throw OpenMMException("ZMatrix: no atom has two bonded neighbours; give the z-matrix explicitly");
    // Outer seeds: the two core neighbours of the middle seed with the most core neighbours themselves.
    std::vector<int> outer;
    for (int n : neighbours[middle])
        if (core[n])
            outer.push_back(n);
    std::stable_sort(outer.begin(), outer.end(),
                     [&](int a, int b) { return coreNeighbourCount[a] > coreNeighbourCount[b]; });
    ZMatrix zmatrix;
    zmatrix.seeds = {outer[1], middle, outer[0]};

    std::vector<bool> placed(numParticles, false);
    for (int seed : zmatrix.seeds)
        placed[seed] = true;
    std::vector<int> depth = distancesFrom(middle, neighbours, everyAtom);
    // parent[x]: the atom x was placed from; firstChild[x]: the first atom placed from x.
    // The seeds form a chain a1 - a2 - a3: a2 is the parent of both ends.
    std::vector<int> parent(numParticles, -1), firstChild(numParticles, -1);
    const auto& s = zmatrix.seeds;
    parent[s[0]] = s[1];
    parent[s[2]] = s[1];
    parent[s[1]] = s[0];
    firstChild[s[1]] = s[2];
    enum TorsionKind { SIBLING = 0, PROPER = 1, IMPROPER = 2 };
    for (int step = 3; step < numParticles; step++) {
        // Candidates ranked by (hydrogen, graph depth, torsion kind, light
        // references, index): heavy atoms before hydrogens, close to the
        // seeds first. Siblings (atoms placed from the same atom j) take
        // their torsion relative to j's first child: for a methyl group or a
        // carbonyl only the first child's torsion then rotates, the others
        // stay near +-120 or 180 degrees, which a flow models easily.
        std::tuple<int, int, int, int, int> bestRank(INT_MAX, 0, 0, 0, 0);
        ZMatrixRow best{-1, -1, -1, -1};
        for (int i = 0; i < numParticles; i++) {
            if (placed[i])
                continue;
            for (int j : neighbours[i]) {
                if (!placed[j])
                    continue;
                auto consider = [&](int k, int l, TorsionKind kind) {
                    int lightReferences = !heavy[j] + !heavy[k] + !heavy[l];
                    auto rank = std::make_tuple(heavy[i] ? 0 : 1, depth[i], (int) kind, lightReferences, i);
                    if (rank < bestRank) {
                        bestRank = rank;
                        best = {i, j, k, l};
                    }
                };
                const int sibling = firstChild[j], up = parent[j];
                if (sibling >= 0 && up >= 0 && sibling != up)
                    consider(up, sibling, SIBLING);
                for (int k : neighbours[j]) {
                    if (!placed[k] || k == i)
                        continue;
                    for (int l : neighbours[k])
                        if (placed[l] && l != j && l != i)
                            consider(k, l, PROPER);
                    for (int l : neighbours[j])
                        if (placed[l] && l != k && l != i)
                            consider(k, l, IMPROPER);
                }
            }
        }
        if (best.atom < 0)
            throw OpenMMException("ZMatrix: cannot place atom references from the bond graph; "
                                  "give the z-matrix explicitly");
        placed[best.atom] = true;
        parent[best.atom] = best.bondPartner;
        if (firstChild[best.bondPartner] < 0)
            firstChild[best.bondPartner] = best.atom;
        zmatrix.rows.push_back(best);
    }
    zmatrix.validate(numParticles);
    return zmatrix;
}

void ZMatrix::validate(int numParticles) const {
    std::vector<int> placedAt(numParticles, -1);
    auto fail = [](const std::string& message) { throw OpenMMException("ZMatrix: " + message); };
    auto checkIndex = [&](int atom) {
        if (atom < 0 || atom >= numParticles)
            fail("atom index " + std::to_string(atom) + " is out of range for " + std::to_string(numParticles)
                 + " particles");
    };
    for (int s = 0; s < 3; s++) {
        checkIndex(seeds[s]);
        if (placedAt[seeds[s]] >= 0)
            fail("seed atom " + std::to_string(seeds[s]) + " appears twice");
        placedAt[seeds[s]] = s;
    }
    for (size_t r = 0; r < rows.size(); r++) {
        const ZMatrixRow& row = rows[r];
        for (int atom : {row.atom, row.bondPartner, row.anglePartner, row.torsionPartner})
            checkIndex(atom);
        if (placedAt[row.atom] >= 0)
            fail("atom " + std::to_string(row.atom) + " appears twice");
        for (int reference : {row.bondPartner, row.anglePartner, row.torsionPartner})
            if (placedAt[reference] < 0)
                fail("atom " + std::to_string(row.atom) + " refers to atom " + std::to_string(reference)
                     + ", which is not placed before it");
        if (row.bondPartner == row.anglePartner || row.bondPartner == row.torsionPartner
            || row.anglePartner == row.torsionPartner)
            fail("atom " + std::to_string(row.atom) + " needs three distinct reference atoms");
        placedAt[row.atom] = (int) r + 3;
    }
    for (int i = 0; i < numParticles; i++)
        if (placedAt[i] < 0)
            fail("atom " + std::to_string(i) + " is not covered (" + std::to_string(getNumParticles())
                 + " of " + std::to_string(numParticles) + " atoms placed)");
}

std::string ZMatrix::describe() const {
    std::ostringstream out;
    out << "seeds " << seeds[0] << " " << seeds[1] << " " << seeds[2] << "\n";
    for (const ZMatrixRow& row : rows)
        out << row.atom << ": bond " << row.bondPartner << ", angle " << row.anglePartner << ", torsion "
            << row.torsionPartner << "\n";
    return out.str();
}

} // namespace OpenMMBG
