#ifndef OPENMMBG_EXAMPLES_PROGRAMSUPPORT_H_
#define OPENMMBG_EXAMPLES_PROGRAMSUPPORT_H_

// What the example programs share besides the workflow itself: CPU clocks,
// progress lines and the summary they write (no LibTorch here).

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace OpenMMBG {
namespace alanine {

/**
 * Writes `text` to path + ".part" and renames it to `path`: the file appears
 * complete or not at all, so a rerun never reuses half of an interrupted one.
 */
void writeAtomically(const std::string& path, const std::string& text);

/** A user mistake in one of the command-line programs: one line on stderr, exit code 2. */
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/** Whether a file or folder exists at `path`. */
bool pathExists(const std::string& path);

/** mkdir -p: makes `path` and the folders above it; a UsageError where one cannot be made. */
void makeDirectories(const std::string& path);

/**
 * A command-line program's main(): runs `body` and returns 0, or, after
 * "error: <message>" on stderr (following the progress lines on stdout), 2
 * for a UsageError and 1 for any other exception.
 */
int runReportingErrors(const std::function<void()>& body);

/**
 * Reads a command line: calls handle(option, value) for every option, where
 * value() takes the next argument as the option's value (a UsageError if
 * none is left or it starts with "--"); a flag never calls value().
 */
void forEachOption(int argc, char** argv,
                   const std::function<void(const std::string& option, const std::function<std::string()>& value)>& handle);

/** CPU seconds of the calling thread. */
double threadCpuSeconds();

/** CPU seconds of the whole process, all threads (training: LibTorch and the energy bridge's workers). */
double processCpuSeconds();

/** Prints "  label  42%" lines as a long stage advances. */
std::function<void(double)> progressPrinter(const std::string& label);

/** Accumulates a run's summary: summary.json (machine) and summary.txt (human) at once. */
class Summary {
public:
    void number(const std::string& key, double value);
    void text(const std::string& key, const std::string& value);
    void list(const std::string& key, const std::vector<double>& values);
    /** {"value": v, "error": e} */
    void estimate(const std::string& key, double value, double error);

    /** Entries added since `mark`, saved so that a rerun that reuses a stage can report them. */
    size_t mark() const { return entries.size(); }
    void saveSince(size_t mark, const std::string& path) const;
    /** Adds the entries that saveSince wrote to `path`. */
    void load(const std::string& path);
    /** The value of the last entry `key` as written (a number's digits, a list's brackets), "" if none. */
    std::string valueOf(const std::string& key) const;

    /** Writes directory/summary.json and directory/summary.txt. */
    void write(const std::string& directory) const;

private:
    std::vector<std::pair<std::string, std::string>> entries;
};

} // namespace alanine
} // namespace OpenMMBG

#endif
