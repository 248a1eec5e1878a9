"""Flow moves on the double well reproduce the exact free-energy difference of its wells."""
import numpy as np

import openmm
import openmmbg
from conftest import T_REF, reference, xOf


def test_trained_flow_converges_from_one_well(well, system, trainedFlow):
    # One chain started in the left well: flow moves carry it across the
    # barrier (9 kT at 300 K), and dF = -ln(P(x > 0) / P(x < 0)) converges to
    # the exact value within 4 block-averaged standard errors. At 600 K, where
    # the flow trained at 300 K samples with tau = 2, the right well holds 9%
    # of the probability, so that a few thousand steps give a sharp test.
    temperature = 2 * T_REF
    integrator = openmmbg.LatentMetropolisIntegrator(trainedFlow, temperature, 0.5, 0.5)
    integrator.setRandomNumberSeed(8)
    context = openmm.Context(system, integrator, reference())
    context.setPositions([openmm.Vec3(-2.4, 0.0, 0.0)])
    integrator.step(200)
    xs = np.empty(4000)
    for i in range(len(xs)):
        integrator.step(1)
        xs[i] = xOf(context)
    crossings = int(np.count_nonzero(np.diff(np.sign(xs))))
    estimate = openmmbg.phiFreeEnergyDifference(xs, 20)
    exact = well.freeEnergyDifference(temperature)
    # Enough crossings that each of the 20 blocks sees some: the error bar means something.
    assert crossings >= 60, crossings
    assert estimate.error < 0.3, estimate
    assert abs(estimate.value - exact) < 4 * estimate.error, (estimate, exact)
    # Independence moves of a trained flow are accepted often.
    assert integrator.getAcceptanceRate(openmmbg.MoveKind.Independence) > 0.3


def test_untrained_flow_does_not_cross(well, system, untrainedFlow):
    # The check above can fail: small random-walk moves of an untrained flow stay in one well.
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, T_REF, 0.05, 0.0)
    integrator.setRandomNumberSeed(8)
    context = openmm.Context(system, integrator, reference())
    context.setPositions([openmm.Vec3(-2.4, 0.0, 0.0)])
    xs = np.empty(500)
    for i in range(len(xs)):
        integrator.step(1)
        xs[i] = xOf(context)
    assert np.all(xs < 0)
