#!/usr/bin/env bash
# Set-up on Debian 12, safe to run again: installs the Debian packages that are
# missing, configures (once), builds (incrementally) and installs the plugin.
#
# Environment:
#   BG_BUILD_DIR    build directory (default: <repo>/build)
#   BG_NO_INSTALL   set to 1 to skip `cmake --install`
#   BG_CMAKE_ARGS   extra arguments for the first configure
#   BG_JOBS         parallel compile jobs (default: the number of cores)
#   CUDA_HOME       CUDA toolkit (default /usr/local/cuda); where it has nvcc, OpenMM's
#                   CUDA platform (scripts/build_openmm_cuda.sh) and the CUDA kernels are built
#   BG_OPENMM_CUDA_DIR  where build_openmm_cuda.sh works (default <build dir>/openmm-cuda)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BG_BUILD_DIR:-$ROOT/build}
# nproc obeys OMP_NUM_THREADS: ask it for the cores without that limit.
JOBS=${BG_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}

PACKAGES=(
    cmake ninja-build g++ pkg-config
    libopenmm-dev libopenmm-plugins python3-simtk
    libtorch-dev python3-torch libopenblas0-pthread
    libgtest-dev swig python3-dev
    python3-numpy python3-matplotlib python3-pytest
)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# With the CUDA toolkit (CI has nvcc but no GPU) the CUDA kernels are built
# too, so that they at least compile; any failure there fails the set-up.
cuda_args=()
if [ -x "$CUDA_HOME/bin/nvcc" ]; then
    BG_BUILD_DIR="$BUILD_DIR" BG_JOBS="$JOBS" CUDA_HOME="$CUDA_HOME" bash "$ROOT/scripts/build_openmm_cuda.sh"
    cuda_args=(-DBG_BUILD_CUDA_LIB=ON -DCUDA_OPENMM_DIR="${BG_OPENMM_CUDA_DIR:-$BUILD_DIR/openmm-cuda}/install"
               -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc")
fi

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    echo "== configuring in $BUILD_DIR"
    # shellcheck disable=SC2086
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda_args[@]}" ${BG_CMAKE_ARGS:-}
elif [ ${#cuda_args[@]} -gt 0 ] && ! grep -q "^BG_BUILD_CUDA_LIB:BOOL=ON" "$BUILD_DIR/CMakeCache.txt"; then
    echo "== configuring in $BUILD_DIR with the CUDA kernels"
    cmake -S "$ROOT" -B "$BUILD_DIR" "${cuda_args[@]}"
fi

echo "== building"
cmake --build "$BUILD_DIR" --parallel "$JOBS"

if [ "${BG_NO_INSTALL:-0}" != 1 ]; then
    echo "== installing"
    as_root cmake --install "$BUILD_DIR" > "$BUILD_DIR/install.log"
    echo "   $(grep -c -E 'Installing|Up-to-date' "$BUILD_DIR/install.log") files, see $BUILD_DIR/install.log"
fi
