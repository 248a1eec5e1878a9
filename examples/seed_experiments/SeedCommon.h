#ifndef OPENMMBG_SEED_COMMON_H_
#define OPENMMBG_SEED_COMMON_H_

// Small helpers shared by the seed experiments: command line, results
// directory, CSV files, timing and training logs.

#include "openmmbg/FlowTrainer.h"
#include "openmmbg/ComputeSettings.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace seed {

/** `program [--preset quick|paper] [results-directory]` */
struct CommandLine {
    std::string preset = "quick";
    std::string resultsDir = "examples/seed_experiments/results";
};

inline CommandLine parseCommandLine(int argc, char** argv, const std::vector<std::string>& presets) {
    CommandLine line;
    bool haveDir = false;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (arg == "--preset" && i + 1 < argc) {
            line.preset = argv[++i];
        } else if (arg == "-h" || arg == "--help") {
            std::printf("usage: %s [--preset", argv[0]);
            for (size_t k = 0; k < presets.size(); k++)
                std::printf("%s%s", k ? "|" : " ", presets[k].c_str());
            std::printf("] [results-directory]\n");
            std::exit(0);
        } else if (!haveDir && arg.rfind("--", 0) != 0) {
            line.resultsDir = arg;
            haveDir = true;
        } else {
            throw OpenMM::OpenMMException("unknown argument '" + arg + "' (try --help)");
        }
    }
    bool known = false;
    for (const std::string& p : presets)
        known = known || p == line.preset;
    if (!known)
        throw OpenMM::OpenMMException("unknown preset '" + line.preset + "'");
    std::filesystem::create_directories(line.resultsDir);
    return line;
}

/** One thread for LibTorch and OpenBLAS; OpenMM's plugins loaded (Reference suffices here). */
inline void setUp() {
    OpenMMBG::setComputeThreads(1);
    OpenMMBG::keepFreedMemoryInHeap();
    OpenMM::Platform::loadPluginsFromDirectory(OpenMM::Platform::getDefaultPluginsDirectory());
}

class Stopwatch {
public:
    Stopwatch() : begin(std::chrono::steady_clock::now()) {}
    double seconds() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    }

private:
    std::chrono::steady_clock::time_point begin;
};

/** A CSV file with a header line; values written with full precision. */
class Csv {
public:
    Csv(const std::string& path, const std::vector<std::string>& columns) : out(path) {
        if (!out)
            throw OpenMM::OpenMMException("cannot write '" + path + "'");
        out.precision(10);
        for (size_t i = 0; i < columns.size(); i++)
            out << (i ? "," : "") << columns[i];
        out << "\n";
    }
    template <typename... Values>
    void row(const Values&... values) {
        bool first = true;
        ((out << (first ? "" : ",") << values, first = false), ...);
        out << "\n";
    }
    /** Rows of a [B, k] tensor, optionally preceded by a label column. */
    void rows(const at::Tensor& table, const std::string& label = "") {
        at::Tensor t = table.to(at::kDouble).contiguous();
        for (int64_t i = 0; i < t.size(0); i++) {
            if (!label.empty())
                out << label << ",";
            for (int64_t j = 0; j < t.size(1); j++)
                out << (j ? "," : "") << t[i][j].item<double>();
            out << "\n";
        }
    }

private:
    std::ofstream out;
};

/** Records every progress report of a trainer into a CSV (and prints it). */
struct TrainingLog {
    explicit TrainingLog(const std::string& path)
        : csv(path, {"run", "stage", "step", "loss", "loss_ml", "loss_kl", "lambda", "learning_rate",
                     "mean_reduced_energy", "ess_fraction", "steps_per_second"}) {}
    std::function<void(const OpenMMBG::TrainingProgress&)> callback(const std::string& run) {
        return [this, run](const OpenMMBG::TrainingProgress& p) {
            csv.row(run, p.stage, p.step, p.loss, p.lossML, p.lossKL, p.lambda, p.learningRate,
                    p.meanReducedEnergy, p.essFraction, p.stepsPerSecond);
        };
    }
    Csv csv;
};

inline at::Generator generator(uint64_t seed) {
    return at::make_generator<at::CPUGeneratorImpl>(seed);
}

} // namespace seed

#endif
