#!/usr/bin/env python
"""Execute the project's notebooks with papermill and check their printed logs.

Each entry of ``ci/notebooks.json`` names a notebook, the papermill parameters to run it with,
the expected-output file, a regular expression that selects the log lines to compare, and the
tolerance (see ``ci/logcompare.py``). For every entry this script executes the notebook
(kernel start included, timed), prints the selected log lines, compares them number by number
with the expected file and prints a readable diff on mismatch. It exits 1 if any log drifts.

    python ci/run_notebooks.py                       # all entries
    python ci/run_notebooks.py dgn_classification    # some entries
    python ci/run_notebooks.py --jobs 2              # two notebooks (kernels) at a time
    python ci/run_notebooks.py --quiet               # a line per notebook; the diff of a mismatch
    python ci/run_notebooks.py --regenerate NAME     # rewrite NAME's expected file from a real run
                                                     # (only for an intended, explained change)
Executed notebooks are written to ``ci/out/`` (used by nbval afterwards).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from logcompare import Tolerance, compare_lines, select_lines  # noqa: E402
from dgnlib.sweep.execute import KERNEL_MANAGER  # noqa: E402

CONFIG = ROOT / "ci" / "notebooks.json"
OUT_DIR = ROOT / "ci" / "out"


def load_entries(config: Path = CONFIG) -> list:
    entries = json.loads(config.read_text())
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"{config}: entry names must be unique, got {names}")
    return entries


def printed_stdout(nb) -> str:
    """All text a notebook printed to stdout, cell after cell."""
    chunks = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text = out.get("text", "")
                chunks.append("".join(text) if isinstance(text, list) else text)
    return "".join(chunks)


def execute(entry: dict, out_dir: Path):
    """Run one notebook with papermill; returns (executed notebook, seconds)."""
    import papermill as pm

    notebook = ROOT / entry["notebook"]
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{entry['name']}.ipynb"
    start = time.perf_counter()
    nb = pm.execute_notebook(
        str(notebook), str(output), parameters=entry.get("parameters", {}),
        cwd=str(notebook.parent), kernel_name=entry.get("kernel", "python3"),
        progress_bar=False, kernel_manager_class=KERNEL_MANAGER,  # IPC: no per-kernel TCP warning
    )
    return nb, time.perf_counter() - start


def _execute_in_worker(entry: dict, out_dir: Path):
    """:func:`execute` in a worker process: returns ``(seconds, None)`` or ``(None, error text)``
    (the executed notebook is read back from ``out_dir``)."""
    try:
        return execute(entry, out_dir)[1], None
    except Exception as e:  # noqa: BLE001 - reported by the parent, with the notebook's name
        return None, f"{type(e).__name__}: {e}"


def check(entry: dict, regenerate: bool = False, out_dir: Path = OUT_DIR, executed=None,
          quiet: bool = False) -> bool:
    """Execute ``entry`` (or take ``executed`` = ``(notebook, seconds)`` from a worker), print its
    selected log lines (``quiet``: only their count; a mismatch still prints its diff) and compare
    them with the expected file."""
    name = entry["name"]
    print(f"=== {name}: {entry['notebook']} parameters={entry.get('parameters', {})}", flush=True)
    nb, seconds = execute(entry, out_dir) if executed is None else executed
    lines = select_lines(printed_stdout(nb), entry.get("lines"))
    if not quiet:
        for line in lines:
            print(line)
    print(f"--- {name}: executed in {seconds:.1f} s (papermill, kernel start included)", flush=True)
    expected_path = ROOT / entry["expected"]
    if regenerate:
        expected_path.parent.mkdir(parents=True, exist_ok=True)
        expected_path.write_text("\n".join(lines) + "\n")
        print(f"--- {name}: wrote {entry['expected']} from this run ({len(lines)} lines)")
        return True
    if not expected_path.exists():
        print(f"FAIL {name}: expected output {entry['expected']} does not exist "
              f"(create it from a real run with --regenerate {name})")
        return False
    expected = select_lines(expected_path.read_text(), entry.get("lines"))
    problems = compare_lines(lines, expected, Tolerance.from_dict(entry.get("tolerance")))
    if problems:
        print(f"FAIL {name}: printed log differs from {entry['expected']}:")
        print("\n".join(problems))
        return False
    print(f"ok   {name}: {len(lines)} lines match {entry['expected']} within tolerance {entry.get('tolerance')}")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="entries of ci/notebooks.json to run (default: all)")
    parser.add_argument("--regenerate", action="store_true",
                        help="rewrite the expected-output files of the named entries from this run")
    parser.add_argument("--list", action="store_true", help="list the entries and exit")
    parser.add_argument("--config", type=Path, default=CONFIG, help="entries file (default ci/notebooks.json)")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where executed notebooks go (default ci/out)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print a line per notebook (and the diff of a mismatch), not its log lines")
    parser.add_argument("--jobs", "-j", type=int, default=1,
                        help="notebooks executed at once, each in its own process and kernel (default 1); "
                             "the logs are checked and printed in the entries' order")
    args = parser.parse_args(argv)
    entries = load_entries(args.config)
    if args.list:
        for e in entries:
            print(f"{e['name']}: {e['notebook']} -> {e['expected']}")
        return 0
    known = {e["name"] for e in entries}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown entries {unknown}; known: {sorted(known)}")
    if args.regenerate and not args.names:
        parser.error("--regenerate needs the names of the entries to rewrite")
    selected = [e for e in entries if not args.names or e["name"] in args.names]
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.jobs == 1:
        failed = [e["name"] for e in selected if not check(e, args.regenerate, args.out_dir, quiet=args.quiet)]
    else:
        failed = _check_parallel(selected, args.jobs, args.regenerate, args.out_dir, args.quiet)
    print(f"{len(selected) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _check_parallel(selected: list, jobs: int, regenerate: bool, out_dir: Path, quiet: bool = False) -> list:
    """Execute the entries ``jobs`` at a time (in the entries' order), then check each one in that
    order. Returns the names that failed."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import nbformat

    start = time.perf_counter()
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_execute_in_worker, e, out_dir) for e in selected]
        outcomes = [f.result() for f in futures]
    print(f"--- executed {len(selected)} notebooks, {jobs} at a time, in {time.perf_counter() - start:.1f} s",
          flush=True)
    failed = []
    for entry, (seconds, error) in zip(selected, outcomes):
        if error is not None:
            print(f"=== {entry['name']}: {entry['notebook']} parameters={entry.get('parameters', {})}")
            print(f"FAIL {entry['name']}: the notebook raised {error}")
            failed.append(entry["name"])
            continue
        nb = nbformat.read(str(out_dir / f"{entry['name']}.ipynb"), as_version=4)
        if not check(entry, regenerate, out_dir, executed=(nb, seconds), quiet=quiet):
            failed.append(entry["name"])
    return failed


if __name__ == "__main__":
    sys.exit(main())
