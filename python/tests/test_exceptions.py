"""C++ exceptions arrive as openmm.OpenMMException with their message; bad Python input as TypeError/ValueError."""
import numpy as np
import pytest

import openmm
import openmmbg
from conftest import T_REF, reference


def test_bad_temperatures(untrainedFlow):
    for temperature in (0.0, -3.0, -3 * openmm.unit.kelvin):
        with pytest.raises(openmm.OpenMMException, match="temperature"):
            openmmbg.LatentMetropolisIntegrator(untrainedFlow, temperature, 0.5)
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, T_REF, 0.5)
    with pytest.raises(openmm.OpenMMException, match="temperature"):
        integrator.setTemperature(-1)
    assert integrator.getTemperature() == T_REF
    with pytest.raises(openmm.OpenMMException, match="latent step size"):
        integrator.setLatentStepSize(-0.1)
    with pytest.raises(openmm.OpenMMException, match="independence probability"):
        openmmbg.LatentMetropolisIntegrator(untrainedFlow, T_REF, 0.5, 1.5)
    with pytest.raises(openmm.OpenMMException):
        openmmbg.TSFParallelTemperingIntegrator(untrainedFlow, [600, 300], 0.5)
    with pytest.raises(TypeError, match="kelvin"):
        integrator.setTemperature(300 * openmm.unit.nanometer)
    with pytest.raises(TypeError):
        integrator.setTemperature("hot")


def test_flow_for_another_system_refuses_the_context(untrainedFlow, alanine):
    molecule = alanine[0]
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, T_REF, 0.5)
    with pytest.raises(openmm.OpenMMException, match="another System"):
        openmm.Context(molecule, integrator, reference())


def test_step_without_context_and_with_nan_positions(untrainedFlow, system):
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, T_REF, 0.5)
    with pytest.raises(openmm.OpenMMException, match="not bound to a Context"):
        integrator.step(1)
    context = openmm.Context(system, integrator, reference())
    context.setPositions([openmm.Vec3(np.nan, 0.0, 0.0)])
    with pytest.raises(openmm.OpenMMException, match="not finite"):
        integrator.step(1)


def test_missing_files():
    with pytest.raises(openmm.OpenMMException, match="cannot open"):
        openmmbg.LatentMetropolisIntegrator("/nonexistent.flow", T_REF, 0.5)
    with pytest.raises(openmm.OpenMMException):
        openmmbg.FlowModel.load("/nonexistent.flow")
    with pytest.raises(openmm.OpenMMException):
        openmmbg.readDcd("/nonexistent.dcd")
    with pytest.raises(openmm.OpenMMException):
        openmmbg.loadSystemXml("/nonexistent.xml")


def test_bad_arrays(untrainedFlow):
    with pytest.raises(openmm.OpenMMException):
        untrainedFlow.logProb(np.zeros((4, 2, 3)), T_REF)  # a flow of one particle
    with pytest.raises(ValueError):
        untrainedFlow.logProb([[1, 2], [3]], T_REF)  # ragged
    with pytest.raises(TypeError, match="None"):
        untrainedFlow.logProb(None, T_REF)
    with pytest.raises(TypeError):
        openmmbg.kishEffectiveSampleSize(np.zeros(3) * openmm.unit.nanometer)  # no unit expected


def test_unknown_flow_type(system):
    with pytest.raises(openmm.OpenMMException, match="glow"):
        openmmbg.FlowModel.createCartesian(system, [0, 1], None, "glow", openmmbg.FlowConfig(), T_REF)
