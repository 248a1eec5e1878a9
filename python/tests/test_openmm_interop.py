"""Our integrators inside openmm's own classes: Context, app.Simulation with
reporters, CompoundIntegrator, XmlSerializer, copy and pickle."""
import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import openmm
import openmm.app as app
import openmmbg
from conftest import T_REF, reference, xOf


def doubleWellTopology():
    topology = app.Topology()
    residue = topology.addResidue("DW", topology.addChain())
    topology.addAtom("X", app.element.argon, residue)
    return topology


def test_context_returns_our_integrator(untrainedFlow, system):
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, T_REF, 0.5)
    context = openmm.Context(system, integrator, reference())
    assert context.getIntegrator() is integrator
    assert context.getPlatform().getName() == "Reference"


def test_simulation_with_reporters(untrainedFlow, system, tmp_path):
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, T_REF, 0.5, 0.5)
    integrator.setRandomNumberSeed(4)
    simulation = app.Simulation(doubleWellTopology(), system, integrator, reference())
    simulation.context.setPositions([openmm.Vec3(-2.0, 0.0, 0.0)])
    log, dcd = str(tmp_path / "log.csv"), str(tmp_path / "trajectory.dcd")
    simulation.reporters.append(app.StateDataReporter(log, 10, step=True, potentialEnergy=True))
    simulation.reporters.append(app.DCDReporter(dcd, 10))
    simulation.step(100)
    assert simulation.currentStep == 100
    assert simulation.context.getIntegrator() is integrator
    lines = open(log).read().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("100,")
    # The last energy reported is the Context's.
    state = simulation.context.getState(getEnergy=True)
    energy = state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
    assert float(lines[-1].split(",")[1]) == pytest.approx(energy, rel=1e-6)
    del simulation.reporters[:]  # closes the DCD file
    frames = openmmbg.readDcd(dcd, 1)
    assert frames.shape == (10, 1, 3)
    assert frames[-1, 0, 0] == pytest.approx(xOf(simulation.context), abs=1e-5)
    assert integrator.getStatistics().asdict()["acceptanceRate"] > 0


def test_compound_integrator_alternates_md_and_flow_moves(untrainedFlow, system):
    compound = openmm.CompoundIntegrator()
    md = openmm.LangevinMiddleIntegrator(2 * T_REF * openmm.unit.kelvin, 5.0, 0.004)
    md.setRandomNumberSeed(9)
    mc = openmmbg.LatentMetropolisIntegrator(untrainedFlow, 2 * T_REF, 0.5, 0.3)
    mc.setRandomNumberSeed(10)
    assert compound.addIntegrator(md) == 0
    assert compound.addIntegrator(mc) == 1
    assert not mc.thisown  # the CompoundIntegrator owns it now
    got = compound.getIntegrator(1)
    assert isinstance(got, openmmbg.LatentMetropolisIntegrator) and got.getTemperature() == 2 * T_REF
    assert int(got.this) == int(mc.this) and not got.thisown
    assert type(compound.getIntegrator(0)) is openmm.LangevinMiddleIntegrator
    context = openmm.Context(system, compound, reference())
    context.setPositions([openmm.Vec3(-2.0, 0.0, 0.0)])
    context.setVelocitiesToTemperature(2 * T_REF, 1)
    xs = []
    for _ in range(100):
        compound.setCurrentIntegrator(0)
        compound.step(5)
        compound.setCurrentIntegrator(1)
        compound.step(1)
        xs.append(xOf(context))
    stats = mc.getStatistics().asdict()
    assert stats["proposedRandomWalk"] + stats["proposedIndependence"] == 100
    assert mc.getAcceptanceRate() > 0.02
    assert context.getIntegrator() is compound


OWNERSHIP_SCRIPT = """
import gc, openmm, openmmbg
well = openmmbg.DoubleWell()
system = well.createSystem()
config = openmmbg.FlowConfig(numBlocks=1, hiddenLayers=1, hiddenWidth=4)
flow = openmmbg.FlowModel.createCartesian(system, [0, 1], None, "realnvp", config, 300)
for round in range(3):
    compound = openmm.CompoundIntegrator()
    mc = openmmbg.LatentMetropolisIntegrator(flow, 300, 0.5)
    compound.addIntegrator(openmm.VerletIntegrator(0.001))
    compound.addIntegrator(mc)
    again = compound.getIntegrator(1)
    context = openmm.Context(system, compound, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions([openmm.Vec3(-2, 0, 0)])
    compound.setCurrentIntegrator(1)
    compound.step(3)
    # Python proxies die before and after their owner; C++ deletes each integrator once.
    del mc, again
    gc.collect()
    del context, compound
    gc.collect()
    standalone = openmmbg.LatentMetropolisIntegrator(flow, 300, 0.5)
    clone = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(standalone))
    del standalone, clone
    gc.collect()
print("done")
"""


