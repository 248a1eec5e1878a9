"""Long calls release the GIL: a Python thread keeps running meanwhile."""
import threading
import time

import openmm
import openmmbg
from conftest import T_REF, reference


class Ticker:
    """A thread that notes the longest pause between its iterations: a call that
    holds the GIL throughout pauses it for the whole call."""

    def __init__(self):
        self.stop = False
        self.longestPause = 0.0
        self.ticks = 0
        self.thread = threading.Thread(target=self.run)

    def run(self):
        last = time.perf_counter()
        while not self.stop:
            now = time.perf_counter()
            self.longestPause = max(self.longestPause, now - last)
            last = now
            self.ticks += 1

    def during(self, call):
        self.thread.start()
        time.sleep(0.05)
        ticks = self.ticks
        self.longestPause = 0.0
        start = time.perf_counter()
        result = call()
        duration = time.perf_counter() - start
        self.stop = True
        self.thread.join()
        return result, duration, self.ticks - ticks


def workFor(seconds, run, trialSize):
    """A size for run(size) that takes about `seconds`, from a timed trial run:
    the calls below must last long enough that a held GIL would show."""
    start = time.perf_counter()
    run(trialSize)
    trial = time.perf_counter() - start
    return max(trialSize, int(trialSize * seconds / max(trial, 1e-3)))


def test_step_releases_the_gil(untrainedFlow, system):
    integrator = openmmbg.LatentMetropolisIntegrator(untrainedFlow, T_REF, 0.5, 0.5)
    integrator.setRandomNumberSeed(1)
    context = openmm.Context(system, integrator, reference())
    context.setPositions([openmm.Vec3(-2.0, 0.0, 0.0)])
    steps = workFor(0.8, integrator.step, 1000)
    ticker = Ticker()
    _, duration, ticks = ticker.during(lambda: integrator.step(steps))
    assert duration > 0.3, "too short to tell"
    assert ticker.longestPause < duration / 2, (ticker.longestPause, duration)
    assert ticks > 1000


def test_training_releases_the_gil_and_calls_back(system, exactData):
    reports = []
    config = openmmbg.FlowConfig(numBlocks=2, hiddenLayers=2, hiddenWidth=16)
    model = openmmbg.FlowModel.createCartesian(system, [0, 1], exactData, "realnvp", config, T_REF)
    options = openmmbg.TrainerOptions(numThreads=1, logInterval=180,
                                      progress=lambda report: reports.append(threading.get_ident()))
    trainer = openmmbg.FlowTrainer(model, options)
    trainer.setData(exactData, T_REF)
    # The trainer counts completed steps per stage name: the timed stage must not be the trial's.
    steps = workFor(0.8, lambda n: trainer.train(openmmbg.TrainingStage(name="trial", steps=n, batchSize=256)), 100)
    reports.clear()
    trainer.setData(exactData, T_REF)
    stage = openmmbg.TrainingStage(name="timed", steps=steps, batchSize=256)
    ticker = Ticker()
    _, duration, ticks = ticker.during(lambda: trainer.train(stage))
    assert duration > 0.3, "too short to tell"
    assert ticker.longestPause < duration / 2, (ticker.longestPause, duration)
    # The callback runs in the calling thread, with the GIL.
    expectedReports = steps // 180 + (steps % 180 != 0)  # every 180 steps and the last
    assert reports == [threading.get_ident()] * expectedReports, (steps, len(reports))
