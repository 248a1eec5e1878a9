#!/usr/bin/env bash
# The GPU check: builds the CUDA kernels against a LibTorch with CUDA and runs
# the CUDA tests and bench/gpu_speed on a machine with an NVIDIA GPU that has
# no OpenMM, no GoogleTest and no network. Two steps:
#
#   bash scripts/gpu_check.sh prepare [--torch DIR] [--flow FILE]
#       here, on a machine with Debian's packages and nvcc: collects in
#       $BG_GPU_DIR (default <repo>/.gpu, git-ignored) what the GPU machine
#       lacks: Debian's OpenMM (runtime, headers, CPU platform) and GoogleTest
#       as .debs, OpenMM's CUDA platform (scripts/build_openmm_cuda.sh), and
#       the flow the benchmark uses (default: the pipeline's,
#       results/alanine_dipeptide/flow.bgflow). With --torch DIR (a LibTorch
#       with CUDA of exactly the GPU machine's version, e.g. PyTorch's wheel
#       unpacked: DIR/share/cmake/Torch), it also builds the programs the
#       check runs and keeps them in $BG_GPU_DIR/bin, so that the GPU machine
#       spends no time compiling.
#
#   bash scripts/gpu_check.sh run [RESULTS]
#       there, from the repository root with $BG_GPU_DIR copied along:
#       unpacks the .debs, builds the programs against the machine's PyTorch
#       (python3 -c 'import torch') unless prebuilt ones came along, runs
#       TestCudaFlowMoves and bench/gpu_speed and writes their logs and a
#       summary to RESULTS (default $BG_GPU_DIR/results). Without a GPU, a
#       CUDA driver or a LibTorch with CUDA, the CUDA tests skip with the
#       reason and the benchmark measures the CPU parts only.
#
# Environment: BG_GPU_DIR (above), BG_GPU_BUILD (the build tree of prepare
# --torch, default $BG_GPU_DIR/build), BG_JOBS (compile jobs, default all
# cores), BG_GPU_TIMEOUT (seconds per program, default 240),
# BG_GPU_SPEED_ARGS (extra options of bench/gpu_speed), BG_GPU_PARTS (run: a
# comma-separated subset of quick,bench,statistical), BG_GPU_STATISTICAL (run:
# the statistical tests to run, a space-separated subset of those below,
# default all), BG_PYTHON (run: the
# Python whose PyTorch is used, default python3), BG_GPU_SKIP_STATISTICAL
# (non-empty: leave the long statistical tests out).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GPU_DIR=${BG_GPU_DIR:-$ROOT/.gpu}
JOBS=${BG_JOBS:-$(nproc)}
TIMEOUT=${BG_GPU_TIMEOUT:-240}
PYTHON=${BG_PYTHON:-python3}  # the Python whose PyTorch provides LibTorch (run)
DEBS="libopenmm7.7 libopenmm-dev libopenmm-plugins libgtest-dev"
# What the check runs: the CUDA platform tests and the benchmark (with the
# plugins they load).
TARGETS="TestCudaFlowMoves gpu_speed OpenMMBGReference OpenMMBGCUDA"
# The statistical tests that take minutes (run after the benchmark), one
# program run each, so that one that runs out of time leaves the others' results.
SLOW_TESTS="SplineFlowIsExactOnATorsionChain TrainedFlowConvergesFromOneWell TrainedFlowIsStationaryFromExactStarts"
# Which of them the statistical part runs.
STATISTICAL=${BG_GPU_STATISTICAL:-$SLOW_TESTS}
# What run does: any of quick, bench, statistical.
PARTS=${BG_GPU_PARTS:-quick,bench,statistical}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
    exit 2
}

# The project's CMake configuration for the check: OpenMM and GoogleTest from
# the unpacked .debs (or the system), LibTorch from $1.
configure() {
    local build=$1 torch=$2 openmm=$3 gtest=$4
    shift 4
    local found=()
    [ -n "$openmm" ] && found+=(-DOPENMM_DIR="$openmm")
    [ -n "$gtest" ] && found+=(-DGTest_DIR="$gtest")
    cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$torch" "${found[@]}" \
        -DBG_BUILD_CUDA_LIB=ON -DCUDA_OPENMM_DIR="$GPU_DIR/openmm-cuda" \
        -DBG_BUILD_PYTHON_WRAPPERS=OFF -DBG_BUILD_EXAMPLES=OFF -DBG_INSTALL_CUDA_PLUGINS=OFF "$@"
    # shellcheck disable=SC2086
    cmake --build "$build" --parallel "$JOBS" --target $TARGETS
}

