#!/usr/bin/python3
"""The alanine dipeptide pipeline in Python, stage for stage the C++ program
pipeline.cpp (same options, presets, seeds, results folder and summary keys):

    OPENMM_PLUGIN_DIR=build/plugins PYTHONPATH=build/python /usr/bin/python3 \\
        examples/alanine_dipeptide/pipeline.py [--preset default|long|smoke] [--output DIR] \\
        [--flow FILE] [--data DIR] [--no-plots]

  1. MD at 600 K (training data) and at 300 K (comparison), in parallel;
  2. a TSF trained at 600 K: maximum likelihood, then mixed ML + KL;
  3. sampling at 300 K with LatentMetropolisIntegrator and with
     TSFParallelTemperingIntegrator (300 ... 600 K);
  4. series (CSV), trajectories (DCD), the flow, summary.json/.txt and plots.
Every stage writes its outputs when it finishes; a rerun skips finished stages
and resumes an interrupted training from its checkpoint.
"""
import argparse
import collections
import math
import multiprocessing
import os
import subprocess
import sys
import time

try:
    import numpy as np
    import openmm
    import openmm.unit as unit
    import openmmbg
except ImportError as _error:
    sys.exit(f"error: {_error}; run with PYTHONPATH=<build>/python and OPENMM_PLUGIN_DIR=<build>/plugins "
             "(or install the openmmbg package)")

HERE = os.path.dirname(os.path.abspath(__file__))

# The presets of the C++ program (presetNamed in AlanineDipeptide.cpp), to be
# kept equal to them. md_steps: per temperature, 1 fs steps, a frame every
# md_interval; ml/mixed: training steps; flow_samples: per temperature;
# chain/pt: Metropolis and parallel-tempering steps (a sample every
# SAMPLE_INTERVAL); warm_up: step-size adaptation moves of both.
Preset = collections.namedtuple(
    "Preset", "md_steps md_interval hidden_width ml_steps mixed_steps batch_size flow_samples "
              "chain_steps pt_steps warm_up replicas")
PRESETS = {
    # Dense frames (every 0.1 ps): with one frame per ps the flow overfits.
    "default": Preset(4_000_000, 100, 128, 3000, 1500, 256, 20000, 80000, 40000, 1000, 5),
    "long": Preset(20_000_000, 200, 128, 10000, 4000, 256, 50000, 200000, 100000, 1000, 5),
    # Seconds, for tests of the pipeline itself; the numbers mean nothing.
    "smoke": Preset(20_000, 100, 32, 40, 20, 64, 500, 400, 400, 100, 3),
}
# Shared by every preset (the defaults of AlanineDipeptide.h).
HOT, COLD = 600.0, 300.0  # K
TIMESTEP, FRICTION, EQUILIBRATION_STEPS = 0.001, 1.0, 20000  # ps, 1/ps
FLOW_BLOCKS, FLOW_LAYERS = 4, 2
ML_LEARNING_RATE, ML_FINAL_LEARNING_RATE, MIXED_LEARNING_RATE, MIXED_LAMBDA = 1e-3, 1e-4, 3e-4, 0.2
ENERGY_CUT, TRAINING_SEED = 1000.0, 1  # kT
LATENT_STEP_SIZE, INDEPENDENCE_PROBABILITY, TARGET_ACCEPTANCE, SAMPLE_INTERVAL = 0.05, 0.1, 0.3, 10
MD_SEEDS, FLOW_SEEDS, CHAIN_SEED, PT_SEED = (11, 12), (21, 22), 31, 41


class UsageError(Exception):
    """A user mistake: reported in one line, exit code 2."""


class PipelineError(Exception):
    """A problem with the inputs or the run: reported in one line, exit code 1."""


Molecule = collections.namedtuple("Molecule", "system positions phi_atoms psi_atoms")


class Samples:
    """Configurations x (may be None) with phi, psi (rad), energy (kJ/mol) and importance log-weights."""

    def __init__(self, x, phi, psi, energy, log_weight=None):
        self.x, self.phi, self.psi, self.energy, self.log_weight = x, phi, psi, energy, log_weight


