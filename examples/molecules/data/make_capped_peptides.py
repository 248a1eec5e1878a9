#!/usr/bin/python3
"""Build the capped peptides of the molecule examples from internal geometry.

For each molecule below, writes next to this script:
  <name>.pdb          energy-minimized structure (PDB atom names, hydrogens
                      named as OpenMM's hydrogens.xml names them)
  <name>_system.xml   its System (amber99sbildn + OBC implicit solvent,
                      NoCutoff, no constraints), serialized with XmlSerializer

Molecules:
  capped_proline        ACE-PRO-NME     (a five-membered ring through the backbone N)
  capped_phenylalanine  ACE-PHE-NME     (an aromatic six-membered ring)
  alanine_tetrapeptide  ACE-ALA-ALA-ALA-NME

Heavy atoms come from a z-matrix of textbook bond lengths, angles and
torsions (trans peptides); OpenMM's Modeller adds the hydrogens and the
minimizer relaxes the whole molecule, ring closures included (a ring bond is
not one of the z-matrix's bonds: it is only as long as the torsions make it,
so the script checks it before minimizing).
Run with Debian's python3:  /usr/bin/python3 make_capped_peptides.py
"""
import math
import os
import random
import sys

import numpy as np
import openmm
from openmm import app, unit

HERE = os.path.dirname(os.path.abspath(__file__))
# NeRF placement, minimization and the output files are those of the alanine dipeptide script.
sys.path.insert(0, os.path.join(HERE, "..", "..", "alanine_dipeptide", "data"))
from make_alanine_dipeptide import minimize, place_atom, write_outputs  # noqa: E402

# Backbone (phi, psi) of each residue, degrees.
MOLECULES = {
    "capped_proline": [("PRO", -65.0, 145.0)],
    "capped_phenylalanine": [("PHE", -80.0, 75.0)],
    "alanine_tetrapeptide": [("ALA", -75.0, 145.0)] * 3,
}

# Side chains: rows (atom, bond partner, angle partner, torsion partner, bond nm,
# angle deg, torsion deg); "prevC" is the C of the previous residue. CB's torsion
# is relative to phi (phi - 120 gives the L configuration).
SIDE_CHAINS = {
    "ALA": [("CB", "CA", "N", "prevC", 0.1530, 110.5, "phi-120")],
    # C-gamma endo pucker: chi1 = 30, chi2 = -38 close the ring to N within 0.01 nm.
    "PRO": [("CB", "CA", "N", "prevC", 0.1530, 103.0, "phi-120"),
            ("CG", "CB", "CA", "N", 0.1500, 104.5, 30.0),
            ("CD", "CG", "CB", "CA", 0.1510, 105.0, -38.0)],
    # A regular hexagon (0.139 nm, 120 deg) closes CZ-CE2 by construction.
    "PHE": [("CB", "CA", "N", "prevC", 0.1530, 110.5, "phi-120"),
            ("CG", "CB", "CA", "N", 0.1502, 113.9, -65.0),
            ("CD1", "CG", "CB", "CA", 0.1390, 120.7, 90.0),
            ("CD2", "CG", "CB", "CA", 0.1390, 120.7, -90.0),
            ("CE1", "CD1", "CG", "CB", 0.1390, 120.0, 180.0),
            ("CE2", "CD2", "CG", "CB", 0.1390, 120.0, 180.0),
            ("CZ", "CE1", "CD1", "CG", 0.1390, 120.0, 0.0)],
}
# Ring bonds that no z-matrix row makes: (residue, atom a, atom b).
RING_CLOSURES = {"PRO": [("CD", "N")], "PHE": [("CZ", "CE2")]}

ELEMENTS = {"C": app.element.carbon, "N": app.element.nitrogen, "O": app.element.oxygen}