def test_ownership_has_no_double_free():
    # In a child process, so that a double free shows as a crash here, not as a dead test run.
    result = subprocess.run([sys.executable, "-c", OWNERSHIP_SCRIPT], capture_output=True, text=True,
                            env=dict(os.environ, MALLOC_CHECK_="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "done"


def test_xml_serialization_round_trip(untrainedFlow, system):
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, 450, 0.8, 0.2)
    integrator.setRandomNumberSeed(12)
    xml = openmm.XmlSerializer.serialize(integrator)
    assert 'type="LatentMetropolisIntegrator"' in xml
    restored = openmm.XmlSerializer.deserialize(xml)
    assert isinstance(restored, openmmbg.LatentMetropolisIntegrator) and restored.thisown
    assert (restored.getTemperature(), restored.getLatentStepSize(), restored.getIndependenceProbability(),
            restored.getRandomNumberSeed()) == (450.0, 0.8, 0.2, 12)
    # The flow travels inside the XML.
    x = untrainedFlow.sample(4, T_REF, seed=1).x
    np.testing.assert_array_equal(restored.getFlowModel().logProb(x, T_REF), untrainedFlow.logProb(x, T_REF))
    # Both run identically from the same state.
    runs = []
    for each in (integrator, restored):
        context = openmm.Context(system, each, reference())
        context.setPositions([openmm.Vec3(-2.0, 0.0, 0.0)])
        each.step(20)
        runs.append(xOf(context))
    assert runs[0] == runs[1]

    tempering = openmmbg.TSFParallelTemperingIntegrator(untrainedFlow, [300, 500], 0.5)
    copied = openmm.XmlSerializer.clone(tempering)
    assert isinstance(copied, openmmbg.TSFParallelTemperingIntegrator)
    assert copied.getTemperatures() == (300.0, 500.0)


def test_simulation_loads_an_integrator_xml_file(untrainedFlow, system, tmp_path):
    path = str(tmp_path / "integrator.xml")
    with open(path, "w") as file:
        file.write(openmm.XmlSerializer.serialize(openmmbg.LatentMetropolisIntegrator(untrainedFlow, 350, 0.5)))
    simulation = app.Simulation(doubleWellTopology(), system, path, reference())
    assert isinstance(simulation.integrator, openmmbg.LatentMetropolisIntegrator)
    assert simulation.integrator.getTemperature() == 350.0


def test_copy_and_pickle(untrainedFlow):
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, 320, 0.6)
    for duplicate in (copy.deepcopy(integrator), pickle.loads(pickle.dumps(integrator))):
        assert isinstance(duplicate, openmmbg.LatentMetropolisIntegrator)
        assert duplicate.getTemperature() == 320.0 and duplicate.getLatentStepSize() == 0.6
        assert duplicate.this != integrator.this


def test_cast_leaves_other_objects_alone():
    verlet = openmm.VerletIntegrator(0.002)
    assert openmmbg.castIntegrator(verlet) is verlet
    assert openmmbg.castIntegrator("text") == "text"


def test_context_checkpoint_continues_a_run(untrainedFlow, system):
    integrator = openmmbg.TSFParallelTemperingIntegrator(untrainedFlow, [300, 450, 600], 0.5, 0.3)
    integrator.setRandomNumberSeed(13)
    context = openmm.Context(system, integrator, reference())
    context.setPositions([openmm.Vec3(-2.0, 0.0, 0.0)])
    integrator.step(15)
    checkpoint = context.createCheckpoint()

    def run():
        xs = []
        for _ in range(20):
            integrator.step(1)
            xs.append([integrator.getReplicaPositions(r)[0, 0] for r in range(3)])
        return xs, integrator.getNumRoundTrips(), integrator.getMoveStatistics(2).asdict()

    first = run()
    context.loadCheckpoint(checkpoint)
    assert run() == first