def load_molecule(data):
    system = openmmbg.loadSystemXml(os.path.join(data, "alanine_dipeptide_system.xml"))
    structure = openmmbg.readPdb(os.path.join(data, "alanine_dipeptide.pdb"))
    positions = structure.getPositions()
    if len(positions) != system.getNumParticles():
        raise PipelineError(f"the PDB file has {len(positions)} atoms, the System {system.getNumParticles()}")
    phi, psi = openmmbg.backboneDihedrals(structure)
    return Molecule(system, positions, phi, psi)


def describe(molecule, x, energy):
    return Samples(x, openmmbg.dihedralAngles(x, molecule.phi_atoms), openmmbg.dihedralAngles(x, molecule.psi_atoms),
                   np.asarray(energy, dtype=float))


def energies_of(molecule, x):
    bridge = openmmbg.OpenMMEnergy(molecule.system, COLD, openmmbg.OpenMMEnergy.Options(platform="Reference"))
    return bridge.evaluate(x).potentialEnergy


def progress_printer(label):
    return lambda fraction: print(f"  {label:<22} {100 * fraction:3.0f}%", flush=True)


def report_progress(progress, done, total):
    if progress and done % max(1, total // 20) == 0:
        progress(done / total)


def positions_of(context):
    return context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)


def write_atomically(path, text):
    """A stage's file appears complete or not at all, so that a rerun never reuses half of one."""
    with open(path + ".part", "w") as out:
        out.write(text)
    os.replace(path + ".part", path)


def write_series(samples, path):
    weighted = samples.log_weight is not None
    columns = [samples.phi, samples.psi, samples.energy] + ([samples.log_weight] if weighted else [])
    lines = ["phi,psi,energy" + (",log_weight" if weighted else "")]
    lines += [",".join(f"{value:.10g}" for value in row) for row in zip(*columns)]
    write_atomically(path, "\n".join(lines) + "\n")


def read_series(path, expected=None):
    """A CSV of write_series (x stays None); `expected`: the number of rows this preset makes."""
    with open(path) as source:
        header = source.readline().strip()
        weighted = "log_weight" in header
        rows = []
        for line in source:
            try:
                row = [float(value) for value in line.split(",")]
            except ValueError:
                row = []
            if len(row) != (4 if weighted else 3):
                raise PipelineError(f"'{path}' has a malformed line: {line.strip()}")
            rows.append(row)
    if expected is not None and len(rows) != expected:
        raise UsageError(f"'{path}' has {len(rows)} samples where this preset makes {expected}: it belongs to "
                         "another run; use another --output or the same --preset")
    table = np.array(rows, dtype=float).reshape(-1, 4 if weighted else 3)
    return Samples(None, table[:, 0], table[:, 1], table[:, 2], table[:, 3] if weighted else None)


