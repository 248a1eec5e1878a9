#!/usr/bin/env bash
# Set-up on Debian 12, safe to run again: installs the Debian packages that are
# missing, configures (once), builds (incrementally) and installs the plugin.
#
# Environment:
#   BG_BUILD_DIR    build directory (default: <repo>/build)
#   BG_NO_INSTALL   set to 1 to skip `cmake --install`
#   BG_CMAKE_ARGS   extra arguments for the first configure
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BG_BUILD_DIR:-$ROOT/build}

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

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    echo "== configuring in $BUILD_DIR"
    # shellcheck disable=SC2086
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${BG_CMAKE_ARGS:-}
fi

echo "== building"
cmake --build "$BUILD_DIR" --parallel "$(nproc)"

if [ "${BG_NO_INSTALL:-0}" != 1 ]; then
    echo "== installing"
    as_root cmake --install "$BUILD_DIR" > "$BUILD_DIR/install.log"
    echo "   $(grep -c -E 'Installing|Up-to-date' "$BUILD_DIR/install.log") files, see $BUILD_DIR/install.log"
fi
