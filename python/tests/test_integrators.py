"""LatentMetropolisIntegrator and TSFParallelTemperingIntegrator from Python."""
import numpy as np
import pytest

import openmm
import openmmbg
from conftest import T_REF, reference, xOf

K = openmm.unit.kelvin


def test_latent_metropolis_accessors(untrainedFlow):
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, 300 * K, 0.5, 0.25)
    assert integrator.getTemperature() == 300.0
    integrator.setTemperature(450 * K)
    assert integrator.getTemperature() == 450.0
    integrator.setTemperature(500)
    assert integrator.getTemperature() == 500.0
    assert (integrator.getLatentStepSize(), integrator.getIndependenceProbability()) == (0.5, 0.25)
    integrator.setLatentStepSize(0.7)
    integrator.setIndependenceProbability(0.0)
    assert (integrator.getLatentStepSize(), integrator.getIndependenceProbability()) == (0.7, 0.0)
    integrator.setRandomNumberSeed(17)
    assert integrator.getRandomNumberSeed() == 17
    assert integrator.getIndependenceBlockSize() == 64
    integrator.setIndependenceBlockSize(8)
    assert integrator.getIndependenceBlockSize() == 8
    with pytest.raises(openmm.OpenMMException, match="block size"):
        integrator.setIndependenceBlockSize(0)
    integrator.setCheckStereochemistry(False)
    assert not integrator.getCheckStereochemistry()
    assert integrator.getFlowModel().getNumParameters() == untrainedFlow.getNumParameters()


def test_latent_metropolis_from_a_flow_file(untrainedFlow, system, tmp_path):
    path = str(tmp_path / "flow.pt")
    untrainedFlow.save(path)
    integrator = openmmbg.LatentMetropolisIntegrator(path, T_REF, 0.5)
    context = openmm.Context(system, integrator, reference())
    context.setPositions([openmm.Vec3(-2.0, 0.0, 0.0)])
    integrator.step(5)
    assert integrator.getStatistics().getProposed(openmmbg.MoveKind.RandomWalk) == 5


def test_statistics_and_warm_up(untrainedFlow, system):
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, T_REF, 3.0, 0.5)
    integrator.setRandomNumberSeed(5)
    context = openmm.Context(system, integrator, reference())
    context.setPositions([openmm.Vec3(-2.0, 0.1, 0.0)])
    integrator.step(200)
    stats = integrator.getStatistics()
    walk, independence = openmmbg.MoveKind.RandomWalk, openmmbg.MoveKind.Independence
    assert stats.getProposed(walk) + stats.getProposed(independence) == 200
    assert 0 < stats.getProposed(walk) < 200
    assert stats.acceptanceRate(walk) == integrator.getAcceptanceRate(walk)
    assert stats.acceptanceRate() == integrator.getAcceptanceRate()
    assert stats.asdict()["proposedIndependence"] == stats.getProposed(independence)
    # The statistics object is a copy: it does not change with later steps.
    integrator.step(10)
    assert stats.getProposed(walk) + stats.getProposed(independence) == 200
    # Warm-up adapts the step size towards the target, then resets the statistics.
    integrator.setIndependenceProbability(0.0)
    integrator.warmUp(300, 0.5)
    assert integrator.getLatentStepSize() < 3.0
    assert integrator.getStatistics().getProposed(walk) == 0
    integrator.resetStatistics()
    assert integrator.getAcceptanceRate() == 0.0


def test_moves_leave_velocities_and_time_alone(untrainedFlow, system):
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, T_REF, 0.5, 0.5)
    integrator.setRandomNumberSeed(3)
    context = openmm.Context(system, integrator, reference())
    context.setPositions([openmm.Vec3(-2.0, 0.1, 0.0)])
    context.setVelocities([openmm.Vec3(0.5, -0.25, 1.5)])
    context.setTime(7.0)
    integrator.step(50)
    assert integrator.getStatistics().asdict()["acceptanceRate"] > 0
    integrator.warmUp(10)
    state = context.getState(getVelocities=True, getPositions=True)
    # Steps count like MD steps (app.Simulation relies on it); warm-up moves do not.
    assert context.getStepCount() == 50
    assert state.getTime() == 7.0 * openmm.unit.picosecond
    assert state.getVelocities()[0] == openmm.Vec3(0.5, -0.25, 1.5) * (openmm.unit.nanometer / openmm.unit.picosecond)
    assert xOf(context) != -2.0


