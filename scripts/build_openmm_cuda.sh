#!/usr/bin/env bash
# Builds OpenMM's CUDA platform (libOpenMMCUDA.so and the NVRTC compiler
# plugin libOpenMMCudaCompiler.so) from Debian's openmm source package,
# against Debian's installed libOpenMM.so.7.7, with the recipe in
# cmake/openmm-cuda. Safe to run again: a second run with an unchanged recipe
# returns at once.
#
# Layout (under BG_OPENMM_CUDA_DIR, default <build dir>/openmm-cuda):
#   src/      the source package, unpacked and patched once
#   build/    the CMake build
#   install/  lib/plugins/*.so and include/ (openmm/cuda, openmm/common, lepton)
#
# Environment:
#   BG_BUILD_DIR         the project's build directory (default <repo>/build)
#   BG_OPENMM_CUDA_DIR   where this script works (see above)
#   BG_JOBS              parallel compile jobs (default 1)
#   CUDA_HOME            CUDA toolkit (default /usr/local/cuda)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BG_BUILD_DIR:-$ROOT/build}
WORK=${BG_OPENMM_CUDA_DIR:-$BUILD_DIR/openmm-cuda}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
JOBS=${BG_JOBS:-1}
RECIPE=$ROOT/cmake/openmm-cuda
PREFIX=$WORK/install

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    echo "build_openmm_cuda.sh: no nvcc in $CUDA_HOME/bin (set CUDA_HOME)" >&2
    exit 1
fi

# Everything the result depends on: the recipe, this script, the toolkit and
# the installed OpenMM. If none changed, the installed copy is current.
openmm_version=$(dpkg-query -W -f='${source:Version}' libopenmm-dev)
fingerprint=$( (cat "$RECIPE"/* "${BASH_SOURCE[0]}"; "$CUDA_HOME/bin/nvcc" --version; echo "$openmm_version") \
    | sha256sum | cut -d' ' -f1)
if [ -f "$PREFIX/.recipe" ] && [ "$(cat "$PREFIX/.recipe")" = "$fingerprint" ]; then
    echo "== OpenMM CUDA platform: up to date in $PREFIX"
    exit 0
fi

# The source package of exactly the installed OpenMM, so that headers and
# class layouts match the library the platform links to.
src_dir=$(find "$WORK/src" -maxdepth 1 -type d -name 'openmm-*' 2>/dev/null | head -1 || true)
if [ -z "$src_dir" ] || [ ! -f "$src_dir/.bg-patched" ]; then
    echo "== fetching the openmm $openmm_version source package"
    if ! grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        # Debian's archive, sources only, for the release this machine runs.
        codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
        printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$codename" | as_root tee /etc/apt/sources.list.d/openmm-bg-src.sources > /dev/null
    fi
    if ! apt-cache showsrc openmm 2>/dev/null | grep -qx "Version: $openmm_version"; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    fi
    # apt-get source unpacks with dpkg-source (dpkg-dev); patch applies our change.
    for tool in dpkg-source:dpkg-dev patch:patch; do
        if ! command -v "${tool%%:*}" > /dev/null; then
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${tool##*:}"
        fi
    done
    rm -rf "$WORK/src"
    mkdir -p "$WORK/src"
    (cd "$WORK/src" && apt-get source -q "openmm=$openmm_version" > fetch.log 2>&1) \
        || { cat "$WORK/src/fetch.log" >&2; exit 1; }
    src_dir=$(find "$WORK/src" -maxdepth 1 -type d -name 'openmm-*' | head -1)
    patch -d "$src_dir" -p1 --forward < "$RECIPE/cuda13-cuCtxCreate.patch"
    touch "$src_dir/.bg-patched"
fi

echo "== building OpenMM's CUDA platform (-j$JOBS) in $WORK/build"
start=$(date +%s)
if [ ! -f "$WORK/build/CMakeCache.txt" ]; then
    cmake -S "$RECIPE" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DOPENMM_SOURCE_DIR="$src_dir" -DCMAKE_INSTALL_PREFIX="$PREFIX" \
        -DCUDAToolkit_ROOT="$CUDA_HOME" > "$WORK/configure.log" \
        || { cat "$WORK/configure.log" >&2; exit 1; }
fi
cmake --build "$WORK/build" --parallel "$JOBS"
cmake --install "$WORK/build" > "$WORK/install.log"
echo "$fingerprint" > "$PREFIX/.recipe"
echo "   built and installed into $PREFIX in $(( $(date +%s) - start )) s"
