#!/usr/bin/python3
"""Plots of an alanine dipeptide results folder (paper 001, Fig. 3 style).

    /usr/bin/python3 plot_results.py RESULTS_DIR

Reads the CSV series the pipeline writes and writes:
  ramachandran.png       phi/psi densities: replica-exchange MD (REMD),
                         flow samples (raw and
                         reweighted), Metropolis and parallel-tempering chains
  phi_histograms.png     phi densities at 600 K and 300 K, every method
  energy_histograms.png  potential energy densities
  training.png           training losses and ESS (if training.csv exists)
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402


def read_series(path):
    data = np.genfromtxt(path, delimiter=",", names=True)
    series = {name: np.atleast_1d(data[name]) for name in data.dtype.names}
    if "log_weight" in series:
        lw = series["log_weight"]
        w = np.where(np.isfinite(lw), np.exp(lw - np.nanmax(lw[np.isfinite(lw)])), 0.0)
        series["weight"] = w / w.sum()
    return series


def flow_label(folder):
    """The flow's name in the plots, from summary.json's flow_type (a TSF if absent)."""
    try:
        with open(os.path.join(folder, "summary.json")) as f:
            kind = json.load(f).get("flow_type", "tsf")
    except (OSError, ValueError):
        kind = "tsf"
    return {"tsf": "TSF", "spline": "spline flow", "realnvp": "RealNVP"}.get(kind, kind)


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: plot_results.py RESULTS_DIR (an existing folder written by the pipeline)")
    folder = sys.argv[1]
    names = ["md600", "flow600", "md300", "flow300", "mcmc300", "pt300"]
    missing = [n for n in names if not os.path.exists(os.path.join(folder, n + ".csv"))]
    if missing:
        sys.exit(f"plot_results.py: {folder} lacks {', '.join(n + '.csv' for n in missing)}; run the pipeline first")
    s = {n: read_series(os.path.join(folder, n + ".csv")) for n in names}
    flow = flow_label(folder)

    # Ramachandran plots.
    panels = [
        ("REMD 600 K", s["md600"], None), (f"{flow} 600 K", s["flow600"], None),
        (f"{flow} 600 K, reweighted", s["flow600"], "weight"), ("REMD 300 K", s["md300"], None),
        (f"{flow} 300 K", s["flow300"], None), (f"{flow} 300 K, reweighted", s["flow300"], "weight"),
        ("Metropolis 300 K", s["mcmc300"], None), ("parallel tempering 300 K", s["pt300"], None),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(16, 8), sharex=True, sharey=True)
    edges = np.linspace(-np.pi, np.pi, 65)
    for ax, (title, series, weights) in zip(axes.flat, panels):
        w = series[weights] if weights else None
        h, _, _ = np.histogram2d(series["phi"], series["psi"], bins=[edges, edges], weights=w, density=True)
        h = np.ma.masked_where(h <= 0, h)
        ax.pcolormesh(edges, edges, h.T, norm=LogNorm(vmin=1e-3, vmax=10), cmap="viridis", shading="flat")
        ax.set_title(f"{title} ({len(series['phi'])} samples)", fontsize=10)
        ax.set_xlim(-np.pi, np.pi)
        ax.set_ylim(-np.pi, np.pi)
    for ax in axes[1]:
        ax.set_xlabel("phi (rad)")
    for ax in axes[:, 0]:
        ax.set_ylabel("psi (rad)")
    fig.suptitle("alanine dipeptide: Ramachandran densities (log colour scale)")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "ramachandran.png"), dpi=80)
    plt.close(fig)

    # phi histograms.
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    bins = np.linspace(-np.pi, np.pi, 61)
    for ax, title, entries in [
        (axes[0], "600 K", [("REMD", s["md600"], None), (flow, s["flow600"], None),
                            (f"{flow} reweighted", s["flow600"], "weight")]),
        (axes[1], "300 K", [("REMD", s["md300"], None), (flow, s["flow300"], None),
                            (f"{flow} reweighted", s["flow300"], "weight"), ("Metropolis", s["mcmc300"], None),
                            ("parallel tempering", s["pt300"], None)]),
    ]:
        for label, series, weights in entries:
            w = series[weights] if weights else None
            ax.hist(series["phi"], bins=bins, weights=w, density=True, histtype="step", label=label, linewidth=1.5)
        ax.set_yscale("log")
        ax.set_xlabel("phi (rad)")
        ax.set_ylabel("density")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "phi_histograms.png"), dpi=80)
    plt.close(fig)

    # Energy histograms.
    fig, ax = plt.subplots(figsize=(8, 4.5))
    finite = [s[n]["energy"][np.isfinite(s[n]["energy"])] for n in names]
    low = min(np.percentile(e, 0.1) for e in finite)
    high = max(np.percentile(e, 99.5) for e in finite)
    bins = np.linspace(low, high, 80)
    for name, energy in zip(names, finite):
        ax.hist(energy, bins=bins, density=True, histtype="step", label=name, linewidth=1.5)
    ax.set_xlabel("potential energy (kJ/mol)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "energy_histograms.png"), dpi=80)
    plt.close(fig)

    training = os.path.join(folder, "training.csv")
    if os.path.exists(training):
        t = np.genfromtxt(training, delimiter=",", names=True, dtype=None, encoding="ascii")
        if t.size > 1:
            fig, axes = plt.subplots(1, 2, figsize=(12, 4))
            step = np.arange(len(t))
            axes[0].plot(step, t["loss_ml"], label="ML (nats)")
            axes[0].plot(step, t["loss_kl"], label="KL (nats)")
            if "validation_nll" in t.dtype.names:
                axes[0].plot(step, t["validation_nll"], "o", label="held-out NLL (nats)")
            axes[0].set_xlabel("report (every 100 steps, and at validation checks)")
            axes[0].legend()
            axes[1].plot(step, t["ess"], label="ESS of KL samples")
            axes[1].set_xlabel("report (every 100 steps)")
            axes[1].legend()
            fig.tight_layout()
            fig.savefig(os.path.join(folder, "training.png"), dpi=80)
            plt.close(fig)
    print(f"plots written to {folder}")


if __name__ == "__main__":
    main()
