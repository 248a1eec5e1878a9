"""FlowTrainer from Python: progress callbacks, data from arrays and DCD files, checkpoints, KL training."""
import numpy as np
import pytest

import openmm
import openmmbg
from conftest import T_REF


def smallFlow(system, data, seed=1):
    config = openmmbg.FlowConfig(numBlocks=2, hiddenLayers=2, hiddenWidth=16, seed=seed)
    return openmmbg.FlowModel.createCartesian(system, [0, 1], data, "realnvp", config, T_REF)


def test_progress_callback_receives_every_report(system, exactData):
    reports = []
    options = openmmbg.TrainerOptions(seed=2, numThreads=1, logInterval=10, progress=reports.append)
    assert options.progress == reports.append
    trainer = openmmbg.FlowTrainer(smallFlow(system, exactData), options)
    trainer.setData(exactData, 300 * openmm.unit.kelvin)
    before = trainer.testNLL(exactData, T_REF)
    summary = trainer.train(openmmbg.TrainingStage(name="ml", steps=60, batchSize=128, learningRate=5e-3))
    assert [report.step for report in reports] == [10, 20, 30, 40, 50, 60]
    last = reports[-1]
    assert isinstance(last, openmmbg.TrainingProgress)
    assert last.stage == "ml" and last.stageSteps == 60 and last.lambda_ == 0.0
    assert np.isfinite(last.lossML) and last.loss == last.lossML and last.stepsPerSecond > 0
    assert np.isnan(last.lossKL)
    assert summary.last.step == 60 and summary.last.loss == last.loss and summary.seconds > 0
    assert set(last.asdict()) >= {"stage", "step", "loss", "lossML", "lossKL", "temperature", "essFraction"}
    assert trainer.getCompletedSteps("ml") == 60 and trainer.getSkippedSteps() == 0
    # Maximum likelihood lowers the test NLL.
    assert trainer.testNLL(exactData, T_REF) < before - 0.1


def test_early_stopping_on_validation_frames(system, exactData):
    # 32 training frames overfit; the held-out frames choose the weights kept.
    reports = []
    options = openmmbg.TrainerOptions(numThreads=1, logInterval=1000, progress=reports.append)
    trainer = openmmbg.FlowTrainer(smallFlow(system, exactData), options)
    trainer.setData(exactData[:32], T_REF)
    with pytest.raises(openmm.OpenMMException, match="no validation frames"):
        trainer.train(openmmbg.TrainingStage(name="ml", steps=10, validationInterval=5))
    validation = exactData[1000:3000]
    trainer.setValidationData(validation)
    stage = openmmbg.TrainingStage(name="ml", steps=300, batchSize=32, learningRate=1e-2,
                                   validationInterval=20, validationPatience=4)
    summary = trainer.train(stage)
    checked = [report.validationNLL for report in reports if np.isfinite(report.validationNLL)]
    assert len(reports) == len(checked) and summary.last.bestValidationNLL == min(checked)
    assert trainer.testNLL(validation, T_REF) == pytest.approx(min(checked), abs=1e-9)
    assert summary.last.stoppedEarly == (summary.last.step < 300)


def test_print_progress_writes_lines(system, exactData, capfd):
    options = openmmbg.TrainerOptions(numThreads=1, logInterval=5, printProgress=True)
    trainer = openmmbg.FlowTrainer(smallFlow(system, exactData), options)
    trainer.setData(exactData, T_REF)
    trainer.train(openmmbg.TrainingStage(name="printed", steps=10, batchSize=32))
    lines = [line for line in capfd.readouterr().out.splitlines() if "printed" in line]
    assert len(lines) == 2


def test_exception_in_callback_stops_training(system, exactData):
    class Stop(Exception):
        pass

    def stopAtTwenty(report):
        if report.step == 20:
            raise Stop("enough")

    options = openmmbg.TrainerOptions(numThreads=1, logInterval=10, progress=stopAtTwenty)
    trainer = openmmbg.FlowTrainer(smallFlow(system, exactData), options)
    trainer.setData(exactData, T_REF)
    with pytest.raises(Stop, match="enough"):
        trainer.train(openmmbg.TrainingStage(name="stopped", steps=100, batchSize=32))
    assert trainer.getCompletedSteps("stopped") == 20
    with pytest.raises(TypeError):
        openmmbg.TrainerOptions(progress=42)


def test_data_from_a_dcd_file(system, exactData, tmp_path):
    path = str(tmp_path / "data.dcd")
    writer = openmmbg.DcdWriter(path, 1)
    writer.write(exactData[:500])
    assert writer.getNumFrames() == 500
    del writer  # closes the file
    frames = openmmbg.readDcd(path, 1)
    np.testing.assert_allclose(frames, exactData[:500], atol=1e-6)  # DCD stores float32 Angstrom
    fromArray = openmmbg.FlowTrainer(smallFlow(system, exactData), openmmbg.TrainerOptions(numThreads=1))
    fromFile = openmmbg.FlowTrainer(smallFlow(system, exactData), openmmbg.TrainerOptions(numThreads=1))
    fromArray.setData(frames, T_REF)
    fromFile.setData(path, T_REF)
    stage = openmmbg.TrainingStage(steps=5, batchSize=64)
    assert fromArray.train(stage).last.loss == fromFile.train(stage).last.loss


