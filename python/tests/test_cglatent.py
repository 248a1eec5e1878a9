"""Coarse-grained latent-variable models from Python: training with ARD and progress reports,
encodings and decodings, Laplace draws, files and bad input."""
import numpy as np
import pytest

import openmm
import openmmbg


def threeParticles():
    system = openmm.System()
    for mass in (12.0, 14.0, 16.0):
        system.addParticle(mass)
    return system


def bentChain(count, seed):
    """count (count, 3, 3) frames of a chain whose bend angle varies: one latent degree of freedom."""
    rng = np.random.RandomState(seed)
    t = rng.uniform(0.6, 2.4, count)
    frames = np.zeros((count, 3, 3))
    frames[:, 1, 0] = 0.15
    frames[:, 2, 0] = 0.15 - 0.15 * np.cos(t)
    frames[:, 2, 1] = 0.15 * np.sin(t)
    return frames + 0.002 * rng.normal(size=frames.shape)


def smallConfig(**values):
    return openmmbg.CGModelConfig(decoderWidths=[16], encoderWidths=[16], **values)


def test_training_raises_the_elbo_and_reports_progress():
    system, frames = threeParticles(), bentChain(200, 1)
    model = openmmbg.CGLatentModel.create(system, frames, smallConfig())
    before = model.evidenceLowerBound(frames)[0].mean()
    reports = []
    options = openmmbg.CGTrainingOptions(steps=600, batchSize=50, learningRate=3e-3, ard=True, progressInterval=100)
    summary = openmmbg.trainCGLatentModel(model, frames, options, reports.append)
    assert [r.step for r in reports] == [100, 200, 300, 400, 500, 600]
    assert all(np.isfinite(r.elbo) and r.stepsPerSecond > 0 for r in reports)
    elbo, kl, logLikelihood = model.evidenceLowerBound(frames)
    assert np.allclose(elbo, logLikelihood - kl) and (kl >= 0).all()
    assert elbo.mean() > before + 5.0
    assert summary.steps == 600 and abs(summary.finalElbo - elbo.mean()) < 1.0
    assert summary.outputWeightPrecision.shape == (16, 9)
    # The importance-weighted bound of log q(x): one draw is an ELBO draw; many lie above the ELBO, on average.
    logDensity = model.logDensityEstimate(frames[:20], draws=256, seed=2)
    assert logDensity.shape == (20,) and np.isfinite(logDensity).all()
    assert logDensity.mean() > model.evidenceLowerBound(frames[:20], 256, 2)[0].mean()
    # Encodings and decodings are (mean, logVariance) pairs.
    mean, logVariance = model.encode(frames)
    assert mean.shape == (200, 2) and logVariance.shape == (200, 2)
    decodedMean, decodedLogVariance = model.decode(mean)
    assert decodedMean.shape == (200, 9) and decodedLogVariance.shape == (200, 9)
    assert model.decodeConfigurations(mean).shape == (200, 3, 3)
    samples = model.sample(500, seed=3)
    assert samples.shape == (500, 3, 3)
    assert np.array_equal(samples, model.sample(500, seed=3))
    # The model's bond lengths are those of the data (0.15 nm), within the noise of its decoder.
    bonds = np.linalg.norm(samples[:, 1] - samples[:, 0], axis=1)
    assert abs(np.median(bonds) - 0.15) < 0.01


