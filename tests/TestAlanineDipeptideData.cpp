// The committed alanine dipeptide files made by make_alanine_dipeptide.py.

#include "TestSupport.h"

#include <gtest/gtest.h>
#include <openmm/Context.h>
#include <openmm/GBSAOBCForce.h>
#include <openmm/HarmonicBondForce.h>
#include <openmm/NonbondedForce.h>
#include <openmm/Platform.h>
#include <openmm/State.h>
#include <openmm/VerletIntegrator.h>

#include <algorithm>
#include <cmath>
#include <set>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::testing;

namespace {

std::string label(const PdbStructure& s, int i) {
    return s.atoms[i].residueName + ":" + s.atoms[i].name;
}

template <class T>
const T* findForce(const System& system) {
    for (int i = 0; i < system.getNumForces(); i++)
        if (auto* force = dynamic_cast<const T*>(&system.getForce(i)))
            return force;
    return nullptr;
}

} // namespace

TEST(AlanineDipeptideData, HasTwentyTwoAtomsWithAmberNames) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    ASSERT_EQ(molecule.system->getNumParticles(), 22);
    ASSERT_EQ(molecule.structure.atoms.size(), 22u);
    const std::vector<std::string> expected = {
        "ACE:HH31", "ACE:CH3", "ACE:HH32", "ACE:HH33", "ACE:C", "ACE:O",
        "ALA:N", "ALA:H", "ALA:CA", "ALA:HA", "ALA:CB", "ALA:HB1", "ALA:HB2", "ALA:HB3", "ALA:C", "ALA:O",
        "NME:N", "NME:H", "NME:CH3", "NME:HH31", "NME:HH32", "NME:HH33"};
    for (int i = 0; i < 22; i++)
        EXPECT_EQ(label(molecule.structure, i), expected[i]);
    // Masses follow the elements.
    for (int i = 0; i < 22; i++) {
        double mass = molecule.system->getParticleMass(i);
        double expectedMass = molecule.structure.atoms[i].element == "H" ? 1.008 : 12.0;
        EXPECT_NEAR(mass, expectedMass, molecule.structure.atoms[i].element == "H" ? 0.01 : 4.1) << i;
    }
}

TEST(AlanineDipeptideData, BondedTopologyIsTheExpectedTree) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    const HarmonicBondForce* bonds = findForce<HarmonicBondForce>(*molecule.system);
    ASSERT_NE(bonds, nullptr);
    std::set<std::set<std::string>> found;
    for (int i = 0; i < bonds->getNumBonds(); i++) {
        int a, b;
        double length, k;
        bonds->getBondParameters(i, a, b, length, k);
        found.insert({label(molecule.structure, a), label(molecule.structure, b)});
    }
    const std::set<std::set<std::string>> expected = {
        {"ACE:HH31", "ACE:CH3"}, {"ACE:HH32", "ACE:CH3"}, {"ACE:HH33", "ACE:CH3"}, {"ACE:CH3", "ACE:C"},
        {"ACE:C", "ACE:O"}, {"ACE:C", "ALA:N"}, {"ALA:N", "ALA:H"}, {"ALA:N", "ALA:CA"}, {"ALA:CA", "ALA:HA"},
        {"ALA:CA", "ALA:CB"}, {"ALA:CB", "ALA:HB1"}, {"ALA:CB", "ALA:HB2"}, {"ALA:CB", "ALA:HB3"},
        {"ALA:CA", "ALA:C"}, {"ALA:C", "ALA:O"}, {"ALA:C", "NME:N"}, {"NME:N", "NME:H"}, {"NME:N", "NME:CH3"},
        {"NME:CH3", "NME:HH31"}, {"NME:CH3", "NME:HH32"}, {"NME:CH3", "NME:HH33"}};
    EXPECT_EQ(bonds->getNumBonds(), 21);
    EXPECT_EQ(found, expected);
    EXPECT_EQ(molecule.system->getNumConstraints(), 0);
    EXPECT_FALSE(molecule.system->usesPeriodicBoundaryConditions());
    const NonbondedForce* nonbonded = findForce<NonbondedForce>(*molecule.system);
    ASSERT_NE(nonbonded, nullptr);
    EXPECT_EQ(nonbonded->getNonbondedMethod(), NonbondedForce::NoCutoff);
    EXPECT_NE(findForce<GBSAOBCForce>(*molecule.system), nullptr) << "OBC implicit solvent is missing";
}

TEST(AlanineDipeptideData, IsLAlanine) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    const PdbStructure& s = molecule.structure;
    Vec3 ca = s.positions[s.findAtom("ALA", "CA")];
    Vec3 n = s.positions[s.findAtom("ALA", "N")] - ca;
    Vec3 c = s.positions[s.findAtom("ALA", "C")] - ca;
    Vec3 cb = s.positions[s.findAtom("ALA", "CB")] - ca;
    // (N - CA) . ((C - CA) x (CB - CA)) > 0 for L amino acids (checked on the
    // 33 residues of OpenMM's test.pdb).
    EXPECT_GT(n.dot(c.cross(cb)), 1e-3);
}

TEST(AlanineDipeptideData, MinimizedEnergyIsFiniteAndAMinimum) {
    AlanineDipeptide molecule = loadAlanineDipeptide();
    VerletIntegrator integrator(0.001);
    Context context(*molecule.system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(molecule.structure.positions);
    State state = context.getState(State::Energy | State::Forces);
    double energy = state.getPotentialEnergy();
    EXPECT_TRUE(std::isfinite(energy));
    EXPECT_LT(energy, -100.0);  // kJ/mol; the unminimized z-matrix structure is at -114
    // PDB files round positions to 1e-4 nm, so forces are small but not zero.
    double largest = 0;
    for (const Vec3& f : state.getForces())
        largest = std::max(largest, std::sqrt(f.dot(f)));
    EXPECT_LT(largest, 200.0);  // kJ/mol/nm
}
