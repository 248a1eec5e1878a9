#include "openmmbg/InternalCoordinates.h"

#include "openmmbg/Topology.h"
#include "openmmbg/internal/Geometry.h"
#include "openmmbg/internal/TensorChecks.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <algorithm>
#include <cmath>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

at::Tensor longTensor(const std::vector<int64_t>& values) {
    return at::tensor(values, at::kLong);
}

/** Unit vector of polar angle theta and azimuth phi, and the two unit vectors orthogonal to it. */
struct SphericalFrame {
    at::Tensor radial, polar, azimuthal;  // [B, 3]
};

SphericalFrame sphericalFrame(const at::Tensor& theta, const at::Tensor& phi) {
    at::Tensor st = at::sin(theta), ct = at::cos(theta), sp = at::sin(phi), cp = at::cos(phi);
    return {at::stack({st * cp, st * sp, ct}, -1), at::stack({ct * cp, ct * sp, -st}, -1),
            at::stack({-sp, cp, at::zeros_like(sp)}, -1)};
}

} // namespace

InternalCoordinates::InternalCoordinates(const ZMatrix& zmatrix) : zmatrix(zmatrix) {
    zmatrix.validate(zmatrix.getNumParticles());
    torsionCuts = at::full({getNumTorsions()}, -M_PI, at::kDouble);
    buildLevels();
}

InternalCoordinates::InternalCoordinates(const OpenMM::System& system)
    : InternalCoordinates([&] {
          SystemFingerprint fingerprint = SystemFingerprint::of(system);
          return ZMatrix::fromBonds(fingerprint.numParticles, fingerprint.bonds, fingerprint.masses);
      }()) {}

void InternalCoordinates::buildLevels() {
    const int n = getNumParticles();
    std::vector<int> level(n, -1);
    for (int seed : zmatrix.seeds)
        level[seed] = 0;
    std::vector<std::vector<int64_t>> rowsAt;
    std::vector<int64_t> atoms, bonds, angles, torsions;
    for (size_t r = 0; r < zmatrix.rows.size(); r++) {
        const ZMatrixRow& row = zmatrix.rows[r];
        int l = 1 + std::max({level[row.bondPartner], level[row.anglePartner], level[row.torsionPartner]});
        level[row.atom] = l;
        if ((int) rowsAt.size() < l)
            rowsAt.resize(l);
        rowsAt[l - 1].push_back((int64_t) r);
        atoms.push_back(row.atom);
        bonds.push_back(row.bondPartner);
        angles.push_back(row.anglePartner);
        torsions.push_back(row.torsionPartner);
    }
    rowAtoms = longTensor(atoms);
    rowBond = longTensor(bonds);
    rowAngle = longTensor(angles);
    rowTorsion = longTensor(torsions);
    levels.clear();
    for (const std::vector<int64_t>& rows : rowsAt) {
        Level level;
        level.rows = longTensor(rows);
        level.atoms = rowAtoms.index_select(0, level.rows);
        level.bondPartners = rowBond.index_select(0, level.rows);
        level.anglePartners = rowAngle.index_select(0, level.rows);
        level.torsionPartners = rowTorsion.index_select(0, level.rows);
        levels.push_back(level);
    }
}

void InternalCoordinates::setTorsionCuts(const at::Tensor& cuts) {
    if (!cuts.defined() || cuts.dim() != 1 || cuts.size(0) != getNumTorsions())
        throw OpenMMException("InternalCoordinates: need one torsion cut per torsion (" + std::to_string(getNumTorsions())
                              + ")");
    at::Tensor values = cuts.to(at::kDouble).contiguous().clone();
    if (!at::isfinite(values).all().item<bool>())
        throw OpenMMException("InternalCoordinates: torsion cuts must be finite");
    torsionCuts = values;
}

void InternalCoordinates::placeTorsionCuts(const at::Tensor& x, int bins) {
    checkConfigurationTensor(x, getNumParticles(), "InternalCoordinates::placeTorsionCuts");
    if (bins < 2)
        throw OpenMMException("InternalCoordinates::placeTorsionCuts: need at least 2 bins");
    at::Tensor positions = x.detach();
    at::Tensor torsions = geometry::dihedral(positions.index_select(1, rowAtoms), positions.index_select(1, rowBond),
                                             positions.index_select(1, rowAngle), positions.index_select(1, rowTorsion));
    // Bin of each torsion in [-pi, pi), counted per torsion.
    at::Tensor bin = at::floor((torsions + M_PI) / (2 * M_PI) * bins).to(at::kLong).clamp(0, bins - 1);
    at::Tensor counts = at::zeros({getNumTorsions(), bins}, at::kLong);
    counts.scatter_add_(1, bin.transpose(0, 1).contiguous(), at::ones({bin.size(1), bin.size(0)}, at::kLong));
    std::vector<double> cuts(getNumTorsions());
    for (int t = 0; t < getNumTorsions(); t++) {
        // Several bins are often equally empty: take the middle of the longest
        // circular run of them, as far from the data as possible.
        std::vector<int64_t> count(bins);
        for (int b = 0; b < bins; b++)
            count[b] = counts[t][b].item<int64_t>();
        int64_t fewest = *std::min_element(count.begin(), count.end());
        int bestStart = 0, bestLength = 0;
        for (int start = 0; start < bins; start++) {
            if (count[start] != fewest || count[(start + bins - 1) % bins] == fewest)
                continue;  // not the first bin of a run
            int length = 0;
            while (length < bins && count[(start + length) % bins] == fewest)
                length++;
            if (length > bestLength) {
                bestLength = length;
                bestStart = start;
            }
        }
        if (bestLength == 0)
            bestLength = bins;  // every bin equally full: any cut will do
        double centre = bestStart + 0.5 * bestLength;
        cuts[t] = std::remainder(-M_PI + centre * (2 * M_PI / bins), 2 * M_PI);
    }
    torsionCuts = at::tensor(cuts, at::kDouble);
}

