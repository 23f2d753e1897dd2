#!/bin/bash
# Run, or resume, every unit of the paper's Table 1 and of the linear-threshold gap ablation, cheapest
# first, and copy each finished unit's small files (records, status) into results/ every two minutes.
#
#   bash examples/sweeps/run_table1.sh [RUN_ROOT]     # run directories under RUN_ROOT (default runs/)
#
# Order: the main table's 1 x 256 units, the linear-threshold gap ablation, the two 1 x 256 ablation rows
# (soft targets, averaged Jacobian), then the main table's 3 x 256 units. A finished unit is skipped, an
# interrupted one resumes after its last finished epoch (its checkpoint under RUN_ROOT), so the command can
# be run again at any time; only results/ needs to be kept (committed) between machines: on a fresh machine
# the units finished in results/ are copied into RUN_ROOT and skipped. One run per core, each pinned to its
# core with single-threaded XLA (--pin-cores: on 2 cores, 19% faster than two unpinned runs and 38% faster than
# one run on both cores; N_WORKERS overrides the count). Afterwards: python3 ci/readme_tables.py rewrites the
# README's tables.
set -u
cd "$(dirname "$0")/../.."
ROOT=${1:-runs}
export MPLBACKEND=Agg
# a paused run (kill -STOP, e.g. to free the cores for a while) is not restarted by the Dask scheduler
export DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL=None
# units finished elsewhere (committed in results/) count as finished here: their status and records are
# copied into the run directories first (never over a file already there)
for d in table1 lt_gap; do
  if [ -d "results/$d" ]; then mkdir -p "$ROOT/$d" && cp -rn "results/$d/." "$ROOT/$d/"; fi
done
keep() {
  python3 -m dgnlib.sweep export "$ROOT/table1" results/table1 2>/dev/null | head -1
  python3 -m dgnlib.sweep export "$ROOT/lt_gap" results/lt_gap 2>/dev/null | head -1
}
( while sleep 120; do keep >/dev/null; done ) &
exporter=$!
trap 'kill $exporter 2>/dev/null' EXIT
WORKERS=${N_WORKERS:-$(nproc)}
run() { echo "=== $(date -u +%FT%TZ) $*"; python3 -m dgnlib.sweep run "$@" --n-workers "$WORKERS" --pin-cores --no-progress; }
run examples/sweeps/table1.yaml -p "hidden_layers=[256]" -o "$ROOT/table1"
run examples/sweeps/lt_gap.yaml -o "$ROOT/lt_gap"
run examples/sweeps/lt_gap_momentum.yaml -o "$ROOT/lt_gap"
run examples/sweeps/table1_soft_targets.yaml -o "$ROOT/table1"
run examples/sweeps/table1_averaged_jacobian.yaml -o "$ROOT/table1"
run examples/sweeps/table1.yaml -o "$ROOT/table1"
keep
echo "=== $(date -u +%FT%TZ) done; python3 ci/readme_tables.py updates the README's tables"
