#!/usr/bin/python3
"""How large the pipeline's Ramachandran KL is for a perfect model.

rama_kl_* in the pipeline's summary is KL(reference || model) of 64 x 64
histograms with eps 1e-10 (docs/math.md): a bin that holds reference frames
but no model samples costs about (its reference fraction) x 20 nats, so the
figure depends on both sample sizes even when the model is exact. This draws
two independent sets, of the reference's size and of the model's, from one
smooth density (the reference frames of a finished pipeline run, each moved
by Gaussian noise of --jitter rad in phi and psi) and prints their KL over
--repeats pairs: the floor below which no model's KL can be told apart.

  python3 bench/rama_kl_floor.py --md DIR [--temperatures 300,600] [--reference 25000] [--model 100000]
"""
import argparse
import os

import numpy as np

import openmmbg


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--md", required=True, help="output folder of a pipeline run (its md<T>.csv)")
    parser.add_argument("--temperatures", default="300,600")
    parser.add_argument("--reference", type=int, default=25000, help="frames of the reference")
    parser.add_argument("--model", type=int, default=100000, help="samples of the model")
    parser.add_argument("--jitter", type=float, default=0.1, help="rad")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    for temperature in args.temperatures.split(","):
        path = os.path.join(args.md, f"md{temperature}.csv")
        frames = np.loadtxt(path, delimiter=",", skiprows=1)
        phi, psi = frames[:, 0], frames[:, 1]

        def draw(count):
            pick = rng.integers(0, len(phi), count)
            wrap = lambda angle: (angle + np.pi) % (2 * np.pi) - np.pi
            return (wrap(phi[pick] + args.jitter * rng.standard_normal(count)),
                    wrap(psi[pick] + args.jitter * rng.standard_normal(count)))

        kl = []
        for _ in range(args.repeats):
            reference, model = draw(args.reference), draw(args.model)
            kl.append(openmmbg.ramachandranKL(reference[0], reference[1], model[0], model[1]))
        print(f"{temperature} K: KL({args.reference} || {args.model} samples of the same density) "
              f"mean {np.mean(kl):.3f}, range {min(kl):.3f} to {max(kl):.3f} ({args.repeats} pairs)")


if __name__ == "__main__":
    main()
