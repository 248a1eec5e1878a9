// The flow-move integrators' shared tests on the Reference platform.

#include "FlowMoveIntegratorTests.h"

const OpenMMBG::testing::TestPlatform& OpenMMBG::testing::testPlatform() {
    static const TestPlatform platform{"Reference"};
    return platform;
}
