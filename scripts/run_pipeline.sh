#!/usr/bin/env bash
# The main job: set-up (scripts/setup.sh), then the alanine dipeptide
# pipeline, writing results/alanine_dipeptide/. Arguments go to the pipeline
# (e.g. --preset long, --output DIR, --flow FILE; --help lists them).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BG_BUILD_DIR:-$ROOT/build}
bash "$ROOT/scripts/setup.sh"

export OMP_NUM_THREADS=1
cd "$ROOT"
echo "== alanine dipeptide pipeline"
exec "$BUILD_DIR/examples/alanine_dipeptide_pipeline" "$@"