def build_heavy_atoms(residues):
    """[(residue name, {atom name: position nm})] for ACE, the residues and NME."""
    ace = {"CH3": np.zeros(3), "C": np.array([0.1522, 0.0, 0.0])}
    a = math.radians(121.0)
    ace["O"] = ace["C"] + 0.1229 * np.array([-math.cos(a), math.sin(a), 0.0])
    chain = [("ACE", ace)]
    # Backbone atoms of the previous residue: (N or None, CA-like, C, O).
    prev_n, prev_ca, prev_c, prev_o = None, ace["CH3"], ace["C"], ace["O"]
    for name, phi, psi in residues + [("NME", None, None)]:
        atoms = {}
        # N from the previous C: trans to its O (psi of the previous residue sets O's place).
        atoms["N"] = place_atom(prev_c, prev_ca, prev_o, 0.1335, 116.2, 180.0)
        if name == "NME":
            atoms["C"] = place_atom(atoms["N"], prev_c, prev_ca, 0.1449, 121.9, 180.0)
            chain.append((name, atoms))
            break
        # omega = 180: CA trans to the previous CA.
        atoms["CA"] = place_atom(atoms["N"], prev_c, prev_ca, 0.1458, 121.9, 180.0)
        atoms["C"] = place_atom(atoms["CA"], atoms["N"], prev_c, 0.1525, 111.2, phi)
        lookup = dict(atoms, prevC=prev_c)
        for atom, j, k, l, bond, angle, torsion in SIDE_CHAINS[name]:
            torsion = phi - 120.0 if torsion == "phi-120" else torsion
            lookup[atom] = atoms[atom] = place_atom(lookup[j], lookup[k], lookup[l], bond, angle, torsion)
        # The next N sits at psi; O is opposite it in the peptide plane.
        next_n = place_atom(atoms["C"], atoms["CA"], atoms["N"], 0.1335, 116.2, psi)
        atoms["O"] = place_atom(atoms["C"], atoms["CA"], atoms["N"], 0.1229, 120.5, psi + 180.0)
        chain.append((name, atoms))
        prev_n, prev_ca, prev_c, prev_o = atoms["N"], atoms["CA"], atoms["C"], atoms["O"]
        del next_n  # placed again from the next residue, identically
    return chain


def build_topology(chain):
    topology = app.Topology()
    pdb_chain = topology.addChain()
    positions = []
    for res_name, atoms in chain:
        residue = topology.addResidue(res_name, pdb_chain)
        for atom_name, position in atoms.items():
            topology.addAtom(atom_name, ELEMENTS[atom_name[0]], residue)
            positions.append(position)
    topology.createStandardBonds()
    return topology, np.array(positions)


def ring_closure_lengths(chain):
    """Lengths (nm) of the ring bonds that the z-matrix does not make."""
    lengths = []
    for res_name, atoms in chain:
        for a, b in RING_CLOSURES.get(res_name, []):
            lengths.append((res_name, a, b, float(np.linalg.norm(atoms[a] - atoms[b]))))
    return lengths


def chirality_ok(topology, positions):
    """(N-CA) . ((C-CA) x (CB-CA)) > 0 for every residue with a CB: L-amino acids."""
    for residue in topology.residues():
        names = {atom.name: atom.index for atom in residue.atoms()}
        if "CB" not in names:
            continue
        ca = positions[names["CA"]]
        n, c, cb = (positions[names[a]] - ca for a in ("N", "C", "CB"))
        if np.dot(n, np.cross(c, cb)) <= 0:
            return False
    return True


def build(name, residues, forcefield):
    chain = build_heavy_atoms(residues)
    for res_name, a, b, length in ring_closure_lengths(chain):
        if abs(length - 0.145) > 0.02:
            sys.exit(f"{name}: ring bond {res_name} {a}-{b} is {length:.4f} nm before minimization")
    topology, positions = build_topology(chain)
    modeller = app.Modeller(topology, positions * unit.nanometer)
    # Modeller starts hydrogens at random positions and relaxes them: a fixed seed and the
    # Reference platform (no thread-dependent sums) make reruns identical.
    random.seed(2026)
    modeller.addHydrogens(forcefield, platform=openmm.Platform.getPlatformByName("Reference"))
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff,
                                     constraints=None, rigidWater=False)
    start, minimized, energy = minimize(system, modeller.positions)
    if not chirality_ok(modeller.topology, minimized):
        sys.exit(f"{name}: a residue came out as a D-amino acid")
    write_outputs(HERE, name, modeller.topology, minimized, system)
    rings = ", ".join(f"{r} {a}-{b} {l:.4f} nm" for r, a, b, l in ring_closure_lengths(chain)) or "none"
    print(f"{name}: {modeller.topology.getNumAtoms()} atoms, {modeller.topology.getNumBonds()} bonds, "
          f"ring bonds before minimization: {rings}; energy {start:.1f} -> {energy:.1f} kJ/mol")


def main():
    forcefield = app.ForceField("amber99sbildn.xml", "amber99_obc.xml")
    for name, residues in MOLECULES.items():
        build(name, residues, forcefield)


if __name__ == "__main__":
    main()
