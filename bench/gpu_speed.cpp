// Benchmark of the GPU paths on alanine dipeptide, each against its CPU
// counterpart in the same run:
//   (1) LatentMetropolisIntegrator moves per second and
//       TSFParallelTemperingIntegrator steps per second on the Reference,
//       CPU and CUDA platforms;
//   (2) one batched flow call for all parallel-tempering replicas against
//       one call per replica, with the flow on the CPU and on the GPU;
//   (3) FlowTrainer steps per second, maximum likelihood and mixed
//       (lambda 0.5, energies from the CPU energy bridge), at two batch sizes,
//       the flow on the GPU against the flow on one CPU thread.
// Parts that need CUDA (an OpenMM CUDA platform, a LibTorch with CUDA, a GPU)
// say why they are skipped.
//
//   build/bench/gpu_speed --flow FILE [--moves 2000] [--pt-steps 200] [--replicas 8]
//                         [--train-steps 10] [--batches 256,4096] [--platforms Reference,CPU,CUDA]
//                         [--flow-types spline,tsf]
// --moves 0 or --train-steps 0 leaves part (1) or (3) out.
// FILE: a flow of the pipeline (results/alanine_dipeptide/flow.bgflow).

#include "AlanineDipeptide.h"
#include "BenchSupport.h"
#include "openmmbg/ComputeSettings.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/Positions.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <openmm/Context.h>
#include <openmm/Platform.h>
#include <openmm/State.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <sstream>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::bench;

