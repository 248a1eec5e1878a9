#!/usr/bin/python3
"""Independent LatentMetropolisIntegrator chains on alanine dipeptide at 300 K.

For each independence probability given (the first is the baseline), runs
one chain per seed from the minimized structure (a --warm-up of moves, then
--moves moves, phi recorded every 10) and prints each chain's
dF_phi = -ln(P(phi > 0) / P(phi < 0)) in kT and its seconds, then the mean
and standard deviation over the chains, the seconds per chain, and the
efficiency against the first setting: (sd^2 * seconds) of the first divided
by that of this one (how much less CPU time the same error bar costs). The
latent random-walk step is fixed (--latent-step; the pipeline adapts it in
a warm-up, 0.25 for its default flow).

  OMP_NUM_THREADS=1 python3 bench/metropolis_chains.py --flow FLOW --independence 0.1 0.9 1
      [--seeds 101,102,103,104] [--moves 30000] [--warm-up 2000] [--latent-step 0.254]
"""
import argparse
import time

import numpy as np
import openmm

import openmmbg
from alanine_data import loadStructure, loadSystem, phiAtoms


def chain(system, pdb, atoms, args, independence, seed):
    integrator = openmmbg.LatentMetropolisIntegrator(args.flow, 300.0, args.latent_step, independence)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(pdb.positions)
    integrator.step(args.warm_up)
    begin = time.perf_counter()
    frames = []
    for _ in range(args.moves // 10):
        integrator.step(10)
        frames.append(context.getState(getPositions=True).getPositions(asNumpy=True)._value)
    seconds = time.perf_counter() - begin
    phi = openmmbg.dihedralAngles(np.array(frames), atoms)
    fraction = float(np.mean(phi > 0))
    return -np.log(fraction / (1 - fraction)), seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--flow", required=True)
    parser.add_argument("--independence", type=float, nargs="+", default=[0.1, 0.9])
    parser.add_argument("--seeds", default="101,102,103,104")
    parser.add_argument("--moves", type=int, default=30000)
    parser.add_argument("--warm-up", type=int, default=2000)
    parser.add_argument("--latent-step", type=float, default=0.254)
    args = parser.parse_args()
    system = loadSystem()
    pdb = loadStructure()
    atoms = phiAtoms()
    seeds = [int(s) for s in args.seeds.split(",")]
    baseline = None
    for independence in args.independence:
        values, seconds = [], []
        for seed in seeds:
            value, s = chain(system, pdb, atoms, args, independence, seed)
            values.append(value)
            seconds.append(s)
            print(f"independence {independence}, seed {seed}: dF_phi {value:.3f} kT, {s:.0f} s", flush=True)
        if len(values) < 2:
            continue  # no spread from one chain
        sd = np.std(values, ddof=1)
        cost = sd ** 2 * np.mean(seconds)
        baseline = baseline or cost
        print(f"independence {independence}: {len(values)} chains, dF_phi mean {np.mean(values):.3f}, "
              f"sd {sd:.3f} kT, {np.mean(seconds):.0f} s per chain, efficiency {baseline / cost:.2f}x the first",
              flush=True)


if __name__ == "__main__":
    main()
