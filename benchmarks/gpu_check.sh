#!/usr/bin/env bash
# GPU check on a machine that already has a CUDA build of JAX and maybe no network (a shared cluster):
# installs dgnlib WITHOUT touching JAX (pip --no-deps), the other missing requirements from a folder of
# wheels when one is given, then runs benchmarks/gpu_check.py (every jitted path, one Table-1
# configuration of 10 seeds x 5 epochs) and prints one summary beside the CPU reference figures.
#
#   bash benchmarks/gpu_check.sh [--wheels DIR] [--dry-run] [--out FILE]
#
# --wheels DIR: wheels of the missing packages, made on a machine with network by
#   python3 -m pip download -d DIR scikit-learn diffrax equinox optax tqdm matplotlib pandas
# (carry DIR along; JAX is never installed, upgraded or replaced by this script).
# The MNIST cache must be there: bash ci/prepare_vision_data.sh, or copy ~/.cache/dgnlib/data/ over.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=
args=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --wheels) WHEELS=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
$PY -c 'import jax; print("found jax", jax.__version__, "on", jax.default_backend(), jax.devices())' || {
    echo "error: no importable JAX; install the CUDA build your cluster provides first" >&2; exit 2; }
if ! $PY -c 'import dgnlib' 2>/dev/null; then
    echo "installing dgnlib from $(pwd) without its dependencies (JAX stays as it is) ..."
    $PY -m pip install -q --no-deps -e .
fi
missing=$($PY benchmarks/gpu_check.py --missing)
if [[ -n $missing ]]; then
    if [[ -z $WHEELS ]]; then
        echo "error: missing packages: $missing; give --wheels DIR (see the header of this script)" >&2; exit 2
    fi
    echo "installing $missing from $WHEELS (no index) ..."
    $PY -m pip install -q --no-index --find-links "$WHEELS" $missing
fi
exec $PY benchmarks/gpu_check.py "${args[@]}"
