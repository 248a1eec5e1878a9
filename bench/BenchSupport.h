#ifndef OPENMMBG_BENCHSUPPORT_H_
#define OPENMMBG_BENCHSUPPORT_H_

// Helpers shared by the benchmarks: timing and the alanine dipeptide inputs.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <openmm/Platform.h>

#include <chrono>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace OpenMMBG {
namespace bench {

/** Best (largest) rate over `repeats` runs of `work`, which processes `items` items per run. */
inline double bestRate(int repeats, double items, const std::function<void()>& work) {
    double best = 0;
    for (int r = 0; r < repeats; r++) {
        auto begin = std::chrono::steady_clock::now();
        work();
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
        best = std::max(best, items / seconds);
    }
    return best;
}

inline std::string dataFile(const std::string& name) {
    return std::string(BG_DATA_DIR) + "/" + name;
}

inline void loadPlugins() {
    OpenMM::Platform::loadPluginsFromDirectory(OpenMM::Platform::getDefaultPluginsDirectory());
}

/** The items of a comma-separated list. */
inline std::vector<std::string> parseNames(const std::string& text) {
    std::vector<std::string> names;
    std::stringstream stream(text);
    for (std::string item; std::getline(stream, item, ',');)
        names.push_back(item);
    return names;
}

/** The integers of a comma-separated list. */
inline std::vector<int> parseList(const std::string& text) {
    std::vector<int> values;
    for (const std::string& item : parseNames(text))
        values.push_back(std::stoi(item));
    return values;
}

} // namespace bench
} // namespace OpenMMBG

#endif
