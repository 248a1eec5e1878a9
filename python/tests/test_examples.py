"""The Python example examples/alanine_dipeptide/flow_moves.py, as a user runs
it: flow moves in app.Simulation with reporters, then a CompoundIntegrator
that alternates MD and flow moves, with a small alanine dipeptide flow."""
import os
import subprocess
import sys

import openmmbg
from conftest import perturbed

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "alanine_dipeptide", "flow_moves.py")


def run_example(*arguments):
    return subprocess.run([sys.executable, EXAMPLE, *arguments], capture_output=True, text=True, timeout=600)


def test_flow_moves_example(alanine, tmp_path):
    system, _, positions = alanine
    # Any flow made for the molecule gives exact moves; an untrained one is quick to make.
    frames = perturbed(positions, 200, 0.005, 1)
    config = openmmbg.FlowConfig(numBlocks=2, hiddenLayers=1, hiddenWidth=16)
    flow = openmmbg.FlowModel.createForMolecule(system, frames, "tsf", config, 600)
    path = str(tmp_path / "flow.bgflow")
    flow.save(path)
    result = run_example("--flow", path, "--moves", "40", "--cycles", "2")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "app.Simulation: 40 flow moves" in result.stdout
    assert "CompoundIntegrator: 2 cycles" in result.stdout
    log = (tmp_path / "flow_moves.log").read_text().splitlines()
    assert log[0].startswith('#"Step"') and len(log) == 21  # a report every 2 of the 40 steps
    assert log[-1].split(",")[0] == "40"
    assert (tmp_path / "flow_moves.dcd").stat().st_size > 0


def test_flow_moves_example_without_a_flow(tmp_path):
    result = run_example("--flow", str(tmp_path / "none.bgflow"))
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error: no flow at"), result.stderr