def test_checkpoints_resume_a_stage_exactly(system, exactData, tmp_path):
    path = str(tmp_path / "checkpoint.pt")
    stage = openmmbg.TrainingStage(name="ml", steps=30, batchSize=64)
    straight = openmmbg.FlowTrainer(smallFlow(system, exactData), openmmbg.TrainerOptions(numThreads=1))
    straight.setData(exactData, T_REF)
    final = straight.train(stage).last.loss

    def stopAtTwenty(report):
        if report.step == 20:
            raise KeyboardInterrupt

    # An interrupted run leaves its checkpoint of step 20 behind...
    options = openmmbg.TrainerOptions(numThreads=1, checkpointPath=path, checkpointInterval=10, logInterval=10,
                                      progress=stopAtTwenty)
    interrupted = openmmbg.FlowTrainer(smallFlow(system, exactData), options)
    interrupted.setData(exactData, T_REF)
    with pytest.raises(KeyboardInterrupt):
        interrupted.train(stage)
    # ...from which a new trainer runs the last 10 steps to the same end.
    resumed = openmmbg.FlowTrainer(smallFlow(system, exactData, seed=99), openmmbg.TrainerOptions(numThreads=1))
    resumed.setData(exactData, T_REF)
    resumed.loadCheckpoint(path)
    assert resumed.getCompletedSteps("ml") == 20
    summary = resumed.train(stage)
    assert summary.last.step == 30
    assert summary.last.loss == final
    x = exactData[:50]
    np.testing.assert_array_equal(resumed.getModel().logProb(x, T_REF), straight.getModel().logProb(x, T_REF))


def test_kl_training_through_the_energy_bridge(system, exactData):
    model = smallFlow(system, exactData, seed=4)
    trainer = openmmbg.FlowTrainer(model, openmmbg.TrainerOptions(numThreads=1, logInterval=10))
    bridge = openmmbg.OpenMMEnergy(system, T_REF, openmmbg.OpenMMEnergy.Options(platform="Reference", numWorkers=1))
    trainer.setEnergy(bridge)
    del bridge  # the trainer shares ownership of the bridge
    summary = trainer.train(openmmbg.TrainingStage(name="kl", steps=20, batchSize=64, lambdaStart=1.0,
                                                   lambdaEnd=1.0, temperature=600 * openmm.unit.kelvin))
    last = summary.last
    assert np.isfinite(last.lossKL) and last.lambda_ == 1.0 and last.temperature == 600.0
    assert 0 < last.essFraction <= 1 and np.isfinite(last.meanReducedEnergy)


def test_weighted_data_draws_batches_in_proportion_to_the_weights(system, exactData):
    data = np.asarray(exactData)
    right = data[:, 0, 0] > 0
    # All the weight on the frames with x > 0: the flow learns that side only.
    logWeights = np.where(right, 0.0, -np.inf)
    trainer = openmmbg.FlowTrainer(smallFlow(system, exactData), openmmbg.TrainerOptions(seed=4, numThreads=1))
    trainer.setData(exactData, T_REF, logWeights)
    trainer.train(openmmbg.TrainingStage(name="ml", steps=200, batchSize=128, learningRate=5e-3))
    assert trainer.testNLL(data[right], T_REF) < trainer.testNLL(data[~right], T_REF) - 1.0
    with pytest.raises(openmm.OpenMMException, match="one log-weight per frame"):
        trainer.setData(exactData, T_REF, logWeights[:10])
    with pytest.raises(openmm.OpenMMException, match="every weight is zero"):
        trainer.setData(exactData, T_REF, np.full(len(data), -np.inf))


def test_annealing_on_the_flows_own_samples(system, exactData):
    # A flow fitted at T_REF is annealed to 2 T_REF and back on its own weighted samples.
    model = smallFlow(system, exactData, seed=5)
    trainer = openmmbg.FlowTrainer(model, openmmbg.TrainerOptions(numThreads=1, logInterval=1000))
    trainer.setData(exactData, T_REF)
    trainer.train(openmmbg.TrainingStage(name="ml", steps=100, batchSize=128, learningRate=5e-3))
    bridge = openmmbg.OpenMMEnergy(system, T_REF, openmmbg.OpenMMEnergy.Options(platform="Reference", numWorkers=1))
    schedule = openmmbg.AnnealingSchedule(temperatures=[2 * T_REF, T_REF], samples=2000, seed=3,
                                          stage=openmmbg.TrainingStage(name="anneal", steps=20, batchSize=128))
    assert schedule.temperatures == (2 * T_REF, T_REF)
    steps = openmmbg.annealFlow(trainer, bridge, schedule)
    assert [step.temperature for step in steps] == [2 * T_REF, T_REF]
    for step in steps:
        assert 0 < step.essFraction <= 1 and 0 <= step.zeroWeightFraction < 1
        assert step.training.last.step == 20 and step.training.last.stage.startswith("anneal@")
        assert set(step.asdict()) == {"temperature", "essFraction", "zeroWeightFraction", "training"}
    assert bridge.getTemperature() == T_REF
    with pytest.raises(openmm.OpenMMException, match="no temperatures"):
        openmmbg.annealFlow(trainer, bridge, openmmbg.AnnealingSchedule())
    schedule.setStereoReference(np.zeros((3, 3)))
    with pytest.raises(openmm.OpenMMException, match="stereo reference has 3 particles"):
        openmmbg.annealFlow(trainer, bridge, schedule)
