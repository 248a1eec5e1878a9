#!/usr/bin/python3
"""Independence moves of LatentMetropolisIntegrator on alanine dipeptide at 300 K.

Prints moves per second of one step() call of --moves independence moves
(latent step 0) on the Reference platform. With --block the integrator draws
its proposals in blocks of that size; without it the integrator keeps its
default, so the same script also times builds that predate blocks (point
PYTHONPATH and OPENMM_PLUGIN_DIR at such a build).

  OMP_NUM_THREADS=1 python3 bench/independence_moves.py --flow FLOW [--moves 2000] [--block 64]
"""
import argparse
import os
import time

import openmm
from openmm import app

import openmmbg

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "alanine_dipeptide", "data")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--flow", required=True)
    parser.add_argument("--moves", type=int, default=2000)
    parser.add_argument("--block", type=int)
    args = parser.parse_args()
    with open(os.path.join(DATA, "alanine_dipeptide_system.xml")) as f:
        system = openmm.XmlSerializer.deserialize(f.read())
    pdb = app.PDBFile(os.path.join(DATA, "alanine_dipeptide.pdb"))
    integrator = openmmbg.LatentMetropolisIntegrator(args.flow, 300.0, 0.0, 1.0)
    integrator.setRandomNumberSeed(8)
    if args.block is not None:
        integrator.setIndependenceBlockSize(args.block)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(pdb.positions)
    begin = time.perf_counter()
    integrator.step(args.moves)
    seconds = time.perf_counter() - begin
    block = args.block if args.block is not None else "default"
    print(f"block size {block}: {args.moves / seconds:.0f} moves/s, "
          f"acceptance {integrator.getAcceptanceRate(openmmbg.MoveKind.Independence):.4f}")


if __name__ == "__main__":
    main()
