#ifndef OPENMMBG_EXAMPLES_PROGRAMRUN_H_
#define OPENMMBG_EXAMPLES_PROGRAMRUN_H_

// Runs an example program as a user does, for the tests of the examples.

#include "TestSupport.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/wait.h>

namespace OpenMMBG {
namespace testing {

struct ProgramRun {
    int status;          // exit code, -1 if the program did not exit normally
    std::string output;  // stdout
    std::string errors;  // stderr
};

inline std::string fileContents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/** The number after "key": in a summary.json (nan if absent or not a number). */
inline double jsonNumber(const std::string& json, const std::string& key) {
    const size_t at = json.find("\"" + key + "\": ");
    if (at == std::string::npos)
        return std::nan("");
    const char* value = json.c_str() + at + key.size() + 4;
    return std::strtod(*value == '"' ? value + 1 : value, nullptr);  // "inf" and "nan" are written quoted
}

inline ProgramRun runProgram(const std::string& executable, const std::string& arguments) {
    const std::string errorFile = temporaryPath(".stderr");
    const std::string command = executable + " " + arguments + " 2>" + errorFile;
    FILE* pipe = popen(command.c_str(), "r");
    ProgramRun run{-1, "", ""};
    char buffer[4096];
    while (size_t read = fread(buffer, 1, sizeof(buffer), pipe))
        run.output.append(buffer, read);
    const int status = pclose(pipe);
    run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.errors = fileContents(errorFile);
    std::remove(errorFile.c_str());
    return run;
}

} // namespace testing
} // namespace OpenMMBG

#endif
