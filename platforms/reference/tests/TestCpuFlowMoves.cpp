// The flow-move integrators' shared tests (FlowMoveIntegratorTests.cpp) on
// OpenMM's CPU platform, which runs the Reference plugin's kernels.

#include "FlowMoveIntegratorTests.h"

const OpenMMBG::testing::TestPlatform& OpenMMBG::testing::testPlatform() {
    static const TestPlatform platform{"CPU"};
    return platform;
}