int InternalCoordinates::torsionIndexOfAtom(int atom) const {
    for (size_t r = 0; r < zmatrix.rows.size(); r++)
        if (zmatrix.rows[r].atom == atom)
            return getNumBonds() + getNumAngles() + (int) r;
    return -1;
}

std::pair<at::Tensor, at::Tensor> InternalCoordinates::forward(const at::Tensor& x) const {
    checkConfigurationTensor(x, getNumParticles(), "InternalCoordinates::forward");
    const auto& s = zmatrix.seeds;
    at::Tensor a1 = x.select(1, s[0]), a2 = x.select(1, s[1]), a3 = x.select(1, s[2]);
    const at::Device device = x.device();
    at::Tensor xi = x.index_select(1, rowAtoms.to(device)), xj = x.index_select(1, rowBond.to(device));
    at::Tensor xk = x.index_select(1, rowAngle.to(device)), xl = x.index_select(1, rowTorsion.to(device));

    at::Tensor bonds = at::cat({geometry::length(a2 - a1).unsqueeze(1), geometry::length(a3 - a2).unsqueeze(1),
                                geometry::length(xi - xj)}, 1);
    at::Tensor angles = at::cat({geometry::angle(a1, a2, a3).unsqueeze(1), geometry::angle(xi, xj, xk)}, 1);
    at::Tensor torsions = geometry::dihedral(xi, xj, xk, xl);
    at::Tensor cuts = torsionCuts.to(x.device());
    torsions = cuts + at::remainder(torsions - cuts, 2 * M_PI);

    // External: a1, direction of a1->a2, rotation of a3 about it.
    at::Tensor u = (a2 - a1) / bonds.select(1, 0).unsqueeze(1);
    at::Tensor theta = at::atan2(at::sqrt(u.select(1, 0).square() + u.select(1, 1).square()), u.select(1, 2));
    at::Tensor phi = at::atan2(u.select(1, 1), u.select(1, 0));
    SphericalFrame frame = sphericalFrame(theta, phi);
    at::Tensor r = a3 - a2;
    at::Tensor psi = at::atan2(geometry::dot3(r, frame.azimuthal), geometry::dot3(r, frame.polar));
    at::Tensor e = at::cat({a1, theta.unsqueeze(1), phi.unsqueeze(1), psi.unsqueeze(1)}, 1);
    return {at::cat({bonds, angles, torsions}, 1), e};
}

at::Tensor InternalCoordinates::inverse(const at::Tensor& y, const at::Tensor& e) const {
    const int64_t nb = getNumBonds(), na = getNumAngles(), nt = getNumTorsions();
    if (!y.defined() || y.dim() != 2 || y.size(1) != getNumCoordinates() || y.scalar_type() != at::kDouble)
        throw OpenMMException("InternalCoordinates::inverse: y must be float64 of shape [batch, "
                              + std::to_string(getNumCoordinates()) + "], got " + shapeString(y));
    if (!e.defined() || e.dim() != 2 || e.size(1) != 6 || e.size(0) != y.size(0))
        throw OpenMMException("InternalCoordinates::inverse: e must have shape [batch, 6], got " + shapeString(e));
    const int64_t batch = y.size(0);
    at::Tensor bonds = y.narrow(1, 0, nb), angles = y.narrow(1, nb, na), torsions = y.narrow(1, nb + na, nt);

    const auto& s = zmatrix.seeds;
    at::Tensor a1 = e.narrow(1, 0, 3);
    SphericalFrame frame = sphericalFrame(e.select(1, 3), e.select(1, 4));
    at::Tensor psi = e.select(1, 5), alpha = angles.select(1, 0);
    at::Tensor a2 = a1 + bonds.select(1, 0).unsqueeze(1) * frame.radial;
    at::Tensor sideways = at::cos(psi).unsqueeze(1) * frame.polar + at::sin(psi).unsqueeze(1) * frame.azimuthal;
    at::Tensor a3 = a2 + bonds.select(1, 1).unsqueeze(1)
                             * (-at::cos(alpha).unsqueeze(1) * frame.radial + at::sin(alpha).unsqueeze(1) * sideways);

    at::Tensor x = at::zeros({batch, getNumParticles(), 3}, y.options());
    x = x.index_copy(1, longTensor({s[0], s[1], s[2]}).to(y.device()), at::stack({a1, a2, a3}, 1));
    at::Tensor rowBonds = bonds.narrow(1, 2, nt), rowAngles = angles.narrow(1, 1, nt);
    for (const Level& level : levels) {
        at::Tensor rows = level.rows.to(y.device());
        at::Tensor placed = geometry::place(
            x.index_select(1, level.bondPartners.to(y.device())), x.index_select(1, level.anglePartners.to(y.device())),
            x.index_select(1, level.torsionPartners.to(y.device())), rowBonds.index_select(1, rows),
            rowAngles.index_select(1, rows), torsions.index_select(1, rows));
        x = x.index_copy(1, level.atoms.to(y.device()), placed);
    }
    return x;
}

