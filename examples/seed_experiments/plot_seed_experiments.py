#!/usr/bin/python3
"""Plots of the seed experiments from the CSV files their programs write.

    /usr/bin/python3 examples/seed_experiments/plot_seed_experiments.py [results-directory]

Reads dw_*.csv, ho_*.csv and mdw_*.csv (each set is optional) and writes
dw_panels.png, dw_marginals.png, dw_training.png, ho_map.png and mdw_nll.png
into the same directory.
"""

import csv
import math
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 80


def read_csv(path):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                pass
    return rows


def read_info(path):
    info = {}
    if os.path.exists(path):
        with open(path) as handle:
            for line in handle:
                key, _, value = line.strip().partition(" ")
                info.setdefault(key, []).append(value)
    return info


def points_by_kind(path):
    kinds = defaultdict(list)
    for row in read_csv(path):
        kinds[row["kind"]].append((row["u"], row["v"]))
    return {k: np.array(v) for k, v in kinds.items()}


def save(fig, path):
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print("wrote %s (%.0f KB)" % (path, os.path.getsize(path) / 1024))


# ---------------------------------------------------------------- double well
def double_well_energy(x, y, a=1.0, b=6.0, c=1.0, d=1.0):
    return a / 4 * x**4 - b / 2 * x**2 + c * x + d / 2 * y**2


