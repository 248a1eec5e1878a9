#!/usr/bin/env bash
# Set-up on Debian 12, safe to run again: installs the Debian packages that are
# missing, configures (once), builds (incrementally) and installs the plugin.
#
# Two stacks, built from the same sources (docs/stacks.md):
#   debian  Debian's OpenMM 7.7 and LibTorch 1.13 (the default): builds in
#           build/ and installs into /usr/local and OpenMM's plugin folder;
#   pypi    OpenMM 8 and PyTorch 2 from PyPI (scripts/requirements-pypi.txt),
#           installed into the virtual environment .venv-pypi (Debian's
#           python3): builds in build-pypi/ and installs into that
#           environment (library, plugins, Python package), no root needed.
#
# Environment:
#   BG_STACK        debian (default) or pypi
#   BG_BUILD_DIR    build directory (default: <repo>/build, <repo>/build-pypi)
#   BG_VENV         the PyPI stack's virtual environment (default: <repo>/.venv-pypi)
#   BG_NO_INSTALL   set to 1 to skip `cmake --install`
#   BG_CMAKE_ARGS   extra arguments for the first configure
#   BG_JOBS         parallel compile jobs (default: the number of cores)
#   CUDA_HOME       CUDA toolkit (default /usr/local/cuda); where it has nvcc, OpenMM's
#                   CUDA platform (scripts/build_openmm_cuda.sh) and the CUDA kernels are built
#   BG_OPENMM_CUDA_DIR  where build_openmm_cuda.sh works (default <build dir>/openmm-cuda)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/stack.sh"
STACK=${BG_STACK:-debian}
bg_stack "$STACK"
# nproc obeys OMP_NUM_THREADS: ask it for the cores without that limit.
JOBS=${BG_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}

if [ "$STACK" = debian ]; then
    PACKAGES=(
        cmake ninja-build g++ pkg-config
        libopenmm-dev libopenmm-plugins python3-simtk
        libtorch-dev python3-torch libopenblas0-pthread
        libgtest-dev swig python3-dev
        python3-numpy python3-matplotlib python3-pytest
    )
else
    # OpenMM, PyTorch, NumPy, Matplotlib and pytest come from PyPI.
    PACKAGES=(cmake ninja-build g++ pkg-config libgtest-dev swig python3-dev python3-venv)
fi

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

stack_args=()
if [ "$STACK" = pypi ]; then
    REQUIREMENTS="$ROOT/scripts/requirements-pypi.txt"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "== creating the virtual environment $VENV"
        /usr/bin/python3 -m venv "$VENV"
    fi
    # Installed once, and again whenever the requirements change.
    if ! cmp -s "$REQUIREMENTS" "$VENV/.openmmbg-requirements"; then
        echo "== installing the PyPI stack into $VENV ($(grep -cE '^[a-z]' "$REQUIREMENTS") packages and their dependencies)"
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQUIREMENTS"
        cp "$REQUIREMENTS" "$VENV/.openmmbg-requirements"
    fi
    # Where the wheels keep OpenMM (OpenMM.libs: include/, lib/, lib/plugins/)
    # and LibTorch (torch/: include/, lib/, share/cmake/), found without
    # importing torch (which loads its CUDA libraries).
    openmm_prefix=$(dirname "$(bg_openmm_library_dir)")
    torch_prefix=$("$PYTHON" -c 'import importlib.util as u; print(u.find_spec("torch").submodule_search_locations[0])')
    site_dir=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    stack_args=(-DOPENMM_DIR="$openmm_prefix" -DCMAKE_PREFIX_PATH="$torch_prefix"
                -DPython3_EXECUTABLE="$PYTHON" -DBG_PYTHON_EXECUTABLE="$PYTHON" -DSWIG_EXECUTABLE="$VENV/bin/swig"
                -DCMAKE_INSTALL_PREFIX="$VENV" -DBG_PYTHON_INSTALL_DIR="$site_dir")
fi

# With the CUDA toolkit (CI has nvcc but no GPU) the CUDA kernels are built
# too, so that they at least compile; any failure there fails the set-up.
# Debian's OpenMM has no CUDA platform (build_openmm_cuda.sh builds one); the
# PyPI stack has openmm-cuda-13's.
cuda_args=()
if [ -x "$CUDA_HOME/bin/nvcc" ]; then
    cuda_args=(-DBG_BUILD_CUDA_LIB=ON -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc")
    if [ "$STACK" = debian ]; then
        BG_BUILD_DIR="$BUILD_DIR" BG_JOBS="$JOBS" CUDA_HOME="$CUDA_HOME" bash "$ROOT/scripts/build_openmm_cuda.sh"
        cuda_args+=(-DCUDA_OPENMM_DIR="${BG_OPENMM_CUDA_DIR:-$BUILD_DIR/openmm-cuda}/install")
    fi
fi

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    echo "== configuring in $BUILD_DIR"
    # shellcheck disable=SC2086
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${stack_args[@]}" "${cuda_args[@]}" \
        ${BG_CMAKE_ARGS:-}
elif [ ${#cuda_args[@]} -gt 0 ] && ! grep -q "^BG_BUILD_CUDA_LIB:BOOL=ON" "$BUILD_DIR/CMakeCache.txt"; then
    echo "== configuring in $BUILD_DIR with the CUDA kernels"
    cmake -S "$ROOT" -B "$BUILD_DIR" "${cuda_args[@]}"
fi

echo "== building"
cmake --build "$BUILD_DIR" --parallel "$JOBS"

if [ "${BG_NO_INSTALL:-0}" != 1 ]; then
    echo "== installing"
    if [ "$STACK" = debian ]; then
        as_root cmake --install "$BUILD_DIR" > "$BUILD_DIR/install.log"
    else
        cmake --install "$BUILD_DIR" > "$BUILD_DIR/install.log"
    fi
    echo "   $(grep -c -E 'Installing|Up-to-date' "$BUILD_DIR/install.log") files, see $BUILD_DIR/install.log"
fi
