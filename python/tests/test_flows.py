"""FlowModel from Python: construction, sampling, densities, files."""
import numpy as np
import pytest

import openmm
import openmmbg
from conftest import T_REF, perturbed


def test_sample_returns_numpy_arrays(untrainedFlow):
    sample = untrainedFlow.sample(64, T_REF, seed=4)
    assert isinstance(sample, openmmbg.FlowSample)
    assert sample.x.shape == (64, 1, 3) and sample.x.dtype == np.float64
    assert sample.latent.shape == sample.gamma.shape == (64, 2)
    assert sample.logq.shape == sample.logJ.shape == (64,)
    assert sample.inDomain.dtype == np.bool_ and sample.inDomain.all()
    # The particle's z is the canonical value of an unmodelled coordinate.
    assert np.all(sample.x[:, 0, 2] == 0.0)


def test_sampling_is_reproducible_by_seed(untrainedFlow):
    a = untrainedFlow.sample(16, T_REF, seed=4)
    b = untrainedFlow.sample(16, T_REF, seed=4)
    c = untrainedFlow.sample(16, T_REF, seed=5)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.allclose(a.x, c.x)


def test_log_prob_matches_the_sampling_density(untrainedFlow):
    # Cartesian coordinates (log J = 0): log q(x) = log q_tau(gamma) - log|dy/dy_n|.
    for temperature in (T_REF, 600 * openmm.unit.kelvin):
        sample = untrainedFlow.sample(32, temperature, seed=6)
        logProb = untrainedFlow.logProb(sample.x, temperature)
        np.testing.assert_allclose(logProb, sample.logq - untrainedFlow.getLogDetNormalization(), atol=1e-8)


def test_units_are_converted(untrainedFlow):
    x = untrainedFlow.sample(8, T_REF, seed=1).x
    inNm = untrainedFlow.logProb(x, 300)
    asQuantity = untrainedFlow.logProb(x * openmm.unit.nanometer, 300 * openmm.unit.kelvin)
    inAngstrom = untrainedFlow.logProb((10 * x) * openmm.unit.angstrom, 300 * openmm.unit.kelvin)
    np.testing.assert_array_equal(inNm, asQuantity)
    np.testing.assert_allclose(inNm, inAngstrom, atol=1e-10)
    with pytest.raises(TypeError, match="kelvin"):
        untrainedFlow.logProb(x, 300 * openmm.unit.nanometer)


def test_forward_and_inverse_are_inverses(untrainedFlow):
    v = np.random.default_rng(2).standard_normal((10, 2))
    gamma, logDetForward = untrainedFlow.forward(v)
    back, logDetInverse = untrainedFlow.inverse(gamma)
    np.testing.assert_allclose(back, v, atol=1e-10)
    np.testing.assert_allclose(logDetForward, -logDetInverse, atol=1e-10)


def test_properties(untrainedFlow, exactData):
    assert untrainedFlow.getReferenceTemperature() == T_REF
    assert untrainedFlow.getNumParticles() == 1
    assert untrainedFlow.getNumCoordinates() == untrainedFlow.getLatentDim() == 2
    assert not untrainedFlow.hasMomenta()
    assert untrainedFlow.getFlowType() == "realnvp"
    assert untrainedFlow.getConfig().numBlocks == 2
    assert untrainedFlow.getNumParameters() > 0
    assert untrainedFlow.tau(600 * openmm.unit.kelvin) == 2.0
    # Normalisation fitted to the data's x and y.
    np.testing.assert_allclose(untrainedFlow.getShift(), exactData[:, 0, :2].mean(axis=0), atol=0.05)


def test_save_and_load(untrainedFlow, system, tmp_path):
    model = untrainedFlow.clone()
    model.setMetadata("trained on nothing")
    path = str(tmp_path / "flow.pt")
    model.save(path)
    loaded = openmmbg.FlowModel.load(path, system)
    assert loaded.getMetadata() == "trained on nothing"
    x = model.sample(8, T_REF, seed=2).x
    np.testing.assert_array_equal(loaded.logProb(x, T_REF), model.logProb(x, T_REF))


def test_tsf_flow_has_momenta(system, exactData):
    config = openmmbg.FlowConfig(numBlocks=2, hiddenLayers=1, hiddenWidth=8)
    model = openmmbg.FlowModel.createCartesian(system, [0, 1], exactData, "tsf", config, T_REF)
    assert model.hasMomenta() and model.getLatentDim() == 4
    sample = model.sample(5, 2 * T_REF, seed=3)
    assert sample.gamma.shape == (5, 4)
    # log q of x is a random lower bound that depends on the momenta drawn.
    assert not np.allclose(model.logProb(sample.x, T_REF, seed=1), model.logProb(sample.x, T_REF, seed=2))


