// Benchmark of TSF parallel tempering on alanine dipeptide: dF_phi at 300 K
// with a block-averaged error bar as a function of CPU time, for
//   (1) TSFParallelTemperingIntegrator on a 300 ... 600 K ladder, flow trained
//       at 600 K (its MD data and training counted unless --flow is given),
//   (2) plain MD at 300 K,
//   (3) MD-based parallel tempering (replica-exchange MD) on the same ladder,
// all in the same run. Reports the CPU time each needs to reach a standard
// error of 0.2 kT (extrapolated as 1/sqrt(t) where the budget ends before),
// exchange acceptance per pair and round trips. Both parallel-tempering
// runs also record phi at every rung of the ladder; a closing table compares
// their dF_phi per temperature, a check that both sample the same ensembles
// where phi > 0 is common enough to measure.
//
//   build/bench/tsf_pt [--flow FILE [--training-cpu-s S]] [--pt-steps 40000] [--md-ns 10] [--remd-ns 2]
//                      [--replicas 5] [--independence 0.1] [--platform Reference]
// With --flow, S (cpu_seconds_md600 + cpu_seconds_training from the pipeline's
// summary.json) is added to the TSF figure, as its own training would be.

#include "AlanineFlow.h"
#include "BenchSupport.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/Positions.h"

#include <openmm/Context.h>
#include <openmm/LangevinMiddleIntegrator.h>
#include <openmm/Platform.h>
#include <openmm/State.h>

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace OpenMM;
using namespace OpenMMBG;
using namespace OpenMMBG::bench;

namespace {

const double TARGET_ERROR = 0.2;  // kT

/** dF_phi with its block error after each chunk of a run, against CPU seconds. */
struct Convergence {
    std::string method;
    std::vector<double> cpu, value, error;
    double offset = 0;  // CPU seconds spent before sampling (training)

    void record(double seconds, const std::vector<double>& phi) {
        if (phi.size() < 20)
            return;  // block averaging needs one sample per block at least
        Estimate dF = phiFreeEnergyDifference(at::tensor(phi, at::kDouble), 20);
        cpu.push_back(offset + seconds);
        value.push_back(dF.value);
        error.push_back(dF.error);
        std::printf("  %-28s %8.0f CPU s  dF_phi %7.3f +- %.3f kT\n", method.c_str(), offset + seconds, dF.value,
                    dF.error);
        std::fflush(stdout);
    }

    /** CPU seconds to reach TARGET_ERROR, and whether that was extrapolated. */
    std::pair<double, bool> timeToTarget() const {
        for (size_t i = 0; i < cpu.size(); i++)
            if (std::isfinite(error[i]) && error[i] > 0 && error[i] <= TARGET_ERROR)
                return {cpu[i], false};
        for (size_t i = cpu.size(); i-- > 0;)
            if (std::isfinite(error[i]) && error[i] > 0) {
                double sampling = cpu[i] - offset;
                return {offset + sampling * std::pow(error[i] / TARGET_ERROR, 2), true};
            }
        return {INFINITY, true};
    }
};

/** phi (rad) of the configuration at every rung of a ladder, one series per temperature. */
using LadderSeries = std::vector<std::vector<double>>;

double phiOf(const alanine::Molecule& molecule, const std::vector<Vec3>& positions);

/** dF_phi per temperature from both parallel-tempering runs, with the difference in error bars. */
void compareLadders(const std::vector<double>& ladder, const LadderSeries& tsf, const LadderSeries& remd) {
    std::printf("\ndF_phi per temperature from both parallel-tempering runs (kT)\n\n");
    std::printf("%8s %18s %18s %12s\n", "T (K)", "TSF PT", "MD PT", "|diff|/err");
    for (size_t r = 0; r < ladder.size(); r++) {
        // A run too short for block averages (or left out) shows as nan.
        auto estimate = [](const std::vector<double>& phi) {
            return phi.size() < 20 ? Estimate{NAN, NAN} : phiFreeEnergyDifference(at::tensor(phi, at::kDouble), 20);
        };
        Estimate a = estimate(tsf[r]), b = estimate(remd[r]);
        double z = std::abs(a.value - b.value) / std::sqrt(a.error * a.error + b.error * b.error);
        std::printf("%8.1f %9.3f +- %5.3f %9.3f +- %5.3f %12s\n", ladder[r], a.value, a.error, b.value, b.error,
                    std::isfinite(z) ? std::to_string(z).substr(0, 5).c_str() : "-");
    }
}

double phiOf(const alanine::Molecule& molecule, const std::vector<Vec3>& positions) {
    return dihedralAngles(positionsToTensor(positions), molecule.dihedrals.phi).item<double>();
}

} // namespace

