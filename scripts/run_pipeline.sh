#!/usr/bin/env bash
# The main job: set-up (scripts/setup.sh), then the alanine dipeptide
# pipeline, writing results/alanine_dipeptide/. Arguments go to the pipeline
# (e.g. --preset long, --output DIR, --flow FILE; --help lists them).
# BG_STACK=pypi runs it on the PyPI stack (OpenMM 8, PyTorch 2; docs/stacks.md).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/stack.sh"
bg_stack "${BG_STACK:-debian}"
BG_BUILD_DIR="$BUILD_DIR" bash "$ROOT/scripts/setup.sh"
if [ "${BG_STACK:-debian}" = pypi ]; then
    # C++ programs load plugins from OPENMM_PLUGIN_DIR; the wheel's compiled-in
    # folder (/usr/local/openmm/lib/plugins) is not where pip put them.
    OPENMM_PLUGIN_DIR="$(bg_openmm_library_dir)/plugins"
    export OPENMM_PLUGIN_DIR
fi

export OMP_NUM_THREADS=1
cd "$ROOT"
echo "== alanine dipeptide pipeline"
exec "$BUILD_DIR/examples/alanine_dipeptide_pipeline" "$@"
