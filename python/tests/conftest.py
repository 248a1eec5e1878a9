"""Shared fixtures: the double well of ToySystems.h and small flows for it.

Run with PYTHONPATH=<build>/python after installing the plugin into
OpenMM's plugin folder (scripts/run_tests.sh does both)."""
import os

import numpy as np
import pytest

import openmm
import openmmbg

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "alanine_dipeptide", "data")
T_REF = 300.0  # the double well's unit temperature, and T_ref of its flows


@pytest.fixture(scope="session")
def well():
    return openmmbg.DoubleWell()


@pytest.fixture
def system(well):
    return well.createSystem()


@pytest.fixture(scope="session")
def exactData(well):
    """Exact samples (4000, 1, 3) at 300 K: training data and normalisation of every flow here."""
    return well.sampleExact(4000, T_REF, 11)


@pytest.fixture(scope="session")
def untrainedFlow(well, exactData):
    config = openmmbg.FlowConfig(numBlocks=2, hiddenLayers=2, hiddenWidth=16, outputInitScale=1.0, seed=3)
    return openmmbg.FlowModel.createCartesian(well.createSystem(), [0, 1], exactData, "realnvp", config, T_REF)


@pytest.fixture(scope="session")
def trainedFlow(well, exactData):
    """A RealNVP trained by maximum likelihood on exact samples (a few seconds)."""
    config = openmmbg.FlowConfig(numBlocks=4, hiddenLayers=2, hiddenWidth=32, seed=5)
    model = openmmbg.FlowModel.createCartesian(well.createSystem(), [0, 1], exactData, "realnvp", config, T_REF)
    trainer = openmmbg.FlowTrainer(model, openmmbg.TrainerOptions(seed=7, numThreads=1, logInterval=1000))
    trainer.setData(exactData, T_REF)
    trainer.train(openmmbg.TrainingStage(name="ml", steps=500, batchSize=256, learningRate=3e-3,
                                         finalLearningRate=3e-4))
    return model


@pytest.fixture(scope="session")
def alanine():
    """The alanine dipeptide System, its PDB structure and positions (1, 22, 3) in nm."""
    system = openmmbg.loadSystemXml(os.path.join(DATA_DIR, "alanine_dipeptide_system.xml"))
    structure = openmmbg.readPdb(os.path.join(DATA_DIR, "alanine_dipeptide.pdb"))
    return system, structure, structure.getPositions()[None]


def perturbed(frame, count, sigma, seed):
    """count copies of frame (1, N, 3) with Gaussian noise of sigma nm."""
    rng = np.random.default_rng(seed)
    return frame + sigma * rng.standard_normal((count,) + frame.shape[1:])


def reference():
    return openmm.Platform.getPlatformByName("Reference")


def xOf(context):
    return context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer)[0, 0]
