// Internal and Cartesian coordinates: invertibility, log-determinant against
// autograd, the automatic z-matrix, torsion cuts, domain and chirality.

#include "TestSupport.h"
#include "openmmbg/CartesianCoordinates.h"
#include "openmmbg/InternalCoordinates.h"
#include "openmmbg/Stereochemistry.h"
#include "openmmbg/Topology.h"

#include <gtest/gtest.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <array>
#include <set>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;
using OpenMM::OpenMMException;

namespace {

double maxAbs(const at::Tensor& t) {
    return t.abs().max().item<double>();
}

InternalCoordinates alanineCoordinates(const AlanineDipeptide& molecule) {
    return InternalCoordinates(*molecule.system);
}

} // namespace

TEST(ZMatrix, AutomaticForAlanineDipeptideCoversEveryAtom) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    InternalCoordinates ic = alanineCoordinates(molecule);
    const ZMatrix& z = ic.getZMatrix();
    EXPECT_EQ(z.getNumParticles(), 22);
    EXPECT_NO_THROW(z.validate(22));
    std::set<int> atoms(z.seeds.begin(), z.seeds.end());
    for (const ZMatrixRow& row : z.rows)
        atoms.insert(row.atom);
    EXPECT_EQ(atoms.size(), 22u);
    // Seeds are a bonded heavy-atom chain; every row bonds to its bond partner.
    auto bonds = bondsOfSystem(*molecule.system);
    std::set<std::pair<int, int>> bondSet(bonds.begin(), bonds.end());
    auto bonded = [&](int a, int b) { return bondSet.count({std::min(a, b), std::max(a, b)}) > 0; };
    EXPECT_TRUE(bonded(z.seeds[0], z.seeds[1]));
    EXPECT_TRUE(bonded(z.seeds[1], z.seeds[2]));
    for (int seed : z.seeds)
        EXPECT_GT(molecule.system->getParticleMass(seed), 1.5);
    for (const ZMatrixRow& row : z.rows)
        EXPECT_TRUE(bonded(row.atom, row.bondPartner)) << row.atom;
    // Heavy atoms are placed before hydrogens.
    bool sawHydrogen = false;
    for (const ZMatrixRow& row : z.rows) {
        bool hydrogen = molecule.system->getParticleMass(row.atom) < 1.5;
        EXPECT_FALSE(sawHydrogen && !hydrogen) << "heavy atom " << row.atom << " after a hydrogen";
        sawHydrogen |= hydrogen;
    }
}

TEST(ZMatrix, ValidationNamesTheProblem) {
    ZMatrix z;
    z.seeds = {0, 1, 2};
    z.rows = {{3, 2, 1, 0}};
    EXPECT_NO_THROW(z.validate(4));
    expectMessage([&] { z.validate(5); }, "atom 4 is not covered");
    ZMatrix forward = z;
    forward.rows = {{3, 4, 1, 0}, {4, 3, 2, 1}};
    EXPECT_THROW(forward.validate(5), OpenMMException);
    ZMatrix twice = z;
    twice.rows.push_back({3, 2, 1, 0});
    EXPECT_THROW(twice.validate(4), OpenMMException);
    EXPECT_THROW(InternalCoordinates{twice}, OpenMMException);
    // A graph in two pieces cannot give a z-matrix.
    EXPECT_THROW(ZMatrix::fromBonds(6, {{0, 1}, {1, 2}, {3, 4}, {4, 5}}, std::vector<double>(6, 12.0)),
                 OpenMMException);
}

TEST(InternalCoordinates, RoundTripFromCartesian) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    InternalCoordinates ic = alanineCoordinates(molecule);
    at::Tensor x = perturbedFrames(molecule.positions(), 20, 0.02, 4);
    auto [y, e] = ic.forward(x);
    EXPECT_EQ(y.size(1), 60);
    EXPECT_EQ(e.size(1), 6);
    EXPECT_TRUE(ic.inDomain(y).all().item<bool>());
    EXPECT_LT(maxAbs(ic.inverse(y, e) - x), 1e-8);
}

TEST(InternalCoordinates, RoundTripFromInternal) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    InternalCoordinates ic = alanineCoordinates(molecule);
    auto [y0, e0] = ic.forward(molecule.positions());
    // Random internal coordinates around the molecule's, torsions anywhere in the domain.
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(5);
    const int64_t batch = 16, nb = ic.getNumBonds(), na = ic.getNumAngles(), nt = ic.getNumTorsions();
    at::Tensor y = y0.expand({batch, -1}).clone();
    y.narrow(1, 0, nb).mul_(1 + 0.05 * at::randn({batch, nb}, generator, at::kDouble));
    y.narrow(1, nb, na).add_(0.1 * at::randn({batch, na}, generator, at::kDouble));
    y.narrow(1, nb + na, nt).copy_(-M_PI + 2 * M_PI * at::rand({batch, nt}, generator, at::kDouble));
    at::Tensor e = e0.expand({batch, -1}).clone() + 0.3 * at::randn({batch, 6}, generator, at::kDouble);
    auto [y2, e2] = ic.forward(ic.inverse(y, e));
    EXPECT_LT(maxAbs(y2 - y), 1e-8);
    EXPECT_LT(maxAbs(e2 - e), 1e-8);
}

