#ifndef OPENMMBG_ZMATRIX_H_
#define OPENMMBG_ZMATRIX_H_

#include <array>
#include <string>
#include <utility>
#include <vector>

namespace OpenMMBG {

/** One placed atom: bond to j, angle (atom, j, k), torsion (atom, j, k, l). */
struct ZMatrixRow {
    int atom, bondPartner, anglePartner, torsionPartner;  // i, j, k, l
};

/**
 * The order and references in which internal coordinates place the atoms of a
 * molecule: three seed atoms a1-a2-a3, then every other atom relative to
 * atoms placed before it (docs/math.md, "Coordinates").
 */
struct ZMatrix {
    std::array<int, 3> seeds{{0, 1, 2}};
    std::vector<ZMatrixRow> rows;

    int getNumParticles() const { return 3 + (int) rows.size(); }

    /**
     * Builds a z-matrix from a bond graph: the seeds are a heavy-atom chain at
     * the centre of the graph, heavy atoms are placed before hydrogens, closest
     * to the seeds first. The first atom placed from an atom j takes a torsion
     * along a bonded chain atom-j-k-l (an improper reference l bonded to j if
     * none exists); its later siblings take their torsion relative to it,
     * (atom, j, parent of j, first child of j), which stays near +-120 or 180
     * degrees for methyl hydrogens and carbonyl oxygens instead of rotating
     * with the group. Throws if the graph is not connected or has fewer than
     * three atoms.
     *
     * @param masses  Da, to tell hydrogens (mass < 1.5) from heavy atoms
     */
    static ZMatrix fromBonds(int numParticles, const std::vector<std::pair<int, int>>& bonds,
                             const std::vector<double>& masses);

    /**
     * Throws an OpenMMException unless every atom 0..numParticles-1 appears
     * exactly once and each row refers to distinct atoms placed before it.
     */
    void validate(int numParticles) const;

    /** One line per atom, e.g. "5: bond 4, angle 1, torsion 0". */
    std::string describe() const;
};

} // namespace OpenMMBG

#endif
