#!/usr/bin/python3
"""Moves of LatentMetropolisIntegrator on alanine dipeptide at 300 K.

Prints moves per second of one step() call of --moves moves on the Reference
platform, for each flow given (the first is the baseline: the others get
their ratio to it). By default every move is an independence move (latent
step 0); --latent-step S --independence P times the pipeline's mix of
moves (random-walk steps of S, independence proposals with probability P).
With --block the integrator draws its proposals in blocks of that size;
without it the integrator keeps its default, so the same script also times
builds that predate blocks (point PYTHONPATH and OPENMM_PLUGIN_DIR at such
a build).

  OMP_NUM_THREADS=1 python3 bench/independence_moves.py --flow FLOW [FLOW ...] [--moves 2000] [--block 64]
      [--latent-step 0.25 --independence 0.1]
"""
import argparse
import time

import openmm

import openmmbg
from alanine_data import loadStructure, loadSystem


def movesPerSecond(system, positions, flow, args):
    integrator = openmmbg.LatentMetropolisIntegrator(flow, 300.0, args.latent_step, args.independence)
    integrator.setRandomNumberSeed(8)
    if args.block is not None:
        integrator.setIndependenceBlockSize(args.block)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    begin = time.perf_counter()
    integrator.step(args.moves)
    seconds = time.perf_counter() - begin
    return args.moves / seconds, integrator.getAcceptanceRate(openmmbg.MoveKind.Independence)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--flow", required=True, nargs="+")
    parser.add_argument("--moves", type=int, default=2000)
    parser.add_argument("--block", type=int)
    parser.add_argument("--latent-step", type=float, default=0.0)
    parser.add_argument("--independence", type=float, default=1.0)
    args = parser.parse_args()
    system = loadSystem()
    pdb = loadStructure()
    block = args.block if args.block is not None else "default"
    baseline = None
    for flow in args.flow:
        rate, acceptance = movesPerSecond(system, pdb.positions, flow, args)
        baseline = baseline or rate
        print(f"{flow}: block size {block}, latent step {args.latent_step}, independence {args.independence}: "
              f"{rate:.0f} moves/s ({rate / baseline:.2f}x the first), independence acceptance {acceptance:.4f}")


if __name__ == "__main__":
    main()
