#!/usr/bin/env bash
# The whole test suite: set-up (scripts/setup.sh), then the GoogleTest suites
# through ctest and the Python tests through pytest. The last line sums up
# everything: "tests: N passed, N failed, N skipped".
#
# BG_STACK picks the stack (docs/stacks.md): debian (default), pypi, or all
# (both, one after the other, in build/ and build-pypi/; what CI runs).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/stack.sh"
case "${BG_STACK:-debian}" in
    debian | pypi) STACKS=("${BG_STACK:-debian}") ;;
    all) STACKS=(debian pypi) ;;
    *) echo "run_tests: BG_STACK must be debian, pypi or all, got '$BG_STACK'" >&2; exit 1 ;;
esac
if [ ${#STACKS[@]} -gt 1 ] && [ -n "${BG_BUILD_DIR:-}" ]; then
    echo "run_tests: BG_BUILD_DIR names one build directory; with BG_STACK=all each stack uses its own" >&2
    exit 1
fi
# ctest runs one test per core, each test process with one LibTorch thread.
# (Count the cores first: nproc obeys OMP_NUM_THREADS.)
JOBS=${BG_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}

passed=0; failed=0; skipped=0; status=0
timings=()

# One stack: set-up, ctest, pytest; adds to the counts above.
run_stack() {
    local stack=$1 start=$SECONDS BUILD_DIR PYTHON VENV
    bg_stack "$stack"
    local build_dir=$BUILD_DIR python=$PYTHON
    echo "== stack: $stack"
    if ! BG_STACK=$stack BG_BUILD_DIR="$build_dir" bash "$ROOT/scripts/setup.sh"; then
        echo "set-up of the $stack stack failed"
        failed=$(( failed + 1 )); status=1
        timings+=("wall seconds ($stack): set-up failed after $(( SECONDS - start ))")
        return
    fi
    local setup_seconds=$(( SECONDS - start ))
    local log_dir="$build_dir/test-logs"
    mkdir -p "$log_dir"

    echo "== C++ tests (ctest, $stack stack)"
    OMP_NUM_THREADS=1 ctest --test-dir "$build_dir" --output-on-failure -j "$JOBS" --timeout 900 2>&1 \
        | tee "$log_dir/ctest.log"
    local ctest_status=${PIPESTATUS[0]}
    local ctest_seconds=$(( SECONDS - start - setup_seconds ))
    # "100% tests passed, 0 tests failed out of 18"
    local ctest_line ctest_failed ctest_total ctest_skipped
    ctest_line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log_dir/ctest.log" | tail -1)
    ctest_failed=$(echo "$ctest_line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
    ctest_total=$(echo "$ctest_line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/')
    ctest_skipped=$(grep -cE "\*\*\*Skipped|Not Run \(Disabled\)" "$log_dir/ctest.log" || true)
    if [ -z "$ctest_line" ]; then ctest_failed=1; ctest_total=1; fi

    local py_passed=0 py_failed=0 py_skipped=0 py_status=0 summary count
    if compgen -G "$ROOT/python/tests/test_*.py" > /dev/null; then
        echo "== Python tests (pytest, $stack stack)"
        OMP_NUM_THREADS=1 PYTHONPATH="$build_dir/python${PYTHONPATH:+:$PYTHONPATH}" \
            "$python" -m pytest -q "$ROOT/python/tests" 2>&1 | tee "$log_dir/pytest.log"
        py_status=${PIPESTATUS[0]}
        summary=$(tail -1 "$log_dir/pytest.log")
        py_passed=$(echo "$summary" | grep -oE "[0-9]+ passed" | grep -oE "[0-9]+" || echo 0)
        for count in $(echo "$summary" | grep -oE "[0-9]+ (failed|errors?)" | grep -oE "^[0-9]+"); do
            py_failed=$(( py_failed + count ))
        done
        py_skipped=$(echo "$summary" | grep -oE "[0-9]+ skipped" | grep -oE "[0-9]+" || echo 0)
        if [ "$py_status" -ne 0 ] && [ "$py_failed" -eq 0 ]; then py_failed=1; fi
    fi
    local pytest_seconds=$(( SECONDS - start - setup_seconds - ctest_seconds ))

    local stack_passed=$(( ctest_total - ctest_failed - ctest_skipped + py_passed ))
    local stack_failed=$(( ctest_failed + py_failed ))
    local stack_skipped=$(( ctest_skipped + py_skipped ))
    passed=$(( passed + stack_passed )); failed=$(( failed + stack_failed )); skipped=$(( skipped + stack_skipped ))
    if [ "$ctest_status" -ne 0 ] || [ "$py_status" -ne 0 ] || [ "$stack_failed" -ne 0 ]; then status=1; fi
    timings+=("wall seconds ($stack): set-up and build $setup_seconds, ctest $ctest_seconds, pytest $pytest_seconds;"\
" $stack_passed passed, $stack_failed failed, $stack_skipped skipped")
}

for stack in "${STACKS[@]}"; do
    run_stack "$stack"
done

echo
printf '%s\n' "${timings[@]}"
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
