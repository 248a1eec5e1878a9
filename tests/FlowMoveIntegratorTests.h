#ifndef OPENMMBG_FLOWMOVEINTEGRATORTESTS_H_
#define OPENMMBG_FLOWMOVEINTEGRATORTESTS_H_

// The tests of LatentMetropolisIntegrator and TSFParallelTemperingIntegrator
// that every platform must pass (FlowMoveIntegratorTests.cpp), as OpenMM's
// TestRpmd.h: they are compiled once and linked into each platform's test
// program (platforms/*/tests), which defines testPlatform().

#include <map>
#include <string>
#include <vector>

namespace OpenMMBG {
namespace testing {

/** OpenMM platform properties of a test run. */
using PlatformProperties = std::map<std::string, std::string>;

/** The platform a test program checks. */
struct TestPlatform {
    std::string name;
    /** Properties of most tests. */
    PlatformProperties properties;
    /** Property sets of the tests that depend on how the platform stores positions. */
    std::vector<PlatformProperties> storageVariants = {PlatformProperties()};
    /** Empty if the platform can run here, otherwise why not: every test is then skipped with the reason. */
    std::string (*unusable)() = nullptr;
};

/** Defined by each platform's test program. */
const TestPlatform& testPlatform();

} // namespace testing
} // namespace OpenMMBG

#endif
