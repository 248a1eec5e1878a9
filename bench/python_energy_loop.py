#!/usr/bin/python3
"""Baseline for bench/energy_bridge: what Python users do today.

Evaluates energies and forces of perturbed alanine dipeptide frames with a
plain loop over context.setPositions / context.getState and prints the best
configurations per second of several repeats as 'configs_per_second <value>'.

--style units: the usual form, with openmm.unit quantities in and out
               (value_in_unit), as in most scripts and in bgflow's bridge;
--style raw:   the fastest form, reading the plain values (._value).
"""
import argparse
import time

import numpy as np
import openmm
from openmm import app, unit

FORCE_UNIT = unit.kilojoule_per_mole / unit.nanometer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", required=True)
    parser.add_argument("--pdb", required=True)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--platform", default="Reference")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--style", choices=["units", "raw"], default="units")
    args = parser.parse_args()

    with open(args.system) as f:
        system = openmm.XmlSerializer.deserialize(f.read())
    start = np.array(app.PDBFile(args.pdb).getPositions(asNumpy=True)._value)
    frames = start + np.random.default_rng(1).normal(0.0, 0.01, (args.frames,) + start.shape)
    properties = {"Threads": "1"} if args.platform == "CPU" else {}
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName(args.platform), properties)
    energies = np.empty(args.frames)
    forces = np.empty(frames.shape)
    best = 0.0
    for _ in range(args.repeats):
        begin = time.perf_counter()
        if args.style == "units":
            for i, frame in enumerate(frames):
                context.setPositions(frame * unit.nanometer)
                state = context.getState(getEnergy=True, getForces=True)
                energies[i] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
                forces[i] = state.getForces(asNumpy=True).value_in_unit(FORCE_UNIT)
        else:
            for i, frame in enumerate(frames):
                context.setPositions(frame)
                state = context.getState(getEnergy=True, getForces=True)
                energies[i] = state.getPotentialEnergy()._value
                forces[i] = state.getForces(asNumpy=True)._value
        best = max(best, args.frames / (time.perf_counter() - begin))
    print(f"configs_per_second {best:.1f}")


if __name__ == "__main__":
    main()
