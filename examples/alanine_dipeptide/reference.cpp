// The converged reference for alanine dipeptide: free energies of the phi > 0
// side and of the three basins at 300 K, 600 K and every rung, from
// independent replica-exchange MD runs, every rung of every run pooled by
// MBAR (docs/math.md, "Reweighting between temperatures"). Errors: a block
// bootstrap over all runs, and the spread of the runs' own estimates; the
// larger is quoted, and estimates whose runs disagree beyond the bootstrap
// are flagged.
//
//   alanine_dipeptide_reference [--runs 4] [--ns 5] [--replicas 6] [--lowest 300] [--highest 700]
//                               [--run I] [--output DIR] [--data DIR]
// Each run writes DIR/run_I.csv when it finishes and is skipped by a rerun;
// --run I does only run I (start several processes to use several cores),
// and a call without --run runs what is missing, then writes DIR/summary.txt
// and DIR/summary.json.

#include "AlanineDipeptide.h"

#include "openmmbg/ReplicaExchange.h"
#include "openmmbg/tools/Reweighting.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

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
    int runs = 4, replicas = 6, onlyRun = -1;
    double ns = 5, lowest = 300, highest = 700;
    std::string output = "reference", data = BG_DATA_DIR;
};

Options parse(int argc, char** argv) {
    Options o;
    forEachOption(argc, argv, [&](const std::string& key, const std::function<std::string()>& next) {
        const std::string value = next();
        try {
            if (key == "--runs") o.runs = std::stoi(value);
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
    if (o.runs < 1 || o.replicas < 2 || !(o.ns > 0) || !(o.lowest > 0) || !(o.highest > o.lowest))
        throw UsageError("need --runs >= 1, --replicas >= 2, --ns > 0 and 0 < --lowest < --highest");
    if (o.onlyRun >= o.runs || (o.onlyRun < 0 && o.onlyRun != -1))
        throw UsageError("--run must be one of 0 ... " + std::to_string(o.runs - 1));
    return o;
}

/** The first line of a run file: the settings it was made with. */
std::string settingsLine(const Options& o, int run) {
    std::ostringstream s;
    s << "# alanine dipeptide replica-exchange MD: run " << run << ", " << o.replicas << " replicas " << o.lowest
      << " ... " << o.highest << " K, " << o.ns << " ns each";
    return s.str();
}

std::string runPath(const Options& o, int run) { return o.output + "/run_" + std::to_string(run) + ".csv"; }

void runOne(const Molecule& molecule, const Options& o, int run) {
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
    std::ostringstream out;
    out.precision(10);
    out << settingsLine(o, run) << "\n# exchange_acceptance";
    for (double a : result.exchangeAcceptance)
        out << " " << a;
    out << "\n# round_trips " << result.roundTrips << "\n# cpu_seconds " << result.cpuSeconds << "\n";
    for (int k = 0; k < o.replicas; k++)
        out << (k ? "," : "") << "energy_" << k << ",phi_" << k << ",psi_" << k;
    out << "\n";
    const int64_t frames = result.rungs[0].phi.size(0);
    for (int64_t f = 0; f < frames; f++) {
        for (int k = 0; k < o.replicas; k++)
            out << (k ? "," : "") << result.rungs[k].energy[f].item<double>() << ","
                << result.rungs[k].phi[f].item<double>() << "," << result.rungs[k].psi[f].item<double>();
        out << "\n";
    }
    writeAtomically(runPath(o, run), out.str());
    std::printf("run %d done: %.0f CPU s, %lld round trips\n", run, result.cpuSeconds, result.roundTrips);
}

/** One run file: energy, phi, psi [F, K], and its header's statistics. */
struct RunData {
    at::Tensor energy, phi, psi;
    std::string exchange;
    long long roundTrips = 0;
    double cpuSeconds = 0;
};

RunData readRun(const Options& o, int run) {
    const std::string path = runPath(o, run);
    std::ifstream in(path);
    std::string line;
    if (!std::getline(in, line) || line != settingsLine(o, run))
        throw UsageError("'" + path + "' was made with other settings (" + line + "): use another --output");
    RunData data;
    std::vector<double> values;
    int64_t frames = 0;
    while (std::getline(in, line)) {
        if (line.rfind("# exchange_acceptance", 0) == 0)
            data.exchange = line.substr(21);
        else if (line.rfind("# round_trips ", 0) == 0)
            data.roundTrips = std::stoll(line.substr(14));
        else if (line.rfind("# cpu_seconds ", 0) == 0)
            data.cpuSeconds = std::stod(line.substr(14));
        else if (line.rfind("energy_", 0) == 0)
            continue;
        else {
            std::istringstream fields(line);
            std::string value;
            size_t before = values.size();
            while (std::getline(fields, value, ','))
                values.push_back(std::stod(value));
            if (values.size() - before != (size_t) (3 * o.replicas))
                throw OpenMM::OpenMMException("'" + path + "' has a malformed line: " + line);
            frames++;
        }
    }
    at::Tensor table = at::tensor(values, at::kDouble).reshape({frames, o.replicas, 3});
    data.energy = table.select(2, 0).contiguous();
    data.phi = table.select(2, 1).contiguous();
    data.psi = table.select(2, 2).contiguous();
    return data;
}

void analyse(const Options& o) {
    std::vector<RunData> data;
    double cpu = 0;
    for (int r = 0; r < o.runs; r++) {
        data.push_back(readRun(o, r));
        cpu += data.back().cpuSeconds;
    }
    const std::vector<double> ladder = ReplicaExchange::geometricLadder(o.lowest, o.highest, o.replicas);
    std::vector<double> targets = {300.0, 600.0};
    for (double t : ladder)
        if (std::abs(t - 300.0) > 1e-6 && std::abs(t - 600.0) > 1e-6)
            targets.push_back(t);
    std::ostringstream text, json;
    text.precision(4);
    text << "Alanine dipeptide reference (" << o.runs << " independent replica-exchange MD runs, " << o.replicas
         << " replicas " << o.lowest << " ... " << o.highest << " K, " << o.ns << " ns each, exchanges every ps;\n"
         << "all rungs of all runs pooled by MBAR; " << cpu << " CPU s of MD)\n\n";
    for (int r = 0; r < o.runs; r++)
        text << "run " << r << ": exchange acceptance" << data[r].exchange << "; " << data[r].roundTrips
             << " round trips; " << data[r].cpuSeconds << " CPU s\n";
    json << "{\n  \"runs\": " << o.runs << ", \"replicas\": " << o.replicas << ", \"lowest_K\": " << o.lowest
         << ", \"highest_K\": " << o.highest << ", \"ns_per_replica\": " << o.ns << ", \"cpu_seconds_md\": " << cpu
         << ",\n  \"estimates\": [";
    bool firstJson = true;
    for (const RamachandranRegion& region : ramachandranRegions()) {
        std::vector<LadderRun> runs;
        for (const RunData& d : data) {
            at::Tensor sign = region.inside(d.phi, d.psi).to(at::kDouble) * 2 - 1;
            runs.push_back({d.energy, sign});
        }
        LadderEstimates e = ladderFreeEnergyDifferences(runs, ladder, targets, 20, 200, 7);
        text << "\n" << region.name << " (" << region.definition << "): dF = -ln(P / (1 - P)) in kT\n"
             << "     T (K)        dF   bootstrap   run spread   quoted error      P   per run\n";
        for (size_t t = 0; t < targets.size(); t++) {
            const double quoted = std::max(e.pooled[t].error, e.runSpread[t]);
            char row[200];
            std::snprintf(row, sizeof(row), "%10.1f %9.3f %11.3f %12.3f %14.3f %6.4f  ", targets[t],
                          e.pooled[t].value, e.pooled[t].error, e.runSpread[t], quoted, e.fractionPositive[t]);
            text << row;
            for (const std::vector<double>& run : e.perRun)
                text << " " << std::fixed << std::setprecision(3) << run[t] << std::defaultfloat;
            if (e.runSpread[t] > 2 * e.pooled[t].error)
                text << "   (runs disagree beyond the bootstrap error)";
            text << "\n";
            json << (firstJson ? "\n" : ",\n") << "    {\"region\": \"" << region.name << "\", \"temperature_K\": "
                 << targets[t] << ", \"dF_kT\": " << e.pooled[t].value << ", \"bootstrap_error_kT\": "
                 << e.pooled[t].error << ", \"run_spread_kT\": " << e.runSpread[t] << ", \"error_kT\": " << quoted
                 << ", \"fraction\": " << e.fractionPositive[t] << "}";
            firstJson = false;
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
            if ((options.onlyRun < 0 || options.onlyRun == r) && !pathExists(runPath(options, r)))
                runOne(molecule, options, r);
        if (options.onlyRun < 0)
            analyse(options);
    });
}