def run_md(data, temperature, steps, interval, seed, dcd_path, show_progress):
    """Langevin MD (LangevinMiddleIntegrator, Reference platform) from the minimized
    structure; returns frames (F, N, 3) nm, energies (F,) kJ/mol and its CPU seconds.
    Runs in a process of its own: the Reference platform draws its random numbers from
    one generator per process, which two MD runs in one process would share (and
    then neither would be reproducible)."""
    cpu_begin = time.process_time()
    molecule = load_molecule(data)
    integrator = openmm.LangevinMiddleIntegrator(temperature, FRICTION, TIMESTEP)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(molecule.system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(molecule.positions)
    context.setVelocitiesToTemperature(temperature, seed)
    integrator.step(EQUILIBRATION_STEPS)
    frames, particles = steps // interval, molecule.system.getNumParticles()
    x, energy = np.empty((frames, particles, 3)), np.empty(frames)
    dcd = openmmbg.DcdWriter(dcd_path, particles, interval, TIMESTEP)
    progress = progress_printer("MD") if show_progress else None
    for f in range(frames):
        integrator.step(interval)
        state = context.getState(getPositions=True, getEnergy=True)
        x[f] = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        energy[f] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        dcd.write(x[f])
        report_progress(progress, f + 1, frames)
    del dcd  # closes the file
    return x, energy, time.process_time() - cpu_begin


def describe_progress(p):
    """A training report in the words of the C++ describeProgress()."""
    line = f"[{p.stage}] step {p.step}/{p.stageSteps}  loss {p.loss:.4f}"
    if not math.isnan(p.lossML):
        line += f"  ML {p.lossML:.4f}"
    if not math.isnan(p.lossKL):
        line += (f"  KL {p.lossKL:.4f}  T {p.temperature:.1f} K  <u> {p.meanReducedEnergy:.3f}"
                 f"  ESS {p.essFraction:.4f}")
    line += f"  lambda {p.lambda_:.3f}  lr {p.learningRate:.2e}  {p.stepsPerSecond:.1f} steps/s"
    return line + (f"  skipped {p.skippedSteps}" if p.skippedSteps > 0 else "")


def train_flow(molecule, frames, preset, out):
    """A TSF trained on frames at 600 K: maximum likelihood, then ML + KL through the
    energy bridge; resumes from out/training.checkpoint if an earlier run left one."""
    config = openmmbg.FlowConfig(numBlocks=FLOW_BLOCKS, hiddenLayers=FLOW_LAYERS, hiddenWidth=preset.hidden_width)
    model = openmmbg.FlowModel.createForMolecule(molecule.system, frames, "tsf", config, HOT)
    checkpoint, log_path = os.path.join(out, "training.checkpoint"), os.path.join(out, "training.csv")
    log = None

    def progress(p):
        print(f"  {describe_progress(p)}", flush=True)
        log.write(",".join([p.stage, str(p.step)] + [f"{v:g}" for v in (
            p.loss, p.lossML, p.lossKL, p.lambda_, p.meanReducedEnergy, p.essFraction)]) + "\n")
        log.flush()

    options = openmmbg.TrainerOptions(seed=TRAINING_SEED, numThreads=1, logInterval=100, progress=progress,
                                      checkpointPath=checkpoint, checkpointInterval=250)
    trainer = openmmbg.FlowTrainer(model, options)
    rows = ["stage,step,loss,loss_ml,loss_kl,lambda,mean_reduced_energy,ess\n"]
    if os.path.exists(checkpoint):
        trainer.loadCheckpoint(checkpoint)
        print(f"  resuming from {checkpoint}", flush=True)
        if os.path.exists(log_path):
            # The reports up to the checkpoint stay; those after it are made again.
            with open(log_path) as old:
                rows += [row for row in old.readlines()[1:] if reported_before(row, trainer)]
    with open(log_path, "w") as log:
        log.writelines(rows)
        trainer.setData(frames, HOT)
        bridge = openmmbg.OpenMMEnergy(molecule.system, HOT,
                                       openmmbg.OpenMMEnergy.Options(platform="Reference", energyCut=ENERGY_CUT))
        trainer.setEnergy(bridge)
        trainer.train(openmmbg.TrainingStage(name="ml", steps=preset.ml_steps, batchSize=preset.batch_size,
                                             learningRate=ML_LEARNING_RATE,
                                             finalLearningRate=ML_FINAL_LEARNING_RATE))
        trainer.train(openmmbg.TrainingStage(name="mixed", steps=preset.mixed_steps, batchSize=preset.batch_size,
                                             learningRate=MIXED_LEARNING_RATE,
                                             finalLearningRate=MIXED_LEARNING_RATE / 10,
                                             lambdaStart=0.0, lambdaEnd=MIXED_LAMBDA))
    return model


def reported_before(row, trainer):
    """True for a training.csv row of a step that the loaded checkpoint has completed."""
    stage, _, rest = row.partition(",")
    try:
        return int(rest.split(",")[0]) <= trainer.getCompletedSteps(stage)
    except ValueError:
        return False


def sample_flow(molecule, model, temperature, count, seed):
    """Flow samples at T with energies and importance log-weights. They are drawn in the
    flow's canonical frame (the C++ workflow moves them onto the minimized structure
    with coordinate-transform calls that are not wrapped); nothing written depends on
    the frame: dihedrals and energies are invariant under rigid motions."""
    sample = model.sample(count, temperature, seed=seed)
    bridge = openmmbg.OpenMMEnergy(molecule.system, temperature, openmmbg.OpenMMEnergy.Options(platform="Reference"))
    energy = bridge.evaluate(sample.x)
    samples = describe(molecule, sample.x, energy.potentialEnergy)
    # FlowModel::logTarget: -u + log J - |p|^2 / (2 tau), -inf where invalid.
    tau = model.tau(temperature)
    n = model.getNumCoordinates()
    with np.errstate(invalid="ignore", over="ignore"):
        target = -energy.reducedEnergy + sample.logJ
        if model.hasMomenta():
            p = sample.gamma[:, n:2 * n]
            target = target - (p * p).sum(1) / (2 * tau)
        valid = sample.inDomain & energy.finite & np.isfinite(target)
        samples.log_weight = np.where(valid, target, -np.inf) - sample.logq
    return samples


class ChainResult:
    def __init__(self, samples, seconds=0.0, evaluations=0, acceptance=(), independence=(), exchange=(),
                 round_trips=0, latent_step_size=0.0):
        self.samples, self.seconds, self.evaluations = samples, seconds, evaluations
        self.acceptance, self.independence, self.exchange = list(acceptance), list(independence), list(exchange)
        self.round_trips, self.latent_step_size = round_trips, latent_step_size


def energy_evaluations(statistics, records):
    """One evaluation per step() call for the starting configuration, one per proposal that reached OpenMM."""
    kinds = openmmbg.MoveKind
    return (records + statistics.getProposed(kinds.RandomWalk) + statistics.getProposed(kinds.Independence)
            - statistics.outOfDomain - statistics.stereoFlips)


def run_chain(molecule, integrator, platform, steps, warm_up, read_positions, progress):
    """Records a sample every SAMPLE_INTERVAL steps of a flow-move integrator started at the minimized structure."""
    context = openmm.Context(molecule.system, integrator, openmm.Platform.getPlatformByName(platform))
    context.setPositions(molecule.positions)
    if warm_up > 0:
        integrator.warmUp(warm_up, TARGET_ACCEPTANCE)
    records = steps // SAMPLE_INTERVAL
    x = np.empty((records, molecule.system.getNumParticles(), 3))
    begin = time.monotonic()
    for i in range(records):
        integrator.step(SAMPLE_INTERVAL)
        x[i] = read_positions(context)
        report_progress(progress, i + 1, records)
    seconds = time.monotonic() - begin
    return describe(molecule, x, energies_of(molecule, x)), seconds, records


def run_latent_metropolis(molecule, model, preset, progress):
    integrator = openmmbg.LatentMetropolisIntegrator(model, COLD, LATENT_STEP_SIZE, INDEPENDENCE_PROBABILITY)
    integrator.setRandomNumberSeed(CHAIN_SEED)
    samples, seconds, records = run_chain(molecule, integrator, "Reference", preset.chain_steps, preset.warm_up,
                                          positions_of, progress)
    s = integrator.getStatistics()
    kinds = openmmbg.MoveKind
    return ChainResult(samples, seconds, energy_evaluations(s, records), [s.acceptanceRate(kinds.RandomWalk)],
                       [s.acceptanceRate(kinds.Independence)], latent_step_size=integrator.getLatentStepSize())


def run_parallel_tempering(molecule, model, ladder, preset, progress):
    """The samples are those of T_1; the CPU platform runs the replicas in parallel."""
    integrator = openmmbg.TSFParallelTemperingIntegrator(model, ladder, LATENT_STEP_SIZE, INDEPENDENCE_PROBABILITY)
    integrator.setRandomNumberSeed(PT_SEED)
    samples, seconds, records = run_chain(molecule, integrator, "CPU", preset.pt_steps, preset.warm_up,
                                          lambda context: integrator.getReplicaPositions(0), progress)
    result = ChainResult(samples, seconds, latent_step_size=integrator.getLatentStepSize())
    kinds = openmmbg.MoveKind
    replicas = integrator.getNumReplicas()
    for r in range(replicas):
        s = integrator.getMoveStatistics(r)
        result.evaluations += energy_evaluations(s, records)
        result.acceptance.append(s.acceptanceRate(kinds.RandomWalk))
        result.independence.append(s.acceptanceRate(kinds.Independence))
    result.exchange = [integrator.getExchangeAcceptanceRate(pair) for pair in range(replicas - 1)]
    result.round_trips = integrator.getNumRoundTrips()
    return result


def phi_transitions(phi):
    """Number of sign changes of phi along a series."""
    positive = np.asarray(phi) > 0
    return int(np.count_nonzero(positive[1:] != positive[:-1]))


def normalized_weights(log_weight):
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.exp(log_weight - np.max(log_weight))
    return np.where(np.isfinite(w), w, 0.0)


def weighted_phi_free_energy(samples, weighted):
    """dF_phi of importance-weighted independent samples; the error from the Kish effective sample size."""
    w = normalized_weights(samples.log_weight) if weighted else np.ones_like(samples.phi)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = w.sum()
        f = (w * (samples.phi > 0)).sum() / total
        effective = total * total / (w * w).sum()
        if f <= 0 or f >= 1:
            return (math.inf if f <= 0 else -math.inf), math.inf
        return -math.log(f / (1 - f)), math.sqrt(f * (1 - f) / effective) / (f * (1 - f))


def ramachandran_kl(reference, model, weighted):
    weights = normalized_weights(model.log_weight) if weighted else None
    return openmmbg.histogramKL(openmmbg.ramachandranHistogram(reference.phi, reference.psi, 64),
                                openmmbg.ramachandranHistogram(model.phi, model.psi, 64, weights), 1e-10)


class Summary:
    """Accumulates the summary: JSON (machine) and text (human), formatted as pipeline.cpp does."""

    def __init__(self):
        self.entries = []

    @staticmethod
    def format(value):
        value = float(value)
        if not math.isfinite(value):
            return '"inf"' if value > 0 else ('"-inf"' if value < 0 else '"nan"')
        return f"{value:.6g}"

    def number(self, key, value):
        self.entries.append((key, self.format(value)))

    def text(self, key, value):
        self.entries.append((key, f'"{value}"'))

    def list(self, key, values):
        self.entries.append((key, "[" + ", ".join(self.format(v) for v in values) + "]"))

    def estimate(self, key, estimate):
        value, error = estimate
        self.entries.append((key, f'{{"value": {self.format(value)}, "error": {self.format(error)}}}'))

    def mark(self):
        return len(self.entries)

    def save_since(self, mark, path):
        """The entries of a stage, so that a rerun that reuses the stage can report them."""
        write_atomically(path, "".join(f"{key}\t{value}\n" for key, value in self.entries[mark:]))

    def load(self, path):
        with open(path) as fragment:
            for line in fragment:
                key, tab, value = line.rstrip("\n").partition("\t")
                if tab:
                    self.entries.append((key, value))

    def write(self, directory):
        body = ",\n".join(f'  "{key}": {value}' for key, value in self.entries)
        write_atomically(os.path.join(directory, "summary.json"), "{\n" + body + "\n}\n")
        write_atomically(os.path.join(directory, "summary.txt"),
                         "".join(f"{key}: {value}\n" for key, value in self.entries))


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def parse(argv):
    parser = ArgumentParser(prog="pipeline.py", allow_abbrev=False,
                            description="The alanine dipeptide pipeline (the Python twin of pipeline.cpp).")
    parser.add_argument("--preset", default="default", help="default, long or smoke")
    parser.add_argument("--output", default="results/alanine_dipeptide", help="the results folder")
    parser.add_argument("--flow", default="", help="a trained flow to use instead of training one")
    parser.add_argument("--data", default=os.path.join(HERE, "data"),
                        help="the folder of alanine_dipeptide_system.xml and alanine_dipeptide.pdb")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="skip plot_results.py")
    options = parser.parse_args(argv)
    if options.preset not in PRESETS:
        raise UsageError(f"unknown preset '{options.preset}' (use default, long or smoke)")
    return options


