"""The Python alanine dipeptide pipeline (examples/alanine_dipeptide/pipeline.py)
against the C++ program (build/examples/alanine_dipeptide_pipeline), both with
--preset smoke: the same files and summary, the same numbers from the same
inputs, and one-line errors for user mistakes.

The C++ program is found next to the openmmbg package's build folder
(<build>/python/openmmbg -> <build>/examples/alanine_dipeptide_pipeline), or
at BG_PIPELINE_EXECUTABLE."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import openmmbg

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON_PIPELINE = os.path.join(ROOT, "examples", "alanine_dipeptide", "pipeline.py")
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(openmmbg.__file__)))
CPP_PIPELINE = os.environ.get("BG_PIPELINE_EXECUTABLE") or os.path.join(
    os.path.dirname(PACKAGE_PARENT), "examples", "alanine_dipeptide_pipeline")
MD_FILES = ("md600.csv", "md300.csv", "md600.dcd", "md300.dcd")
SERIES = ("md600", "md300", "flow600", "flow300", "mcmc300", "pt300")


def environment():
    """The test's own environment with absolute paths, for programs started elsewhere."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT] + [p for p in [env.get("PYTHONPATH")] if p])
    if env.get("OPENMM_PLUGIN_DIR"):
        env["OPENMM_PLUGIN_DIR"] = os.path.abspath(env["OPENMM_PLUGIN_DIR"])
    return env


def run(command, check=True):
    result = subprocess.run(command, capture_output=True, text=True, env=environment(), cwd=ROOT, timeout=600)
    if check:
        assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def run_python(*arguments, check=True):
    return run([sys.executable, PYTHON_PIPELINE, *arguments], check)


def run_cpp(*arguments):
    if not os.path.exists(CPP_PIPELINE):
        pytest.skip(f"the C++ pipeline {CPP_PIPELINE} is not built (or set BG_PIPELINE_EXECUTABLE)")
    return run([CPP_PIPELINE, *arguments])


def smoke(program, folder, seed_from=None):
    """Runs a pipeline with --preset smoke into `folder`, starting from the MD files of `seed_from`."""
    os.makedirs(folder)
    for name in MD_FILES if seed_from else ():
        shutil.copy(os.path.join(seed_from, name), folder)
    program("--preset", "smoke", "--no-plots", "--output", str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """Both programs from scratch: (C++ folder, Python folder)."""
    base = tmp_path_factory.mktemp("fresh")
    return smoke(run_cpp, base / "cpp"), smoke(run_python, base / "python")


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, fresh):
    """Both programs resumed from the same MD files (the C++ run's): everything after MD is deterministic."""
    base = tmp_path_factory.mktemp("resumed")
    return smoke(run_cpp, base / "cpp", fresh[0]), smoke(run_python, base / "python", fresh[0])


def read(folder, name):
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


def series(folder, name):
    return np.genfromtxt(os.path.join(folder, name + ".csv"), delimiter=",", names=True)


def summary(folder):
    with open(os.path.join(folder, "summary.json")) as f:
        return json.load(f)


def fragment(folder, name):
    """A stage's summary entries without its wall-clock time."""
    lines = read(folder, name).decode().splitlines()
    return [line for line in lines if not line.split("\t")[0].endswith("seconds_sampling")]


def is_timing(key):
    return key.startswith(("seconds_", "cpu_seconds_")) or key.endswith("_seconds_sampling")


def numbers(value):
    """The numbers of a summary value ("inf" strings included) as a flat list."""
    if isinstance(value, dict):
        return numbers(value["value"]) + numbers(value["error"])
    if isinstance(value, list):
        return [float(v) for v in value]
    return [float(value)]


def test_same_files_series_and_summary_keys(fresh):
    cpp, python = fresh
    assert sorted(os.listdir(python)) == sorted(os.listdir(cpp))
    assert list(summary(python)) == list(summary(cpp))
    text = [line.split(":")[0] for line in read(python, "summary.txt").decode().splitlines()]
    assert text == list(summary(cpp))
    for name in SERIES:
        assert series(python, name).dtype.names == series(cpp, name).dtype.names
        assert series(python, name).shape == series(cpp, name).shape
    for name in ("mcmc300.summary", "pt300.summary"):
        keys = [[line.split("\t")[0] for line in read(folder, name).decode().splitlines()] for folder in fresh]
        assert keys[0] == keys[1]
    for name in ("md600.dcd", "md300.dcd"):
        frames = [openmmbg.readDcd(os.path.join(folder, name), 22) for folder in fresh]
        assert frames[0].shape == frames[1].shape == (200, 22, 3)
        assert len(read(python, name)) == len(read(cpp, name))
    assert summary(python)["preset"] == "smoke"
    for key, value in summary(python).items():
        if is_timing(key):
            assert value >= 0