def test_molecule_flow(alanine):
    system, structure, frame = alanine
    frames = perturbed(frame, 64, 0.002, seed=1)
    config = openmmbg.FlowConfig(numBlocks=2, hiddenLayers=1, hiddenWidth=32)
    model = openmmbg.FlowModel.createForMolecule(system, frames, "realnvp", config, 300 * openmm.unit.kelvin)
    assert model.getNumParticles() == 22
    assert model.getNumCoordinates() == 3 * 22 - 6
    sample = model.sample(4, T_REF, seed=1)
    assert sample.x.shape == (4, 22, 3)
    assert np.isfinite(model.logProb(frames, T_REF)).all()
    model.checkCompatible(system)


def test_spline_flow_on_a_molecule(alanine):
    system, structure, frame = alanine
    frames = perturbed(frame, 64, 0.002, seed=2)
    config = openmmbg.FlowConfig(numBlocks=2, hiddenLayers=1, hiddenWidth=16, splineBins=6, splineTailBound=4.0)
    assert config.asdict()["splineBins"] == 6
    model = openmmbg.FlowModel.createForMolecule(system, frames, "spline", config, 600)
    assert model.getFlowType() == "spline" and model.getLatentDim() == 60
    sample = model.sample(8, 300, seed=3)
    assert sample.inDomain.all()  # torsions always land in their domain
    # The untrained spline flow is the identity: it gives back the coordinates it is given.
    gamma = model.inverse(sample.gamma)[0]
    np.testing.assert_allclose(gamma, sample.gamma, atol=1e-12)
    np.testing.assert_allclose(model.logProb(sample.x, 300), sample.logq - sample.logJ
                               - np.log(model.getScale()).sum(), atol=1e-8)


def test_spline_flow_conditioned_level_by_level(alanine, tmp_path):
    system, structure, frame = alanine
    frames = perturbed(frame, 64, 0.002, seed=4)
    config = openmmbg.FlowConfig(numBlocks=2, hiddenLayers=1, hiddenWidth=16, conditionByLevel=True,
                                 outputInitScale=1.0)
    model = openmmbg.FlowModel.createForMolecule(system, frames, "spline", config, 600)
    path = str(tmp_path / "levels.bgflow")
    model.save(path)
    loaded = openmmbg.FlowModel.load(path, system)
    assert loaded.getConfig().conditionByLevel
    sample = model.sample(8, 300, seed=5)
    np.testing.assert_array_equal(loaded.logProb(sample.x, 300), model.logProb(sample.x, 300))
    np.testing.assert_allclose(model.logProb(sample.x, 300), sample.logq - sample.logJ
                               - np.log(model.getScale()).sum(), atol=1e-8)


def test_tsf_with_spline_couplings(alanine, tmp_path):
    system, structure, frame = alanine
    frames = perturbed(frame, 64, 0.002, seed=6)
    config = openmmbg.FlowConfig(numBlocks=2, hiddenLayers=1, hiddenWidth=16, tsfSplineCouplings=True, splineBins=5)
    model = openmmbg.FlowModel.createForMolecule(system, frames, "tsf", config, 600)
    plain = openmmbg.FlowModel.createForMolecule(system, frames, "tsf",
                                                 openmmbg.FlowConfig(numBlocks=2, hiddenLayers=1, hiddenWidth=16), 600)
    assert model.getFlowType() == "tsf" and model.getLatentDim() == 120
    assert model.getNumParameters() > plain.getNumParameters()
    path = str(tmp_path / "tsf_splines.bgflow")
    model.save(path)
    loaded = openmmbg.FlowModel.load(path, system)
    assert loaded.getConfig().tsfSplineCouplings and loaded.getConfig().splineBins == 5
    sample = model.sample(8, 450, seed=7)
    np.testing.assert_array_equal(loaded.logProb(sample.x, 450, momenta=sample.gamma[:, 60:]),
                                  model.logProb(sample.x, 450, momenta=sample.gamma[:, 60:]))


def test_flow_for_another_system_is_refused(untrainedFlow, alanine, tmp_path):
    molecule = alanine[0]
    with pytest.raises(openmm.OpenMMException, match="particle"):
        untrainedFlow.checkCompatible(molecule)
    path = str(tmp_path / "flow.pt")
    untrainedFlow.save(path)
    with pytest.raises(openmm.OpenMMException):
        openmmbg.FlowModel.load(path, molecule)
