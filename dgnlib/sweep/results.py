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

from ..atomic import atomic_path

__all__ = [
    "STATUS_FILE", "RESULT_FILE", "OUTPUT_NOTEBOOK", "MANIFEST_FILE", "Record", "Cell", "Table",
    "AggregateReport", "json_default", "atomic_write_text", "write_json", "read_json", "write_result",
    "read_status", "format_value", "canonical", "parse_epoch_lines", "load_records", "summarize",
    "format_table", "write_table_csv", "plot_curves", "aggregate_dir",
]

STATUS_FILE, RESULT_FILE, OUTPUT_NOTEBOOK, MANIFEST_FILE = "status.json", "result.json", "output.ipynb", "sweep.json"


def json_default(obj):
    """JSON fallback: NumPy/JAX arrays and scalars (``tolist``/``item``), tuples, paths."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`dgnlib.atomic.atomic_path`): readers see the old
    or the new file, never a partial one."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=1, default=json_default) + "\n")


def write_result(result_path: Optional[str | os.PathLike], result: Mapping[str, Any]) -> Optional[Path]:
    """Atomically write a notebook's ``result`` dict as JSON to ``result_path`` (NumPy/JAX arrays
    become lists). Does nothing and returns None when ``result_path`` is None (interactive use)."""
    if result_path is None:
        return None
    if not isinstance(result, Mapping):
        raise TypeError(f"result must be a mapping (dict), got {type(result).__name__}")
    return write_json(result_path, dict(result))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def format_value(value: Any) -> str:
    """Short text of a parameter value for directory names: lists joined by ``-``, booleans and
    None in lower case, then every character outside ``[A-Za-z0-9._+-]`` replaced by ``_``."""
    if isinstance(value, bool) or value is None:
        text = str(value).lower()
    elif isinstance(value, (list, tuple)):
        text = "-".join(format_value(v) for v in value) or "empty"
    elif isinstance(value, Mapping):
        text = "-".join(f"{k}_{format_value(v)}" for k, v in value.items()) or "empty"
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9._+\-]", "_", text) or "_"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=json_default)


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


@dataclass(frozen=True)
class Record:
    """One configuration and seed: ``keys`` (run parameters + record items), ``metrics``, ``run`` name."""
    keys: dict
    metrics: dict
    run: str


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


def _label(values: Sequence, keys: Optional[Sequence[str]] = None) -> str:
    """``"mnist 1x256"`` (or ``"dataset=mnist arch=1x256"`` with ``keys``); ``"all"`` for none."""
    texts = [v if isinstance(v, str) else format_value(v) for v in values]
    if keys is not None:
        texts = [f"{k}={t}" for k, t in zip(keys, texts)]
    return " ".join(texts) or "all"


@dataclass(frozen=True)
class Cell:
    """Final ``metric`` values of one (row, column) configuration over seeds."""
    values: tuple
    seeds: tuple
    curves: tuple  # per seed: the curve (list) or None for scalar metrics
    runs: tuple

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof 1); NaN for one value."""
        if self.n < 2:
            return math.nan
        mu = self.mean
        return math.sqrt(sum((v - mu) ** 2 for v in self.values) / (self.n - 1))


@dataclass(frozen=True)
class Table:
    """Aggregated table: ``cells[(row, col)]`` for row/column value tuples (in first-seen order)."""
    metric: str
    row_keys: tuple
    col_keys: tuple
    rows: tuple
    cols: tuple
    cells: dict
    scale: float = 1.0


def _as_keys(keys: str | Sequence[str] | None) -> tuple:
    if keys is None:
        return ()
    if isinstance(keys, str):
        return tuple(k for k in keys.split(",") if k)
    return tuple(keys)


def summarize(records: Sequence[Record], metric: str = "test_accuracy", rows: str | Sequence[str] = ("rule",),
              cols: str | Sequence[str] = ("dataset", "arch"), seed_key: str = "seed",
              where: Optional[Mapping[str, Any]] = None, scale: Optional[float] = None) -> Table:
    """Group ``records`` by the ``rows`` and ``cols`` keys; each group's records must differ only in
    ``seed_key`` (else ValueError naming the other varying keys: add them to rows/cols or fix them
    with ``where``). Final value of a curve: its last element. ``scale`` multiplies the values
    shown (default: 100 when ``"accuracy"`` is in the metric name, else 1)."""
    rows, cols = _as_keys(rows), _as_keys(cols)
    if where:
        records = [r for r in records if all(k in r.keys and canonical(r.keys[k]) == canonical(v)
                                             for k, v in where.items())]
    records = list(records)
    if not records:
        raise ValueError("no records to aggregate" + (f" match where={dict(where)}" if where else ""))
    with_metric = [r for r in records if metric in r.metrics]
    if not with_metric:
        names = sorted({k for r in records for k in r.metrics})
        raise ValueError(f"metric {metric!r} is in no record; available metrics: {names}")
    for r in with_metric:
        missing = [k for k in (*rows, *cols) if k not in r.keys]
        if missing:
            raise ValueError(f"key(s) {missing} (rows/cols) missing in a record of run {r.run}; "
                             f"its keys: {sorted(r.keys)}")
    groups: dict[tuple, list] = {}
    for r in with_metric:
        rv = tuple(_freeze(r.keys[k]) for k in rows)
        cv = tuple(_freeze(r.keys[k]) for k in cols)
        groups.setdefault((rv, cv), []).append(r)
    cells = {}
    for (rv, cv), group in groups.items():
        other = sorted({k for r in group for k in r.keys} - set(rows) - set(cols) - {seed_key})
        varying = [k for k in other if len({canonical(r.keys.get(k)) for r in group}) > 1]
        if varying:
            raise ValueError(f"configuration rows={_label(rv)!r} cols={_label(cv)!r} pools records that differ "
                             f"in {varying}, not only in {seed_key!r}; add them to rows/cols or select with where")
        seeds = tuple(r.keys.get(seed_key) for r in group)
        if len(group) > 1 and len({canonical(s) for s in seeds}) < len(seeds):
            raise ValueError(f"configuration rows={_label(rv)!r} cols={_label(cv)!r} has repeated "
                             f"{seed_key!r} values {list(seeds)} (runs {[r.run for r in group]})")
        values, curves = [], []
        for r in group:
            v = r.metrics[metric]
            if isinstance(v, (list, tuple)):
                if not v:
                    raise ValueError(f"metric {metric!r} of run {r.run} is an empty curve")
                curves.append([float(x) for x in v])
                values.append(float(v[-1]))
            else:
                curves.append(None)
                values.append(float(v))
        cells[(rv, cv)] = Cell(tuple(values), seeds, tuple(curves), tuple(r.run for r in group))
    if scale is None:
        scale = 100.0 if "accuracy" in metric else 1.0
    row_vals = tuple(dict.fromkeys(k[0] for k in groups))
    col_vals = tuple(dict.fromkeys(k[1] for k in groups))
    return Table(metric, rows, cols, row_vals, col_vals, cells, float(scale))