# Copies what the check runs out of a build tree into $GPU_DIR/bin.
collect_programs() {
    local build=$1
    rm -rf "$GPU_DIR/bin"
    mkdir -p "$GPU_DIR/bin/plugins"
    cp "$build/platforms/cuda/tests/TestCudaFlowMoves" "$build/bench/gpu_speed" "$GPU_DIR/bin/"
    cp "$build"/plugins/libOpenMMBG*.so "$GPU_DIR/bin/plugins/"
    find "$build/openmmapi" -maxdepth 1 -name 'libOpenMMBG.so*' -exec cp -P {} "$GPU_DIR/bin/" \;
    # The data the programs read, at the path compiled into them.
    echo "$ROOT" > "$GPU_DIR/bin/source_dir"
}

prepare() {
    local torch="" flow="$ROOT/results/alanine_dipeptide/flow.bgflow"
    while [ $# -gt 0 ]; do
        case $1 in
            --torch) torch=$2; shift 2 ;;
            --flow) flow=$2; shift 2 ;;
            *) usage ;;
        esac
    done
    mkdir -p "$GPU_DIR/debs"
    echo "== .debs of Debian's OpenMM and GoogleTest"
    (cd "$GPU_DIR/debs" && rm -f ./*.deb && apt-get download $DEBS)
    echo "== OpenMM's CUDA platform"
    bash "$ROOT/scripts/build_openmm_cuda.sh"
    rm -rf "$GPU_DIR/openmm-cuda"
    cp -r "$ROOT/build/openmm-cuda/install" "$GPU_DIR/openmm-cuda"
    if [ -f "$flow" ]; then
        cp "$flow" "$GPU_DIR/flow.bgflow"
    else
        echo "gpu_check.sh: no flow at $flow (run the pipeline or pass --flow): the benchmark will be skipped" >&2
    fi
    if [ -n "$torch" ]; then
        echo "== building the check's programs against the LibTorch in $torch"
        # Linking needs the libraries LibTorch's CUDA part depends on (cuDNN,
        # NCCL, ...), which only the GPU machine has: leave them unresolved here.
        local ignore="-Wl,--unresolved-symbols=ignore-in-shared-libs"
        configure "${BG_GPU_BUILD:-$GPU_DIR/build}" "$torch" "" "" \
            -DCMAKE_EXE_LINKER_FLAGS="$ignore" -DCMAKE_SHARED_LINKER_FLAGS="$ignore"
        collect_programs "${BG_GPU_BUILD:-$GPU_DIR/build}"
    fi
    du -sh "$GPU_DIR"/{debs,openmm-cuda,bin,flow.bgflow} 2>/dev/null || true
}

# Whether BG_GPU_PARTS names part $1.
part() {
    [[ ",$PARTS," == *",$1,"* ]]
}

# Runs the CUDA platform tests matching a GoogleTest filter; log tests-<name>.log.
tests() {
    local name=$1 filter=$2 log=$results/tests-$1.log begin=$SECONDS code=0
    note "== TestCudaFlowMoves, $name tests ($filter)"
    timeout "$TIMEOUT" "$bin/TestCudaFlowMoves" --gtest_filter="$filter" > "$log" 2>&1 || code=$?
    note "TestCudaFlowMoves ($name): exit $code, $((SECONDS - begin)) s"
    grep -E '^\[ +(OK|FAILED|SKIPPED) +\]|tests? ran|PASSED' "$log" | tee -a "$summary" || true
    # Why tests were skipped (the line after GoogleTest's "Skipped"), each reason once.
    grep -h -A1 ': Skipped$' "$log" | grep -v ': Skipped$\|^--$' | sort -u | sed 's/^/skipped: /' \
        | tee -a "$summary" || true
    return $code
}

run() {
    results=${1:-$GPU_DIR/results}
    mkdir -p "$results"
    results=$(cd "$results" && pwd)
    summary=$results/summary.txt
    : > "$summary"
    note() { echo "$*" | tee -a "$summary"; }

    note "== GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /' \
        | tee -a "$summary" || note "GPU: none (nvidia-smi failed)"

    # Debian's OpenMM, its CPU platform and GoogleTest, unpacked.
    local debroot=$GPU_DIR/root
    rm -rf "$debroot"
    mkdir -p "$debroot"
    for deb in "$GPU_DIR"/debs/*.deb; do
        if command -v dpkg-deb > /dev/null; then
            dpkg-deb -x "$deb" "$debroot"
        else
            (cd "$debroot" && ar p "$deb" data.tar.xz | tar -xJ)
        fi
    done
    local openmm_lib=$debroot/usr/lib/x86_64-linux-gnu
    [ -f "$openmm_lib/libOpenMM.so" ] || ln -sf libOpenMM.so.7.7 "$openmm_lib/libOpenMM.so"

    # LibTorch: the one in this machine's PyTorch; the CUDA libraries it uses come from the same place.
    local torch site
    torch=$("$PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
    site=$(dirname "$torch")
    note "LibTorch: $("$PYTHON" -c 'import torch; print(torch.__version__, "CUDA available:", torch.cuda.is_available())')"
    local libs="$openmm_lib:$torch/lib"
    for dir in "$site"/nvidia/*/lib "$site"/nvidia/cu*/lib; do [ -d "$dir" ] && libs="$libs:$dir"; done
    local cuda_home=${CUDA_HOME:-/usr/local/cuda}
    [ -d "$cuda_home/lib64" ] && libs="$libs:$cuda_home/lib64"
    # Without a driver, the toolkit's stub libcuda lets the programs start
    # (and report that no GPU can be used) instead of failing to load.
    if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 ' && [ -f "$cuda_home/lib64/stubs/libcuda.so" ]; then
        mkdir -p "$GPU_DIR/stub"
        ln -sf "$cuda_home/lib64/stubs/libcuda.so" "$GPU_DIR/stub/libcuda.so.1"
        libs="$libs:$GPU_DIR/stub"
        note "CUDA driver: none, the toolkit's stub libcuda is used"
    fi
    export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

    bin=$GPU_DIR/bin
    if [ -x "$bin/TestCudaFlowMoves" ]; then
        note "programs: found in $bin (from prepare --torch or an earlier run), built from $(cat "$bin/source_dir")"
        # They read the data at the source path compiled into them.
        local compiled
        compiled=$(cat "$bin/source_dir")
        if [ "$compiled" != "$ROOT" ] && [ ! -e "$compiled" ]; then
            mkdir -p "$(dirname "$compiled")"
            ln -s "$ROOT" "$compiled"
        fi
    else
        note "programs: building against $torch with $JOBS jobs"
        local begin=$SECONDS
        configure "$GPU_DIR/build" "$torch" "$debroot/usr" "$openmm_lib/cmake/GTest" \
            > "$results/build.log" 2>&1 || { note "build FAILED (build.log)"; tail -30 "$results/build.log"; return 1; }
        note "build: $((SECONDS - begin)) s"
        collect_programs "$GPU_DIR/build"
    fi

    # The plugin folder OpenMM loads from: its CPU and CUDA platforms and this
    # project's kernels. It comes first on the library path too, so that a
    # plugin that links another (libOpenMMBGCUDA links libOpenMMCUDA) gets the
    # very file OpenMM loads, not a second copy that would register twice.
    local plugins=$GPU_DIR/plugins
    rm -rf "$plugins"
    mkdir -p "$plugins"
    cp "$openmm_lib/openmm/plugins/libOpenMMCPU.so" "$GPU_DIR"/openmm-cuda/lib/plugins/*.so "$bin"/plugins/*.so "$plugins/"
    export OPENMM_PLUGIN_DIR=$plugins
    export LD_LIBRARY_PATH="$plugins:$bin:$LD_LIBRARY_PATH"
    # To run the programs by hand afterwards: source $GPU_DIR/env.sh
    printf 'export OPENMM_PLUGIN_DIR=%q\nexport LD_LIBRARY_PATH=%q\n' "$OPENMM_PLUGIN_DIR" "$LD_LIBRARY_PATH" \
        > "$GPU_DIR/env.sh"

    local status=0 bench_status=0
    # The quick tests first, then the benchmark, then the long statistical
    # tests (minutes on the Reference platform), so that a run cut short
    # still reports the first two.
    local slow_filter
    slow_filter=$(for name in $SLOW_TESTS; do printf '*%s*:' "$name"; done)
    if part quick; then
        tests "quick" "-${slow_filter%:}" || status=1
    fi

    if ! part bench; then
        :
    elif [ -f "$GPU_DIR/flow.bgflow" ]; then
        note "== bench/gpu_speed"
        begin=$SECONDS
        if timeout "$TIMEOUT" "$bin/gpu_speed" --flow "$GPU_DIR/flow.bgflow" ${BG_GPU_SPEED_ARGS:-} \
            > "$results/gpu_speed.log" 2>&1; then
            note "gpu_speed: done ($((SECONDS - begin)) s)"
        else
            bench_status=1
            note "gpu_speed: FAILED ($((SECONDS - begin)) s)"
        fi
        cat "$results/gpu_speed.log" >> "$summary"
    else
        note "gpu_speed: skipped, no flow in $GPU_DIR (gpu_check.sh prepare --flow)"
    fi
    # They run even when a quick test failed: GPU time is rare, and a failed
    # exact comparison says nothing about the sampled distributions.
    if [ -n "${BG_GPU_SKIP_STATISTICAL:-}" ]; then
        note "statistical tests not run (BG_GPU_SKIP_STATISTICAL)"
    elif part statistical; then
        for name in $STATISTICAL; do
            tests "$name" "*$name*" || status=1
        done
    fi
    [ $bench_status -eq 0 ] || status=1
    note "== exit status $status"
    return $status
}

case ${1:-} in
    prepare) shift; prepare "$@" ;;
    run) shift; run "$@" ;;
    *) usage ;;
esac