TEST(InternalCoordinates, LogDetMatchesAutogradJacobian) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    expectLogDetMatchesAutograd(alanineCoordinates(molecule), perturbedFrames(molecule.positions(), 3, 0.02, 9), 1e-8);
}

TEST(InternalCoordinates, SiblingsTakeTorsionsRelativeToTheFirstChild) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    InternalCoordinates ic = alanineCoordinates(molecule);
    const PdbStructure& s = molecule.structure;
    auto rowOf = [&](const std::string& residue, const std::string& name) {
        int atom = s.findAtom(residue, name);
        for (const ZMatrixRow& row : ic.getZMatrix().rows)
            if (row.atom == atom)
                return row;
        return ZMatrixRow{-1, -1, -1, -1};
    };
    // phi and psi are rotations about N-CA and CA-C: atoms placed across those bonds carry them.
    ZMatrixRow cAce = rowOf("ACE", "C");
    EXPECT_EQ(cAce.bondPartner, s.findAtom("ALA", "N"));
    EXPECT_EQ(cAce.anglePartner, s.findAtom("ALA", "CA"));
    // Each methyl group has one rotating torsion; its other hydrogens refer to that one.
    for (const auto& group : std::vector<std::array<std::string, 4>>{
             {"ALA", "HB1", "HB2", "HB3"}, {"ACE", "HH31", "HH32", "HH33"}, {"NME", "HH31", "HH32", "HH33"}}) {
        int first = s.findAtom(group[0], group[1]);
        EXPECT_NE(rowOf(group[0], group[1]).torsionPartner, first);
        for (int k : {2, 3})
            EXPECT_EQ(rowOf(group[0], group[k]).torsionPartner, first) << group[0] << ":" << group[k];
    }
    // Rotating the CB methyl group about the CA-CB bond moves only the rotor's torsion.
    at::Tensor x = molecule.positions().clone();
    const int ca = s.findAtom("ALA", "CA"), cb = s.findAtom("ALA", "CB");
    at::Tensor axis = x[0][cb] - x[0][ca];
    axis = axis / axis.norm();
    const double angle = 0.7;
    for (const char* name : {"HB1", "HB2", "HB3"}) {
        int h = s.findAtom("ALA", name);
        at::Tensor r = x[0][h] - x[0][cb];
        // Rodrigues' rotation of r about `axis`.
        at::Tensor rotated = r * std::cos(angle) + at::linalg_cross(axis, r, -1) * std::sin(angle)
                             + axis * (axis * r).sum() * (1 - std::cos(angle));
        x[0][h].copy_(x[0][cb] + rotated);
    }
    auto [before, e1] = ic.forward(molecule.positions());
    auto [after, e2] = ic.forward(x);
    at::Tensor change = at::remainder(after - before + M_PI, 2 * M_PI) - M_PI;
    int rotor = ic.torsionIndexOfAtom(s.findAtom("ALA", "HB1"));
    EXPECT_NEAR(std::abs(change[0][rotor].item<double>()), angle, 1e-9);
    change[0][rotor] = 0.0;
    EXPECT_LT(change.abs().max().item<double>(), 1e-9);  // HB2, HB3 and everything else unchanged
    // phi from the configurations equals make_alanine_dipeptide.py's result.
    auto [y0, e0] = ic.forward(molecule.positions());
    EXPECT_TRUE(at::allclose(ic.inverse(y0, e0), molecule.positions(), 0, 1e-10));
}

TEST(InternalCoordinates, TorsionCutsGoWhereNoDataIs) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    InternalCoordinates ic = alanineCoordinates(molecule);
    at::Tensor x = perturbedFrames(molecule.positions(), 200, 0.01, 12);
    ic.placeTorsionCuts(x, 36);
    auto [y, e] = ic.forward(x);
    EXPECT_TRUE(ic.inDomain(y).all().item<bool>());
    // Data sit well inside [c, c + 2 pi): the cut is far from every torsion.
    const int64_t offset = ic.getNumBonds() + ic.getNumAngles();
    at::Tensor torsions = y.narrow(1, offset, ic.getNumTorsions());
    at::Tensor distance = at::minimum(torsions - ic.getTorsionCuts(), ic.getTorsionCuts() + 2 * M_PI - torsions);
    EXPECT_GT(distance.min().item<double>(), 0.5);
    EXPECT_LT(maxAbs(ic.inverse(y, e) - x), 1e-8);
    EXPECT_THROW(ic.setTorsionCuts(at::zeros({3}, at::kDouble)), OpenMMException);
}

