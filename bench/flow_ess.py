#!/usr/bin/python3
"""Kish ESS of flows' importance weights on alanine dipeptide, over independent sample sets.

The Kish ESS of one set of flow samples is a poor figure of a flow's quality:
importance weights are heavy-tailed, so one set's ESS moves by a factor of a
few from seed to seed. This prints, for each flow, the ESS/N of --sets
independent sets of --samples samples at --temperature (log-weight
-u(x) - ln q(x), with ln q from FlowModel.logProb), their mean and median.
The first set uses seed 22, the seed of the pipeline's 300 K flow samples,
so its figure is the pipeline's flow300_ess.

  OMP_NUM_THREADS=1 python3 bench/flow_ess.py FLOW [FLOW ...] [--temperature 300] [--samples 20000] [--sets 5]
"""
import argparse

import numpy as np

import openmmbg
from alanine_data import loadSystem


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("flows", nargs="+")
    parser.add_argument("--temperature", type=float, default=300.0)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--sets", type=int, default=5)
    args = parser.parse_args()
    system = loadSystem()
    bridge = openmmbg.OpenMMEnergy(system, args.temperature, openmmbg.OpenMMEnergy.Options(platform="Reference"))
    seeds = [22] + list(range(1, args.sets))
    print(f"Kish ESS/N at {args.temperature:g} K, {args.sets} sets of {args.samples} samples (seeds {seeds})")
    for path in args.flows:
        flow = openmmbg.FlowModel.load(path, system)
        ess = []
        for seed in seeds:
            sample = flow.sample(args.samples, args.temperature, seed=seed)
            energy = bridge.evaluate(sample.x)
            log_weight = -np.asarray(energy.reducedEnergy) - np.asarray(flow.logProb(sample.x, args.temperature))
            log_weight = np.where(np.isfinite(log_weight), log_weight, -np.inf)  # failed energies weigh nothing
            ess.append(openmmbg.kishEffectiveSampleSize(log_weight))
        sets = " ".join(f"{100 * e:.2f}" for e in ess)
        print(f"{path}: {sets} %; mean {100 * np.mean(ess):.2f} %, median {100 * np.median(ess):.2f} %", flush=True)


if __name__ == "__main__":
    main()