namespace {

/** Why the flow-move kernels cannot run on OpenMM's CUDA platform here, or "" if they can. */
std::string cudaPlatformMissing() {
    const std::string missing = cudaContextUnavailable();
    if (!missing.empty())
        return missing;
    return at::hasCUDA() ? "" : "this LibTorch has no CUDA or sees no GPU";
}

/** Waits for the GPU's queued work, so that a timer read after it counts that work. */
void synchronize(const at::Device& device) {
    if (device.is_cuda())
        at::zeros({1}, at::TensorOptions().device(device)).item<double>();
}

/**
 * Where the chains start: the flow sample of median importance weight among
 * 1000, a typical state, so that the acceptance printed is the chain's usual
 * one and not that of a start far from typical (the minimized structure).
 */
std::vector<Vec3> typicalStart(const alanine::Molecule& molecule, const FlowModel& model, double temperature) {
    const alanine::Samples samples = alanine::sampleFlow(molecule, model, temperature, 1000, 9);
    const at::Tensor finite = at::isfinite(samples.logWeight).nonzero().reshape({-1});
    const at::Tensor order = samples.logWeight.index_select(0, finite).argsort();
    const int64_t median = finite[order[order.size(0) / 2]].item<int64_t>();
    std::vector<Vec3> positions;
    tensorToPositions(samples.x[median], positions);
    return positions;
}

/**
 * Moves per second of `integrator` (after `warmUp` moves) in a Context on
 * `platform`, started at `start`; `statistic` is read while the Context
 * exists (the integrator's statistics go with it).
 */
template <class Integrator>
std::pair<double, double> stepsPerSecond(const alanine::Molecule& molecule, Integrator& integrator,
                                         const std::string& platform, const std::vector<Vec3>& start, int steps,
                                         int warmUp, const std::function<double()>& statistic) {
    Context context(*molecule.system, integrator, Platform::getPlatformByName(platform));
    context.setPositions(start);
    integrator.step(warmUp);
    const double rate = bestRate(1, steps, [&] {
        integrator.step(steps);
        context.getState(State::Energy);  // waits for the platform's queued work
    });
    return {rate, statistic()};
}

/**
 * One row of part (1): `measure` makes the integrator, runs it on `platform`
 * and returns its rate and the statistic named by `statisticLabel`; the ratio
 * is against the row's first platform (`reference`, set by the first success).
 */
void printMoveRow(const std::string& name, const std::string& platform, const std::string& statisticLabel,
                  double& reference, const std::function<std::pair<double, double>()>& measure) {
    try {
        const auto [rate, statistic] = measure();
        if (reference == 0)
            reference = rate;
        std::printf("%-58s %-10s %12.1f %8.2f   (%s %.4f)\n", name.c_str(), platform.c_str(), rate, rate / reference,
                    statisticLabel.c_str(), statistic);
    } catch (const std::exception& e) {
        std::printf("%-58s %-10s FAILED: %s\n", name.c_str(), platform.c_str(), e.what());
    }
    std::fflush(stdout);
}

void benchmarkMoves(const alanine::Molecule& molecule, const FlowModel& model,
                    const std::vector<std::string>& platforms, int moves, int ptSteps, int replicas) {
    const double temperature = 300.0;
    std::printf("\n(1) flow moves on alanine dipeptide, %.0f K; ratios against the Reference platform\n\n",
                temperature);
    const std::vector<Vec3> start = typicalStart(molecule, model, temperature);
    std::printf("%-58s %-10s %12s %8s\n", "", "platform", "per second", "ratio");
    for (int blockSize : {1, 64}) {
        const std::string name =
            "LatentMetropolisIntegrator, independence moves, blocks of " + std::to_string(blockSize);
        double reference = 0;
        for (const std::string& platform : platforms)
            printMoveRow(name, platform, "acceptance", reference, [&] {
                LatentMetropolisIntegrator integrator(model, temperature, 0.0, 1.0);
                integrator.setRandomNumberSeed(3);
                integrator.setIndependenceBlockSize(blockSize);
                return stepsPerSecond(molecule, integrator, platform, start, moves, std::min(moves, 200),
                                      [&] { return integrator.getAcceptanceRate(MoveKind::Independence); });
            });
    }
    const std::vector<double> ladder = TSFParallelTemperingIntegrator::geometricLadder(300.0, 600.0, replicas);
    const std::string name = "TSFParallelTemperingIntegrator, " + std::to_string(replicas) + " replicas, steps";
    double reference = 0;
    for (const std::string& platform : platforms)
        printMoveRow(name, platform, "exchange acceptance 300 K pair", reference, [&] {
            TSFParallelTemperingIntegrator integrator(model, ladder, 0.05, 0.1);
            integrator.setRandomNumberSeed(4);
            return stepsPerSecond(molecule, integrator, platform, start, ptSteps, std::min(ptSteps, 20),
                                  [&] { return integrator.getExchangeAcceptanceRate(0); });
        });
}

void benchmarkReplicaBatch(const FlowModel& cpuModel, const std::vector<at::Device>& devices, int replicas) {
    std::printf("\n(2) decoding one latent per replica (%d replicas): one batched flow call against one call per "
                "replica\n\n", replicas);
    std::printf("%-8s %18s %18s %8s\n", "device", "batched calls/s", "per-replica sets/s", "ratio");
    at::NoGradGuard noGrad;
    for (const at::Device& device : devices) {
        const FlowModel model = device.is_cpu() ? cpuModel : cpuModel.to(device);
        at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(5);
        const at::Tensor latent = model.drawLatent(replicas, 300.0, generator).to(device);
        const int calls = device.is_cpu() ? 50 : 100;
        auto batched = [&] {
            for (int i = 0; i < calls; i++)
                model.decode(latent, 300.0);
            synchronize(device);
        };
        auto oneByOne = [&] {
            for (int i = 0; i < calls; i++)
                for (int r = 0; r < replicas; r++)
                    model.decode(latent.narrow(0, r, 1), 300.0);
            synchronize(device);
        };
        batched();  // warm-up (kernels, allocator)
        const double batchedRate = bestRate(3, calls, batched), oneByOneRate = bestRate(3, calls, oneByOne);
        std::printf("%-8s %18.1f %18.1f %8.2f\n", device.str().c_str(), batchedRate, oneByOneRate,
                    batchedRate / oneByOneRate);
        std::fflush(stdout);
    }
}

void benchmarkTraining(const alanine::Molecule& molecule, const FlowModel& sampler,
                       const std::vector<at::Device>& devices, int steps, const std::vector<int>& batches,
                       const std::vector<std::string>& flowTypes) {
    alanine::TrainingPlan plan = alanine::presetNamed("default").plan;
    std::printf("\n(3) FlowTrainer steps per second, new flows of the pipeline's architecture; data: 20000 samples of "
                "the given flow; KL energies from the CPU energy bridge; ratio against the flow on 1 CPU thread\n\n");
    at::Tensor frames;
    {
        at::NoGradGuard noGrad;
        at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(6);
        frames = sampler.sample(20000, plan.temperature, generator).x;
    }
    OpenMMEnergy::Options bridgeOptions;
    bridgeOptions.energyCut = plan.energyCut;
    auto bridge = std::make_shared<OpenMMEnergy>(*molecule.system, plan.temperature, bridgeOptions);
    std::printf("%-7s %-8s %-7s %6s %12s %8s\n", "flow", "loss", "device", "batch", "steps/s", "ratio");
    for (const std::string& flowType : flowTypes) {
        plan.flowType = flowType;
        for (const double lambda : {0.0, 0.5}) {
            for (int batch : batches) {
                double cpuRate = 0;
                for (const at::Device& device : devices) {
                    FlowModel model = FlowModel::createForMolecule(*molecule.system, frames, plan.flowType, plan.flow,
                                                                   plan.temperature);
                    if (!device.is_cpu())
                        model = model.to(device);
                    TrainerOptions options;
                    options.numThreads = 1;
                    options.logInterval = 1000000;
                    FlowTrainer trainer(model, options);
                    trainer.setData(frames, plan.temperature);
                    trainer.setEnergy(bridge);
                    TrainingStage stage;
                    stage.batchSize = batch;
                    stage.lambdaStart = stage.lambdaEnd = lambda;
                    stage.steps = 3;
                    stage.name = "warm-up";
                    trainer.train(stage);
                    stage.steps = steps;
                    stage.name = "timed";
                    const double rate = steps / trainer.train(stage).seconds;
                    if (device.is_cpu())
                        cpuRate = rate;
                    std::printf("%-7s %-8s %-7s %6d %12.2f %8.2f\n", flowType.c_str(),
                                lambda == 0 ? "ML" : "mixed", device.str().c_str(), batch, rate,
                                cpuRate > 0 ? rate / cpuRate : NAN);
                    std::fflush(stdout);
                }
            }
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string flowPath;
    int moves = 2000, ptSteps = 200, replicas = 8, trainSteps = 10;
    std::vector<int> batches = {256, 4096};
    std::string platformNames = "Reference,CPU,CUDA";  // of part (1); CUDA is left out where it cannot run
    std::vector<std::string> flowTypes = {"spline", "tsf"};  // of part (3)
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--flow"))
            flowPath = argv[i + 1];
        else if (!strcmp(argv[i], "--moves"))
            moves = std::stoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pt-steps"))
            ptSteps = std::stoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--replicas"))
            replicas = std::stoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--train-steps"))
            trainSteps = std::stoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batches"))
            batches = parseList(argv[i + 1]);
        else if (!strcmp(argv[i], "--platforms"))
            platformNames = argv[i + 1];
        else if (!strcmp(argv[i], "--flow-types"))
            flowTypes = parseNames(argv[i + 1]);
    }
    if (flowPath.empty()) {
        std::fprintf(stderr, "gpu_speed: --flow FILE is required (e.g. results/alanine_dipeptide/flow.bgflow)\n");
        return 2;
    }
    try {
        // LibTorch on one thread, as the pipeline's chains and training use it: on many cores its default
        // thread pool makes the small tensors of single moves many times slower.
        setComputeThreads(1);
        loadPlugins();
        alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
        const FlowModel model = FlowModel::load(flowPath, *molecule.system);
        std::printf("flow: %s (%s)\n", flowPath.c_str(), model.getFlow().getTypeName().c_str());

        std::vector<std::string> platforms = parseNames(platformNames);
        std::vector<at::Device> devices = {at::Device(at::kCPU)};
        const std::string missing = cudaPlatformMissing();
        if (missing.empty()) {
            devices.push_back(at::Device(at::kCUDA, 0));
        } else {
            std::printf("CUDA parts skipped: %s\n", missing.c_str());
            platforms.erase(std::remove(platforms.begin(), platforms.end(), "CUDA"), platforms.end());
        }
        if (moves > 0)
            benchmarkMoves(molecule, model, platforms, moves, ptSteps, replicas);
        benchmarkReplicaBatch(model, devices, replicas);
        if (trainSteps > 0)
            benchmarkTraining(molecule, model, devices, trainSteps, batches, flowTypes);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gpu_speed: %s\n", e.what());
        return 1;
    }
    return 0;
}
