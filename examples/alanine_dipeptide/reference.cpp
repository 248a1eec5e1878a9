// The converged reference for alanine dipeptide: free energies of the phi > 0
// side and of the three basins, by one of two methods:
//   remd     (default) independent replica-exchange MD runs on a temperature
//            ladder, every rung of every run pooled by MBAR (docs/math.md,
//            "Reweighting between temperatures"): estimates at 300 K, 600 K
//            and every rung;
//   umbrella independent umbrella-sampling runs along phi at each of
//            --temperatures: harmonic restraints on phi (periodic) centred on
//            --windows equally spaced angles, the windows visited one after
//            the other from the minimized structure (even runs towards larger
//            phi, odd runs towards smaller), every window of a run pooled by
//            MBAR (docs/math.md, "Umbrella sampling"). The restraint carries
//            every window over the phi barriers, so the rare alpha_L side is
//            sampled as well as the rest.
// Errors: a block bootstrap over all runs, and the spread of the runs' own
// estimates; the larger is quoted, and estimates whose runs disagree beyond
// the bootstrap are flagged.
//
//   alanine_dipeptide_reference [--method remd|umbrella] [--runs 4] [--ns 5] [--run I] [--output DIR] [--data DIR]
//       remd:     [--replicas 6] [--lowest 300] [--highest 700]
//       umbrella: [--windows 24] [--force-constant 150] [--temperatures 300,600]
// --ns is per replica (remd) or per window (umbrella). Each run writes its
// files (run_I.csv; umbrella: run_I_<T>K.csv per temperature) when it
// finishes and is skipped by a rerun; --run I does only run I (start several
// processes to use several cores), and a call without --run runs what is
// missing, then writes DIR/summary.txt and DIR/summary.json.

#include "AlanineDipeptide.h"

#include "openmmbg/Positions.h"
#include "openmmbg/ReplicaExchange.h"
#include "openmmbg/tools/Reweighting.h"

#include <ATen/ATen.h>
#include <openmm/Context.h>
#include <openmm/CustomTorsionForce.h>
#include <openmm/LangevinMiddleIntegrator.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/State.h>
#include <openmm/serialization/XmlSerializer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iomanip>
#include <sstream>
#include <sys/stat.h>

using namespace OpenMMBG;
using namespace OpenMMBG::alanine;

namespace {

struct Options {
    std::string method = "remd";
    int runs = 4, replicas = 6, onlyRun = -1;
    double ns = 5, lowest = 300, highest = 700;
    int windows = 24;
    double forceConstant = 150;                    // kJ/mol/rad^2
    std::vector<double> temperatures = {300, 600};  // K (umbrella)
    std::string output = "reference", data = BG_DATA_DIR;