def test_laplace_draws_and_radius_of_gyration():
    system, frames = threeParticles(), bentChain(100, 2)
    model = openmmbg.CGLatentModel.create(system, frames, smallConfig())
    summary = openmmbg.trainCGLatentModel(model, frames, openmmbg.CGTrainingOptions(steps=300, batchSize=50))
    assert summary.outputWeightPrecision is None
    posterior = openmmbg.CGLaplacePosterior.fit(model, frames, openmmbg.CGLaplaceOptions(latentDraws=10))
    assert posterior.getPrecision().shape == (9, 17, 17)
    covariance = posterior.covariance()
    assert np.allclose(np.einsum("dij,djk->dik", covariance, posterior.getPrecision()), np.eye(17), atol=1e-6)
    assert posterior.getHiddenPrecision() == []
    withHidden = openmmbg.CGLaplacePosterior.fit(model, frames, openmmbg.CGLaplaceOptions(hiddenLayers=True, probes=20))
    shapes = [p.shape for p in withHidden.getHiddenPrecision()]
    assert shapes == [(2, 16), (16,)] and all((p > 0).all() for p in withHidden.getHiddenPrecision())
    first, second = posterior.drawModel(1), posterior.drawModel(2)
    assert not np.array_equal(first.sample(10, seed=5), second.sample(10, seed=5))
    # Kronecker factors: the output layer's precision (17 x 9 entries) equals the exact blocks above.
    options = openmmbg.CGLaplaceOptions(latentDraws=10, curvature="kronecker")
    assert options.curvature == "kronecker" and openmmbg.CGLaplaceOptions().curvature == "outputLayer"
    kronecker = openmmbg.CGLaplacePosterior.fit(model, frames, options)
    dense = kronecker.layerPrecision(1).reshape(17, 9, 17, 9)
    assert np.allclose(np.einsum("idjd->dij", dense), posterior.getPrecision(), rtol=1e-9)
    assert list(kronecker.getKroneckerPriorPrecisions()) == [1.0, 1.0]
    fitted = openmmbg.CGLaplacePosterior.fit(model, frames, openmmbg.CGLaplaceOptions(curvature="kronecker",
                                                                                    evidencePrior=True))
    assert all(tau > 0 and tau != 1.0 for tau in fitted.getKroneckerPriorPrecisions())
    linearized = fitted.sampleLinearized(50, seed=3)
    assert linearized.shape == (50, 3, 3) and np.array_equal(linearized, fitted.sampleLinearized(50, seed=3))
    assert abs(np.median(np.linalg.norm(linearized[:, 1] - linearized[:, 0], axis=1)) - 0.15) < 0.01
    with pytest.raises(openmm.OpenMMException, match="unknown curvature"):
        openmmbg.CGLaplaceOptions(curvature="full")
    masses = model.getMasses()
    rg = openmmbg.radiusOfGyration(frames, masses)
    centred = frames - np.einsum("p,bpk->bk", masses, frames)[:, None, :] / masses.sum()
    assert np.allclose(rg, np.sqrt(np.einsum("p,bpk->b", masses, centred ** 2) / masses.sum()))


def test_files_and_bad_input(tmp_path):
    system, frames = threeParticles(), bentChain(40, 3)
    model = openmmbg.CGLatentModel.create(system, frames, smallConfig(latentDim=3))
    model.setMetadata("three particles")
    path = str(tmp_path / "model.bgcg")
    model.save(path)
    loaded = openmmbg.CGLatentModel.load(path, system)
    assert loaded.getMetadata() == "three particles" and loaded.getLatentDim() == 3
    assert np.array_equal(loaded.encode(frames)[0], model.encode(frames)[0])
    other = openmm.System()
    other.addParticle(1.0)
    with pytest.raises(openmm.OpenMMException, match="another System"):
        openmmbg.CGLatentModel.load(path, other)
    with pytest.raises(openmm.OpenMMException, match="cannot open"):
        openmmbg.CGLatentModel.load(str(tmp_path / "missing.bgcg"))
    (tmp_path / "junk.bgcg").write_bytes(b"not a model")
    with pytest.raises(openmm.OpenMMException, match="not an OpenMM-BG coarse-grained latent model file"):
        openmmbg.CGLatentModel.load(str(tmp_path / "junk.bgcg"))
    with pytest.raises(openmm.OpenMMException, match="larger than the number of frames"):
        openmmbg.trainCGLatentModel(model, frames, openmmbg.CGTrainingOptions(batchSize=64))
    bad = frames.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(openmm.OpenMMException, match="NaN"):
        openmmbg.trainCGLatentModel(model, bad, openmmbg.CGTrainingOptions(batchSize=8))
    with pytest.raises(openmm.OpenMMException, match="3"):
        model.encode(np.zeros((2, 4, 3)))
    with pytest.raises(TypeError, match="callable"):
        openmmbg.trainCGLatentModel(model, frames, openmmbg.CGTrainingOptions(batchSize=8), 5)
    with pytest.raises(ZeroDivisionError):
        openmmbg.trainCGLatentModel(model, frames, openmmbg.CGTrainingOptions(steps=20, batchSize=8,
                                                                              progressInterval=5),
                                    lambda report: 1 / 0)


