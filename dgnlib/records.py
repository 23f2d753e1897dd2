"""Results of runs as data: records, the aggregated table (the paper's Table 1), its CSV and curves.

A *record* is one configuration and seed, a plain dict (the contract between the training loops,
the notebooks, the sweep and Table 1)::

    {"dataset": "mnist", "arch": "1x256", "rule": "exact", "seed": 0,
     "metrics": {"epoch": [1, 2], "test_accuracy": [0.91, 0.93], ...}}

Its items other than ``metrics`` are its *keys* (data set, architecture, rule, seed, any run
parameter); each metric is a number or a per-epoch curve whose last value is the final value.
Training loops return such dicts, notebooks write them into ``result.json``
(:func:`dgnlib.sweep.write_result`), and :func:`summarize` groups them (or :class:`Record` objects,
see :func:`records_from_dicts`) into a :class:`Table` of the final value per (row, column):
mean ± sample standard deviation (ddof 1) over seeds, computed with pandas. The table is printed by
:func:`format_table` (the one Table-1 formatter), saved by :func:`write_table_csv` and drawn by
:func:`plot_curves` (into a PNG file, or into a notebook's axes)::

    table = summarize(records)                      # rows: rule; columns: dataset x arch
    print(format_table(table))
    plot_curves(table, "curves.png")                # or plot_curves(table, axes=ax) in a notebook

pandas and matplotlib are imported only when a table is built, saved or drawn.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from .atomic import atomic_path, atomic_write_text, canonical_json
from .checks import finite_number, positive_int

__all__ = ["Record", "Cell", "Table", "format_value", "records_from_dicts", "summarize", "format_table",
           "write_table_csv", "plot_curves"]


def format_value(value: Any) -> str:
    """Short text of a key or parameter value (table labels, CSV cells, run directory names).

    Arguments:
      value: a string, number, bool, None, list/tuple or mapping of these.

    Returns:
      Lists joined by ``-`` (``"empty"`` for none), mappings as ``key_value`` joined by ``-``,
      booleans and None in lower case, then every character outside ``[A-Za-z0-9._+-]`` replaced
      by ``_`` (``"_"`` for an empty text).
    """
    if isinstance(value, bool) or value is None:
        text = str(value).lower()
    elif isinstance(value, (list, tuple)):
        text = "-".join(format_value(v) for v in value) or "empty"
    elif isinstance(value, Mapping):
        text = "-".join(f"{k}_{format_value(v)}" for k, v in value.items()) or "empty"
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9._+\-]", "_", text) or "_"


@dataclass(frozen=True)
class Record:
    """One configuration and seed: ``keys`` (run parameters + record items), ``metrics``, and
    ``run``, the name of the run it came from (for error messages; ``""`` when in memory)."""
    keys: dict
    metrics: dict
    run: str = ""


def records_from_dicts(dicts: Iterable[Mapping[str, Any]], params: Optional[Mapping[str, Any]] = None,
                       run: str = "") -> list[Record]:
    """:class:`Record` objects from record dicts (the module's contract).

    Arguments:
      dicts: record dicts ``{key: value, ..., "metrics": {name: number or curve}}``.
      params: keys every record starts from (a run's parameters); a record's own items override them.
      run: name of the source (a run directory's name), stored in each record and named in errors.

    Returns:
      One record per dict, in order. Raises ``ValueError`` naming ``run`` and the index of a dict
      that is not a mapping or whose ``metrics`` is not a mapping.
    """
    return [_record(d, i, params, run) for i, d in enumerate(dicts)]


def _record(d: Any, i: int, params: Optional[Mapping[str, Any]], run: str) -> Record:
    where = f" of run {run}" if run else ""
    if not isinstance(d, Mapping):
        raise ValueError(f"record {i}{where} must be a dict of keys and 'metrics', got {d!r}")
    metrics = d.get("metrics", {})
    if not isinstance(metrics, Mapping):
        raise ValueError(f"record {i}{where}: 'metrics' must be a dict of name -> number or curve, got {metrics!r}")
    keys = {**dict(params or {}), **{k: v for k, v in d.items() if k != "metrics"}}
    return Record(keys, dict(metrics), run)


def _label(values: Sequence, keys: Optional[Sequence[str]] = None,
           labels: Optional[Mapping[Any, str]] = None) -> str:
    """``"mnist 1x256"`` (or ``"dataset=mnist arch=1x256"`` with ``keys``; a value found in
    ``labels`` is shown as its label alone); ``"all"`` for no values."""
    texts = []
    for i, v in enumerate(values):
        if labels is not None and isinstance(v, str) and v in labels:
            texts.append(str(labels[v]))
            continue
        t = v if isinstance(v, str) else format_value(v)
        texts.append(t if keys is None else f"{keys[i]}={t}")
    return " ".join(texts) or "all"


@dataclass(frozen=True)
class Cell:
    """Final ``metric`` values of one (row, column) configuration over seeds, with their ``mean``
    and sample standard deviation ``std`` (ddof 1; NaN for one value), unscaled."""
    values: tuple
    seeds: tuple
    curves: tuple  # per seed: the curve (list) or None for scalar metrics
    runs: tuple
    mean: float
    std: float

    @property
    def n(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Table:
    """Aggregated table: ``cells[(row, col)]`` for row/column value tuples (in first-seen order);
    ``scale`` multiplies the values shown (100: percent)."""
    metric: str
    row_keys: tuple
    col_keys: tuple
    rows: tuple
    cols: tuple
    cells: dict
    scale: float = 1.0

    def to_frame(self):
        """pandas ``DataFrame``, one line per cell: the row and column keys, ``metric``, ``scale``,
        ``n``, ``mean``, ``std`` (scaled; std NaN for n = 1), ``seeds``, ``values`` (scaled) and
        ``runs`` (each a list). A list-valued key (e.g. hidden widths) is shown as its
        :func:`format_value` text."""
        import pandas as pd

        columns = [*self.row_keys, *self.col_keys, "metric", "scale", "n", "mean", "std", "seeds", "values", "runs"]
        lines = [[*(_key_text(v) for v in (*rv, *cv)), self.metric, self.scale,
                  c.n, c.mean * self.scale, c.std * self.scale, list(c.seeds),
                  [v * self.scale for v in c.values], list(c.runs)]
                 for (rv, cv), c in self.cells.items()]
        return pd.DataFrame(lines, columns=columns)


def _as_keys(name: str, keys: str | Sequence[str] | None) -> tuple:
    if keys is None:
        return ()
    if isinstance(keys, str):
        return tuple(k for k in keys.split(",") if k)
    if not all(isinstance(k, str) for k in keys):
        raise ValueError(f"{name} must be key names (a comma-separated string or a list of strings), got {keys!r}")
    return tuple(keys)


def _key_text(v) -> Any:
    """A key value in a CSV cell: a list (frozen to a tuple) as its :func:`format_value` text."""
    return format_value(v) if isinstance(v, tuple) else v


def _freeze(v):
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


def _final(record: Record, metric: str):
    """(final value, curve or None) of ``record``'s ``metric``."""
    v = record.metrics[metric]
    if isinstance(v, (list, tuple)):
        if not v:
            raise ValueError(f"metric {metric!r} of run {record.run or '(in memory)'} is an empty curve")
        return float(v[-1]), [float(x) for x in v]
    return float(v), None


def summarize(records: Sequence[Record | Mapping[str, Any]], metric: str = "test_accuracy",
              rows: str | Sequence[str] = ("rule",), cols: str | Sequence[str] = ("dataset", "arch"),
              seed_key: str = "seed", where: Optional[Mapping[str, Any]] = None,
              scale: Optional[float] = None, pool: str | Sequence[str] = ()) -> Table:
    """Group records by the ``rows`` and ``cols`` keys into a :class:`Table` of the final ``metric``.

    Arguments:
      records: :class:`Record` objects or record dicts (see the module docstring).
      metric: the metric to tabulate; a curve's final value is its last element.
      rows, cols: key names (a list, or a comma-separated string; none: one row / column ``all``).
      seed_key: the key of the replicates: the records of one cell must differ only in it (else
        ``ValueError`` naming the other varying keys: add them to rows/cols or fix them with
        ``where``) and must not repeat a seed.
      where: keep only the records whose keys equal these values.
      pool: other keys that may differ within a cell (e.g. a run parameter that only chooses which
        seeds a run trains, such as ``first_seed`` when a configuration's seeds run in groups).
      scale: factor of the values shown (default: 100 when ``"accuracy"`` is in the metric name, else 1).

    Returns:
      The table; rows and columns in first-seen order, mean and sample std (ddof 1) per cell.
    """
    import pandas as pd

    rows, cols, pool = _as_keys("rows", rows), _as_keys("cols", cols), _as_keys("pool", pool)
    records = [r if isinstance(r, Record) else _record(r, i, None, "") for i, r in enumerate(records)]
    if where:
        records = [r for r in records if all(k in r.keys and canonical_json(r.keys[k]) == canonical_json(v)
                                             for k, v in where.items())]
    if not records:
        raise ValueError("no records to aggregate" + (f" match where={dict(where)}" if where else ""))
    with_metric = [r for r in records if metric in r.metrics]
    if not with_metric:
        names = sorted({k for r in records for k in r.metrics})
        raise ValueError(f"metric {metric!r} is in no record; available metrics: {names}")
    for r in with_metric:
        missing = [k for k in (*rows, *cols) if k not in r.keys]
        if missing:
            raise ValueError(f"key(s) {missing} (rows/cols) missing in a record of run {r.run or '(in memory)'}; "
                             f"its keys: {sorted(r.keys)}")
    if scale is None:
        scale = 100.0 if "accuracy" in metric else 1.0
    else:

        scale = finite_number("scale", scale)
        if scale == 0:
            raise ValueError("scale must be a non-zero number, got 0")

    # one line per record: its cell (row and column values), seed and final value
    finals = [_final(r, metric) for r in with_metric]
    frame = pd.DataFrame({
        "row": [tuple(_freeze(r.keys[k]) for k in rows) for r in with_metric],
        "col": [tuple(_freeze(r.keys[k]) for k in cols) for r in with_metric],
        "seed": [canonical_json(r.keys.get(seed_key)) for r in with_metric],
        "value": [v for v, _ in finals],
    })
    frame["cell"] = frame.groupby(["row", "col"], sort=False, dropna=False).ngroup()  # first-seen order
    by_cell = frame.groupby("cell")
    stats = by_cell["value"].agg(["mean", "std"])  # std: ddof 1, NaN for one value
    # the other keys (not rows, cols or seed) as JSON text, a missing key as null: one value per cell
    other = pd.DataFrame([{k: canonical_json(v) for k, v in r.keys.items()
                           if k not in (*rows, *cols, seed_key, *pool)}
                          for r in with_metric], index=frame.index)
    varying = other.fillna("null").groupby(frame["cell"]).nunique().gt(1)
    repeated = frame.duplicated(["cell", "seed"], keep=False)

    cells = {}
    for i, idx in by_cell.indices.items():
        rv, cv = frame.at[idx[0], "row"], frame.at[idx[0], "col"]
        group = [with_metric[j] for j in idx]
        differ = sorted(k for k in varying.columns if varying.at[i, k])
        if differ:
            raise ValueError(f"configuration rows={_label(rv)!r} cols={_label(cv)!r} pools records that differ "
                             f"in {differ}, not only in {seed_key!r}; add them to rows/cols, pool them (pool=) or select "
                             f"with where")
        seeds = tuple(r.keys.get(seed_key) for r in group)
        if repeated.iloc[idx].any():
            raise ValueError(f"configuration rows={_label(rv)!r} cols={_label(cv)!r} has repeated "
                             f"{seed_key!r} values {list(seeds)} (runs {[r.run for r in group]})")
        cells[(rv, cv)] = Cell(tuple(finals[j][0] for j in idx), seeds, tuple(finals[j][1] for j in idx),
                               tuple(r.run for r in group), float(stats.at[i, "mean"]), float(stats.at[i, "std"]))
    row_vals = tuple(dict.fromkeys(k[0] for k in cells))
    col_vals = tuple(dict.fromkeys(k[1] for k in cells))
    return Table(metric, rows, cols, row_vals, col_vals, cells, float(scale))


def format_table(table: Table, precision: Optional[int] = None,
                 labels: Optional[Mapping[str, str]] = None) -> str:
    """The table as text: a title line, a header, a rule and one line per row.

    Arguments:
      table: from :func:`summarize`.
      precision: decimals (default 2 for percentages, else 4).
      labels: display text of key values in the row and column labels (e.g. ``{"bp": "BP"}``).

    Returns:
      ``mean ± std`` (scaled) per cell, the value alone for n = 1, ``-`` for a missing cell; the
      title gives the number of seeds n, or, when cells differ in n, each cell ends with ``(n=3)``.
    """
    if precision is None:
        precision = 2 if table.scale == 100 else 4
    else:

        precision = positive_int("precision", precision, minimum=0)
    header = ["/".join(table.row_keys) or "-"] + [_label(c, labels=labels) for c in table.cols]
    ns = {c.n for c in table.cells.values()}
    body = []
    for rv in table.rows:
        line = [_label(rv, labels=labels)]
        for cv in table.cols:
            c = table.cells.get((rv, cv))
            if c is None:
                line.append("-")
                continue
            mu, sd = c.mean * table.scale, c.std * table.scale
            text = f"{mu:.{precision}f} ± {sd:.{precision}f}" if c.n > 1 else f"{mu:.{precision}f}"
            line.append(text + (f" (n={c.n})" if len(ns) > 1 else ""))
        body.append(line)
    widths = [max(len(r[j]) for r in [header] + body) for j in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    unit = " (%)" if table.scale == 100 else ("" if table.scale == 1 else f" (x{table.scale:g})")
    n_txt = "/".join(str(n) for n in sorted(ns))
    title = (f"{table.metric}{unit}, final value, mean ± std over {n_txt} seed(s); rows: "
             f"{'/'.join(table.row_keys) or '-'}, columns: {' x '.join(table.col_keys) or '-'}")
    return "\n".join([title, fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in body])


def write_table_csv(table: Table, path: str | os.PathLike, long_path: Optional[str | os.PathLike] = None) -> Path:
    """Save ``table`` as CSV files (atomically).

    Arguments:
      table: from :func:`summarize`.
      path: the table in its layout: the row keys, then ``<column> mean``, ``<column> std``,
        ``<column> n`` per column (values scaled as printed; empty std for n = 1, empty mean and
        n = 0 for a missing cell).
      long_path: if given, one line per cell (:meth:`Table.to_frame`; seeds and values as JSON
        lists, runs space-separated).

    Returns:
      ``Path(path)``.
    """
    import pandas as pd

    wide = pd.DataFrame([[_key_text(v) for v in rv] for rv in table.rows], columns=list(table.row_keys),
                        index=range(len(table.rows)))
    blocks = []
    for cv in table.cols:
        cells = [table.cells.get((rv, cv)) for rv in table.rows]
        blocks.append(pd.DataFrame({
            f"{_label(cv)} mean": [None if c is None else c.mean * table.scale for c in cells],
            f"{_label(cv)} std": [None if c is None or c.n < 2 else c.std * table.scale for c in cells],
            f"{_label(cv)} n": [0 if c is None else c.n for c in cells]}, index=wide.index))
    wide = pd.concat([wide, *blocks], axis=1)
    out = atomic_write_text(path, wide.to_csv(index=False, lineterminator="\r\n"))
    if long_path is not None:
        frame = table.to_frame()
        frame["std"] = frame["std"].where(frame["n"] > 1)
        for col in ("seeds", "values"):
            frame[col] = frame[col].map(json.dumps)
        frame["runs"] = frame["runs"].map(" ".join)
        atomic_write_text(long_path, frame.to_csv(index=False, lineterminator="\r\n"))
    return out


def plot_curves(table: Table, path: Optional[str | os.PathLike] = None, *, axes=None, linestyle: str = "-",
                labels: Optional[Mapping[str, str]] = None, suffix: str = ""):
    """Curves of ``table.metric`` against epoch: one panel per column of the table that has curves,
    one line per row (mean over seeds, band ±1 sample std when n > 1; curves cut to the shortest
    seed). Row ``i`` of the table is drawn in colour ``C{i}``, so two tables of the same rows drawn
    into the same axes (e.g. test, then validation accuracy with ``linestyle="--"``) match.

    Arguments:
      table: from :func:`summarize` of a curve metric (scalar cells are skipped).
      path: write the figure as a PNG there (a figure of its own, without pyplot, unless ``axes``).
      axes: a matplotlib ``Axes``, or one per panel, to draw into (a notebook); default: a new
        figure (pyplot when ``path`` is None, so that a notebook shows it).
      linestyle: of the mean lines.
      labels: display text of key values in legends and titles (e.g. ``{"bp": "BP"}``).
      suffix: appended to every legend entry (e.g. ``" (validation)"``).

    Returns:
      With ``path``: ``Path(path)``, or None (no file written) when no cell has curves. Without:
      the list of axes drawn into (empty when no cell has curves).
    """
    cols = [cv for cv in table.cols
            if any(cell.curves and all(c is not None for c in cell.curves)
                   for (_, cv2), cell in table.cells.items() if cv2 == cv)]
    if not cols:
        return None if path is not None else []
    created = axes is None
    if created:
        ncol = min(len(cols), 3)
        nrow = math.ceil(len(cols) / ncol)
        if path is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(4.6 * ncol, 3.4 * nrow))
        else:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=(4.6 * ncol, 3.4 * nrow))
            FigureCanvasAgg(fig)
        axes = [fig.add_subplot(nrow, ncol, i + 1) for i in range(len(cols))]
    else:
        import numpy as np

        axes = list(np.ravel(np.asarray(axes, dtype=object)))  # one Axes, a list, or plt.subplots' array
        if len(axes) != len(cols):
            raise ValueError(f"axes: {len(axes)} given, the table has {len(cols)} column(s) with curves "
                             f"({[_label(cv) for cv in cols]})")
    _draw(table, cols, axes, linestyle, labels, suffix)
    if created:
        axes[0].figure.tight_layout()
    if path is None:
        return axes
    with atomic_path(path, suffix=".png") as tmp:
        axes[0].figure.savefig(tmp, dpi=100, format="png")
    return Path(path)


def _draw(table: Table, cols: list, axes: list, linestyle: str, labels, suffix: str) -> None:
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    for ax, cv in zip(axes, cols):
        for i, rv in enumerate(table.rows):
            cell = table.cells.get((rv, cv))
            if cell is None or any(c is None for c in cell.curves):
                continue
            t = min(len(c) for c in cell.curves)
            y = np.array([c[:t] for c in cell.curves], np.float64) * table.scale  # (seeds, epochs)
            x = np.arange(1, t + 1)
            mean = y.mean(axis=0)
            name = _label(rv, table.row_keys, labels)
            ax.plot(x, mean, linestyle, color=f"C{i}", label=f"{name}{suffix} (n={cell.n})")
            if cell.n > 1:
                sd = y.std(axis=0, ddof=1)
                ax.fill_between(x, mean - sd, mean + sd, color=f"C{i}", alpha=0.25, linewidth=0)
        ax.set_title(_label(cv, table.col_keys, labels))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(table.metric + (" (%)" if table.scale == 100 else ""))
        ax.legend(fontsize=8)
