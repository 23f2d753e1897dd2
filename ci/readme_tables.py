#!/usr/bin/env python3
"""The README's result tables, generated from the result files under ``results/`` (never typed).

Each block of the README between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` holds the
text that ``python3 -m dgnlib.sweep aggregate results/NAME`` prints (the table, then the run
counts), in a code block (``NAME@METRIC``: the same with ``--metric METRIC``); a block ``NAME.cost`` holds the wall and CPU time of each configuration of
``results/NAME`` (the sum over its units of their epochs' times, or their status files' wall time for
units that predate those), its seeds and the commit(s)
and devices it ran on; a block ``NAME.log`` holds the summary lines (``chosen``, ``one-pass``,
``forgetting <learner>:``) of the full run's log ``expected_outputs/NAME_full.txt``. This script rewrites the blocks from the files, or checks that they
agree with them (``--check``, run by ``make test`` through ``tests/test_readme_tables.py``)::

    python3 ci/readme_tables.py            # rewrite every block from results/
    python3 ci/readme_tables.py --check    # exit 1 with a diff when a block differs from results/

A block whose directory has no finished runs yet says so.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- results:(?P<name>[\w.@-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def _unit_cost(status: dict, result: dict):
    """``(wall seconds, CPU seconds or None, timed per epoch?)`` of one unit: the sums of its epochs'
    times (``epoch_s`` of its ``result.json``: every execution of a resumed unit, without pauses in
    the CPU time) when it has them for every epoch, else its status's wall time (the last execution
    only, kernel start included) and no CPU time."""
    times = list((result.get("epoch_s") or {}).values())
    walls = [w for t in times for w in t.get("wall", [])]
    cpus = [c for t in times for c in t.get("cpu", [])]
    if walls and None not in walls and None not in cpus and len(cpus) == len(walls):
        return sum(walls), sum(cpus), True
    return float(status.get("wall_time_s") or 0.0), None, False


def cost_text(run_dir: Path) -> str:
    """Wall and CPU time per configuration of the finished runs in ``run_dir``: one line each, in run
    order (:func:`_unit_cost` of each unit, summed)."""
    from dgnlib.atomic import read_json
    from dgnlib.sweep import load_records

    records, _ = load_records(run_dir)
    configs: dict = {}
    for r in records:
        key = (r.keys["dataset"], r.keys["arch"], r.keys["rule"], r.keys.get("protocol", ""))
        c = configs.setdefault(key, {"runs": {}, "seeds": 0})
        c["seeds"] += 1
        if r.run not in c["runs"]:
            status, result = read_json(run_dir / r.run / "status.json"), read_json(run_dir / r.run / "result.json")
            env = result.get("environment") or {}
            c["runs"][r.run] = (*_unit_cost(status, result), str(env.get("dgnlib_commit", "?"))[:7],
                                f"{env.get('devices', '?')}, {env.get('cpu_count', '?')} CPU cores" + (
                                    f" ({env['cpu_affinity']} per run)" if env.get("cpu_affinity") not in
                                    (None, env.get("cpu_count")) else ""))
    head = "configuration (data set, depth, rule, protocol)"
    labels = {key: "{} {} {}, {}".format(*key) for key in configs}
    width = max([58] + [len(label) for label in labels.values()])
    lines = [f"{head:<{width}} units  seeds  wall time   CPU time  commit   machine"]
    untimed = False
    for (ds, arch, rule, protocol), c in configs.items():
        units = c["runs"].values()
        wall = sum(u[0] for u in units)
        timed = all(u[2] for u in units)
        untimed |= not timed
        cpu = f"{sum(u[1] for u in units) / 60:>6.1f} min" if timed else f"{'-':>10}"
        commits = ",".join(sorted({u[3] for u in units}))
        machines = "; ".join(sorted({u[4] for u in units}))
        lines.append(f"{labels[ds, arch, rule, protocol]:<{width}} {len(c['runs']):>5}  {c['seeds']:>5}  {wall / 60:>6.1f} min{' ' if timed else '*'} "
                     f"{cpu}  {commits:<7}  {machines}")
    if untimed:
        lines.append("* from the sweep's status of a unit that did not record its epochs' times (commits before "
                     "those times were saved):\n  the wall time of its last execution, kernel start included; "
                     "earlier executions of a resumed unit are missing and pauses are counted")
    return "\n".join(lines)


SUMMARY = re.compile(r"^(chosen |one-pass |forgetting \w+: )")


def block_text(name: str, root: Path = ROOT) -> str:
    """The body of block ``name``: ``aggregate``'s text for ``results/<name>`` in a code block
    (``<name>@<metric>``: with ``--metric <metric>``; ``<name>.cost``: :func:`cost_text` of ``results/<name>``; ``<name>.log``: the summary lines of
    ``expected_outputs/<name>_full.txt``)."""
    from dgnlib.sweep import aggregate_dir, load_records

    if name.endswith(".log"):
        path = root / "expected_outputs" / f"{name[:-len('.log')]}_full.txt"
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if SUMMARY.match(ln)] if path.is_file() else []
        text = "\n".join(lines) or f"(no full run in {path.relative_to(root)} yet)"
        return f"```text\n{text}\n```\n"
    if name.endswith(".cost"):
        run_dir = root / "results" / name[:-len(".cost")]
        try:
            text = cost_text(run_dir) if run_dir.is_dir() else ""
        except (OSError, ValueError):
            text = ""
        return f"```text\n{text or f'(no finished runs in {run_dir.relative_to(root)} yet)'}\n```\n"

    name, _, metric = name.partition("@")
    run_dir = root / "results" / name
    command = f"python3 -m dgnlib.sweep aggregate results/{name}" + (f" --metric {metric}" if metric else "")
    if not run_dir.is_dir():
        text = f"(no finished runs in results/{name} yet)"
    else:
        if not load_records(run_dir)[0]:
            text = f"(no finished runs in results/{name} yet)"
        else:  # any other error (an unknown metric, a damaged file) is raised
            with tempfile.TemporaryDirectory() as out:  # the CSV files; the README needs the text only
                text = aggregate_dir(run_dir, out, metric=metric or None, plot=False).text
    return f"```text\n$ {command}\n{text}\n```\n"


def render(readme: str, root: Path = ROOT) -> str:
    """``readme`` with every results block regenerated."""
    return BLOCK.sub(lambda m: m.group(1) + block_text(m.group("name"), root) + m.group(4), readme)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare only; exit 1 when a block differs")
    args = p.parse_args(argv)
    old = README.read_text(encoding="utf-8")
    names = [m.group("name") for m in BLOCK.finditer(old)]
    new = render(old)
    if args.check:
        if new != old:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       "README.md", "README.md (from results/)"))
            print("README result tables differ from results/: run python3 ci/readme_tables.py", file=sys.stderr)
            return 1
        print(f"README result tables agree with results/ ({', '.join(names) or 'no blocks'})")
        return 0
    if new != old:
        README.write_text(new, encoding="utf-8")
    print(f"{'rewrote' if new != old else 'unchanged'}: README blocks {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
