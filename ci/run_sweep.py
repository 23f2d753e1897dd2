#!/usr/bin/env python
"""Run the small example sweep on a local Dask cluster, aggregate it, check the table.

The sweep is ``examples/sweeps/small.yaml`` (both data sets x 3 rules, 2 seeds trained at once,
1000 training examples, 2 epochs: 6 papermill runs of the vision notebook), run exactly as a user
would with ``python -m dgnlib.sweep run`` on a 2-worker LocalCluster, then
``python -m dgnlib.sweep aggregate``. Checks: every run finished; the table has the 3 rules x
2 data sets with 2 seeds each; its CSV files and the PNG of the curves exist; the printed table
matches ``expected_outputs/sweep_small.txt`` number by number (absolute tolerance 0.2 percentage
points; see ``ci/logcompare.py``).

    python ci/run_sweep.py                 # run (resumes/skips what is already in ci/sweep_out)
    python ci/run_sweep.py --fresh         # delete ci/sweep_out first
    python ci/run_sweep.py --regenerate    # rewrite the expected table from a real run
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from logcompare import Tolerance, compare_lines, select_lines  # noqa: E402

SPEC = ROOT / "examples" / "sweeps" / "small.yaml"
RUN_DIR = ROOT / "ci" / "sweep_out" / "small"
EXPECTED = ROOT / "expected_outputs" / "sweep_small.txt"
TABLE_LINES = r"^(test_accuracy \(%\)|rule |BP |Exact inverse |Linear threshold |bp |exact |linear_threshold )"
TOLERANCE = Tolerance(abs=0.2)
RULES, DATASETS = ("bp", "exact", "linear_threshold"), ("mnist", "fashion_mnist")


def sweep(*args: str) -> str:
    """Run ``python -m dgnlib.sweep ARGS``, printing its lines as they come (a status line per run);
    returns what it printed."""
    cmd = [sys.executable, "-m", "dgnlib.sweep", *args]
    print("$", " ".join(cmd[1:]), flush=True)
    lines = []
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    if proc.returncode != 0:
        raise SystemExit(f"FAILED: {' '.join(cmd[1:])} exited with {proc.returncode}")
    return "".join(lines)


def check_files(run_dir: Path) -> list:
    problems = []
    agg = run_dir / "aggregate"
    for name in ("table_test_accuracy.csv", "summary_test_accuracy.csv", "curves_test_accuracy.png"):
        if not (agg / name).is_file() or (agg / name).stat().st_size == 0:
            problems.append(f"missing or empty: {agg / name}")
    summary = agg / "summary_test_accuracy.csv"
    if summary.is_file():
        rows = list(csv.DictReader(summary.open()))
        cells = {(r["rule"], r["dataset"]): int(r["n"]) for r in rows}
        want = {(r, d): 2 for r in RULES for d in DATASETS}
        if cells != want:
            problems.append(f"table cells (rule, dataset) -> seeds: {cells}, expected {want}")
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fresh", action="store_true", help="delete the run directory first")
    p.add_argument("--regenerate", action="store_true", help="rewrite the expected table from this run")
    args = p.parse_args(argv)
    if args.fresh and RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    t0 = time.perf_counter()
    sweep("run", str(SPEC), "-o", str(RUN_DIR), "--n-workers", "2", "--no-progress")
    text = sweep("aggregate", str(RUN_DIR))
    wall = time.perf_counter() - t0
    problems = check_files(RUN_DIR)
    got = select_lines(text, TABLE_LINES)
    if args.regenerate:
        EXPECTED.write_text("\n".join(got) + "\n")
        print(f"wrote {EXPECTED} ({len(got)} lines)")
    else:
        problems += compare_lines(got, select_lines(EXPECTED.read_text(), TABLE_LINES), TOLERANCE)
    if problems:
        print("SWEEP CHECK FAILED:\n" + "\n".join(problems))
        return 1
    print(f"sweep OK: 6 runs, table and plots in {RUN_DIR / 'aggregate'} ({wall:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