at::Tensor InternalCoordinates::logDetJacobian(const at::Tensor& y) const {
    const int64_t nb = getNumBonds(), na = getNumAngles();
    return 2 * at::log(y.narrow(1, 0, nb)).sum(1) + at::log(at::sin(y.narrow(1, nb, na))).sum(1);
}

at::Tensor InternalCoordinates::inDomain(const at::Tensor& y) const {
    const int64_t nb = getNumBonds(), na = getNumAngles(), nt = getNumTorsions();
    at::Tensor cuts = torsionCuts.to(y.device());
    at::Tensor bonds = y.narrow(1, 0, nb), angles = y.narrow(1, nb, na), torsions = y.narrow(1, nb + na, nt);
    return (bonds > 0).all(1) & (angles > 0).all(1) & (angles < M_PI).all(1) & (torsions >= cuts).all(1)
           & (torsions < cuts + 2 * M_PI).all(1);
}

at::Tensor InternalCoordinates::domainViolation(const at::Tensor& y) const {
    const int64_t nb = getNumBonds(), na = getNumAngles(), nt = getNumTorsions();
    at::Tensor cuts = torsionCuts.to(y.device());
    at::Tensor bonds = y.narrow(1, 0, nb), angles = y.narrow(1, nb, na), torsions = y.narrow(1, nb + na, nt);
    return at::relu(-bonds).square().sum(1) + at::relu(-angles).square().sum(1)
           + at::relu(angles - M_PI).square().sum(1) + at::relu(cuts - torsions).square().sum(1)
           + at::relu(torsions - cuts - 2 * M_PI).square().sum(1);
}

std::vector<bool> InternalCoordinates::circularCoordinates() const {
    std::vector<bool> flags(getNumCoordinates(), false);
    std::fill(flags.end() - getNumTorsions(), flags.end(), true);
    return flags;
}

std::vector<int> InternalCoordinates::conditioningLevels() const {
    std::vector<int> levels(getNumBonds(), 2);
    levels.insert(levels.end(), getNumAngles(), 1);
    levels.insert(levels.end(), getNumTorsions(), 0);
    return levels;
}

at::Tensor InternalCoordinates::canonicalExternal(int64_t batch) const {
    // a1 at the origin, a1->a2 along +x (theta = pi/2, phi = 0), psi = 0.
    at::Tensor e = at::zeros({batch, 6}, at::kDouble);
    e.select(1, 3).fill_(M_PI / 2);
    return e;
}

void InternalCoordinates::saveState(TensorMap& state, const std::string& prefix) const {
    const auto& s = zmatrix.seeds;
    state[prefix + "seeds"] = longTensor({s[0], s[1], s[2]});
    std::vector<int64_t> rows;
    for (const ZMatrixRow& row : zmatrix.rows)
        rows.insert(rows.end(), {row.atom, row.bondPartner, row.anglePartner, row.torsionPartner});
    state[prefix + "rows"] = longTensor(rows).reshape({-1, 4});
    state[prefix + "torsion_cuts"] = torsionCuts.clone();
}

std::shared_ptr<InternalCoordinates> InternalCoordinates::loadState(const TensorMap& state, const std::string& prefix) {
    for (const char* key : {"seeds", "rows", "torsion_cuts"})
        if (!state.count(prefix + key))
            throw OpenMMException("InternalCoordinates: the saved state lacks '" + prefix + key + "'");
    ZMatrix zmatrix;
    at::Tensor seeds = state.at(prefix + "seeds").to(at::kLong), rows = state.at(prefix + "rows").to(at::kLong);
    if (seeds.numel() != 3 || rows.dim() != 2 || rows.size(1) != 4)
        throw OpenMMException("InternalCoordinates: the saved z-matrix is malformed");
    for (int i = 0; i < 3; i++)
        zmatrix.seeds[i] = (int) seeds[i].item<int64_t>();
    for (int64_t r = 0; r < rows.size(0); r++)
        zmatrix.rows.push_back({(int) rows[r][0].item<int64_t>(), (int) rows[r][1].item<int64_t>(),
                                (int) rows[r][2].item<int64_t>(), (int) rows[r][3].item<int64_t>()});
    auto coordinates = std::make_shared<InternalCoordinates>(zmatrix);
    coordinates->setTorsionCuts(state.at(prefix + "torsion_cuts"));
    return coordinates;
}

} // namespace OpenMMBG
