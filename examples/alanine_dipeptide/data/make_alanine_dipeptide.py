#!/usr/bin/python3
"""Build capped alanine dipeptide (ACE-ALA-NME, 22 atoms) from internal geometry.

Writes, next to this script:
  alanine_dipeptide.pdb         energy-minimized structure (atom names of OpenMM's
                                Amber templates)
  alanine_dipeptide_system.xml  its System (amber99sbildn + OBC implicit solvent,
                                NoCutoff, no constraints), serialized with
                                XmlSerializer so that C++ can load it without Python

The geometry comes from a z-matrix of textbook bond lengths, angles and
torsions (C7eq backbone, trans peptides); the minimizer then relaxes it.
Run with Debian's python3:  /usr/bin/python3 make_alanine_dipeptide.py
"""
import io
import math
import os
import sys

import numpy as np
import openmm
from openmm import app, unit

HERE = os.path.dirname(os.path.abspath(__file__))

# Backbone torsions of the starting structure (degrees): the C7eq basin.
PHI = -80.0
PSI = 75.0

# Z-matrix rows: (residue, atom name, bond partner, angle partner, torsion partner,
# bond length (nm), angle (deg), torsion (deg)). Partners name atoms placed before,
# written "RES:NAME". Torsion i-j-k-l is the dihedral between planes (i,j,k), (j,k,l).
ZMATRIX = [
    ("ACE", "C",    None,       None,       None,       0.0,    0.0,   0.0),
    ("ACE", "O",    "ACE:C",    None,       None,       0.1229, 0.0,   0.0),
    ("ACE", "CH3",  "ACE:C",    "ACE:O",    None,       0.1522, 121.0, 0.0),
    ("ALA", "N",    "ACE:C",    "ACE:O",    "ACE:CH3",  0.1335, 122.9, 180.0),
    ("ACE", "HH31", "ACE:CH3",  "ACE:C",    "ACE:O",    0.1090, 109.5, 0.0),
    ("ACE", "HH32", "ACE:CH3",  "ACE:C",    "ACE:O",    0.1090, 109.5, 120.0),
    ("ACE", "HH33", "ACE:CH3",  "ACE:C",    "ACE:O",    0.1090, 109.5, -120.0),
    # Trans peptide: CA cis to O, H trans to O.
    ("ALA", "H",    "ALA:N",    "ACE:C",    "ACE:O",    0.1010, 119.8, 180.0),
    ("ALA", "CA",   "ALA:N",    "ACE:C",    "ACE:O",    0.1458, 121.9, 0.0),
    # phi = C(ACE)-N-CA-C equals the dihedral C-CA-N-C(ACE).
    ("ALA", "C",    "ALA:CA",   "ALA:N",    "ACE:C",    0.1525, 111.2, PHI),
    # CB at phi - 120 and HA at phi + 120 give the L (S) configuration; checked below.
    ("ALA", "CB",   "ALA:CA",   "ALA:N",    "ACE:C",    0.1530, 110.5, PHI - 120.0),
    ("ALA", "HA",   "ALA:CA",   "ALA:N",    "ACE:C",    0.1090, 109.5, PHI + 120.0),
    ("ALA", "HB1",  "ALA:CB",   "ALA:CA",   "ALA:N",    0.1090, 109.5, 60.0),
    ("ALA", "HB2",  "ALA:CB",   "ALA:CA",   "ALA:N",    0.1090, 109.5, 180.0),
    ("ALA", "HB3",  "ALA:CB",   "ALA:CA",   "ALA:N",    0.1090, 109.5, -60.0),
    # psi = N-CA-C-N(NME) equals the dihedral N(NME)-C-CA-N.
    ("NME", "N",    "ALA:C",    "ALA:CA",   "ALA:N",    0.1335, 116.2, PSI),
    ("ALA", "O",    "ALA:C",    "ALA:CA",   "ALA:N",    0.1229, 120.5, PSI + 180.0),
    ("NME", "H",    "NME:N",    "ALA:C",    "ALA:O",    0.1010, 120.0, 180.0),
    ("NME", "CH3",  "NME:N",    "ALA:C",    "ALA:O",    0.1449, 121.9, 0.0),
    ("NME", "HH31", "NME:CH3",  "NME:N",    "ALA:C",    0.1090, 109.5, 60.0),
    ("NME", "HH32", "NME:CH3",  "NME:N",    "ALA:C",    0.1090, 109.5, 180.0),
    ("NME", "HH33", "NME:CH3",  "NME:N",    "ALA:C",    0.1090, 109.5, -60.0),
]

# Atom order of the output files: the order of OpenMM's Amber residue templates.
ATOM_ORDER = {
    "ACE": ["HH31", "CH3", "HH32", "HH33", "C", "O"],
    "ALA": ["N", "H", "CA", "HA", "CB", "HB1", "HB2", "HB3", "C", "O"],
    "NME": ["N", "H", "CH3", "HH31", "HH32", "HH33"],
}
# Covalent bonds, "RES:NAME" pairs (21 for 22 atoms: the molecule is a tree).
BONDS = [
    ("ACE:HH31", "ACE:CH3"), ("ACE:HH32", "ACE:CH3"), ("ACE:HH33", "ACE:CH3"),
    ("ACE:CH3", "ACE:C"), ("ACE:C", "ACE:O"), ("ACE:C", "ALA:N"),
    ("ALA:N", "ALA:H"), ("ALA:N", "ALA:CA"), ("ALA:CA", "ALA:HA"), ("ALA:CA", "ALA:CB"),
    ("ALA:CB", "ALA:HB1"), ("ALA:CB", "ALA:HB2"), ("ALA:CB", "ALA:HB3"),
    ("ALA:CA", "ALA:C"), ("ALA:C", "ALA:O"), ("ALA:C", "NME:N"),
    ("NME:N", "NME:H"), ("NME:N", "NME:CH3"),
    ("NME:CH3", "NME:HH31"), ("NME:CH3", "NME:HH32"), ("NME:CH3", "NME:HH33"),
]
ELEMENTS = {"C": app.element.carbon, "N": app.element.nitrogen,
            "O": app.element.oxygen, "H": app.element.hydrogen}