def test_parallel_tempering(untrainedFlow, system):
    ladder = openmmbg.TSFParallelTemperingIntegrator.geometricLadder(300 * K, 1200 * K, 3)
    np.testing.assert_allclose(ladder, [300.0, 600.0, 1200.0])
    integrator = openmmbg.TSFParallelTemperingIntegrator(untrainedFlow, [300 * K, 600 * K, 1200 * K], 0.5, 0.5)
    assert integrator.getTemperatures() == (300.0, 600.0, 1200.0)
    assert integrator.getNumReplicas() == 3 and integrator.getTemperature(2) == 1200.0
    integrator.setRandomNumberSeed(21)
    integrator.setFlowMovesPerStep(2)
    assert integrator.getFlowMovesPerStep() == 2
    context = openmm.Context(system, integrator, reference())
    context.setPositions([openmm.Vec3(-2.0, 0.0, 0.0)])
    start = np.array([[2.0, 0.5, 0.0]])
    integrator.setReplicaPositions(2, start * openmm.unit.nanometer)
    np.testing.assert_array_equal(integrator.getReplicaPositions(2), start)
    integrator.setReplicaPositions(1, [openmm.Vec3(-1.0, 0.0, 0.0)])
    integrator.step(200)
    assert context.getStepCount() == 200
    positions = integrator.getReplicaPositions(0)
    assert isinstance(positions, np.ndarray) and positions.shape == (1, 3)
    # The Context holds replica 0.
    np.testing.assert_array_equal(positions[0], context.getState(getPositions=True).getPositions(asNumpy=True)._value[0])
    assert sorted(integrator.getWalkerAtReplica(r) for r in range(3)) == [0, 1, 2]
    for pair in range(2):
        attempts = integrator.getExchangeAttempts(pair)
        assert attempts > 0
        assert integrator.getExchangeAcceptanceRate(pair) == integrator.getExchangeAcceptances(pair) / attempts
    assert integrator.getMoveStatistics(1).asdict()["proposedRandomWalk"] > 0
    energy = integrator.getReplicaPotentialEnergy(0)
    expected = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
    assert energy == pytest.approx(expected, rel=1e-12)
    assert integrator.getNumRoundTrips() >= 0
    integrator.resetStatistics()
    assert integrator.getExchangeAttempts(0) == 0
    with pytest.raises(openmm.OpenMMException, match="replica"):
        integrator.getReplicaPositions(3)
    with pytest.raises(ValueError):
        integrator.setReplicaPositions(0, np.zeros((2, 2)))


def test_the_integrator_keeps_its_own_copy_of_the_flow(well, exactData):
    config = openmmbg.FlowConfig(numBlocks=2, hiddenLayers=1, hiddenWidth=8, outputInitScale=1.0, seed=2)
    model = openmmbg.FlowModel.createCartesian(well.createSystem(), [0, 1], exactData, "realnvp", config, T_REF)
    integrator = openmmbg.LatentMetropolisIntegrator(model, T_REF, 0.5)
    x = model.sample(8, T_REF, seed=3).x
    before = integrator.getFlowModel().logProb(x, T_REF)
    # Train the caller's model, and what getFlowModel() returned: neither is the integrator's flow.
    for flow in (model, integrator.getFlowModel()):
        trainer = openmmbg.FlowTrainer(flow, openmmbg.TrainerOptions(seed=1, numThreads=1, logInterval=1000))
        trainer.setData(exactData, T_REF)
        trainer.train(openmmbg.TrainingStage(steps=20, batchSize=64, learningRate=1e-2))
    assert not np.array_equal(model.logProb(x, T_REF), before)
    np.testing.assert_array_equal(integrator.getFlowModel().logProb(x, T_REF), before)
