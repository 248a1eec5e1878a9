#!/usr/bin/env bash
# The main job: set-up (scripts/setup.sh), then the alanine dipeptide pipeline.
# Arguments are passed on to the pipeline program.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BG_BUILD_DIR:-$ROOT/build}
bash "$ROOT/scripts/setup.sh"

export OPENMM_PLUGIN_DIR="$BUILD_DIR/plugins"
echo "== alanine dipeptide"
exec "$BUILD_DIR/examples/energy_bridge_demo" "$@"