def test_md_frames_agree_exactly(fresh):
    # Each MD run has the Reference platform's random generator to itself
    # (pipeline.cpp runs them one after the other, pipeline.py in two
    # processes), seeded alike: the same frames, byte for byte.
    cpp, python = fresh
    for name in MD_FILES:
        assert read(python, name) == read(cpp, name), name


def test_stages_after_md_agree_exactly(resumed):
    # The same MD frames in, the same seeds and call order: the same training
    # losses, flow file, Metropolis chain and parallel-tempering run.
    cpp, python = resumed
    for name in ("training.csv", "flow.bgflow", "mcmc300.csv", "pt300.csv"):
        assert read(python, name) == read(cpp, name), name
    for name in ("mcmc300.summary", "pt300.summary"):
        assert fragment(python, name) == fragment(cpp, name)
    assert len(read(python, "training.csv").decode().splitlines()) == 3  # header, end of each stage


def test_flow_samples_agree(resumed):
    # pipeline.py draws the flow samples (same seeds, same latent vectors) in the
    # flow's canonical frame, pipeline.cpp moves them onto the minimized
    # structure: a rigid motion, which changes dihedrals and energies by rounding
    # only (about 1e-13 relative), below the 10 significant digits of the CSV files.
    cpp, python = resumed
    for name in ("flow600", "flow300"):
        a, b = series(python, name), series(cpp, name)
        for angle in ("phi", "psi"):
            np.testing.assert_allclose(np.angle(np.exp(1j * (a[angle] - b[angle]))), 0, atol=1e-8)
        np.testing.assert_allclose(a["energy"], b["energy"], rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(a["log_weight"], b["log_weight"], rtol=1e-8, atol=1e-8)
        assert np.isfinite(a["log_weight"]).sum() > 0


def test_summaries_agree(resumed):
    # Values from the flow samples are printed to 6 significant digits from
    # inputs that differ by rounding (see above): they may differ in the last
    # digit. Every other value comes from identical inputs and must be equal.
    cpp, python = resumed
    a, b = summary(python), summary(cpp)
    assert list(a) == list(b)
    for key in a:
        if is_timing(key):
            continue
        if "flow" in key and key != "flow_parameters":
            np.testing.assert_allclose(numbers(a[key]), numbers(b[key]), rtol=1e-5, err_msg=key)
        else:
            assert a[key] == b[key], key


def test_reruns_resume_from_either_program(resumed, tmp_path):
    python = str(tmp_path / "python")
    shutil.copytree(resumed[1], python)
    os.remove(os.path.join(python, "pt300.csv"))
    out = run_python("--preset", "smoke", "--no-plots", "--output", python).stdout
    assert "found in" in out and "reused" in out and "Metropolis chain found, reused" in out
    assert "parallel tempering found" not in out
    assert read(python, "pt300.csv") == read(resumed[1], "pt300.csv")
    assert [k for k in summary(python) if not is_timing(k)] == [k for k in summary(resumed[1]) if not is_timing(k)]
    # The C++ program takes up a folder that pipeline.py wrote: it reuses every stage.
    cpp = str(tmp_path / "cpp")
    shutil.copytree(resumed[1], cpp)
    out = run_cpp("--preset", "smoke", "--no-plots", "--output", cpp).stdout
    assert out.count("reused") == 4, out
    assert fragment(cpp, "mcmc300.summary") == fragment(resumed[1], "mcmc300.summary")


def pipeline_module():
    """examples/alanine_dipeptide/pipeline.py as a module, for its presets and constants."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bg_pipeline", PYTHON_PIPELINE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("program", ["python", "cpp"])
def test_interrupted_training_resumes_and_keeps_its_log(program, fresh, tmp_path):
    # An interrupted run as it is left on disk: the MD files, a checkpoint after
    # 20 maximum-likelihood steps, and a training.csv with one report from
    # before the checkpoint and two from after it (made again on resuming).
    pipeline = pipeline_module()
    folder = tmp_path / program
    folder.mkdir()
    for name in MD_FILES:
        shutil.copy(os.path.join(fresh[0], name), folder)
    molecule = pipeline.load_molecule(os.path.join(ROOT, "examples", "alanine_dipeptide", "data"))
    frames = openmmbg.readDcd(str(folder / "md600.dcd"), molecule.system.getNumParticles())
    preset = pipeline.PRESETS["smoke"]
    config = openmmbg.FlowConfig(numBlocks=pipeline.FLOW_BLOCKS, hiddenLayers=pipeline.FLOW_LAYERS,
                                 hiddenWidth=preset.hidden_width)
    model = openmmbg.FlowModel.createForMolecule(molecule.system, frames, "tsf", config, pipeline.HOT)
    trainer = openmmbg.FlowTrainer(model, openmmbg.TrainerOptions(seed=pipeline.TRAINING_SEED, numThreads=1))
    trainer.setData(frames, pipeline.HOT)
    trainer.train(openmmbg.TrainingStage(name="ml", steps=20, batchSize=preset.batch_size))
    trainer.saveCheckpoint(str(folder / "training.checkpoint"))
    header = "stage,step,loss,loss_ml,loss_kl,lambda,mean_reduced_energy,ess"
    (folder / "training.csv").write_text(f"{header}\nml,10,1,1,nan,0,nan,nan\nml,30,2,2,nan,0,nan,nan\n"
                                         "mixed,5,3,3,3,0,3,0.5\n")
    if program == "python":
        out = run_python("--preset", "smoke", "--no-plots", "--output", str(folder)).stdout
    else:
        out = run_cpp("--preset", "smoke", "--no-plots", "--output", str(folder)).stdout
    assert "resuming from" in out, out
    rows = read(str(folder), "training.csv").decode().splitlines()
    assert rows[:2] == [header, "ml,10,1,1,nan,0,nan,nan"], rows
    assert [row.split(",")[:2] for row in rows[2:]] == [["ml", "40"], ["mixed", "20"]], rows
    assert not os.path.exists(folder / "training.checkpoint")  # removed once the flow is saved
    assert not [name for name in os.listdir(folder) if name.endswith(".part")]


@pytest.fixture
def foreign_flow(untrainedFlow, tmp_path):
    """A flow made for the double well, not for alanine dipeptide."""
    path = str(tmp_path / "double_well.bgflow")
    untrainedFlow.save(path)
    return path


@pytest.fixture
def other_preset_folder(tmp_path):
    """A results folder whose MD series have fewer frames than --preset long makes."""
    folder = tmp_path / "smoke_results"
    folder.mkdir()
    for name in ("md600", "md300"):
        (folder / (name + ".csv")).write_text("phi,psi,energy\n-1.5,1.2,3.0\n-1.4,1.1,4.0\n")
    (folder / "md600.dcd").write_bytes(b"")
    return str(folder)


@pytest.mark.parametrize("program", ["python", "cpp"])
@pytest.mark.parametrize("case", ["unknown preset", "missing value", "unknown option", "missing flow",
                                  "flow for another System", "missing data", "output under a file",
                                  "folder of another preset"])
def test_user_mistakes_give_one_line_and_an_exit_code(program, case, tmp_path, foreign_flow, other_preset_folder):
    output = str(tmp_path / "results")
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    arguments, code, words = {
        "unknown preset": (["--preset", "huge"], 2, "unknown preset 'huge'"),
        "missing value": (["--preset"], 2, "--preset"),
        "unknown option": (["--frobnicate"], 2, "--frobnicate"),
        "missing flow": (["--flow", str(tmp_path / "none.bgflow")], 1, "cannot open"),
        "flow for another System": (["--flow", foreign_flow], 1, "another System"),
        "missing data": (["--data", str(tmp_path)], 1, "cannot open"),
        "output under a file": (["--output", str(a_file / "results")], 2, "cannot create the output folder"),
        "folder of another preset": (["--preset", "long", "--output", other_preset_folder], 2, "another run"),
    }[case]
    if "--output" not in arguments:
        arguments += ["--output", output]
    if program == "cpp" and not os.path.exists(CPP_PIPELINE):
        pytest.skip(f"the C++ pipeline {CPP_PIPELINE} is not built (or set BG_PIPELINE_EXECUTABLE)")
    result = run_python(*arguments, check=False) if program == "python" else run([CPP_PIPELINE, *arguments], False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    if "--flow" in arguments or "--data" in arguments:
        assert not os.path.exists(output)  # inputs are checked before the results folder is made
