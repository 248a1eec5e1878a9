#include "ProgramSupport.h"

#include <openmm/OpenMMException.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

using OpenMM::OpenMMException;

namespace OpenMMBG {
namespace alanine {

namespace {

double seconds(clockid_t clock) {
    timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/** JSON number, or a quoted "inf", "-inf", "nan". */
std::string format(double value) {
    if (!std::isfinite(value))
        return value > 0 ? "\"inf\"" : (value < 0 ? "\"-inf\"" : "\"nan\"");
    std::ostringstream out;
    out.precision(6);
    out << value;
    return out.str();
}

} // namespace

bool pathExists(const std::string& path) {
    struct stat info;
    return stat(path.c_str(), &info) == 0;
}

void makeDirectories(const std::string& path) {
    for (size_t slash = path.find('/', 1); ; slash = path.find('/', slash + 1)) {
        std::string prefix = path.substr(0, slash);
        if (!pathExists(prefix) && mkdir(prefix.c_str(), 0755) != 0)
            throw UsageError("cannot create the output folder '" + prefix + "'");
        if (slash == std::string::npos)
            break;
    }
}

int runReportingErrors(const std::function<void()>& body) {
    try {
        body();
        return 0;
    } catch (const UsageError& e) {
        std::fflush(stdout);  // progress lines first, then the error
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}

void writeAtomically(const std::string& path, const std::string& text) {
    const std::string part = path + ".part";
    {
        std::ofstream out(part, std::ios::binary);
        out << text;
        out.close();
        if (!out)
            throw OpenMMException("cannot write '" + part + "'");
    }
    if (std::rename(part.c_str(), path.c_str()) != 0)
        throw OpenMMException("cannot rename '" + part + "' to '" + path + "'");
}

void forEachOption(int argc, char** argv,
                   const std::function<void(const std::string&, const std::function<std::string()>&)>& handle) {
    for (int i = 1; i < argc; i++) {
        const std::string option = argv[i];
        handle(option, [&]() -> std::string {
            if (i + 1 >= argc || std::strncmp(argv[i + 1], "--", 2) == 0)
                throw UsageError("option " + option + " needs a value");
            return argv[++i];
        });
    }
}

double threadCpuSeconds() {
    return seconds(CLOCK_THREAD_CPUTIME_ID);
}

double processCpuSeconds() {
    return seconds(CLOCK_PROCESS_CPUTIME_ID);
}

std::function<void(double)> progressPrinter(const std::string& label) {
    return [label](double fraction) {
        std::printf("  %-22s %3.0f%%\n", label.c_str(), 100 * fraction);
        std::fflush(stdout);
    };
}

void Summary::number(const std::string& key, double value) {
    entries.emplace_back(key, format(value));
}

void Summary::text(const std::string& key, const std::string& value) {
    entries.emplace_back(key, "\"" + value + "\"");
}

void Summary::list(const std::string& key, const std::vector<double>& values) {
    std::string s = "[";
    for (size_t i = 0; i < values.size(); i++)
        s += (i ? ", " : "") + format(values[i]);
    entries.emplace_back(key, s + "]");
}

void Summary::estimate(const std::string& key, double value, double error) {
    entries.emplace_back(key, "{\"value\": " + format(value) + ", \"error\": " + format(error) + "}");
}

void Summary::saveSince(size_t mark, const std::string& path) const {
    std::ostringstream fragment;
    for (size_t i = mark; i < entries.size(); i++)
        fragment << entries[i].first << "\t" << entries[i].second << "\n";
    writeAtomically(path, fragment.str());
}

void Summary::load(const std::string& path) {
    std::ifstream fragment(path);
    std::string line;
    while (std::getline(fragment, line)) {
        size_t tab = line.find('\t');
        if (tab != std::string::npos)
            entries.emplace_back(line.substr(0, tab), line.substr(tab + 1));
    }
}

std::string Summary::valueOf(const std::string& key) const {
    for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry)
        if (entry->first == key)
            return entry->second;
    return "";
}

void Summary::write(const std::string& directory) const {
    std::ostringstream json, text;
    json << "{\n";
    for (size_t i = 0; i < entries.size(); i++)
        json << "  \"" << entries[i].first << "\": " << entries[i].second << (i + 1 < entries.size() ? "," : "") << "\n";
    json << "}\n";
    for (const auto& entry : entries)
        text << entry.first << ": " << entry.second << "\n";
    writeAtomically(directory + "/summary.json", json.str());
    writeAtomically(directory + "/summary.txt", text.str());
}

} // namespace alanine
} // namespace OpenMMBG
