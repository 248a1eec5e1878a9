// The flow-move integrators' shared tests (FlowMoveIntegratorTests.cpp) on the Reference platform.

#include "FlowMoveIntegratorTests.h"

const OpenMMBG::testing::TestPlatform& OpenMMBG::testing::testPlatform() {
    static const TestPlatform platform{"Reference"};
    return platform;
}
