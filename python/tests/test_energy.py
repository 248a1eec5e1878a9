"""The energy bridge OpenMMEnergy and its torch autograd function."""
import numpy as np
import pytest

import openmm
import openmmbg
from conftest import T_REF, perturbed, reference

# k_B in kJ/mol/K, as openmm.unit has it.
KB = (openmm.unit.MOLAR_GAS_CONSTANT_R * openmm.unit.kelvin).value_in_unit(openmm.unit.kilojoule_per_mole)


def contextEnergiesAndForces(system, frames):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), reference())
    energies, forces = [], []
    for frame in frames:
        context.setPositions(frame)
        state = context.getState(getEnergy=True, getForces=True)
        energies.append(state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole))
        forces.append(state.getForces(asNumpy=True).value_in_unit(openmm.unit.kilojoule_per_mole / openmm.unit.nanometer))
    return np.array(energies), np.array(forces)


def test_evaluate_matches_a_context(alanine):
    system, _, frame = alanine
    frames = perturbed(frame, 6, 0.005, seed=3)
    options = openmmbg.OpenMMEnergy.Options(platform="Reference", numWorkers=2)
    bridge = openmmbg.OpenMMEnergy(system, 300 * openmm.unit.kelvin, options)
    batch = bridge.evaluate(frames)
    assert isinstance(batch, openmmbg.EnergyBatch)
    assert batch.reducedEnergy.shape == (6,) and batch.forces.shape == (6, 22, 3)
    assert batch.finite.dtype == np.bool_ and batch.finite.all()
    energies, forces = contextEnergiesAndForces(system, frames)
    kT = KB * 300.0
    np.testing.assert_allclose(batch.potentialEnergy, energies, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(batch.reducedEnergy, energies / kT, rtol=1e-8)  # k_B to 9 digits
    np.testing.assert_allclose(batch.forces, forces / kT, rtol=1e-7, atol=1e-7)
    assert bridge.getPlatformName() == "Reference" and bridge.getNumWorkers() == 2
    assert bridge.getNumParticles() == 22


def test_temperature_and_units(system):
    x = np.array([[[-1.0, 0.5, 0.0]], [[1.5, 0.0, 0.2]]])
    bridge = openmmbg.OpenMMEnergy(system, 300)
    atRef = bridge.evaluate(x).reducedEnergy
    bridge.setTemperature(600 * openmm.unit.kelvin)
    assert bridge.getTemperature() == 600.0
    np.testing.assert_allclose(bridge.evaluate(x).reducedEnergy, atRef / 2, rtol=1e-12)
    np.testing.assert_array_equal(bridge.evaluate(x * openmm.unit.nanometer).reducedEnergy,
                                  bridge.evaluate(x).reducedEnergy)


def test_non_finite_frames_are_flagged(system):
    bridge = openmmbg.OpenMMEnergy(system, T_REF)
    x = np.array([[[-1.0, 0.5, 0.0]], [[np.nan, 0.0, 0.0]]])
    batch = bridge.evaluate(x)
    assert batch.finite.tolist() == [True, False]
    assert batch.reducedEnergy[1] == np.inf
    assert np.all(batch.forces[1] == 0)


def test_bad_input_raises_openmm_exceptions(system):
    with pytest.raises(openmm.OpenMMException, match="emperature"):
        openmmbg.OpenMMEnergy(system, -1.0)
    bridge = openmmbg.OpenMMEnergy(system, T_REF)
    with pytest.raises(openmm.OpenMMException, match="particle"):
        bridge.evaluate(np.zeros((2, 5, 3)))
    with pytest.raises(TypeError):
        bridge.evaluate("positions.dcd")


def test_torch_function_backpropagates_forces(system):
    torch = pytest.importorskip("torch")
    bridge = openmmbg.OpenMMEnergy(system, T_REF)
    x = torch.tensor([[[-1.0, 0.5, 0.1]], [[1.5, -0.3, 0.2]], [[0.2, 0.0, 0.0]]], dtype=torch.float64,
                     requires_grad=True)
    u = openmmbg.torch_reduced_energy(bridge, x)
    weights = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    (weights * u).sum().backward()
    batch = bridge.evaluate(x.detach().numpy())
    np.testing.assert_allclose(u.detach().numpy(), batch.reducedEnergy)
    expected = -batch.forces * weights.numpy()[:, None, None]
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)
    # Against the analytic gradient of the well: du/dx = a x^3 - b x + c, du/dy = d y, du/dz = d z.
    px, py, pz = x.detach().numpy()[:, 0].T
    analytic = np.stack([px ** 3 - 6 * px + 1, py, pz], axis=1)
    np.testing.assert_allclose(x.grad.numpy()[:, 0], analytic * weights.numpy()[:, None], rtol=1e-6, atol=1e-9)
    # gradcheck in float64 through finite differences of the bridge.
    assert torch.autograd.gradcheck(lambda y: openmmbg.torch_reduced_energy(bridge, y), (x,), atol=1e-5)