int main(int argc, char** argv) {
    std::string flowPath;
    long long ptSteps = 40000;
    double mdNs = 10, remdNs = 2;
    int replicas = 5;
    double independence = 0.1;  // probability of an independence proposal per flow move
    std::string platform = "Reference";  // of the TSF parallel tempering run
    double trainingCpuSeconds = -1;  // of a loaded flow: MD data + training (the pipeline's summary has both)
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--flow"))
            flowPath = argv[i + 1];
        else if (!strcmp(argv[i], "--pt-steps"))
            ptSteps = std::stoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--md-ns"))
            mdNs = std::stod(argv[i + 1]);
        else if (!strcmp(argv[i], "--remd-ns"))
            remdNs = std::stod(argv[i + 1]);
        else if (!strcmp(argv[i], "--replicas"))
            replicas = std::stoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--independence"))
            independence = std::stod(argv[i + 1]);
        else if (!strcmp(argv[i], "--platform"))
            platform = argv[i + 1];
        else if (!strcmp(argv[i], "--training-cpu-s"))
            trainingCpuSeconds = std::stod(argv[i + 1]);
    }
    loadPlugins();
    alanine::Molecule molecule = alanine::loadMolecule(BG_DATA_DIR);
    const std::vector<double> ladder = TSFParallelTemperingIntegrator::geometricLadder(300.0, 600.0, replicas);
    std::vector<Convergence> runs;

    // (1) TSF parallel tempering.
    std::printf("== TSF parallel tempering, %d replicas 300 ... 600 K, %s platform\n", replicas, platform.c_str());
    TrainedFlow flow = trainedFlow(molecule, flowPath);
    LadderSeries tsfLadder(replicas), remdLadder(replicas);
    {
        Convergence run;
        run.method = "TSF parallel tempering";
        run.offset = flow.cpuSeconds > 0 ? flow.cpuSeconds : std::max(0.0, trainingCpuSeconds);
        TSFParallelTemperingIntegrator integrator(*flow.model, ladder, 0.05, independence);
        integrator.setRandomNumberSeed(7);
        Context context(*molecule.system, integrator, Platform::getPlatformByName(platform));
        context.setPositions(molecule.structure.positions);
        double start = cpuSeconds();
        integrator.warmUp(1000);
        std::vector<double> phi;
        const long long chunk = ptSteps / 10;
        for (long long s = 0; s < ptSteps; s += 10) {
            integrator.step(10);
            for (int r = 0; r < replicas; r++)
                tsfLadder[r].push_back(phiOf(molecule, integrator.getReplicaPositions(r)));
            phi.push_back(tsfLadder[0].back());
            if ((s + 10) % chunk == 0)
                run.record(cpuSeconds() - start, phi);
        }
        std::printf("  exchange acceptance per pair:");
        for (int p = 0; p + 1 < replicas; p++)
            std::printf(" %.3f", integrator.getExchangeAcceptanceRate(p));
        std::printf("\n  round trips: %lld in %lld steps (%.2f per 1000 steps)\n", integrator.getNumRoundTrips(), ptSteps,
                    1000.0 * integrator.getNumRoundTrips() / ptSteps);
        std::printf("  move acceptance per replica (random walk / independence):");
        for (int r = 0; r < replicas; r++)
            std::printf(" %.3f/%.4f", integrator.getMoveStatistics(r).acceptanceRate(MoveKind::RandomWalk),
                        integrator.getMoveStatistics(r).acceptanceRate(MoveKind::Independence));
        std::printf("\n");
        runs.push_back(run);
    }

    // (2) Plain MD at 300 K: phi every ps.
    std::printf("== plain MD at 300 K, %.1f ns\n", mdNs);
    {
        Convergence run;
        run.method = "MD 300 K";
        LangevinMiddleIntegrator integrator(300.0, 1.0, 0.001);
        integrator.setRandomNumberSeed(8);
        Context context(*molecule.system, integrator, Platform::getPlatformByName("Reference"));
        context.setPositions(molecule.structure.positions);
        context.setVelocitiesToTemperature(300.0, 8);
        integrator.step(20000);
        double start = cpuSeconds();
        std::vector<double> phi;
        const long long frames = (long long) (mdNs * 1000);
        for (long long f = 0; f < frames; f++) {
            integrator.step(1000);
            State state = context.getState(State::Positions);
            phi.push_back(phiOf(molecule, state.getPositions()));
            if ((f + 1) % std::max(1LL, frames / 10) == 0)
                run.record(cpuSeconds() - start, phi);
        }
        runs.push_back(run);
    }

    // (3) Replica-exchange MD on the same ladder: exchanges every ps, T_1 phi every ps.
    std::printf("== MD-based parallel tempering, %d replicas, %.1f ns each\n", replicas, remdNs);
    {
        Convergence run;
        run.method = "MD parallel tempering";
        alanine::ReplicaExchangeOptions options;
        options.temperatures = ladder;
        options.steps = (long long) (remdNs * 1e6);  // 1 fs steps; exchanges and frames every ps
        options.seed = 9;
        alanine::ReplicaExchangeResult result = alanine::runReplicaExchangeMD(molecule, options);
        for (int r = 0; r < replicas; r++) {
            const at::Tensor& phi = result.rungs[r].phi;
            remdLadder[r].assign(phi.data_ptr<double>(), phi.data_ptr<double>() + phi.numel());
        }
        // MD costs the same per frame: the CPU time of each tenth is a tenth of the run's.
        const size_t frames = remdLadder[0].size();
        for (int tenth = 1; tenth <= 10; tenth++) {
            const size_t upTo = frames * tenth / 10;
            run.record(result.cpuSeconds * tenth / 10,
                       std::vector<double>(remdLadder[0].begin(), remdLadder[0].begin() + upTo));
        }
        std::printf("  exchange acceptance per pair:");
        for (double a : result.exchangeAcceptance)
            std::printf(" %.3f", a);
        std::printf("\n  round trips: %lld in %.1f ns per replica\n", result.roundTrips, remdNs);
        runs.push_back(run);
    }

    compareLadders(ladder, tsfLadder, remdLadder);

    std::printf("\nCPU time to a standard error of %.1f kT in dF_phi at 300 K (one run; ~ marks 1/sqrt(t) extrapolation)\n\n",
                TARGET_ERROR);
    std::printf("%-28s %10s %18s %14s\n", "method", "final dF", "CPU s to 0.2 kT", "vs plain MD");
    double md = runs[1].timeToTarget().first;
    for (const Convergence& run : runs) {
        auto [seconds, extrapolated] = run.timeToTarget();
        if (!std::isfinite(seconds)) {
            // No sample with phi > 0 at 300 K (or none with phi < 0): no estimate, no error bar to extrapolate.
            std::printf("%-28s %10s %18s %14s   (phi > 0 never sampled at 300 K in %.0f CPU s)\n", run.method.c_str(),
                        "-", "not reached", "-", run.cpu.empty() ? run.offset : run.cpu.back());
            continue;
        }
        std::printf("%-28s %6.2f+-%.2f %16.0f%s %13s", run.method.c_str(), run.value.back(), run.error.back(),
                    seconds, extrapolated ? "~" : " ",
                    std::isfinite(md) ? (std::to_string(md / seconds).substr(0, 6) + "x").c_str() : "MD: none");
        // A block error only covers what a run visited: a run that missed a
        // basin shows a small error bar around a wrong value. Flag estimates
        // that the other methods contradict.
        for (const Convergence& other : runs) {
            if (&other == &run || other.value.empty() || !std::isfinite(other.error.back()))
                continue;
            double z = std::abs(run.value.back() - other.value.back())
                       / std::hypot(run.error.back(), other.error.back());
            if (z > 3)
                std::printf("   (%.1f error bars from %s: not converged?)", z, other.method.c_str());
        }
        std::printf("\n");
    }
    if (flow.cpuSeconds == 0 && trainingCpuSeconds < 0)
        std::printf("\n(the flow was loaded from %s: its training is not in the TSF figure; pass --training-cpu-s)\n",
                    flowPath.c_str());
    else if (flow.cpuSeconds == 0)
        std::printf("\n(the TSF figure includes %.0f CPU s of MD data and training, given by --training-cpu-s)\n",
                    trainingCpuSeconds);
    return 0;
}
