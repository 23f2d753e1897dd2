"""Results of runs as data: records, the aggregated table (the paper's Table 1), its CSV and curves.

A *record* is one configuration and seed: its keys (data set, architecture, rule, seed, any run
parameter) and its metrics (a number, or a per-epoch curve whose last value is the final value).
Training loops return records (:func:`dgnlib.vision.records_from_history`), notebooks write them
into ``result.json`` (:func:`dgnlib.sweep.write_result`), and :func:`summarize` groups them into
a :class:`Table` of the final value per (row, column) over seeds, printed by :func:`format_table`
(the one Table-1 formatter), saved by :func:`write_table_csv` and drawn by :func:`plot_curves`.
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
from typing import Any, Mapping, Optional, Sequence

from .atomic import atomic_path, atomic_write_text, json_default

__all__ = ["Record", "Cell", "Table", "format_value", "canonical", "summarize", "format_table",
           "write_table_csv", "plot_curves"]


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


@dataclass(frozen=True)
class Record:
    """One configuration and seed: ``keys`` (run parameters + record items), ``metrics``, ``run`` name."""
    keys: dict
    metrics: dict
    run: str


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
