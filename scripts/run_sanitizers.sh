#!/usr/bin/env bash
# The C++ suite under AddressSanitizer and UndefinedBehaviorSanitizer: builds
# everything but the Python module and the CUDA kernels with BG_SANITIZE=ON in
# build-sanitize/ (or $BG_SANITIZE_BUILD_DIR) and runs ctest there. LibTorch,
# OpenMM and the system libraries are not instrumented; what they report is
# suppressed by scripts/sanitizers/*.supp, each entry with its reason.
# Needs the Debian packages of scripts/setup.sh (the README's commands install them).
#
#   bash scripts/run_sanitizers.sh [more ctest arguments]
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BG_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize}
# nproc obeys OMP_NUM_THREADS: ask it for the cores without that limit.
JOBS=${BG_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
SUPPRESSIONS="$ROOT/scripts/sanitizers"

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBG_SANITIZE=ON \
        -DBG_BUILD_PYTHON_WRAPPERS=OFF -DBG_BUILD_CUDA_LIB=OFF -DBG_BUILD_BENCH=OFF || exit 1
fi
cmake --build "$BUILD_DIR" --parallel "$JOBS" || exit 1

export OMP_NUM_THREADS=1
export ASAN_OPTIONS="detect_leaks=1:detect_odr_violation=0:abort_on_error=1:strict_init_order=1"
export LSAN_OPTIONS="suppressions=$SUPPRESSIONS/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="suppressions=$SUPPRESSIONS/ubsan.supp:print_stacktrace=1:halt_on_error=1"
# The test programs link this build's plugins. The pipeline loads plugins from
# a folder, which must then be this build's (an uninstrumented copy from
# OpenMM's folder would clash with the instrumented library); every other test
# keeps OpenMM's folder, so that the Python that TestTrainer starts, which
# loads OpenMM's plugins, loads no instrumented library.
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 1800 -E '^Pipeline[.]' "$@"
status=$?
OPENMM_PLUGIN_DIR="$BUILD_DIR/plugins" \
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 1800 -R '^Pipeline[.]' "$@" || status=1
exit $status