TEST(InternalCoordinates, DomainAndViolation) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    InternalCoordinates ic = alanineCoordinates(molecule);
    auto [y, e] = ic.forward(molecule.positions());
    EXPECT_EQ(ic.domainViolation(y).item<double>(), 0.0);
    const int64_t nb = ic.getNumBonds(), na = ic.getNumAngles();
    at::Tensor outside = y.repeat({4, 1});
    outside[0][0] = -0.01;                                   // negative bond
    outside[1][nb] = M_PI + 0.2;                             // angle past pi
    outside[2][nb + na] = ic.getTorsionCuts()[0].item<double>() - 0.3;  // torsion below its cut
    at::Tensor inside = ic.inDomain(outside);
    EXPECT_FALSE(inside[0].item<bool>());
    EXPECT_FALSE(inside[1].item<bool>());
    EXPECT_FALSE(inside[2].item<bool>());
    EXPECT_TRUE(inside[3].item<bool>());
    at::Tensor violation = ic.domainViolation(outside);
    EXPECT_NEAR(violation[0].item<double>(), 1e-4, 1e-12);
    EXPECT_NEAR(violation[1].item<double>(), 0.04, 1e-12);
    EXPECT_NEAR(violation[2].item<double>(), 0.09, 1e-12);
    EXPECT_EQ(violation[3].item<double>(), 0.0);
}

TEST(Stereochemistry, DetectsMirrorImages) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    Stereochemistry stereo(22, bondsOfSystem(*molecule.system));
    // CA, CB and the two methyl carbons of the caps have four neighbours.
    EXPECT_EQ(stereo.getNumCentres(), 4);
    at::Tensor x = molecule.positions();
    at::Tensor reference = stereo.signs(x)[0];
    EXPECT_EQ(reference.abs().min().item<double>(), 1.0);
    at::Tensor mirror = x * at::tensor({-1.0, 1.0, 1.0}, at::kDouble);
    EXPECT_TRUE(stereo.matches(x, reference)[0].item<bool>());
    EXPECT_FALSE(stereo.matches(mirror, reference)[0].item<bool>());
    EXPECT_TRUE((stereo.signs(mirror) == -stereo.signs(x)).all().item<bool>());
    // Rigid motion keeps the handedness.
    at::Tensor rotated = at::stack({x.select(2, 1), -x.select(2, 0), x.select(2, 2)}, 2) + 0.3;
    EXPECT_TRUE(stereo.matches(rotated, reference)[0].item<bool>());
    // Swapping two hydrogens of the CB methyl group swaps that centre's handedness only.
    const PdbStructure& s = molecule.structure;
    at::Tensor swapped = x.clone();
    int h1 = s.findAtom("ALA", "HB1"), h2 = s.findAtom("ALA", "HB2");
    swapped[0][h1].copy_(x[0][h2]);
    swapped[0][h2].copy_(x[0][h1]);
    at::Tensor changed = stereo.signs(swapped)[0] != reference;
    EXPECT_EQ(changed.sum().item<int64_t>(), 1);
}

TEST(CartesianCoordinates, RoundTripAndSubset) {
    CartesianCoordinates all(2);
    at::Tensor x = at::randn({5, 2, 3}, at::kDouble);
    auto [y, e] = all.forward(x);
    EXPECT_EQ(y.size(1), 6);
    EXPECT_EQ(e.size(1), 0);
    EXPECT_TRUE(at::equal(all.inverse(y, e), x));
    CartesianCoordinates xy(1, {0, 1}, at::tensor({0.0, 0.0, 0.7}, at::kDouble));
    auto [y2, e2] = xy.forward(x.narrow(1, 0, 1));
    EXPECT_EQ(y2.size(1), 2);
    EXPECT_TRUE(at::equal(e2.select(1, 0), x.select(1, 0).select(1, 2)));
    EXPECT_TRUE(at::equal(xy.inverse(y2, e2), x.narrow(1, 0, 1)));
    EXPECT_EQ(xy.canonicalExternal(3)[2][0].item<double>(), 0.7);
    EXPECT_EQ(xy.logDetJacobian(y2).abs().max().item<double>(), 0.0);
    EXPECT_THROW(CartesianCoordinates(1, {0, 3}), OpenMMException);
    EXPECT_THROW(CartesianCoordinates(1, {1, 1}), OpenMMException);
}
