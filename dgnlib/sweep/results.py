"""The files of a sweep's run directory and their aggregation into a table and plots.

Layout of ``RUN_DIR`` (written by :mod:`dgnlib.sweep`)::

    RUN_DIR/sweep.json                 the sweep (notebook, grid, fixed, run names in order)
    RUN_DIR/<name>/output.ipynb        the executed notebook (also on failure)
    RUN_DIR/<name>/result.json         the machine-readable result (see below)
    RUN_DIR/<name>/status.json         "running" | "finished" | "failed" (+ error and traceback)

**Result convention.** If the notebook's ``parameters`` cell declares ``result_path = None``, the
runner passes ``result_path`` (absolute path of ``RUN_DIR/<name>/result.json``) and the notebook
writes its results there, best with :func:`write_result` (atomic; a no-op when ``result_path`` is
None, so the notebook still runs by hand)::

    write_result(result_path, {"metrics": {"test_accuracy": curve, "wall_s": 12.3}})

``metrics`` maps names to a number or a per-epoch curve (list of numbers; its last value is the
"final" value). A run that trains several configurations or seeds at once writes
``{"records": [{"seed": 0, "rule": "bp", "metrics": {...}}, ...]}``; the items of a record other
than ``metrics`` add to (override) the run's parameters for that record. Any other items are kept
but ignored by the aggregation. If the notebook writes nothing, the runner writes
``{"status", "params", "wall_time_s", "stdout": [printed lines]}``; the aggregation then parses the
printed lines (by default dgnlib's epoch-log format, :func:`parse_epoch_lines`).

**Aggregation** (:func:`aggregate_dir`): the finished runs' records become a table of the final
``metric``, mean ± sample std (ddof 1) over the ``seed_key`` per configuration, rows and columns
chosen by keys (default: the paper's Table 1, rows ``rule``, columns ``dataset`` x ``arch``),
printed and saved as CSV, plus a PNG of the curves (mean line, ±1 std band) per configuration.

Every file is written atomically (:func:`atomic_write_text`); nothing here needs Dask or papermill.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from ..atomic import atomic_path, atomic_write_text, json_default, read_json, write_json
from ..records import (Cell, Record, Table, canonical, format_table, format_value, plot_curves, summarize,
                       write_table_csv)

__all__ = [
    "STATUS_FILE", "RESULT_FILE", "OUTPUT_NOTEBOOK", "MANIFEST_FILE", "Record", "Cell", "Table",
    "AggregateReport", "json_default", "atomic_write_text", "write_json", "read_json", "write_result",
    "read_status", "format_value", "canonical", "parse_epoch_lines", "load_records", "summarize",
    "format_table", "write_table_csv", "plot_curves", "aggregate_dir",
]

STATUS_FILE, RESULT_FILE, OUTPUT_NOTEBOOK, MANIFEST_FILE = "status.json", "result.json", "output.ipynb", "sweep.json"


def write_result(result_path: Optional[str | os.PathLike], result: Mapping[str, Any]) -> Optional[Path]:
    """Atomically write a notebook's ``result`` dict as JSON to ``result_path`` (NumPy/JAX arrays
    become lists). Does nothing and returns None when ``result_path`` is None (interactive use)."""
    if result_path is None:
        return None
    if not isinstance(result, Mapping):
        raise TypeError(f"result must be a mapping (dict), got {type(result).__name__}")
    return write_json(result_path, dict(result))


def read_status(run_path: Path) -> Optional[dict]:
    try:
        return read_json(run_path / STATUS_FILE)
    except (OSError, ValueError):
        return None


# -------------------------------------------------------------------------------- aggregation

_EPOCH_LINE = re.compile(
    r"^(?P<dataset>\S+) (?P<arch>\S+) (?P<rule>\S+) seed (?P<seed>\d+) epoch (?P<epoch>\d+): "
    r"train loss (?P<train_loss>\S+) acc (?P<train_accuracy>\S+) \| "
    r"val loss (?P<val_loss>\S+) acc (?P<val_accuracy>\S+) \| "
    r"test loss (?P<test_loss>\S+) acc (?P<test_accuracy>\S+)")


def parse_epoch_lines(lines: Sequence[str]) -> list[dict]:
    """Records from dgnlib's vision epoch log (``dgnlib.vision.training.format_epoch_line``)::

        mnist 1x256 exact seed 0 epoch 3: train loss 0.1234 acc 0.9612 | val loss ... | test loss ... acc ...

    -> ``[{"dataset", "arch", "rule", "seed", "metrics": {"epoch": [...], "test_accuracy": [...], ...}}]``
    (one record per data set, architecture, rule and seed; curves in epoch order)."""
    groups: dict[tuple, dict] = {}
    for line in lines:
        m = _EPOCH_LINE.match(line.strip())
        if not m:
            continue
        g = m.groupdict()
        key = (g["dataset"], g["arch"], g["rule"], int(g["seed"]))
        rec = groups.setdefault(key, {"dataset": key[0], "arch": key[1], "rule": key[2], "seed": key[3],
                                      "metrics": {}})
        rec["metrics"].setdefault("epoch", []).append(int(g["epoch"]))
        for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"):
            rec["metrics"].setdefault(k, []).append(float(g[k]))
    for rec in groups.values():  # sort curves by epoch (lines of one record may interleave)
        order = sorted(range(len(rec["metrics"]["epoch"])), key=rec["metrics"]["epoch"].__getitem__)
        rec["metrics"] = {k: [v[i] for i in order] for k, v in rec["metrics"].items()}
    return list(groups.values())


def _run_order(run_dir: Path) -> list[str]:
    names = [p.name for p in sorted(run_dir.iterdir()) if (p / STATUS_FILE).is_file()]
    manifest = run_dir / MANIFEST_FILE
    order = read_json(manifest).get("runs", []) if manifest.is_file() else []
    return [n for n in order if n in names] + [n for n in names if n not in order]


def load_records(run_dir: str | os.PathLike,
                 parser: Optional[Callable[[Sequence[str]], list]] = parse_epoch_lines) -> tuple[list, dict]:
    """Records of the finished runs of ``run_dir`` (in sweep order) and the run counts by status
    (``{"finished": n, "failed": n, "running": n, "pending": n, "no_records": [names]}``).
    A result without ``records``/``metrics`` but with ``stdout`` is parsed by ``parser``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    counts: dict[str, Any] = {"finished": 0, "failed": 0, "running": 0, "pending": 0, "no_records": []}
    manifest = run_dir / MANIFEST_FILE
    planned = read_json(manifest).get("runs", []) if manifest.is_file() else []
    order = _run_order(run_dir)
    counts["pending"] = len([n for n in planned if n not in order])
    records = []
    for name in order:
        status = read_status(run_dir / name) or {}
        state = status.get("status", "running")
        counts[state if state in counts else "running"] += 1
        if state != "finished":
            continue
        try:
            result = read_json(run_dir / name / RESULT_FILE)
        except (OSError, ValueError):
            counts["no_records"].append(name)
            continue
        params = dict(status.get("params") or {})
        if isinstance(result.get("records"), list):
            raw = result["records"]
        elif isinstance(result.get("metrics"), dict):
            raw = [{"metrics": result["metrics"]}]
        elif parser is not None and isinstance(result.get("stdout"), list):
            raw = parser(result["stdout"])
        else:
            raw = []
        if not raw:
            counts["no_records"].append(name)
        for r in raw:
            items = {k: v for k, v in r.items() if k != "metrics"}
            records.append(Record({**params, **items}, dict(r.get("metrics") or {}), name))
    return records, counts