    bool umbrella() const { return method == "umbrella"; }
    /** The states sampled side by side: rungs or windows. */
    int states() const { return umbrella() ? windows : replicas; }
    /** Window k's restraint centre (rad): equally spaced over [-pi, pi). */
    double centre(int k) const { return -M_PI + 2 * M_PI * k / windows; }
    std::vector<double> centres() const {
        std::vector<double> c;
        for (int k = 0; k < windows; k++)
            c.push_back(centre(k));
        return c;
    }
    /** The temperatures each run samples at: one per file. remd: the ladder's lowest (one file for all rungs). */
    std::vector<double> runTemperatures() const { return umbrella() ? temperatures : std::vector<double>{lowest}; }
};

std::vector<double> parseList(const std::string& text) {
    std::vector<double> values;
    std::istringstream items(text);
    for (std::string item; std::getline(items, item, ',');)
        values.push_back(std::stod(item));
    return values;
}

Options parse(int argc, char** argv) {
    Options o;
    forEachOption(argc, argv, [&](const std::string& key, const std::function<std::string()>& next) {
        const std::string value = next();
        try {
            if (key == "--method") o.method = value;
            else if (key == "--runs") o.runs = std::stoi(value);
            else if (key == "--windows") o.windows = std::stoi(value);
            else if (key == "--force-constant") o.forceConstant = std::stod(value);
            else if (key == "--temperatures") o.temperatures = parseList(value);
            else if (key == "--ns") o.ns = std::stod(value);
            else if (key == "--replicas") o.replicas = std::stoi(value);
            else if (key == "--lowest") o.lowest = std::stod(value);
            else if (key == "--highest") o.highest = std::stod(value);
            else if (key == "--run") o.onlyRun = std::stoi(value);
            else if (key == "--output") o.output = value;
            else if (key == "--data") o.data = value;
            else throw UsageError("unknown option " + key);
        } catch (const std::logic_error&) {
            throw UsageError("option " + key + " needs a number, not '" + value + "'");
        }
    });
    if (o.method != "remd" && o.method != "umbrella")
        throw UsageError("--method must be remd or umbrella, got '" + o.method + "'");
    if (o.runs < 1 || o.replicas < 2 || !(o.ns > 0) || !(o.lowest > 0) || !(o.highest > o.lowest))
        throw UsageError("need --runs >= 1, --replicas >= 2, --ns > 0 and 0 < --lowest < --highest");
    if (o.windows < 2 || !(o.forceConstant > 0) || !std::isfinite(o.forceConstant) || o.temperatures.empty())
        throw UsageError("need --windows >= 2, --force-constant > 0 and at least one temperature");
    for (double t : o.temperatures)
        if (!(t > 0) || !std::isfinite(t))
            throw UsageError("--temperatures must be positive, got " + std::to_string(t));
    if (o.onlyRun >= o.runs || (o.onlyRun < 0 && o.onlyRun != -1))
        throw UsageError("--run must be one of 0 ... " + std::to_string(o.runs - 1));
    return o;
}

/** The first line of a run file: the settings it was made with. */
std::string settingsLine(const Options& o, int run, double temperature) {
    std::ostringstream s;
    if (o.umbrella())
        s << "# alanine dipeptide umbrella sampling on phi: run " << run << ", " << temperature << " K, " << o.windows
          << " windows, " << o.forceConstant << " kJ/mol/rad^2, " << o.ns << " ns each";
    else
        s << "# alanine dipeptide replica-exchange MD: run " << run << ", " << o.replicas << " replicas " << o.lowest
          << " ... " << o.highest << " K, " << o.ns << " ns each";
    return s.str();
}

std::string runPath(const Options& o, int run, double temperature) {
    const std::string base = o.output + "/run_" + std::to_string(run);
    return o.umbrella() ? base + "_" + std::to_string(std::lround(temperature)) + "K.csv" : base + ".csv";
}

/** What a run leaves for the analysis: one frame of every state per row, and statistics for the text summary. */
struct RunRecord {
    std::vector<Samples> states;  // per rung or window: energy (kJ/mol, unbiased), phi, psi
    std::string statistics;       // one line
    double cpuSeconds = 0;
};

void writeRun(const Options& o, int run, double temperature, const RunRecord& record) {
    std::ostringstream out;
    out.precision(10);
    out << settingsLine(o, run, temperature) << "\n# statistics " << record.statistics << "\n# cpu_seconds "
        << record.cpuSeconds << "\n";
    for (int k = 0; k < o.states(); k++)
        out << (k ? "," : "") << "energy_" << k << ",phi_" << k << ",psi_" << k;
    out << "\n";
    const int64_t frames = record.states[0].phi.size(0);
    for (int64_t f = 0; f < frames; f++) {
        for (int k = 0; k < o.states(); k++)
            out << (k ? "," : "") << record.states[k].energy[f].item<double>() << ","
                << record.states[k].phi[f].item<double>() << "," << record.states[k].psi[f].item<double>();
        out << "\n";
    }
    writeAtomically(runPath(o, run, temperature), out.str());
}

void runReplicaExchange(const Molecule& molecule, const Options& o, int run) {
    ReplicaExchangeOptions md;
    md.temperatures = ReplicaExchange::geometricLadder(o.lowest, o.highest, o.replicas);
    md.steps = (long long) std::llround(o.ns * 1e6);  // 1 fs steps
    md.interval = 1000;                               // exchanges and frames every ps
    md.seed = 100 + run;
    std::printf("run %d: %d replicas, %.1f ns each\n", run, o.replicas, o.ns);
    std::fflush(stdout);
    ReplicaExchangeResult result = runReplicaExchangeMD(molecule, md, [run](double fraction) {
        std::printf("  run %d %3.0f%%\n", run, 100 * fraction);
        std::fflush(stdout);
    });
    RunRecord record{result.rungs, "exchange acceptance", result.cpuSeconds};
    for (double a : result.exchangeAcceptance)
        record.statistics += " " + std::to_string(a);
    record.statistics += "; " + std::to_string(result.roundTrips) + " round trips";
    writeRun(o, run, o.lowest, record);
    std::printf("run %d done: %.0f CPU s, %lld round trips\n", run, result.cpuSeconds, result.roundTrips);
}

/**
 * One umbrella-sampling run at `temperature`: LangevinMiddleIntegrator (1 fs,
 * 1/ps, Reference platform) with a CustomTorsionForce on phi, its centre
 * moved from window to window in one Context, so that each window starts
 * from the last configuration of its neighbour; 20 ps of equilibration per
 * window, then a frame every ps.
 */
void runUmbrella(const Molecule& molecule, const Options& o, int run, double temperature) {
    const int restraintGroup = 31;  // the System's own forces are in group 0
    std::unique_ptr<OpenMM::System> system(OpenMM::XmlSerializer::clone<OpenMM::System>(*molecule.system));
    auto* restraint = new OpenMM::CustomTorsionForce(
        "0.5*umbrella_k*d^2; d = min(a, 2*pi - a); a = abs(theta - umbrella_centre); pi = 3.141592653589793");
    restraint->addGlobalParameter("umbrella_k", o.forceConstant);
    restraint->addGlobalParameter("umbrella_centre", 0);
    const std::array<int, 4>& phi = molecule.dihedrals.phi;
    restraint->addTorsion(phi[0], phi[1], phi[2], phi[3]);
    restraint->setForceGroup(restraintGroup);
    system->addForce(restraint);
    const int seed = 200 + 10 * run + (int) std::lround(temperature / 100);
    OpenMM::LangevinMiddleIntegrator integrator(temperature, 1.0, 0.001);
    integrator.setRandomNumberSeed(seed);
    OpenMM::Context context(*system, integrator, OpenMM::Platform::getPlatformByName("Reference"));
    context.setPositions(molecule.structure.positions);
    context.setVelocitiesToTemperature(temperature, seed);

    const double startPhi =
        dihedralAngles(positionsToTensor(molecule.structure.positions), phi).item<double>();
    const int first = (int) std::lround((startPhi + M_PI) / (2 * M_PI) * o.windows) % o.windows;
    const int direction = run % 2 == 0 ? 1 : -1;
    const long long frames = (long long) std::llround(o.ns * 1000);  // one per ps
    std::vector<std::vector<at::Tensor>> x(o.windows);
    std::vector<std::vector<double>> energy(o.windows);
    const double cpuBegin = processCpuSeconds();
    for (int visited = 0; visited < o.windows; visited++) {
        const int k = ((first + direction * visited) % o.windows + o.windows) % o.windows;
        context.setParameter("umbrella_centre", o.centre(k));
        integrator.step(20000);
        for (long long f = 0; f < frames; f++) {
            integrator.step(1000);
            const OpenMM::State all = context.getState(OpenMM::State::Positions | OpenMM::State::Energy);
            const double bias = context.getState(OpenMM::State::Energy, false, 1 << restraintGroup).getPotentialEnergy();
            const at::Tensor positions = positionsToTensor(all.getPositions());
            if (f == 0) {
                // The restraint acts on the phi the analysis reads (same atoms, same sign).
                const double expected =
                    periodicUmbrellaBias(dihedralAngles(positions, phi), o.centre(k), o.forceConstant).item<double>();
                if (std::abs(bias - expected) > 1e-6 * (1 + expected))
                    throw OpenMM::OpenMMException("the umbrella restraint (" + std::to_string(bias) +
                                                  " kJ/mol) does not act on phi (" + std::to_string(expected) + ")");
            }
            x[k].push_back(positions);
            energy[k].push_back(all.getPotentialEnergy() - bias);
        }
        std::printf("  run %d, %.0f K: window %d/%d done (centre %+.3f rad)\n", run, temperature, visited + 1,
                    o.windows, o.centre(k));
        std::fflush(stdout);
    }
    RunRecord record;
    record.cpuSeconds = processCpuSeconds() - cpuBegin;
    for (int k = 0; k < o.windows; k++)
        record.states.push_back(describe(molecule, at::cat(x[k]), at::tensor(energy[k], at::kDouble)));
    record.statistics = std::string("windows visited towards ") + (direction > 0 ? "larger" : "smaller") +
                        " phi from window " + std::to_string(first);
    writeRun(o, run, temperature, record);
    std::printf("run %d, %.0f K done: %.0f CPU s\n", run, temperature, record.cpuSeconds);
}

void runOne(const Molecule& molecule, const Options& o, int run) {
    for (double temperature : o.runTemperatures())
        if (!pathExists(runPath(o, run, temperature))) {
            if (o.umbrella())
                runUmbrella(molecule, o, run, temperature);
            else
                runReplicaExchange(molecule, o, run);
        }
}

/** One run file: energy, phi, psi [F, K], and its header's statistics. */
struct RunData {
    at::Tensor energy, phi, psi;
    std::string statistics;
    double cpuSeconds = 0;
};

RunData readRun(const Options& o, int run, double temperature) {
    const std::string path = runPath(o, run, temperature);
    std::ifstream in(path);
    std::string line;
    if (!std::getline(in, line) || line != settingsLine(o, run, temperature))
        throw UsageError("'" + path + "' was made with other settings (" + line + "): use another --output");
    RunData data;
    std::vector<double> values;
    int64_t frames = 0;
    while (std::getline(in, line)) {
        if (line.rfind("# statistics ", 0) == 0)
            data.statistics = line.substr(13);
        else if (line.rfind("# cpu_seconds ", 0) == 0)
            data.cpuSeconds = std::stod(line.substr(14));
        else if (line.rfind("# ", 0) == 0) {
            // "# key value" of earlier versions (exchange_acceptance, round_trips): kept as statistics.
            std::string entry = line.substr(2);
            std::replace(entry.begin(), entry.end(), '_', ' ');
            data.statistics += (data.statistics.empty() ? "" : "; ") + entry;
        } else if (line.rfind("energy_", 0) == 0)
            continue;
        else {
            std::istringstream fields(line);
            std::string value;
            size_t before = values.size();
            while (std::getline(fields, value, ','))
                values.push_back(std::stod(value));
            if (values.size() - before != (size_t) (3 * o.states()))
                throw OpenMM::OpenMMException("'" + path + "' has a malformed line: " + line);
            frames++;
        }
    }
    at::Tensor table = at::tensor(values, at::kDouble).reshape({frames, o.states(), 3});
    data.energy = table.select(2, 0).contiguous();
    data.phi = table.select(2, 1).contiguous();
    data.psi = table.select(2, 2).contiguous();
    return data;
}

/** The runs of one temperature (umbrella) or of the ladder (remd), and what they estimate. */
struct RunSet {
    std::vector<RunData> runs;
    std::vector<double> targets;  // K
    std::function<LadderEstimates(const std::vector<LadderRun>&)> estimate;
};

std::vector<RunSet> readRunSets(const Options& o) {
    std::vector<RunSet> sets;
    for (double temperature : o.runTemperatures()) {
        RunSet set;
        for (int r = 0; r < o.runs; r++)
            set.runs.push_back(readRun(o, r, temperature));
        if (o.umbrella()) {
            set.targets = {temperature};
            set.estimate = [&o, temperature](const std::vector<LadderRun>& runs) {
                return umbrellaFreeEnergyDifferences(runs, o.centres(), o.forceConstant, temperature, 20, 200, 7);
            };
        } else {
            const std::vector<double> ladder = ReplicaExchange::geometricLadder(o.lowest, o.highest, o.replicas);
            set.targets = {300.0, 600.0};
            for (double t : ladder)
                if (std::abs(t - 300.0) > 1e-6 && std::abs(t - 600.0) > 1e-6)
                    set.targets.push_back(t);
            set.estimate = [ladder, targets = set.targets](const std::vector<LadderRun>& runs) {
                return ladderFreeEnergyDifferences(runs, ladder, targets, 20, 200, 7);
            };
        }
        sets.push_back(set);
    }
    return sets;
}

void analyse(const Options& o) {
    const std::vector<RunSet> sets = readRunSets(o);
    double cpu = 0;
    for (const RunSet& set : sets)
        for (const RunData& run : set.runs)
            cpu += run.cpuSeconds;
    std::ostringstream text, json;
    text.precision(4);
    if (o.umbrella()) {
        text << "Alanine dipeptide reference (" << o.runs << " independent umbrella-sampling runs on phi at each of";
        for (double t : o.temperatures)
            text << " " << t;
        text << " K: " << o.windows << " windows, " << o.forceConstant << " kJ/mol/rad^2, " << o.ns
             << " ns each, frames every ps;\nall windows of all runs at a temperature pooled by MBAR; " << cpu
             << " CPU s of MD)\n\n";
        json << "{\n  \"method\": \"umbrella\", \"runs\": " << o.runs << ", \"windows\": " << o.windows
             << ", \"force_constant_kJ_per_mol_rad2\": " << o.forceConstant << ", \"ns_per_window\": " << o.ns;
    } else {
        text << "Alanine dipeptide reference (" << o.runs << " independent replica-exchange MD runs, " << o.replicas
             << " replicas " << o.lowest << " ... " << o.highest << " K, " << o.ns << " ns each, exchanges every ps;\n"
             << "all rungs of all runs pooled by MBAR; " << cpu << " CPU s of MD)\n\n";
        json << "{\n  \"method\": \"remd\", \"runs\": " << o.runs << ", \"replicas\": " << o.replicas
             << ", \"lowest_K\": " << o.lowest << ", \"highest_K\": " << o.highest << ", \"ns_per_replica\": " << o.ns;
    }
    json << ", \"cpu_seconds_md\": " << cpu << ",\n  \"estimates\": [";
    for (size_t i = 0; i < sets.size(); i++)
        for (int r = 0; r < o.runs; r++)
            text << "run " << r << (o.umbrella() ? ", " + std::to_string(std::lround(o.temperatures[i])) + " K" : "")
                 << ": " << sets[i].runs[r].statistics << "; " << sets[i].runs[r].cpuSeconds << " CPU s\n";
    bool firstJson = true;
    for (const RamachandranRegion& region : ramachandranRegions()) {
        text << "\n" << region.name << " (" << region.definition << "): dF = -ln(P / (1 - P)) in kT\n"
             << "     T (K)        dF   bootstrap   run spread   quoted error      P   per run\n";
        for (const RunSet& set : sets) {
            std::vector<LadderRun> runs;
            for (const RunData& d : set.runs) {
                at::Tensor sign = region.inside(d.phi, d.psi).to(at::kDouble) * 2 - 1;
                runs.push_back({o.umbrella() ? d.phi : d.energy, sign});
            }
            const LadderEstimates e = set.estimate(runs);
            for (size_t t = 0; t < set.targets.size(); t++) {
                const double quoted = std::max(e.pooled[t].error, e.runSpread[t]);
                char row[200];
                std::snprintf(row, sizeof(row), "%10.1f %9.3f %11.3f %12.3f %14.3f %6.4f  ", set.targets[t],
                              e.pooled[t].value, e.pooled[t].error, e.runSpread[t], quoted, e.fractionPositive[t]);
                text << row;
                for (const std::vector<double>& run : e.perRun)
                    text << " " << std::fixed << std::setprecision(3) << run[t] << std::defaultfloat;
                if (e.runSpread[t] > 2 * e.pooled[t].error)
                    text << "   (runs disagree beyond the bootstrap error)";
                text << "\n";
                json << (firstJson ? "\n" : ",\n") << "    {\"region\": \"" << region.name
                     << "\", \"temperature_K\": " << set.targets[t] << ", \"dF_kT\": " << e.pooled[t].value
                     << ", \"bootstrap_error_kT\": " << e.pooled[t].error << ", \"run_spread_kT\": " << e.runSpread[t]
                     << ", \"error_kT\": " << quoted << ", \"fraction\": " << e.fractionPositive[t] << "}";
                firstJson = false;
            }
        }
    }
    json << "\n  ]\n}\n";
    writeAtomically(o.output + "/summary.txt", text.str());
    writeAtomically(o.output + "/summary.json", json.str());
    std::printf("%s", text.str().c_str());
}

} // namespace

int main(int argc, char** argv) {
    return runReportingErrors([&] {
        const Options options = parse(argc, argv);
        makeDirectories(options.output);
        struct stat info;
        if (stat(options.output.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
            throw UsageError("the output '" + options.output + "' is not a folder");
        const Molecule molecule = loadMolecule(options.data);
        for (int r = 0; r < options.runs; r++)
            if (options.onlyRun < 0 || options.onlyRun == r)
                runOne(molecule, options, r);
        if (options.onlyRun < 0)
            analyse(options);
    });
}
