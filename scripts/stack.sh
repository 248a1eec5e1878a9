# Sourced by setup.sh, run_tests.sh and run_pipeline.sh (with ROOT set):
# where each stack lives (docs/stacks.md).

# bg_stack STACK: sets BUILD_DIR (BG_BUILD_DIR if set), PYTHON (the stack's
# interpreter) and, for pypi, VENV (BG_VENV if set); fails on another name.
bg_stack() {
    case "$1" in
        debian)
            BUILD_DIR=${BG_BUILD_DIR:-$ROOT/build}
            PYTHON=/usr/bin/python3 ;;
        pypi)
            BUILD_DIR=${BG_BUILD_DIR:-$ROOT/build-pypi}
            VENV=${BG_VENV:-$ROOT/.venv-pypi}
            PYTHON=$VENV/bin/python ;;
        *)
            echo "$(basename "$0"): BG_STACK must be debian or pypi, got '$1'" >&2
            return 1 ;;
    esac
}

# The folder of the OpenMM library that $PYTHON's openmm package loads
# (the wheel's OpenMM.libs/lib; OpenMM's plugins are in plugins/ below it).
bg_openmm_library_dir() {
    "$PYTHON" -c 'import openmm.version as v; print(v.openmm_library_path)'
}
