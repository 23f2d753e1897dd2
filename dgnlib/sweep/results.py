"""The files of a sweep's run directory, the records they hold, and their aggregation.

Layout of ``RUN_DIR`` (one sub-directory per run, named by :func:`dgnlib.sweep.run_dir_name`)::

    RUN_DIR/sweep.json                 MANIFEST_FILE: the sweep (notebook, grid, fixed, run names in order)
    RUN_DIR/<name>/output.ipynb        OUTPUT_NOTEBOOK: the executed notebook (also on failure)
    RUN_DIR/<name>/result.json         RESULT_FILE: the run's records, written by the notebook
    RUN_DIR/<name>/status.json         STATUS_FILE: "running" | "finished" | "failed" (+ error, traceback)
    RUN_DIR/<name>/checkpoints/        CHECKPOINT_DIR: the notebook's training state (``checkpoint_dir``)
    RUN_DIR/aggregate/                 AGGREGATE_DIR: table CSVs and curves (:func:`aggregate_dir`)

**Results are data.** A notebook whose ``parameters`` cell declares ``result_path = None`` is given
the absolute path of ``RUN_DIR/<name>/result.json`` and writes its records there with
:func:`write_result` (atomic; a no-op when ``result_path`` is None, so the notebook still runs by
hand)::

    write_result(result_path, {"records": [{"dataset": "mnist", "rule": "bp", "seed": 0,
                                            "metrics": {"test_accuracy": curve}}, ...]})

Each record follows :mod:`dgnlib.records` (keys, and ``metrics``: numbers or per-epoch curves); its
keys add to (override) the run's parameters. A run of one configuration may write
``{"metrics": {...}}`` instead (one record, the run's parameters as keys). Other items are kept but
not aggregated. The records are the only input of the aggregation: nothing printed is parsed, and
a finished run without records is counted in ``counts["no_records"]`` and named in the report.

**Aggregation** (:func:`aggregate_dir`): the finished runs' records become a
:class:`dgnlib.records.Table` of the final ``metric`` (mean ± sample std over seeds; default: the
paper's Table 1, rows ``rule``, columns ``dataset`` x ``arch``), printed and saved as CSV, with a
PNG of the curves. Every file is written atomically; nothing here needs Dask or papermill.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..atomic import read_json, write_json
from ..records import Table, format_table, format_value, plot_curves, records_from_dicts, summarize, write_table_csv

__all__ = ["STATUS_FILE", "RESULT_FILE", "OUTPUT_NOTEBOOK", "MANIFEST_FILE", "CHECKPOINT_DIR", "AGGREGATE_DIR",
           "NO_RECORDS_HINT", "DEFAULT_AGGREGATE", "utc_timestamp", "write_result", "read_status", "notebook_stdout",
           "load_records", "AggregateReport", "aggregate_settings", "aggregate_dir", "export_runs"]

STATUS_FILE, RESULT_FILE, OUTPUT_NOTEBOOK, MANIFEST_FILE = "status.json", "result.json", "output.ipynb", "sweep.json"
CHECKPOINT_DIR, AGGREGATE_DIR = "checkpoints", "aggregate"
NO_RECORDS_HINT = ("a notebook gives records by declaring `result_path = None` in its parameters cell and "
                   "calling dgnlib.sweep.write_result(result_path, {'records': [...]})")


def utc_timestamp() -> str:
    """The current time as ISO 8601 text in UTC, to the second (the status files' times)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_result(result_path: Optional[str | os.PathLike], result: Mapping[str, Any]) -> Optional[Path]:
    """Atomically write a notebook's ``result`` as JSON to ``result_path``.

    Arguments:
      result_path: the file the sweep runner passed to the notebook; None (the notebook run by hand):
        nothing is written.
      result: ``{"records": [record dicts]}`` (or ``{"metrics": {...}}`` for one record) and any
        other items; NumPy/JAX arrays become lists.

    Returns:
      The path written, or None. ``TypeError`` if ``result`` is not a mapping or holds a value
      JSON cannot store (the file is then left unchanged).
    """
    if result_path is None:
        return None
    if not isinstance(result, Mapping):
        raise TypeError(f"result must be a mapping (dict), got {type(result).__name__}")
    return write_json(result_path, dict(result))


def read_status(run_path: str | os.PathLike) -> Optional[dict]:
    """The status dict of the run in directory ``run_path``, or None when it has none (not started)
    or it cannot be read."""
    try:
        return read_json(Path(run_path) / STATUS_FILE)
    except (OSError, ValueError):
        return None


def notebook_stdout(notebook: str | os.PathLike | Mapping) -> list[str]:
    """The lines an executed notebook printed (its cells' stdout streams, in order).

    Arguments:
      notebook: the path of an ``.ipynb`` file, or the notebook as a dict.

    Returns:
      The printed lines (for people and tests: a failed run keeps its last 30 in its status;
      results are never read from them).
    """
    nb = notebook if isinstance(notebook, Mapping) else read_json(notebook)
    chunks = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text = out.get("text", "")
                chunks.append("".join(text) if isinstance(text, list) else text)
    return "".join(chunks).splitlines()


def _run_order(run_dir: Path) -> tuple[list[str], list[str]]:
    """(names of the runs that have a status, in sweep order; names the manifest plans)."""
    names = [p.name for p in sorted(run_dir.iterdir()) if (p / STATUS_FILE).is_file()]
    manifest = run_dir / MANIFEST_FILE
    planned = read_json(manifest).get("runs", []) if manifest.is_file() else []
    return [n for n in planned if n in names] + [n for n in names if n not in planned], planned


def load_records(run_dir: str | os.PathLike) -> tuple[list, dict]:
    """The records of the finished runs of ``run_dir`` and the runs counted by state.

    Arguments:
      run_dir: a sweep's run directory.

    Returns:
      ``(records, counts)``: :class:`dgnlib.records.Record` objects in sweep order (keys: the run's
      parameters updated by the record's items; ``run``: the run's name), and
      ``{"finished": n, "failed": n, "running": n, "pending": n, "no_records": [names]}``, where
      ``no_records`` names the finished runs whose ``result.json`` is missing, unreadable, or holds
      neither ``records`` nor ``metrics``. ``FileNotFoundError`` if ``run_dir`` does not exist;
      ``ValueError`` naming the run for a malformed record.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    counts: dict[str, Any] = {"finished": 0, "failed": 0, "running": 0, "pending": 0, "no_records": []}
    order, planned = _run_order(run_dir)
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
            result = None
        if isinstance(result, dict) and "records" in result:
            raw = result["records"]
            if not isinstance(raw, list):
                raise ValueError(f"{run_dir / name / RESULT_FILE}: 'records' must be a list of record dicts, "
                                 f"got {type(raw).__name__}")
        elif isinstance(result, dict) and isinstance(result.get("metrics"), dict):
            raw = [{"metrics": result["metrics"]}]
        else:
            raw = []
        if not raw:
            counts["no_records"].append(name)
        records += records_from_dicts(raw, params=status.get("params") or {}, run=name)
    return records, counts


@dataclass
class AggregateReport:
    """Result of :func:`aggregate_dir`: the table, its text (with the run counts), the files
    written, and the run counts of :func:`load_records`."""
    table: Table
    text: str
    csv_path: Path
    long_csv_path: Path
    png_path: Optional[Path]
    counts: dict


def _no_records_text(names: Sequence[str]) -> str:
    return (f"{len(names)} finished run(s) wrote no records (result.json missing or without "
            f"'records'/'metrics'): {list(names)}; {NO_RECORDS_HINT}")


DEFAULT_AGGREGATE = {"metric": "test_accuracy", "rows": ["rule"], "cols": ["dataset", "arch"], "seed_key": "seed",
                     "pool": [], "labels": None}


def aggregate_settings(run_dir: str | os.PathLike, **given) -> dict:
    """The aggregation settings of ``run_dir``: each of ``metric``, ``rows``, ``cols``, ``seed_key``,
    ``pool`` and ``labels`` from ``given`` when not None, else from the ``aggregate`` section of the
    run directory's manifest (the sweep spec's), else :data:`DEFAULT_AGGREGATE` (the paper's Table 1)."""
    manifest = Path(run_dir) / MANIFEST_FILE
    stored = (read_json(manifest).get("aggregate") or {}) if manifest.is_file() else {}
    out = {}
    for k, default in DEFAULT_AGGREGATE.items():
        v = given.get(k)
        out[k] = v if v is not None else stored.get(k, default)
    return out


def aggregate_dir(run_dir: str | os.PathLike, out_dir: Optional[str | os.PathLike] = None, *,
                  metric: Optional[str] = None, rows: str | Sequence[str] | None = None,
                  cols: str | Sequence[str] | None = None, seed_key: Optional[str] = None,
                  where: Optional[Mapping[str, Any]] = None, scale: Optional[float] = None,
                  pool: str | Sequence[str] | None = None, labels: Optional[Mapping[str, str]] = None,
                  plot: bool = True) -> AggregateReport:
    """Aggregate the finished runs of ``run_dir`` into a table, its CSV files and curves.

    Arguments:
      run_dir: a sweep's run directory (or a copy of its small files, :func:`export_runs`).
      out_dir: where to write ``table_<metric>.csv``, ``summary_<metric>.csv`` (one line per cell)
        and ``curves_<metric>.png`` (default ``run_dir/aggregate``).
      metric, rows, cols, seed_key, where, scale, pool: as in :func:`dgnlib.records.summarize`;
        labels: display text of key values, as in :func:`dgnlib.records.format_table`. None: the
        sweep spec's ``aggregate`` section (stored in ``sweep.json``), else the paper's Table 1
        (:data:`DEFAULT_AGGREGATE`: test accuracy, rows ``rule``, columns ``dataset`` x ``arch``).
      plot: write the PNG (when the metric has curves).

    Returns:
      The report; its text is the printed table and a line of run counts that names the finished
      runs without records. ``ValueError`` when no finished run has records.
    """
    run_dir = Path(run_dir)
    records, counts = load_records(run_dir)
    if not records:
        no_records = f"; {_no_records_text(counts['no_records'])}" if counts["no_records"] else ""
        unfinished = counts["running"] + counts["pending"] + counts["failed"]
        resume = ("; `python -m dgnlib.sweep run SPEC -o RUN_DIR` again resumes the unfinished runs (failed ones "
                  "are retried, interrupted ones continue from their checkpoints)") if unfinished else ""
        raise ValueError(f"{run_dir}: no records in finished runs (runs: {counts['finished']} finished, "
                         f"{counts['failed']} failed, {counts['running']} running or interrupted, "
                         f"{counts['pending']} pending){no_records}{resume}")
    st = aggregate_settings(run_dir, metric=metric, rows=rows, cols=cols, seed_key=seed_key, pool=pool,
                            labels=labels)
    table = summarize(records, st["metric"], st["rows"], st["cols"], st["seed_key"], where, scale, st["pool"])
    out_dir = Path(out_dir) if out_dir is not None else run_dir / AGGREGATE_DIR
    safe = format_value(st["metric"])
    csv_path, long_path = out_dir / f"table_{safe}.csv", out_dir / f"summary_{safe}.csv"
    write_table_csv(table, csv_path, long_path)
    png = plot_curves(table, out_dir / f"curves_{safe}.png", labels=st["labels"]) if plot else None
    note = (f"runs: {counts['finished']} finished, {counts['failed']} failed, {counts['running']} running or "
            f"interrupted, {counts['pending']} pending")
    if counts["no_records"]:
        note += f"; {_no_records_text(counts['no_records'])}"
    return AggregateReport(table, format_table(table, labels=st["labels"]) + "\n" + note, csv_path, long_path,
                           png, counts)


def _portable(data: Any, run_dir: Path) -> Any:
    """``data`` without this machine's paths: the run directory's absolute path becomes ``RUN_DIR``,
    and an absolute ``notebook`` path becomes relative to the working directory (the repository,
    where ``export`` is run), else ``<folder>/<name>``."""
    root = str(run_dir.resolve())

    def fix(v, key=None):
        if isinstance(v, dict):
            return {k: fix(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, str):
            if key == "notebook" and os.path.isabs(v):
                p = Path(v)
                try:
                    return str(p.relative_to(Path.cwd().resolve()))
                except ValueError:
                    return str(Path(*p.parts[-2:]))
            return v.replace(root, "RUN_DIR")
        return v

    return fix(data)


def export_runs(run_dir: str | os.PathLike, dest: str | os.PathLike) -> list[str]:
    """Copy the small files of the finished runs of ``run_dir`` into ``dest`` (results to keep).

    For every finished run with a readable ``result.json``: its ``status.json`` and ``result.json``
    (not the executed notebook, not the checkpoints), into ``dest/<run name>/``; and the manifest ``sweep.json``, whose run list is
    merged with the one already in ``dest`` (several sweeps may be exported into one directory).
    ``dest`` is then a run directory that :func:`aggregate_dir` reads like the original. The copies
    name no path of this machine: the run directory becomes ``RUN_DIR`` (in the commands) and the
    notebook's path is made relative to the working directory. Every file is written atomically; a
    run already in ``dest`` with the same files is left alone.

    Arguments:
      run_dir: a sweep's run directory.
      dest: the directory to export into (created).

    Returns:
      The names of the runs copied (new or changed). ``FileNotFoundError`` if ``run_dir`` does
      not exist; ``ValueError`` if ``dest`` is ``run_dir`` or a file.
    """
    run_dir, dest = Path(run_dir), Path(dest)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"dest {dest} is a file, not a directory")
    if dest.resolve() == run_dir.resolve():
        raise ValueError(f"dest must differ from run_dir ({run_dir})")
    copied = []
    order, _ = _run_order(run_dir)
    for name in order:
        status = read_status(run_dir / name) or {}
        if status.get("status") != "finished" or not (run_dir / name / RESULT_FILE).is_file():
            continue
        try:
            files = {fname: _portable(read_json(run_dir / name / fname), run_dir)
                     for fname in (RESULT_FILE, STATUS_FILE)}
        except (OSError, ValueError):  # an unreadable result holds no records: nothing to keep
            continue
        changed = False
        for fname, data in files.items():
            target = dest / name / fname
            if not target.is_file() or read_json(target) != data:
                write_json(target, data)
                changed = True
        if changed:
            copied.append(name)
    manifest = run_dir / MANIFEST_FILE
    if manifest.is_file():
        new = _portable(read_json(manifest), run_dir)
        old_path = dest / MANIFEST_FILE
        old = read_json(old_path) if old_path.is_file() else {}
        new["runs"] = list(dict.fromkeys([*old.get("runs", []), *new.get("runs", [])]))
        if old.get("aggregate") and not new.get("aggregate"):
            new["aggregate"] = old["aggregate"]
        if not old_path.is_file() or {k: v for k, v in old.items() if k != "written"} != \
                {k: v for k, v in new.items() if k != "written"}:
            write_json(old_path, new)
    return copied