def exists(out, *names):
    return all(os.path.exists(os.path.join(out, name)) for name in names)


def run(options):
    preset = PRESETS[options.preset]
    if not (openmmbg.kernelsAvailable("Reference") and openmmbg.kernelsAvailable("CPU")):
        raise PipelineError("the OpenMM-BG kernel plugin is not loaded: set OPENMM_PLUGIN_DIR to the build's "
                            "plugins folder or install the plugin")
    out = options.output
    molecule = load_molecule(options.data)
    # A flow given on the command line is checked before anything runs.
    model = openmmbg.FlowModel.load(options.flow, molecule.system) if options.flow else None
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the output folder '{out}': {error.strerror}") from None
    path = lambda name: os.path.join(out, name)  # noqa: E731
    summary = Summary()
    summary.text("preset", options.preset)
    seconds = {}
    particles = molecule.system.getNumParticles()

    # 1. MD at both temperatures, in parallel (a process each).
    print(f"== 1. MD at {HOT:.0f} K and {COLD:.0f} K ({preset.md_steps * 1e-6:.1f} ns each, 1 fs steps)", flush=True)
    begin = time.monotonic()
    names, frames = ("md600", "md300"), preset.md_steps // preset.md_interval
    if exists(out, "md600.csv", "md300.csv", "md600.dcd"):
        print(f"  found in {out}, reused", flush=True)
        md = [read_series(path(name + ".csv"), frames) for name in names]
        md[0].x = openmmbg.readDcd(path("md600.dcd"), particles)
        if len(md[0].x) != frames:
            raise UsageError(f"'{path('md600.dcd')}' has {len(md[0].x)} frames where this preset makes {frames}: "
                             "it belongs to another run; use another --output or the same --preset")
    else:
        # Leaving the block ends both runs, also on an error or an interrupt.
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            runs = [pool.apply_async(run_md, (options.data, temperature, preset.md_steps, preset.md_interval,
                                              MD_SEEDS[k], path(names[k] + ".dcd"), k == 0))
                    for k, temperature in enumerate((HOT, COLD))]
            results = [result.get() for result in runs]
        md = [describe(molecule, x, energy) for x, energy, _ in results]
        # Train on the frames as stored, so that a rerun that reuses them trains on the same data.
        md[0].x = openmmbg.readDcd(path("md600.dcd"), particles)
        for name, series in zip(names, md):
            write_series(series, path(name + ".csv"))
        summary.number("cpu_seconds_md600", results[0][2])
    seconds["md"] = time.monotonic() - begin

    # 2. The flow.
    print(f"== 2. TSF trained at {HOT:.0f} K", flush=True)
    begin = time.monotonic()
    if model is not None:
        print(f"  using {options.flow}", flush=True)
    elif exists(out, "flow.bgflow"):
        model = openmmbg.FlowModel.load(path("flow.bgflow"), molecule.system)
        print(f"  found {path('flow.bgflow')}, reused", flush=True)
    else:
        cpu_begin = time.process_time()
        model = train_flow(molecule, md[0].x, preset, out)
        model.setMetadata(f"alanine dipeptide TSF, trained at 600 K on {len(md[0].x)} MD frames, "
                          f"preset {options.preset}")
        model.save(path("flow.bgflow.part"))
        os.replace(path("flow.bgflow.part"), path("flow.bgflow"))
        os.remove(path("training.checkpoint"))
        # All threads of this process (LibTorch, the energy bridge); a resumed training counts this run only.
        summary.number("cpu_seconds_training", time.process_time() - cpu_begin)
    seconds["training"] = time.monotonic() - begin
    summary.number("flow_parameters", model.getNumParameters())

    # 3a. Flow samples at both temperatures, with importance weights.
    print(f"== 3. flow samples, Metropolis chains at {COLD:.0f} K, parallel tempering {COLD:.0f} ... {HOT:.0f} K",
          flush=True)
    begin = time.monotonic()
    flow600 = sample_flow(molecule, model, HOT, preset.flow_samples, FLOW_SEEDS[0])
    flow300 = sample_flow(molecule, model, COLD, preset.flow_samples, FLOW_SEEDS[1])
    write_series(flow600, path("flow600.csv"))
    write_series(flow300, path("flow300.csv"))
    seconds["flow_samples"] = time.monotonic() - begin

    # 3b. Latent Metropolis at 300 K.
    begin = time.monotonic()
    if exists(out, "mcmc300.csv", "mcmc300.summary"):
        chain = ChainResult(read_series(path("mcmc300.csv"), preset.chain_steps // SAMPLE_INTERVAL))
        summary.load(path("mcmc300.summary"))
        print("  Metropolis chain found, reused", flush=True)
    else:
        mark = summary.mark()
        chain = run_latent_metropolis(molecule, model, preset, progress_printer("Metropolis 300 K"))
        write_series(chain.samples, path("mcmc300.csv"))
        summary.number("mcmc_random_walk_acceptance", chain.acceptance[0])
        summary.number("mcmc_independence_acceptance", chain.independence[0])
        summary.number("mcmc_latent_step_size", chain.latent_step_size)
        summary.number("mcmc_energy_evaluations", chain.evaluations)
        summary.number("mcmc_phi_transitions_per_1000_evaluations",
                       1000.0 * phi_transitions(chain.samples.phi) / chain.evaluations)
        summary.number("mcmc_seconds_sampling", chain.seconds)
        summary.save_since(mark, path("mcmc300.summary"))
    seconds["metropolis"] = time.monotonic() - begin

    # 3c. Parallel tempering.
    begin = time.monotonic()
    ladder = list(openmmbg.TSFParallelTemperingIntegrator.geometricLadder(COLD, HOT, preset.replicas))
    if exists(out, "pt300.csv", "pt300.summary"):
        pt = ChainResult(read_series(path("pt300.csv"), preset.pt_steps // SAMPLE_INTERVAL))
        summary.load(path("pt300.summary"))
        print("  parallel tempering found, reused", flush=True)
    else:
        mark = summary.mark()
        pt = run_parallel_tempering(molecule, model, ladder, preset, progress_printer("parallel tempering"))
        write_series(pt.samples, path("pt300.csv"))
        summary.list("pt_temperatures", ladder)
        summary.list("pt_random_walk_acceptance", pt.acceptance)
        summary.list("pt_independence_acceptance", pt.independence)
        summary.list("pt_exchange_acceptance", pt.exchange)
        summary.number("pt_round_trips", pt.round_trips)
        summary.number("pt_energy_evaluations", pt.evaluations)
        summary.number("pt_phi_transitions_per_1000_evaluations",
                       1000.0 * phi_transitions(pt.samples.phi) / pt.evaluations)
        summary.number("pt_seconds_sampling", pt.seconds)
        summary.save_since(mark, path("pt300.summary"))
    seconds["parallel_tempering"] = time.monotonic() - begin

    # 4. Analysis.
    for name, flow in (("flow600", flow600), ("flow300", flow300)):
        summary.number(f"{name}_ess", openmmbg.kishEffectiveSampleSize(flow.log_weight))
        summary.number(f"{name}_ess_clipped", openmmbg.kishEffectiveSampleSize(flow.log_weight, 1e-4))
    summary.estimate("dF_phi_md600", openmmbg.phiFreeEnergyDifference(md[0].phi))
    summary.estimate("dF_phi_md300", openmmbg.phiFreeEnergyDifference(md[1].phi))
    for name, flow in (("flow600", flow600), ("flow300", flow300)):
        summary.estimate(f"dF_phi_{name}", weighted_phi_free_energy(flow, False))
        summary.estimate(f"dF_phi_{name}_reweighted", weighted_phi_free_energy(flow, True))
    summary.estimate("dF_phi_mcmc300", openmmbg.phiFreeEnergyDifference(chain.samples.phi))
    summary.estimate("dF_phi_pt300", openmmbg.phiFreeEnergyDifference(pt.samples.phi))
    summary.number("md300_phi_transitions_per_1000_evaluations", 1000.0 * phi_transitions(md[1].phi) / preset.md_steps)
    summary.number("rama_kl_flow600_vs_md600", ramachandran_kl(md[0], flow600, False))
    summary.number("rama_kl_flow600_reweighted_vs_md600", ramachandran_kl(md[0], flow600, True))
    summary.number("rama_kl_flow300_vs_md300", ramachandran_kl(md[1], flow300, False))
    summary.number("rama_kl_flow300_reweighted_vs_md300", ramachandran_kl(md[1], flow300, True))
    summary.number("rama_kl_mcmc300_vs_md300", ramachandran_kl(md[1], chain.samples, False))
    summary.number("rama_kl_pt300_vs_md300", ramachandran_kl(md[1], pt.samples, False))
    for key in sorted(seconds):
        summary.number(f"seconds_{key}", seconds[key])
    summary.write(out)
    print("== 4. summary", flush=True)
    with open(path("summary.txt")) as text:
        print(text.read(), end="", flush=True)

    if options.plots:
        command = [sys.executable, os.path.join(HERE, "plot_results.py"), out]
        if subprocess.run(command).returncode != 0:
            raise PipelineError("plotting failed: " + " ".join(command))
    print(f"results in {out}")
    return 0


def main(argv):
    sys.stdout.reconfigure(line_buffering=True)
    try:
        return run(parse(argv))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (PipelineError, openmm.OpenMMException, OSError) as error:
        print("error: " + " ".join(str(error).split()), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished stages and the training checkpoint are kept; rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
