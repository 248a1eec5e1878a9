#ifndef OPENMMBG_EXAMPLES_ALANINEDIPEPTIDE_H_
#define OPENMMBG_EXAMPLES_ALANINEDIPEPTIDE_H_

// The alanine dipeptide workflow shared by the pipeline, the reference, the
// benchmarks and molecule_flows (which loads other capped peptides through
// loadMolecule(systemXml, pdb, residue)): the molecule, MD runs, flow
// training and the sampling runs, each written once.

#include "openmmbg/FlowModel.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/tools/MoleculeIO.h"
#include "ProgramSupport.h"

#include <ATen/ATen.h>
#include <openmm/System.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {
namespace alanine {

/** The System, the minimized structure and the backbone dihedrals. */
struct Molecule {
    std::unique_ptr<OpenMM::System> system;
    PdbStructure structure;
    BackboneDihedrals dihedrals;
};

/** Reads alanine_dipeptide_system.xml and alanine_dipeptide.pdb from `dataDirectory`. */
Molecule loadMolecule(const std::string& dataDirectory);

/**
 * Any molecule: a System XML and its PDB (same atoms, same order). phi and
 * psi are those of `residueName`, or of the first residue that is neither
 * ACE nor NME if it is empty.
 */
Molecule loadMolecule(const std::string& systemXmlPath, const std::string& pdbPath, const std::string& residueName);

/** A sequence of configurations with what the analysis needs of each. */
struct Samples {
    at::Tensor x;          // [F, N, 3] nm (may be undefined when only angles are kept)
    at::Tensor phi, psi;   // [F] rad
    at::Tensor energy;     // [F] potential energy, kJ/mol
    at::Tensor logWeight;  // [F] importance log-weights (flow samples only), else undefined
    // [F] bool (flow samples only): a stereocentre, e.g. a methyl group's
    // labelled hydrogens, has the other handedness than the minimized
    // structure; such samples are outside the samplers' target (weight 0).
    at::Tensor otherHandedness;
};

/** The parts one after the other, every series the first part has (all parts must have it). */
Samples concatenated(const std::vector<Samples>& parts);

/** phi, psi and energies of configurations x [F, N, 3] evaluated with `energy` (kJ/mol; +inf where it fails). */
Samples describe(const Molecule& molecule, const at::Tensor& x, const at::Tensor& energy);

struct MDOptions {
    double temperature = 300.0;       // K
    double timestep = 0.001;          // ps
    double friction = 1.0;            // 1/ps
    long long equilibrationSteps = 20000;
    long long steps = 1000000;        // production steps
    int interval = 1000;              // steps between frames
    int seed = 1;
    std::string dcdPath;              // frames are also written here if not empty
};

/**
 * Langevin MD (LangevinMiddleIntegrator, Reference platform, one thread) from
 * the minimized structure. `progress` receives the fraction done.
 */
Samples runMD(const Molecule& molecule, const MDOptions& options,
              const std::function<void(double)>& progress = nullptr);

/** Replica-exchange MD (temperature parallel tempering with Langevin MD). */
struct ReplicaExchangeOptions {
    std::vector<double> temperatures;  // K, increasing; the configuration at rung k is at temperatures[k]
    double timestep = 0.001;           // ps
    double friction = 1.0;             // 1/ps
    long long equilibrationSteps = 20000;  // per replica, before the first exchange
    long long steps = 1000000;         // production steps per replica
    int interval = 1000;               // steps between exchange rounds; a frame of every rung after each
    int seed = 1;
    bool keepPositions = false;        // keep x of every frame in the result (memory: F K N 3 doubles)
    // Processes the replicas are split over (fork; at most one per replica).
    // OpenMM's Reference platform draws Langevin noise from one generator per
    // process, so threads would race for it; processes each have their own.
    // A run repeats for the same count; another count gives another run.
    int processes = 1;
};

struct ReplicaExchangeResult {
    std::vector<Samples> rungs;              // per temperature, one frame per exchange round
    std::vector<double> exchangeAcceptance;  // per pair (k, k + 1)
    long long roundTrips = 0;
    double cpuSeconds = 0;                   // of the production part (this thread)
};

/**
 * Replica-exchange MD from the minimized structure: every replica runs
 * LangevinMiddleIntegrator at its rung (Reference platform, one thread per
 * process, options.processes processes);
 * after every `interval` steps neighbours exchange configurations by
 * ReplicaExchange's rule (velocities rescaled by sqrt(T_new / T_old)), and a
 * frame of every rung is recorded. `progress` receives the fraction done.
 */
ReplicaExchangeResult runReplicaExchangeMD(const Molecule& molecule, const ReplicaExchangeOptions& options,
                                           const std::function<void(double)>& progress = nullptr);

/** A region of the Ramachandran plane, the same in the reference and in the pipeline's analysis. */
struct RamachandranRegion {
    std::string name;        // as the reference's summary.json names it
    std::string key;         // in summary keys
    std::string definition;
    std::function<at::Tensor(const at::Tensor& phi, const at::Tensor& psi)> inside;  // bool [F] from rad [F]
};

/** phi > 0; alpha_L (with C7ax, 0 < phi < 2.2); alpha_R; C7eq/beta (the rest). */
const std::vector<RamachandranRegion>& ramachandranRegions();

/** One estimate of the reference (alanine_dipeptide_reference's summary.json). */
struct ReferenceEstimate {
    std::string region;  // "phi > 0", "alpha_L", "alpha_R", "C7eq/beta"
    double temperature;  // K
    Estimate dF;         // -ln(P / (1 - P)) in kT, with the quoted error
    std::string source;  // the summary.json it comes from
};

/** Every estimate of a reference summary.json; an OpenMMException if the file cannot be read or parsed. */
std::vector<ReferenceEstimate> readReference(const std::string& path);

/**
 * The estimates of several references (paths separated by commas): for each
 * region and temperature the one with the smallest quoted error. An
 * OpenMMException if any file cannot be read.
 */
std::vector<ReferenceEstimate> readReferences(const std::string& paths);

/**
 * The committed references of the source tree at `sourceDir`, as
 * readReferences() takes them: replica exchange, umbrella sampling at 300
 * and 600 K, longer umbrella runs at 300 K.
 */
std::string committedReferencePaths(const std::string& sourceDir);

/** Writes the per-frame series (phi, psi, energy, log-weight) as CSV. */
void writeSeries(const Samples& samples, const std::string& path);
/** Reads a CSV written by writeSeries (x stays undefined). */
Samples readSeries(const std::string& path);

/** What a trained flow is made of and how long each stage runs. */
struct TrainingPlan {
    std::string flowType = "tsf";  // FlowModel::createForMolecule's flow types
    FlowConfig flow;
    double temperature = 300.0;  // K: the data's temperature, and T_ref
    long long mlSteps = 3000;
    long long mixedSteps = 1000;
    double mixedLambda = 0.2;    // KL weight at the end of the mixed stage (ramped from 0)
    // Early stopping of the ML stage: the last validationFraction of the
    // frames (the end of the run, the least correlated with the rest) is
    // held out; its NLL is checked every validationInterval steps, and the
    // stage keeps its best weights and stops after validationPatience checks
    // without a new best. A flow overfits a few ns of MD frames within a few
    // hundred steps (README, bench/flow_quality). 0: no frames held out.
    double validationFraction = 0.1;
    long long validationInterval = 100;
    long long validationPatience = 4;
    long long batchSize = 256;
    // Both stages decay their learning rate (cosine) to a tenth or less: at a
    // constant rate the flow keeps too much mass outside the data's basins.
    double learningRate = 1e-3;        // ML stage, decaying to mlFinalLearningRate
    double mlFinalLearningRate = 1e-4;
    double mixedLearningRate = 3e-4;   // mixed stage, decaying to a tenth of it
    double energyCut = 1000.0;   // kT, the bridge's linear-log cut
    int threads = 1;             // LibTorch threads
    int seed = 1;
};

/** The frames a flow is trained on. */
struct TrainingSet {
    at::Tensor frames;      // [F, N, 3] nm
    at::Tensor logWeights;  // [F] importance log-weights at the training temperature; undefined: sampled at it
    at::Tensor validation;  // [V, N, 3] nm sampled at the training temperature (early stopping); may be empty
    // [S, N, 3] nm sampled at the training temperature: they choose the
    // coordinates' z-matrix and normalisation (FlowModel::createForMolecule).
    at::Tensor setupFrames;
    double effectiveFrames = 0;  // Kish effective number of the training frames
};

/** Where the pipeline keeps the replica-exchange rung at `temperature` (K): folder/md<T>, + .csv and .dcd. */
std::string rungPath(const std::string& folder, double temperature);

/** A rung the pipeline saved at `path` (rungPath): its series (.csv) and frames (.dcd). */
Samples readRung(const Molecule& molecule, const std::string& path);

/** Frames [F, N, 3] sampled at the training temperature; the last `validationFraction` of them held out. */
TrainingSet heldOutSplit(const at::Tensor& frames, double validationFraction);

/**
 * Every rung of a replica-exchange run (rungs[k].x and .energy, at
 * temperatures[k]), pooled and reweighted by MBAR to `target` (K):
 * each rung's first frames train, the last `validationFraction` of each is
 * held out, and the held-out frames of the rung nearest `target` validate
 * (and set the flow's normalisation). The higher rungs
 * add the crossings between basins that the lowest rung sees rarely
 * (README: about 1.6 times the lowest rung's effective frames, a larger
 * ESS of the flow trained on them).
 */
TrainingSet pooledRungs(const std::vector<Samples>& rungs, const std::vector<double>& temperatures,
                        double validationFraction, double target);

/**
 * Trains a flow on `data` for plan.temperature: maximum likelihood (with
 * early stopping on the validation frames, see TrainingPlan), then a mixed
 * stage whose KL part uses the energy bridge. With a checkpoint path the run
 * resumes where an interrupted one stopped; `resumed`, if set, is then called
 * with the trainer as the checkpoint left it.
 */
FlowModel trainFlow(const Molecule& molecule, const TrainingSet& data, const TrainingPlan& plan,
                    const std::string& checkpointPath, const std::function<void(const TrainingProgress&)>& progress,
                    const std::function<void(const FlowTrainer&)>& resumed = nullptr);

/** trainFlow on frames [F, N, 3] sampled at plan.temperature, held out by heldOutSplit(frames, plan.validationFraction). */
FlowModel trainFlow(const Molecule& molecule, const at::Tensor& frames, const TrainingPlan& plan,
                    const std::string& checkpointPath, const std::function<void(const TrainingProgress&)>& progress,
                    const std::function<void(const FlowTrainer&)>& resumed = nullptr);

/**
 * [F] bool: configurations x [F, N, 3] (nm) with a stereocentre of the other
 * handedness than in the minimized structure (Stereochemistry: C-alpha, and
 * the labelled hydrogens of each methyl group).
 */
at::Tensor otherHandedness(const Molecule& molecule, const at::Tensor& x);

/**
 * Flow samples at T with their energies and importance weights (the frame of
 * the minimized structure). The target is the samplers' one: the Boltzmann
 * distribution of the minimized structure's stereoisomer, so a sample of the
 * other handedness (otherHandedness) weighs 0 (docs/math.md, "Stereochemistry").
 */
Samples sampleFlow(const Molecule& molecule, const FlowModel& model, double temperature, int count, int seed);

/**
 * `sets` independent sets of `count` flow samples at T, as the pipeline draws
 * them (seeds 22, 1, 2, ...), each without its configurations (x undefined).
 */
std::vector<Samples> sampleFlowSets(const Molecule& molecule, const FlowModel& model, double temperature, int count,
                                    int sets);

/** One Monte Carlo run's samples and statistics. */
struct ChainResult {
    Samples samples;
    double seconds = 0;
    long long energyEvaluations = 0;
    std::vector<double> acceptance;          // per replica: random walk
    std::vector<double> independence;        // per replica: independence
    std::vector<double> exchangeAcceptance;  // per pair (PT only)
    long long roundTrips = 0;                // PT only
    double latentStepSize = 0;               // after warm-up
};

struct ChainOptions {
    double latentStepSize = 0.05;
    double independenceProbability = 0.1;
    int warmUpSteps = 1000;
    double targetAcceptance = 0.3;
    long long steps = 20000;  // in all: each of the `chains` runs steps / chains
    int interval = 1;  // steps between recorded samples
    int seed = 1;      // chain c uses seed + c
    /**
     * Independent chains, one after the other, each from the minimized
     * structure with a warm-up of its own; their samples follow one another
     * in ChainResult::samples (equal lengths), so that errors can come from
     * their spread (independentChainsPhiFreeEnergyDifference).
     */
    int chains = 1;
};

/**
 * LatentMetropolisIntegrator at T from the minimized structure (Reference
 * platform), options.chains independent chains. Acceptance rates and the
 * step size are the chains' means; evaluations, seconds and round trips their sums.
 */
ChainResult runLatentMetropolis(const Molecule& molecule, const FlowModel& model, double temperature,
                                const ChainOptions& options, const std::function<void(double)>& progress = nullptr);

/** TSFParallelTemperingIntegrator on `ladder` (Reference platform), as runLatentMetropolis; the samples are those of T_1. */
ChainResult runParallelTempering(const Molecule& molecule, const FlowModel& model, const std::vector<double>& ladder,
                                 const ChainOptions& options, const std::function<void(double)>& progress = nullptr);

/** How many samples a run with `options` records: chains * (steps / chains / interval). */
long long recordedSamples(const ChainOptions& options);

/** Number of sign changes of phi along a series. */
long long phiTransitions(const at::Tensor& phi);

/** The pipeline's settings, per preset (default, long, smoke). */
struct Preset {
    long long mdSteps = 0;   // per temperature (per replica of replica exchange), 1 fs steps
    int mdInterval = 100;    // steps between frames (and exchange rounds)
    long long mdEquilibrationSteps = 20000;  // per replica, before the first frame
    std::vector<double> mdLadder;  // K: the pipeline's replica-exchange MD, from plan.temperature up
    bool trainOnAllRungs = true;   // train on every rung reweighted by MBAR (pooledRungs), else on the lowest
    // K: the temperature pooledRungs reweights the rungs to for training (0:
    // plan.temperature). A little above it, the flow learns a slightly
    // broader distribution, whose weights at plan.temperature are less
    // heavy-tailed (README). Validation stays at plan.temperature.
    double trainingDataTemperature = 0;
    /** K: trainingDataTemperature, or plan.temperature where it is 0. */
    double dataTemperature() const { return trainingDataTemperature > 0 ? trainingDataTemperature : plan.temperature; }
    TrainingPlan plan;
    int flowSamples = 0;
    ChainOptions chain;      // LatentMetropolisIntegrator
    ChainOptions pt;         // TSFParallelTemperingIntegrator
    int replicas = 5;
};

/**
 * The training data of a preset from its replica-exchange rungs (positions and
 * energies, one per rung of preset.mdLadder): pooledRungs if
 * preset.trainOnAllRungs, else heldOutSplit of the lowest rung.
 */
TrainingSet trainingSetOf(const Preset& preset, const std::vector<Samples>& rungs);

/** The replica-exchange MD of a preset: its ladder, steps and frame interval, positions kept. */
ReplicaExchangeOptions replicaExchangeOf(const Preset& preset, int seed);

/** The named preset; std::invalid_argument for an unknown name. */
Preset presetNamed(const std::string& name);

} // namespace alanine
} // namespace OpenMMBG

#endif
