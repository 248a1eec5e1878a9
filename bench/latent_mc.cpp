// Benchmark of LatentMetropolisIntegrator on alanine dipeptide at 300 K:
// moves per second, and phi-sign transitions per 1000 energy evaluations
// against LangevinMiddleIntegrator MD (1 fs steps), in the same run; then
// the cost of an independence move, one proposal per flow call against
// blocks of 64, next to the cost of one energy evaluation.
//
//   build/bench/latent_mc [--flow results/alanine_dipeptide/flow.bgflow] [--moves 40000] [--md-steps 4000000]
//                         [--independence-moves 4000]

#include "AlanineFlow.h"
#include "BenchSupport.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/Positions.h"

#include <openmm/Context.h>
#include <openmm/LangevinMiddleIntegrator.h>
#include <openmm/Platform.h>
#include <openmm/State.h>

#include <chrono>
#include <cstring>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::bench;

namespace {

/**
 * Independence moves only (latent step 0), in one step() call, on the
 * Reference platform, for proposals drawn one per flow call and in blocks;
 * and potential energies of the same Context alone, the floor of a move's cost.
 */
void printIndependenceMoveCost(const alanine::Molecule& molecule, const FlowModel& model, double temperature,
                               int moves) {
    if (moves <= 0)
        return;
    std::printf("\nindependence moves at %.0f K, %d per step() call, Reference platform, 1 thread\n\n", temperature,
                moves);
    std::printf("%-40s %12s %14s\n", "", "per second", "vs energies");
    double energiesPerSecond = 0, oneByOne = 0;
    for (int blockSize : {0, 1, 64}) {
        LatentMetropolisIntegrator integrator(model, temperature, 0.0, 1.0);
        integrator.setRandomNumberSeed(8);
        integrator.setIndependenceBlockSize(std::max(blockSize, 1));
        Context context(*molecule.system, integrator, Platform::getPlatformByName("Reference"));
        context.setPositions(molecule.structure.positions);
        auto begin = std::chrono::steady_clock::now();
        if (blockSize == 0) {
            for (int i = 0; i < moves; i++)
                context.getState(State::Energy);
        } else {
            integrator.step(moves);
        }
        const double rate = moves / std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
        if (blockSize == 0) {
            energiesPerSecond = rate;
            std::printf("%-40s %12.0f %14s\n", "potential energies (Context::getState)", rate, "1.00");
            continue;
        }
        if (blockSize == 1)
            oneByOne = rate;
        const std::string name = blockSize == 1 ? "moves, one proposal per flow call" : "moves, blocks of 64 proposals";
        std::printf("%-40s %12.0f %14.2f   (acceptance %.4f)\n", name.c_str(), rate, rate / energiesPerSecond,
                    integrator.getAcceptanceRate(MoveKind::Independence));
        if (blockSize > 1)
            std::printf("\nblocks of %d against one proposal per flow call: %.1fx the moves per second\n", blockSize,
                        rate / oneByOne);
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string flowPath = std::string(BG_SOURCE_DIR) + "/results/alanine_dipeptide/flow.bgflow";
    long long moves = 40000, mdSteps = 4000000;
    int independenceMoves = 4000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--flow"))
            flowPath = argv[i + 1];
        else if (!strcmp(argv[i], "--moves"))
            moves = std::stoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--md-steps"))
            mdSteps = std::stoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--independence-moves"))
            independenceMoves = std::stoi(argv[i + 1]);
    }
    loadPlugins();
    alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    TrainedFlow flow = trainedFlow(molecule, flowPath);
    const double temperature = 300.0;

    // The flow moves: phi recorded every 10 moves.
    alanine::ChainOptions chain;
    chain.steps = moves;
    chain.interval = 10;
    chain.seed = 5;
    alanine::ChainResult mc = alanine::runLatentMetropolis(molecule, *flow.model, temperature, chain);
    long long mcTransitions = alanine::phiTransitions(mc.samples.phi);

    // MD: phi recorded every 10 steps, each step one energy evaluation.
    LangevinMiddleIntegrator integrator(temperature, 1.0, 0.001);
    integrator.setRandomNumberSeed(6);
    Context context(*molecule.system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(molecule.structure.positions);
    context.setVelocitiesToTemperature(temperature, 6);
    integrator.step(20000);
    std::vector<double> phi;
    auto begin = std::chrono::steady_clock::now();
    for (long long s = 0; s < mdSteps; s += 10) {
        integrator.step(10);
        State state = context.getState(State::Positions);
        phi.push_back(dihedralAngles(positionsToTensor(state.getPositions()), molecule.dihedrals.phi).item<double>());
    }
    double mdSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    long long mdTransitions = alanine::phiTransitions(at::tensor(phi, at::kDouble));

    double mcPer1000 = 1000.0 * mcTransitions / (double) mc.energyEvaluations;
    double mdPer1000 = 1000.0 * mdTransitions / (double) mdSteps;
    std::printf("\nalanine dipeptide at %.0f K (phi recorded every 10 moves / steps)\n\n", temperature);
    std::printf("%-34s %12s %10s %14s %12s %16s\n", "method", "energy evals", "wall s", "evals or moves/s",
                "phi flips", "flips/1000 evals");
    std::printf("%-34s %12lld %10.1f %14.0f %12lld %16.4f\n", "LangevinMiddle MD, 1 fs", mdSteps, mdSeconds,
                mdSteps / mdSeconds, mdTransitions, mdPer1000);
    std::printf("%-34s %12lld %10.1f %14.0f %12lld %16.4f\n", "LatentMetropolisIntegrator", mc.energyEvaluations,
                mc.seconds, moves / mc.seconds, mcTransitions, mcPer1000);
    std::printf("\nflow moves: random-walk acceptance %.3f (sigma %.4f after warm-up), independence acceptance %.4f\n",
                mc.acceptance[0], mc.latentStepSize, mc.independence[0]);
    if (mdTransitions > 0)
        std::printf("phi flips per 1000 energy evaluations, flow moves vs MD: %.1fx\n", mcPer1000 / mdPer1000);
    else
        std::printf("MD made no phi flip in %lld steps: the ratio is at least %.1fx\n", mdSteps,
                    mcPer1000 / (1000.0 / (double) mdSteps));
    printIndependenceMoveCost(molecule, *flow.model, temperature, independenceMoves);
    return 0;
}
