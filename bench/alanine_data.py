"""The alanine dipeptide System and structure of examples/alanine_dipeptide/data, for the Python benches."""
import os

import openmm
from openmm import app

import openmmbg

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "alanine_dipeptide", "data")


def loadSystem():
    """The System (amber99sbildn + OBC) the pipeline's flows are made for."""
    with open(os.path.join(DATA, "alanine_dipeptide_system.xml")) as f:
        return openmm.XmlSerializer.deserialize(f.read())


def loadStructure():
    """The minimized structure (app.PDBFile: topology and positions)."""
    return app.PDBFile(os.path.join(DATA, "alanine_dipeptide.pdb"))


def phiAtoms():
    """The four atoms of phi, found by atom names (openmmbg.backboneDihedrals)."""
    return openmmbg.backboneDihedrals(openmmbg.readPdb(os.path.join(DATA, "alanine_dipeptide.pdb")))[0]
