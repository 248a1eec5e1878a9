"""Figures of the coarse-grained latent-model example from the CSV files of cg_latent.

    python3 examples/cg_latent/plot_cg_latent.py DIR    (the --output folder of cg_latent)

Writes DIR/rg_density.png, DIR/ard_encodings.png, DIR/latent_map.png,
DIR/physics_ramachandran.png and DIR/physics_double_well.png for the files present."""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

CLASS_NAMES = ["alpha", "beta-1 (phi < -100)", "beta-2 (PII)", "other (phi > 0)"]
CLASS_COLOURS = ["tab:red", "tab:blue", "tab:green", "tab:grey"]


def read(path):
    return np.genfromtxt(path, delimiter=",", names=True, skip_header=1, dtype=None, encoding=None)


def scatterReference(axis, encodings, size=1, alpha=0.2):
    """The phi, psi of the reference MD test frames on a Ramachandran axis."""
    axis.scatter(np.degrees(encodings["phi"]), np.degrees(encodings["psi"]), s=size, color="tab:blue", alpha=alpha,
                 label="reference MD")


def ramachandranAxes(axis):
    axis.set_xlim(-180, 180)
    axis.set_ylim(-180, 180)
    axis.set_xlabel("phi (degrees)")
    axis.set_ylabel("psi (degrees)")


def plotRg(directory):
    data = read(os.path.join(directory, "rg_density.csv"))
    sizes = sorted(set(data["size"]))
    figure, axes = plt.subplots(1, len(sizes), figsize=(4 * len(sizes), 3.2), sharey=True)
    for axis, size in zip(np.atleast_1d(axes), sizes):
        rows = data[data["size"] == size]
        centre = 0.5 * (rows["bin_low_nm"] + rows["bin_high_nm"])
        axis.fill_between(centre, rows["q05"], rows["q95"], color="tab:orange", alpha=0.4, label="90% credible band")
        axis.plot(centre, rows["q50"], color="tab:orange", label="posterior median")
        axis.plot(centre, rows["reference"], color="black", lw=1.5, label="reference MD")
        axis.set_title(f"N = {size} training frames")
        axis.set_xlabel("radius of gyration (nm)")
    np.atleast_1d(axes)[0].set_ylabel("density (1/nm)")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(directory, "rg_density.png"), dpi=110)


def plotArd(directory):
    data = read(os.path.join(directory, "ard_encodings.csv"))
    figure, axes = plt.subplots(1, 2, figsize=(9, 4))
    for axis, ard in zip(axes, (0, 1)):
        rows = data[data["ard"] == ard]
        for c, (name, colour) in enumerate(zip(CLASS_NAMES, CLASS_COLOURS)):
            chosen = rows[rows["class"] == c]
            axis.scatter(chosen["z1"], chosen["z2"], s=4, color=colour, label=name)
        axis.set_title("with ARD" if ard else "without ARD")
        axis.set_xlabel("z1")
        axis.set_ylabel("z2")
    axes[0].legend(fontsize=8, markerscale=3)
    figure.tight_layout()
    figure.savefig(os.path.join(directory, "ard_encodings.png"), dpi=110)


def plotMap(directory):
    encodings = read(os.path.join(directory, "latent_encodings.csv"))
    grid = read(os.path.join(directory, "latent_grid.csv"))
    figure, axes = plt.subplots(1, 3, figsize=(14, 4))
    for axis, angle in zip(axes[:2], ("phi", "psi")):
        points = axis.scatter(encodings["z1"], encodings["z2"], c=np.degrees(encodings[angle]), s=4, cmap="twilight",
                              vmin=-180, vmax=180)
        figure.colorbar(points, ax=axis, label=f"{angle} (degrees)")
        axis.set_xlabel("z1")
        axis.set_ylabel("z2")
        axis.set_title(f"test frames encoded, coloured by {angle}")
    axis = axes[2]
    for kind, marker, colour, label in (("grid", "o", "tab:grey", "decoded grid, z in [-3, 3]^2"),
                                        ("path", ".", "tab:red", "decoded path along z1 (z2 = 0)")):
        rows = grid[grid["kind"] == kind]
        axis.scatter(np.degrees(rows["phi"]), np.degrees(rows["psi"]), s=10, marker=marker, color=colour, label=label)
    scatterReference(axis, encodings)
    ramachandranAxes(axis)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(os.path.join(directory, "latent_map.png"), dpi=110)


def plotPhysics(directory):
    samples = read(os.path.join(directory, "physics_samples.csv"))
    figure, axis = plt.subplots(figsize=(4.6, 4.2))
    reference = os.path.join(directory, "latent_encodings.csv")
    if os.path.exists(reference):
        scatterReference(axis, read(reference), alpha=0.3)
    axis.scatter(np.degrees(samples["phi"]), np.degrees(samples["psi"]), s=2, color="tab:red", alpha=0.4,
                 label="model trained without data")
    ramachandranAxes(axis)
    axis.legend(fontsize=8, markerscale=4)
    figure.tight_layout()
    figure.savefig(os.path.join(directory, "physics_ramachandran.png"), dpi=110)


def plotDoubleWell(directory):
    """P(x1 > 0) of the double well's model at every rise of beta_s, with both objectives, against the exact one."""
    figure, axis = plt.subplots(figsize=(5.2, 3.8))
    exact = None
    for name, label, colour in (("physics_double_well.csv", "paper 002's objective", "tab:blue"),
                                ("physics_double_well_covering.csv", "with the mode-covering term", "tab:red")):
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        trace = read(path)
        # Rows at beta: the first one reached and the last (end of training); a zero is drawn at the bottom.
        axis.plot(trace["beta_fraction"], np.maximum(trace["p_right_model"], 1e-5), "o-", ms=3, color=colour,
                  label=label)
        exact = trace
    if exact is not None:
        known = np.isfinite(exact["p_right_exact"])
        axis.plot(exact["beta_fraction"][known], exact["p_right_exact"][known], "k--", label="exact (quadrature)")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlim(0.02, 1.1)
    axis.set_ylim(1e-5, 1)
    axis.set_xlabel("beta_s / beta")
    axis.set_ylabel("P(x1 > 0): the shallow well")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(directory, "physics_double_well.png"), dpi=110)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    directory = sys.argv[1]
    for name, plot in (("rg_density.csv", plotRg), ("ard_encodings.csv", plotArd), ("latent_grid.csv", plotMap),
                       ("physics_samples.csv", plotPhysics), ("physics_double_well.csv", plotDoubleWell)):
        if os.path.exists(os.path.join(directory, name)):
            plot(directory)


if __name__ == "__main__":
    main()
