"""Toy systems, file input/output and metrics."""
import math
import os

import numpy as np
import pytest

import openmm
import openmmbg
from conftest import DATA_DIR, T_REF


def test_double_well_exact_answers(well):
    edges = [-5.0, -1.0, 0.0, 1.0, 5.0]
    probabilities = well.marginalBinProbabilities(600 * openmm.unit.kelvin, edges)
    assert len(probabilities) == 4 and sum(probabilities) == pytest.approx(1.0, abs=1e-9)
    right = probabilities[2] + probabilities[3]
    assert well.freeEnergyDifference(600) == pytest.approx(-math.log(right / (1 - right)), rel=1e-6)
    assert well.xEnergy(1.0) == pytest.approx(0.25 - 3 + 1)


def test_double_well_exact_samples(well):
    a = well.sampleExact(20000, T_REF, 3)
    b = well.sampleExact(20000, T_REF, 3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20000, 1, 3) and np.all(a[:, 0, 2] == 0)
    # The fraction in the right well matches the exact free-energy difference.
    p = np.mean(a[:, 0, 0] > 0)
    exact = 1 / (1 + math.exp(well.freeEnergyDifference(T_REF)))
    assert abs(p - exact) < 4 * math.sqrt(exact * (1 - exact) / len(a))
    # y is Gaussian with variance T / (T_unit d) = 1.
    assert np.std(a[:, 0, 1]) == pytest.approx(1.0, abs=0.03)


def test_multi_double_well():
    well = openmmbg.MultiDoubleWell.random(5, 3)
    system = well.createSystem()
    assert system.getNumParticles() == well.getNumParticles() == 2
    assert list(well.coordinateIndices()) == [0, 1, 2, 3, 4]
    q = np.random.default_rng(1).standard_normal((4, 5))
    bridge = openmmbg.OpenMMEnergy(system, well.unitTemperature)
    x = np.zeros((4, 2, 3))
    x.reshape(4, 6)[:, :5] = q
    np.testing.assert_allclose(bridge.evaluate(x).reducedEnergy, well.energy(q), rtol=1e-9)
    assert well.getMixing().shape == (5, 5) and well.getLinear().shape == (5,)


def test_pdb_and_system_files(alanine, tmp_path):
    system, structure, frame = alanine
    atoms = structure.getAtoms()
    assert len(atoms) == 22 and frame.shape == (1, 22, 3)
    assert structure.findAtom("ALA", "CA") >= 0 and atoms[structure.findAtom("ALA", "CA")].name == "CA"
    path = str(tmp_path / "system.xml")
    openmmbg.saveSystemXml(system, path)
    again = openmmbg.loadSystemXml(path)
    assert openmm.XmlSerializer.serialize(again) == openmm.XmlSerializer.serialize(system)


def test_dihedrals_and_backbone(alanine):
    _, structure, frame = alanine
    phiAtoms, psiAtoms = openmmbg.backboneDihedrals(structure)
    assert len(phiAtoms) == len(psiAtoms) == 4
    phi = openmmbg.dihedralAngles(frame, phiAtoms)
    # Against the IUPAC formula in numpy; the minimized structure has phi near -77 degrees.
    b1, b2, b3 = (frame[0, phiAtoms[i + 1]] - frame[0, phiAtoms[i]] for i in range(3))
    expected = math.atan2(np.linalg.norm(b2) * np.dot(b1, np.cross(b2, b3)),
                          np.dot(np.cross(b1, b2), np.cross(b2, b3)))
    assert phi[0] == pytest.approx(expected, abs=1e-10)
    assert -math.pi / 2 < phi[0] < 0
    with pytest.raises(openmm.OpenMMException, match="four"):
        openmmbg.dihedralAngles(frame, [0, 1, 2])


def test_metrics():
    assert openmmbg.kishEffectiveSampleSize(np.zeros(100)) == pytest.approx(1.0)
    assert openmmbg.kishEffectiveSampleSize(np.array([0.0, -np.inf, -np.inf, -np.inf])) == pytest.approx(0.25)
    assert openmmbg.klEstimateFromLogWeights(np.full(10, -3.0)) == pytest.approx(0.0, abs=1e-12)
    series = np.tile([1.0, 3.0], 500)
    mean = openmmbg.blockAverage(series, 10)
    assert mean.value == pytest.approx(2.0) and mean.error == pytest.approx(0.0, abs=1e-12)
    value, error = mean  # unpacks like a pair
    assert (value, error) == (mean.value, mean.error)
    phi = np.concatenate([np.full(750, -1.0), np.full(250, 1.0)])
    assert openmmbg.phiFreeEnergyDifference(phi, 20).value == pytest.approx(math.log(3))
    rng = np.random.default_rng(4)
    ar = np.zeros(20000)
    for i in range(1, len(ar)):
        ar[i] = 0.9 * ar[i - 1] + rng.standard_normal()
    # AR(1) with rho = 0.9: tau = (1 + rho) / (1 - rho) = 19.
    assert openmmbg.integratedAutocorrelationTime(ar) == pytest.approx(19, rel=0.25)
    # Independent chains with 2, 3 and 4 of 10 values at phi > 0: f = 0.3 from their mean.
    chains = [np.where(np.arange(10) < 2 * k, np.tile([1.0, -1.0], 5), -1.0) for k in (2, 3, 4)]
    combined = openmmbg.independentChainsPhiFreeEnergyDifference(chains, 2)
    assert combined.estimate.value == pytest.approx(-math.log(0.3 / 0.7))
    assert list(combined.perChain) == pytest.approx([-math.log(0.2 / 0.8), -math.log(0.3 / 0.7), -math.log(0.4 / 0.6)])
    assert 0 <= combined.agreement <= 1
    with pytest.raises(openmm.OpenMMException, match="at least 2 chains"):
        openmmbg.independentChainsPhiFreeEnergyDifference([phi])
    with pytest.raises(TypeError):
        openmmbg.independentChainsPhiFreeEnergyDifference([phi, "not an array"])
    # Two weighted sets with 0.2 and 0.3 of their weight at phi > 0: f = 0.25 from their mean.
    one_positive = np.array([1.0, -1.0, -1.0, -1.0])
    weights = [np.log([f, (1 - f) / 3, (1 - f) / 3, (1 - f) / 3]) for f in (0.2, 0.3)]
    sets = openmmbg.independentSetsPhiFreeEnergyDifference([one_positive, one_positive], weights)
    assert sets.estimate.value == pytest.approx(math.log(3.0))
    assert list(sets.perChain) == pytest.approx([math.log(4.0), -math.log(0.3 / 0.7)])
    with pytest.raises(openmm.OpenMMException, match="one log-weight per sample"):
        openmmbg.independentSetsPhiFreeEnergyDifference([one_positive, one_positive], [weights[0]])
    angles = rng.uniform(-math.pi, math.pi, (2, 5000))
    histogram = openmmbg.ramachandranHistogram(angles[0], angles[1], bins=8)
    assert histogram.shape == (8, 8) and histogram.sum() == pytest.approx(1.0)
    assert openmmbg.histogramKL(histogram, histogram) == pytest.approx(0.0, abs=1e-12)
    weighted = openmmbg.ramachandranHistogram(angles[0], angles[1], bins=8, weights=np.ones(5000))
    np.testing.assert_allclose(weighted, histogram)
