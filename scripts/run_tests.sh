#!/usr/bin/env bash
# The whole test suite: set-up (scripts/setup.sh), then the GoogleTest suites
# through ctest and the Python tests through pytest. The last line sums up
# both: "tests: N passed, N failed, N skipped".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BG_BUILD_DIR:-$ROOT/build}
bash "$ROOT/scripts/setup.sh" || exit 1
setup_seconds=$SECONDS

LOG_DIR="$BUILD_DIR/test-logs"
mkdir -p "$LOG_DIR"
# ctest runs one test per core, each test process with one LibTorch thread.
# (Count the cores first: nproc obeys OMP_NUM_THREADS.)
JOBS=${BG_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
export OMP_NUM_THREADS=1

echo "== C++ tests (ctest)"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 900 2>&1 | tee "$LOG_DIR/ctest.log"
ctest_status=${PIPESTATUS[0]}
ctest_seconds=$(( SECONDS - setup_seconds ))
# "100% tests passed, 0 tests failed out of 18"
ctest_line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$LOG_DIR/ctest.log" | tail -1)
ctest_failed=$(echo "$ctest_line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
ctest_total=$(echo "$ctest_line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/')
ctest_skipped=$(grep -cE "\*\*\*Skipped|Not Run \(Disabled\)" "$LOG_DIR/ctest.log" || true)
if [ -z "$ctest_line" ]; then ctest_failed=1; ctest_total=1; fi

py_passed=0; py_failed=0; py_skipped=0; py_status=0
if compgen -G "$ROOT/python/tests/test_*.py" > /dev/null; then
    echo "== Python tests (pytest)"
    PYTHONPATH="$BUILD_DIR/python${PYTHONPATH:+:$PYTHONPATH}" \
        /usr/bin/python3 -m pytest -q "$ROOT/python/tests" 2>&1 | tee "$LOG_DIR/pytest.log"
    py_status=${PIPESTATUS[0]}
    summary=$(tail -1 "$LOG_DIR/pytest.log")
    py_passed=$(echo "$summary" | grep -oE "[0-9]+ passed" | grep -oE "[0-9]+" || echo 0)
    for count in $(echo "$summary" | grep -oE "[0-9]+ (failed|errors?)" | grep -oE "^[0-9]+"); do
        py_failed=$(( py_failed + count ))
    done
    py_skipped=$(echo "$summary" | grep -oE "[0-9]+ skipped" | grep -oE "[0-9]+" || echo 0)
    if [ "$py_status" -ne 0 ] && [ "$py_failed" -eq 0 ]; then py_failed=1; fi
fi

pytest_seconds=$(( SECONDS - setup_seconds - ctest_seconds ))

passed=$(( ctest_total - ctest_failed - ctest_skipped + py_passed ))
failed=$(( ctest_failed + py_failed ))
skipped=$(( ctest_skipped + py_skipped ))
echo
echo "wall seconds: set-up and build $setup_seconds, ctest $ctest_seconds, pytest $pytest_seconds"
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$ctest_status" -ne 0 ] || [ "$py_status" -ne 0 ] || [ "$failed" -ne 0 ]; then
    exit 1
fi