def place_atom(bond_atom, angle_atom, torsion_atom, bond, angle_deg, torsion_deg):
    """Cartesian position of an atom from its bond, angle and torsion partners.

    Builds an orthonormal frame at bond_atom with one axis along
    angle_atom -> bond_atom and one normal to the plane of the three partners,
    then places the new atom in spherical coordinates in that frame.
    """
    angle = math.radians(angle_deg)
    torsion = math.radians(torsion_deg)
    bc = bond_atom - angle_atom
    bc /= np.linalg.norm(bc)
    normal = np.cross(angle_atom - torsion_atom, bc)
    normal /= np.linalg.norm(normal)
    in_plane = np.cross(normal, bc)
    local = np.array([-bond * math.cos(angle),
                      bond * math.sin(angle) * math.cos(torsion),
                      bond * math.sin(angle) * math.sin(torsion)])
    return bond_atom + local[0] * bc + local[1] * in_plane + local[2] * normal


def build_positions():
    """Positions (nm) keyed by "RES:NAME", built row by row from ZMATRIX."""
    placed = {}
    for res, name, j, k, l, bond, angle, torsion in ZMATRIX:
        key = f"{res}:{name}"
        if j is None:
            placed[key] = np.zeros(3)
        elif k is None:
            placed[key] = placed[j] + np.array([bond, 0.0, 0.0])
        elif l is None:
            # Third atom: in the xy plane, at the given angle to the first bond.
            a = math.radians(angle)
            direction = placed[k] - placed[j]
            direction /= np.linalg.norm(direction)
            rot = np.array([[math.cos(a), -math.sin(a), 0.0],
                            [math.sin(a), math.cos(a), 0.0],
                            [0.0, 0.0, 1.0]])
            placed[key] = placed[j] + bond * rot.dot(direction)
        else:
            placed[key] = place_atom(placed[j], placed[k], placed[l], bond, angle, torsion)
    return placed


def build_topology():
    topology = app.Topology()
    chain = topology.addChain()
    atoms = {}
    for res_name, names in ATOM_ORDER.items():
        residue = topology.addResidue(res_name, chain)
        for name in names:
            atoms[f"{res_name}:{name}"] = topology.addAtom(name, ELEMENTS[name[0]], residue)
    for a, b in BONDS:
        topology.addBond(atoms[a], atoms[b])
    return topology, list(atoms)


def signed_volume(pos, names):
    """(N-CA) . ((C-CA) x (CB-CA)) of the alanine: positive for L-alanine."""
    ca = pos[names["ALA:CA"]]
    n, c, cb = (pos[names[f"ALA:{a}"]] - ca for a in ("N", "C", "CB"))
    return float(np.dot(n, np.cross(c, cb)))


def minimize(system, positions):
    """(start energy, minimized positions nm, minimized energy kJ/mol) on the Reference platform."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    start = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    openmm.LocalEnergyMinimizer.minimize(context, 1e-3, 0)
    state = context.getState(getEnergy=True, getPositions=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    if not math.isfinite(energy):
        sys.exit(f"minimized energy is not finite: {energy}")
    return start, state.getPositions(asNumpy=True).value_in_unit(unit.nanometer), energy


def write_outputs(directory, name, topology, positions, system):
    """<name>.pdb (without the dated REMARK, so that reruns give identical files) and <name>_system.xml."""
    pdb = io.StringIO()
    app.PDBFile.writeFile(topology, positions * unit.nanometer, pdb)
    with open(os.path.join(directory, f"{name}.pdb"), "w") as f:
        f.writelines(line for line in pdb.getvalue().splitlines(True) if not line.startswith("REMARK"))
    with open(os.path.join(directory, f"{name}_system.xml"), "w") as f:
        f.write(openmm.XmlSerializer.serialize(system))


def main():
    placed = build_positions()
    topology, keys = build_topology()
    index = {key: i for i, key in enumerate(keys)}
    positions = np.array([placed[key] for key in keys])

    forcefield = app.ForceField("amber99sbildn.xml", "amber99_obc.xml")
    system = forcefield.createSystem(topology, nonbondedMethod=app.NoCutoff,
                                     constraints=None, rigidWater=False)
    start, minimized, energy = minimize(system, positions)
    volume = signed_volume(minimized, index)
    if volume <= 0:
        sys.exit(f"built molecule is D-alanine (signed volume {volume:.3e}); expected L")
    write_outputs(HERE, "alanine_dipeptide", topology, minimized, system)
    print(f"alanine dipeptide: {topology.getNumAtoms()} atoms, {topology.getNumBonds()} bonds, "
          f"energy {start:.4f} -> {energy:.4f} kJ/mol, L-alanine (signed volume {volume:.4e} nm^3)")

if __name__ == "__main__":
    main()