def _freeze(v):
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


def format_table(table: Table, precision: Optional[int] = None) -> str:
    """Text table: ``mean ± std`` (scaled) per cell, ``-`` for missing, the value alone for n = 1."""
    precision = (2 if table.scale == 100 else 4) if precision is None else precision
    header = ["/".join(table.row_keys) or "-"] + [_label(c) for c in table.cols]
    body, ns = [], set()
    for rv in table.rows:
        line = [_label(rv)]
        for cv in table.cols:
            c = table.cells.get((rv, cv))
            if c is None:
                line.append("-")
                continue
            ns.add(c.n)
            mu, sd = c.mean * table.scale, c.std * table.scale
            line.append(f"{mu:.{precision}f} ± {sd:.{precision}f}" if c.n > 1 else f"{mu:.{precision}f}")
        body.append(line)
    widths = [max(len(r[j]) for r in [header] + body) for j in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    unit = " (%)" if table.scale == 100 else ("" if table.scale == 1 else f" (x{table.scale:g})")
    n_txt = "/".join(str(n) for n in sorted(ns))
    title = (f"{table.metric}{unit}, final value, mean ± std over {n_txt} seed(s); rows: "
             f"{'/'.join(table.row_keys) or '-'}, columns: {' x '.join(table.col_keys) or '-'}")
    return "\n".join([title, fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in body])


def write_table_csv(table: Table, path: str | os.PathLike, long_path: Optional[str | os.PathLike] = None) -> Path:
    """Save ``table`` as CSV in its layout (row keys, then ``<column> mean``, ``std``, ``n`` per
    column; values scaled as printed) and, if ``long_path``, one line per cell with the seed values."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*table.row_keys] + [f"{_label(c)} {s}" for c in table.cols for s in ("mean", "std", "n")])
    for rv in table.rows:
        line = [*rv]
        for cv in table.cols:
            c = table.cells.get((rv, cv))
            line += ["", "", 0] if c is None else [repr(c.mean * table.scale),
                                                   "" if c.n < 2 else repr(c.std * table.scale), c.n]
        w.writerow([format_value(v) if isinstance(v, tuple) else v for v in line])
    out = atomic_write_text(path, buf.getvalue())
    if long_path is not None:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([*table.row_keys, *table.col_keys, "metric", "scale", "n", "mean", "std", "seeds", "values", "runs"])
        for (rv, cv), c in table.cells.items():
            w.writerow([*(format_value(v) if isinstance(v, tuple) else v for v in (*rv, *cv)), table.metric,
                        table.scale, c.n, repr(c.mean * table.scale),
                        "" if c.n < 2 else repr(c.std * table.scale), json.dumps(list(c.seeds)),
                        json.dumps([v * table.scale for v in c.values]), " ".join(c.runs)])
        atomic_write_text(long_path, buf.getvalue())
    return out


def plot_curves(table: Table, path: str | os.PathLike) -> Optional[Path]:
    """PNG of the metric's curves: one panel per column, one line per row (mean over seeds, band
    ±1 std; curves cut to the shortest seed). Returns None (no file) when no cell has curves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    cols = [cv for cv in table.cols if any(c is not None for (rv, cv2), cell in table.cells.items()
                                           if cv2 == cv for c in cell.curves)]
    if not cols:
        return None
    ncol = min(len(cols), 3)
    nrow = math.ceil(len(cols) / ncol)
    fig = Figure(figsize=(4.6 * ncol, 3.4 * nrow))
    FigureCanvasAgg(fig)
    for i, cv in enumerate(cols):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        for rv in table.rows:
            cell = table.cells.get((rv, cv))
            if cell is None or any(c is None for c in cell.curves):
                continue
            t = min(len(c) for c in cell.curves)
            mean = [sum(c[j] for c in cell.curves) / cell.n * table.scale for j in range(t)]
            x = list(range(1, t + 1))
            line, = ax.plot(x, mean, label=f"{_label(rv, table.row_keys)} (n={cell.n})")
            if cell.n > 1:
                sd = [math.sqrt(sum((c[j] * table.scale - mean[j]) ** 2 for c in cell.curves) / (cell.n - 1))
                      for j in range(t)]
                ax.fill_between(x, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                                color=line.get_color(), alpha=0.25, linewidth=0)
        ax.set_title(_label(cv, table.col_keys))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(table.metric + (" (%)" if table.scale == 100 else ""))
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return Path(path)


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