def test_training_without_data_reports_its_tempering():
    well = openmmbg.DoubleWell()
    system = well.createSystem()
    energy = openmmbg.OpenMMEnergy(system, 300 * openmm.unit.kelvin, openmmbg.OpenMMEnergy.Options(numWorkers=1))
    config = openmmbg.CGModelConfig(decoderWidths=[16], encoderWidths=[16], alignFrames=False,
                                    varianceDependsOnLatent=True, initialStd=1.0)
    model = openmmbg.CGLatentModel.create(system, np.zeros((1, 1, 3)), config)
    reports = []
    options = openmmbg.CGPhysicsOptions(maxSteps=300, batchSize=64, temperingInterval=20, progressInterval=50)
    summary = openmmbg.trainCGLatentModelFromEnergy(model, energy, options, reports.append)
    assert [r.step for r in reports][:3] == [50, 100, 150]
    assert summary.steps == reports[-1].step
    fractions = list(summary.betaFractions)
    assert len(fractions) == summary.steps // 20 or summary.reachedTarget
    assert fractions == sorted(fractions) and fractions[0] > 1e-10
    assert all(np.isfinite(r.bound) and 0 <= r.fractionNonFinite <= 1 for r in reports)
    with pytest.raises(openmm.OpenMMException, match="temperingStart"):
        openmmbg.trainCGLatentModelFromEnergy(model, energy, openmmbg.CGPhysicsOptions(temperingStart=2.0))


def test_training_without_data_with_the_covering_term_reports_its_buffer():
    well = openmmbg.DoubleWell()
    system = well.createSystem()
    energy = openmmbg.OpenMMEnergy(system, 300 * openmm.unit.kelvin, openmmbg.OpenMMEnergy.Options(numWorkers=1))
    config = openmmbg.CGModelConfig(decoderWidths=[16], encoderWidths=[16], alignFrames=False, latentDim=3,
                                    varianceDependsOnLatent=True, initialStd=0.3, maxStd=0.5)
    model = openmmbg.CGLatentModel.create(system, np.zeros((1, 1, 3)), config)
    assert model.getConfig().maxStd == 0.5
    reports = []
    options = openmmbg.CGPhysicsOptions(maxSteps=60, batchSize=32, temperingInterval=20, progressInterval=20,
                                        importanceSamples=4, coveringWeight=1.0, coveringSamples=500,
                                        coveringImportanceSamples=4)
    openmmbg.trainCGLatentModelFromEnergy(model, energy, options, reports.append)
    assert len(reports) == 3
    assert all(0 < r.coveringEss <= 1 and np.isfinite(r.bound) for r in reports)
    with pytest.raises(openmm.OpenMMException, match="coveringWeight"):
        openmmbg.trainCGLatentModelFromEnergy(model, energy, openmmbg.CGPhysicsOptions(coveringWeight=-1.0))
    with pytest.raises(openmm.OpenMMException, match="maxStd"):
        openmmbg.CGLatentModel.create(system, np.zeros((1, 1, 3)), openmmbg.CGModelConfig(maxStd=0.5))
