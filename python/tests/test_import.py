"""The module imports next to openmm, loads its plugin and shares openmm's SWIG types."""
import ctypes
import os
import subprocess
import sys

import openmm
import openmmbg


def cudaDriverPresent():
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def test_plugins_load_without_failures():
    failures = openmm.Platform.getPluginLoadFailures()
    if not cudaDriverPresent():
        # OpenMM's own CUDA plugins (openmm-cuda-13 on the PyPI stack) cannot
        # load without the CUDA driver; ours are not installed there.
        failures = [failure for failure in failures if "libcuda.so.1" not in failure
                    and "libOpenMMCUDA.so: cannot open" not in failure]
    assert list(failures) == []
    assert openmmbg.kernelsAvailable("Reference")
    assert openmmbg.kernelsAvailable("CPU")


def mappedFiles(name):
    """Paths of the files mapped into this process whose name contains `name`."""
    with open("/proc/self/maps") as maps:
        return {os.path.realpath(line.split()[-1]) for line in maps
                if line.count("/") and name in os.path.basename(line.split()[-1])}


def test_one_library_and_the_plugin_from_openmms_plugin_folder():
    # One copy of libOpenMMBG (shared by the plugin and the extension module),
    # and the plugin from the directory OpenMM loads plugins from.
    assert len(mappedFiles("libOpenMMBG.so")) == 1
    plugins = mappedFiles("libOpenMMBGReference.so")
    assert len(plugins) == 1
    directory = openmmbg._compat.openmmPluginDirectory()
    assert os.path.dirname(plugins.pop()) == os.path.realpath(directory)


def test_plugin_is_loaded_by_the_package_when_openmm_did_not():
    # With an empty plugin directory `import openmm` loads nothing of ours
    # (nor the CPU platform); `import openmmbg` loads our plugin itself.
    script = ("import openmm, openmmbg; "
              "print(openmmbg.kernelsAvailable('Reference'), len(openmm.Platform.getPluginLoadFailures()))")
    env = dict(os.environ, OPENMM_PLUGIN_DIR="/nonexistent")
    output = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert output.stdout.split() == ["True", "0"], output.stderr


def test_integrators_are_openmm_integrators(untrainedFlow):
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, 300, 0.5)
    assert isinstance(integrator, openmm.Integrator)
    assert isinstance(openmmbg.TSFParallelTemperingIntegrator(untrainedFlow, [300, 600], 0.5), openmm.Integrator)
    # Inherited from openmm's wrapper of OpenMM::Integrator, called on our C++ object.
    assert integrator.getIntegrationForceGroups() == -1
    integrator.setIntegrationForceGroups({0, 2})
    assert integrator.getIntegrationForceGroups() == 5
    assert integrator.getStepSize() == 0 * openmm.unit.picosecond
    integrator.setConstraintTolerance(1e-6)
    assert integrator.getConstraintTolerance() == 1e-6


def test_systems_are_openmm_systems(well):
    system = well.createSystem(mass=2.0)
    assert type(system) is openmm.System
    assert system.thisown
    assert system.getParticleMass(0) == 2.0 * openmm.unit.dalton
    assert system.getNumForces() >= 1


def test_struct_fields_and_keywords():
    config = openmmbg.FlowConfig(numBlocks=3, seed=9)
    assert (config.numBlocks, config.hiddenLayers, config.seed) == (3, 3, 9)
    assert config.asdict()["hiddenWidth"] == 256
    assert "numBlocks=3" in repr(config)
    stage = openmmbg.TrainingStage(steps=10, temperature=400 * openmm.unit.kelvin)
    assert stage.temperature == 400.0
    try:
        openmmbg.FlowConfig(numBlock=3)
    except TypeError as error:
        assert "numBlock" in str(error)
    else:
        raise AssertionError("a misspelt field was accepted")
    options = openmmbg.OpenMMEnergy.Options(platform="Reference", numWorkers=1)
    options.platformProperties = {"a": "b"}
    assert dict(options.platformProperties) == {"a": "b"}


def test_move_kind():
    assert openmmbg.MoveKind.RandomWalk == openmmbg.MoveKind_RandomWalk == 0
    assert openmmbg.MoveKind.Independence == openmmbg.MoveKind_Independence == 1