def plot_double_well(directory):
    summary = {row["model"]: row for row in read_csv(os.path.join(directory, "dw_summary.csv"))}
    models = [m for m in ("ml", "ml+kl", "ml+mixed") if m in summary]
    titles = {"ml": "ML only", "ml+kl": "ML, then reverse KL (lambda = 1)",
              "ml+mixed": "ML, then mixed (lambda = 0.1)"}
    preset = read_info(os.path.join(directory, "dw_info.txt")).get("preset", ["?"])[0]

    # Panels A-D for every model.
    fig, axes = plt.subplots(len(models), 4, figsize=(14, 3.4 * len(models)), squeeze=False)
    gx, gy = np.meshgrid(np.linspace(-4.5, 4.5, 300), np.linspace(-3.5, 3.5, 240))
    energy = double_well_energy(gx, gy)
    energy = np.minimum(energy - energy.min(), 12.0)
    for row, model in enumerate(models):
        pts = points_by_kind(os.path.join(directory, "dw_points_%s.csv" % model.replace("+", "_")))
        latent, flow_x = pts["latent"], pts["flow_x"]
        data_latent, data_x = pts["data_latent"], pts["data_x"]
        right_flow = flow_x[:, 0] > 0
        right_data = data_x[:, 0] > 0
        ax = axes[row]
        for a, p, mask in ((ax[0], latent, right_flow), (ax[1], data_latent, right_data)):
            a.scatter(p[~mask, 0], p[~mask, 1], s=2, c="tab:blue", rasterized=True)
            a.scatter(p[mask, 0], p[mask, 1], s=6, c="tab:red", rasterized=True)
            a.set_xlim(-4.5, 4.5)
            a.set_ylim(-4.5, 4.5)
            a.set_aspect("equal")
        ax[0].set_title("A  latent samples z ~ N(0, I)\n(red: x = F(z) in the right well)", fontsize=9)
        ax[1].set_title("B  exact samples mapped to latent space\nz = F^-1(x) (red: right well)", fontsize=9)
        ax[2].scatter(flow_x[~right_flow, 0], flow_x[~right_flow, 1], s=2, c="tab:blue", rasterized=True)
        ax[2].scatter(flow_x[right_flow, 0], flow_x[right_flow, 1], s=6, c="tab:red", rasterized=True)
        ax[2].set_title("C  flow samples x = F(z)", fontsize=9)
        ax[3].contourf(gx, gy, -energy, levels=np.linspace(-12, 0, 25), cmap="viridis")
        ax[3].set_title("D  exact log-density -u(x, y) (kT),\nlowest 12 kT shown", fontsize=9)
        for a in ax[2:]:
            a.set_xlim(-4.5, 4.5)
            a.set_ylim(-3.5, 3.5)
            a.set_xlabel("x")
        ax[2].set_ylabel("y")
        ax[0].set_ylabel(titles[model], fontsize=10)
    fig.suptitle("Paper 000, 2D double well, RealNVP (preset %s)" % preset)
    fig.tight_layout()
    save(fig, os.path.join(directory, "dw_panels.png"))

    # x-marginals: probabilities and free energies -ln p.
    hist = defaultdict(list)
    for row in read_csv(os.path.join(directory, "dw_histograms.csv")):
        hist[row["model"]].append(row)
    fig, axes = plt.subplots(2, len(models), figsize=(5 * len(models), 7.5), squeeze=False)
    for col, model in enumerate(models):
        rows = hist[model]
        centres = np.array([(r["lo"] + r["hi"]) / 2 for r in rows])
        width = rows[0]["hi"] - rows[0]["lo"]
        exact = np.array([r["exact"] for r in rows])
        flow = np.array([r["flow"] for r in rows])
        weighted = np.array([r["reweighted"] for r in rows])
        s = summary[model]
        top, bottom = axes[0, col], axes[1, col]
        top.plot(centres, exact / width, "k-", lw=2, label="exact (quadrature)")
        top.step(centres, flow / width, where="mid", color="tab:orange", label="flow samples")
        top.step(centres, weighted / width, where="mid", color="tab:green", ls="--", label="reweighted")
        top.set_title("%s\ndF exact %.2f, flow %.2f, reweighted %.2f kT, ESS %.2f"
                      % (titles[model], s["df_exact"], s["df_flow"], s["df_reweighted"], s["ess"]), fontsize=9)
        top.set_ylabel("p(x)")
        with np.errstate(divide="ignore"):
            for values, style, color, label in ((exact, "-", "k", "exact"), (flow, "-", "tab:orange", "flow"),
                                                (weighted, "--", "tab:green", "reweighted")):
                f = -np.log(values / width)
                bottom.plot(centres, f - np.nanmin(f[np.isfinite(f)]), style, color=color, label=label)
        bottom.set_ylim(-0.5, 16)
        bottom.set_ylabel("-ln p(x) (kT)")
        bottom.set_xlabel("x")
        top.legend(fontsize=8)
        bottom.legend(fontsize=8)
    fig.suptitle("x-marginal of 200000 flow samples at kT = 1 (preset %s)" % preset)
    fig.tight_layout()
    save(fig, os.path.join(directory, "dw_marginals.png"))

    # Training curves.
    log = read_csv(os.path.join(directory, "dw_training.csv"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    ml_steps = max((r["step"] for r in log if r["run"] == "ml"), default=0)
    for run, color in (("ml", "k"), ("ml+kl", "tab:red"), ("ml+mixed", "tab:green")):
        rows = [r for r in log if r["run"] == run]
        if not rows:
            continue
        shift = 0 if run == "ml" else ml_steps
        steps = np.array([r["step"] + shift for r in rows])
        ml_loss = np.array([r["loss_ml"] for r in rows])
        kl_loss = np.array([r["loss_kl"] for r in rows])
        ess = np.array([r["ess_fraction"] for r in rows])
        if np.isfinite(ml_loss).any():
            axes[0].plot(steps, ml_loss, color=color, label=run)
        if np.isfinite(kl_loss).any():
            axes[1].plot(steps, kl_loss, color=color, label=run)
            axes[2].plot(steps, ess, color=color, label=run)
    axes[0].axhline(summary["ml"]["exact_entropy"], color="gray", ls="--", label="exact entropy")
    axes[0].set_ylabel("ML loss of the batch (nats)")
    axes[1].set_ylabel("KL loss of the batch, E_q[log q - l] (nats)")
    axes[2].set_ylabel("Kish ESS / N of the batch")
    for a in axes:
        a.set_xlabel("step")
        a.legend(fontsize=8)
    fig.suptitle("Double well training (preset %s); batch losses every 50 steps" % preset)
    fig.tight_layout()
    save(fig, os.path.join(directory, "dw_training.png"))


# ------------------------------------------------- harmonic oscillator in box
def plot_harmonic_box(directory):
    info = read_info(os.path.join(directory, "ho_info.txt"))
    preset = info.get("preset", ["?"])[0]
    k_value, radius = 1.0, 1.0
    if "k" in info:
        parts = ("k " + info["k"][0]).split()
        k_value, radius = float(parts[1]), float(parts[3])
    summary = read_csv(os.path.join(directory, "ho_summary.csv"))[0]
    mapping = read_csv(os.path.join(directory, "ho_map.csv"))
    pts = points_by_kind(os.path.join(directory, "ho_points.csv"))
    hist = defaultdict(list)
    for row in read_csv(os.path.join(directory, "ho_histograms.csv")):
        hist[row["variable"]].append(row)

    x1 = np.array([r["x1"] for r in mapping])
    x2 = np.array([r["x2"] for r in mapping])
    z1, z2 = np.array([r["z1_learned"] for r in mapping]), np.array([r["z2_learned"] for r in mapping])
    e1, e2 = np.array([r["z1_exact"] for r in mapping]), np.array([r["z2_exact"] for r in mapping])
    r1, r2 = np.array([r["z1_exact_rotated"] for r in mapping]), np.array([r["z2_exact_rotated"] for r in mapping])

    fig, axes = plt.subplots(2, 4, figsize=(16, 7.6))
    ax = axes[0]
    ax[0].scatter(pts["latent"][:, 0], pts["latent"][:, 1], s=2, rasterized=True)
    ax[0].set_title("A  latent samples z ~ N(0, I)", fontsize=9)
    ax[1].scatter(pts["data_latent"][:, 0], pts["data_latent"][:, 1], s=2, c="tab:green", rasterized=True)
    ax[1].set_title("B  exact samples mapped to latent space, F^-1(x)", fontsize=9)
    for a in ax[:2]:
        a.set_xlim(-4, 4)
        a.set_ylim(-4, 4)
        a.set_aspect("equal")
        a.set_xlabel("z1")
        a.set_ylabel("z2")
    for a, p, title, color in ((ax[2], pts["flow_x"], "C  flow samples x = F(z)", "tab:orange"),
                               (ax[3], pts["data_x"], "D  exact samples", "tab:green")):
        a.scatter(p[:, 0], p[:, 1], s=2, c=color, rasterized=True)
        a.axvline(0, color="k", lw=1)
        a.axvline(radius, color="k", lw=1)
        a.set_xlim(-0.5, radius + 0.5)
        a.set_ylim(-2.5, radius + 2.5)
        a.set_xlabel("x1")
        a.set_ylabel("x2")
        a.set_title(title, fontsize=9)

    ax = axes[1]
    order = np.argsort(x1)
    grid = np.linspace(1e-4, 1 - 1e-4, 400)
    phi_inv = np.array([math.sqrt(2) * _erfinv(2 * g - 1) for g in grid])
    ax[0].scatter(x1, z1, s=2, c=x2 - x1, cmap="coolwarm", vmin=-1.5, vmax=1.5, rasterized=True)
    ax[0].plot(grid * radius, phi_inv, "k-", lw=2, label="exact: Phi^-1(x1 / R)")
    ax[0].plot(x1[order], r1[order], ".", ms=1, color="gray", label="best rotation of the exact map")
    ax[0].set_xlabel("x1")
    ax[0].set_ylabel("learned z1")
    ax[0].set_ylim(-4, 4)
    ax[0].set_title("E  learned z1 (colour: x2 - x1)\nRMS vs exact %.3f, vs best rotation %.3f"
                    % (summary["rms_z1"], summary["rms_z1_rotated"]), fontsize=9)
    ax[0].legend(fontsize=7, loc="upper left")
    ax[1].scatter(e2, z2, s=2, c=x1, cmap="viridis", rasterized=True)
    ax[1].plot([-4, 4], [-4, 4], "k-", lw=1.5, label="z2 learned = exact")
    ax[1].set_xlabel("exact z2 = sqrt(2k) (x2 - x1)")
    ax[1].set_ylabel("learned z2")
    ax[1].set_xlim(-4, 4)
    ax[1].set_ylim(-4, 4)
    ax[1].set_title("F  learned z2 (colour: x1)\nRMS vs exact %.3f, vs best rotation %.3f"
                    % (summary["rms_z2"], summary["rms_z2_rotated"]), fontsize=9)
    ax[1].legend(fontsize=7)
    rows = hist["x1"]
    centres = np.array([(r["lo"] + r["hi"]) / 2 for r in rows])
    width = rows[0]["hi"] - rows[0]["lo"]
    ax[2].step(centres, np.array([r["flow"] for r in rows]) / width, where="mid", color="tab:orange",
               label="flow samples")
    ax[2].plot([-0.25 * radius, 0, 0, radius, radius, 1.25 * radius], [0, 0, 1 / radius, 1 / radius, 0, 0], "k-",
               lw=1.5, label="exact U(0, R)")
    ax[2].set_xlabel("x1")
    ax[2].set_ylabel("density")
    ax[2].set_title("G  x1 marginal: %.2f%% of samples outside the box" % (100 * summary["fraction_outside_box"]),
                    fontsize=9)
    ax[2].legend(fontsize=7)
    rows = hist["x2-x1"]
    centres = np.array([(r["lo"] + r["hi"]) / 2 for r in rows])
    width = rows[0]["hi"] - rows[0]["lo"]
    ax[3].step(centres, np.array([r["flow"] for r in rows]) / width, where="mid", color="tab:orange",
               label="flow samples")
    s = np.linspace(-3, 3, 300)
    var = 1 / (2 * k_value)
    ax[3].plot(s, np.exp(-s**2 / (2 * var)) / math.sqrt(2 * math.pi * var), "k-", lw=1.5, label="exact N(0, 1/(2k))")
    ax[3].set_xlabel("x2 - x1")
    ax[3].set_title("H  x2 - x1 marginal", fontsize=9)
    ax[3].legend(fontsize=7)
    fig.suptitle("Paper 000, harmonic oscillator in a box (k = %g, R = %g), RealNVP trained by example (preset %s); "
                 "test NLL %.3f vs exact entropy %.3f" % (k_value, radius, preset, summary["test_nll"],
                                                          summary["exact_entropy"]))
    fig.tight_layout()
    save(fig, os.path.join(directory, "ho_map.png"))


def _erfinv(y):
    # Newton on erf, good to ~1e-12 for |y| < 1.
    x = 0.0 if abs(y) < 1e-15 else math.copysign(min(5.0, abs(math.sqrt(-math.log((1 - abs(y)) / 2)))), y)
    for _ in range(60):
        err = math.erf(x) - y
        x -= err / (2 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


# ----------------------------------------------- multi-dimensional double well
def plot_multi_double_well(directory):
    nll = read_csv(os.path.join(directory, "mdw_nll.csv"))
    ref = read_csv(os.path.join(directory, "mdw_reference.csv"))
    marginals = read_csv(os.path.join(directory, "mdw_marginals.csv"))
    preset = read_info(os.path.join(directory, "mdw_info.txt")).get("preset", ["?"])[0]
    styles = {"TSF": ("tab:red", "-", "o"), "RealNVP": ("tab:blue", "-", "s"),
              "Gaussian": ("gray", "--", None), "TSF (identity init)": ("tab:red", ":", None)}
    dims = sorted({int(r["dim"]) for r in nll})

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    # A: marginals of the first coordinates of the largest system at T = 1.
    a = axes[0, 0]
    dmax = dims[-1]
    colours = plt.cm.tab10(np.arange(5))
    for coordinate in range(5):
        for model, style in (("reference", "-"), ("TSF", "--"), ("RealNVP", ":")):
            rows = [r for r in marginals if int(r["dim"]) == dmax and int(r["coordinate"]) == coordinate
                    and r["model"] == model]
            if not rows:
                continue
            centres = np.array([(r["lo"] + r["hi"]) / 2 for r in rows])
            a.plot(centres, [r["density"] for r in rows], style, color=colours[coordinate], lw=1.3,
                   label=model if coordinate == 0 else None)
    a.set_xlabel("q_i, i = 1..5")
    a.set_ylabel("marginal density at T = 1")
    a.set_title("A  d = %d: first 5 marginals (colours), reference vs flows" % dmax, fontsize=10)
    a.legend(fontsize=8)

    for col, dim in enumerate(dims[:2]):
        a = axes[0, 1 + col]
        for model, (color, ls, marker) in styles.items():
            rows = [r for r in nll if int(r["dim"]) == dim and r["model"] == model]
            if rows:
                a.errorbar([r["T"] for r in rows], [r["nll"] for r in rows], yerr=[r["nll_err"] for r in rows],
                           color=color, ls=ls, marker=marker, ms=4, label=model)
        a.axvline(1.0, color="k", ls="--", lw=1)
        a.set_xscale("log")
        a.set_xlabel("T (units of the training temperature)")
        a.set_ylabel("test NLL (nats)")
        a.set_title("%s  d = %d: test NLL vs temperature" % ("BC"[col], dim), fontsize=10)
        a.legend(fontsize=8)

    for col, dim in enumerate(dims[:2]):
        a = axes[1, col]
        reference = {r["T"]: r["median_u_test"] for r in ref if int(r["dim"]) == dim}
        a.axhline(0.0, color="k", lw=2, label="reference (PT)")
        for model, (color, ls, marker) in styles.items():
            rows = [r for r in nll if int(r["dim"]) == dim and r["model"] == model]
            if rows:
                a.plot([r["T"] for r in rows], [r["median_u_samples"] - reference[r["T"]] for r in rows],
                       color=color, ls=ls, marker=marker, ms=4, label=model)
        a.axvline(1.0, color="k", ls="--", lw=1)
        a.set_xscale("log")
        a.set_yscale("symlog", linthresh=1)
        a.set_ylim(bottom=-1)
        a.set_xlabel("T")
        a.set_ylabel("median U(samples) - median U(reference) (kT at T = 1)")
        a.set_title("%s  d = %d: excess median energy of samples drawn at T" % ("DE"[col], dim), fontsize=10)
        a.legend(fontsize=8)

    a = axes[1, 2]
    for dim, ls in zip(dims, ("-", "--")):
        for model, (color, _, marker) in styles.items():
            rows = [r for r in nll if int(r["dim"]) == dim and r["model"] == model]
            if rows and model != "TSF (identity init)":
                a.plot([r["T"] for r in rows], [max(r["ess"], 1e-5) for r in rows], color=color, ls=ls,
                       marker=marker, ms=3, label="%s d=%d" % (model, dim))
    a.axvline(1.0, color="k", ls="--", lw=1)
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("T")
    a.set_ylabel("Kish ESS / N (20000 samples)")
    a.set_title("F  importance-sampling efficiency at T", fontsize=10)
    a.legend(fontsize=7, ncol=2)
    fig.suptitle("Paper 001, multi-dimensional double well: TSF vs RealNVP trained at T = 1 (preset %s)" % preset)
    fig.tight_layout()
    save(fig, os.path.join(directory, "mdw_nll.png"))


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                   "results")
    done = False
    for prefix, plot in (("dw", plot_double_well), ("ho", plot_harmonic_box), ("mdw", plot_multi_double_well)):
        if os.path.exists(os.path.join(directory, prefix + "_summary.csv" if prefix != "mdw" else "mdw_nll.csv")):
            plot(directory)
            done = True
    if not done:
        sys.exit("no results found in %s" % directory)


if __name__ == "__main__":
    main()
