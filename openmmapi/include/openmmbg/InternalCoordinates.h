#ifndef OPENMMBG_INTERNALCOORDINATES_H_
#define OPENMMBG_INTERNALCOORDINATES_H_

#include "openmmbg/CoordinateTransform.h"
#include "openmmbg/ZMatrix.h"

#include <openmm/System.h>

#include <memory>
#include <vector>

namespace OpenMMBG {

/**
 * Internal coordinates of a molecule (docs/math.md, "Coordinates").
 *
 * y = [bonds (N-1), angles (N-2), torsions (N-3)], n = 3N - 6:
 *  - bonds: d(a1,a2), d(a2,a3), then the bond of each z-matrix row (nm);
 *  - angles: angle(a1,a2,a3), then angle(i,j,k) of each row (rad, in (0, pi));
 *  - torsions: dihedral(i,j,k,l) of each row (rad), in [cut, cut + 2 pi).
 * e = [position of a1 (nm, 3), polar angle theta and azimuth phi of a1->a2,
 *      rotation psi of a3 about that axis] (6 values).
 *
 * log|det dx/d(e,y)| = logDetJacobian(y) + log sin(theta), where
 * logDetJacobian(y) = 2 sum log(bonds) + sum log sin(angles).
 * Atoms whose references are placed are built together, level by level, so
 * the sequential depth is that of the z-matrix tree, not the atom count.
 */
class InternalCoordinates : public CoordinateTransform {
public:
    /** Torsion cuts default to -pi (torsions in [-pi, pi)). */
    explicit InternalCoordinates(const ZMatrix& zmatrix);
    /** The z-matrix built from the System's bond graph (ZMatrix::fromBonds). */
    explicit InternalCoordinates(const OpenMM::System& system);

    const ZMatrix& getZMatrix() const { return zmatrix; }

    /** Cuts c [N-3]: each torsion lies in [c, c + 2 pi). */
    const at::Tensor& getTorsionCuts() const { return torsionCuts; }
    void setTorsionCuts(const at::Tensor& cuts);
    /**
     * Places every cut at the centre of the least populated of `bins` equal
     * bins over [-pi, pi) of the torsions of the configurations x [B, N, 3].
     */
    void placeTorsionCuts(const at::Tensor& x, int bins = 64);

    /** Index in y of the torsion that places `atom` (a z-matrix row), or -1. */
    int torsionIndexOfAtom(int atom) const;

    int getNumParticles() const override { return zmatrix.getNumParticles(); }
    int getNumCoordinates() const override { return 3 * getNumParticles() - 6; }
    int getNumExternal() const override { return 6; }
    int getNumBonds() const { return getNumParticles() - 1; }
    int getNumAngles() const { return getNumParticles() - 2; }
    int getNumTorsions() const { return getNumParticles() - 3; }

    std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x) const override;
    at::Tensor inverse(const at::Tensor& y, const at::Tensor& e) const override;
    at::Tensor logDetJacobian(const at::Tensor& y) const override;
    at::Tensor inDomain(const at::Tensor& y) const override;
    at::Tensor domainViolation(const at::Tensor& y) const override;
    at::Tensor canonicalExternal(int64_t batch) const override;
    /** The torsions, the last N - 3 coordinates. */
    std::vector<bool> circularCoordinates() const override;
    /**
     * Torsions 0, angles 1, bonds 2: the torsions carry the conformation,
     * and bonds and angles follow it (bgflow's alanine dipeptide flows
     * condition the same way).
     */
    std::vector<int> conditioningLevels() const override;

    std::string getTypeName() const override { return "internal"; }
    void saveState(TensorMap& state, const std::string& prefix) const override;
    static std::shared_ptr<InternalCoordinates> loadState(const TensorMap& state, const std::string& prefix);

private:
    void buildLevels();

    ZMatrix zmatrix;
    at::Tensor torsionCuts;  // [N-3]
    at::Tensor rowAtoms, rowBond, rowAngle, rowTorsion;  // [N-3] int64: i, j, k, l of each row
    struct Level {
        at::Tensor rows;  // indices of z-matrix rows placed at this level
        at::Tensor atoms, bondPartners, anglePartners, torsionPartners;
    };
    std::vector<Level> levels;
};

} // namespace OpenMMBG

#endif