@dataclass
class AggregateReport:
    """Result of :func:`aggregate_dir`: the table, its text, the files written, run counts."""
    table: Table
    text: str
    csv_path: Path
    long_csv_path: Path
    png_path: Optional[Path]
    counts: dict


def aggregate_dir(run_dir: str | os.PathLike, out_dir: Optional[str | os.PathLike] = None, *,
                  metric: str = "test_accuracy", rows: str | Sequence[str] = ("rule",),
                  cols: str | Sequence[str] = ("dataset", "arch"), seed_key: str = "seed",
                  where: Optional[Mapping[str, Any]] = None, scale: Optional[float] = None, plot: bool = True,
                  parser: Optional[Callable[[Sequence[str]], list]] = parse_epoch_lines) -> AggregateReport:
    """Aggregate the finished runs of ``run_dir`` (see :func:`summarize`) and write
    ``table_<metric>.csv``, ``summary_<metric>.csv`` and ``curves_<metric>.png`` to ``out_dir``
    (default ``run_dir/aggregate``)."""
    run_dir = Path(run_dir)
    records, counts = load_records(run_dir, parser)
    if not records:
        raise ValueError(f"{run_dir}: no records in finished runs (runs: {counts})")
    table = summarize(records, metric, rows, cols, seed_key, where, scale)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "aggregate"
    safe = format_value(metric)
    csv_path, long_path = out_dir / f"table_{safe}.csv", out_dir / f"summary_{safe}.csv"
    write_table_csv(table, csv_path, long_path)
    png = plot_curves(table, out_dir / f"curves_{safe}.png") if plot else None
    note = (f"runs: {counts['finished']} finished, {counts['failed']} failed, {counts['running']} running or "
            f"interrupted, {counts['pending']} pending")
    if counts["no_records"]:
        note += f"; finished without records: {counts['no_records']}"
    return AggregateReport(table, format_table(table) + "\n" + note, csv_path, long_path, png, counts)
