"""A sweep's specification: notebook, grid and fixed parameters; its runs, their names and states.

A *sweep* is a notebook, a grid (name -> list of values; every combination is one run) and fixed
parameters, written in a YAML or JSON file (:func:`load_spec`) or on the command line
(:func:`parse_cli_values`)::

    notebook: notebooks/vision_benchmarks.ipynb
    grid:
      datasets: [mnist, fashion_mnist]
      rules: [bp, exact, linear_threshold]
    fixed:
      n_seeds: 2
      epochs: 2

A grid value may itself be a list (``hidden_layers: [[256], [256, 256, 256]]``); the values are
passed to the notebook's ``parameters`` cell unchanged (papermill), so a notebook gets exactly what
the spec says. Each run is a sub-directory of the run directory named by :func:`run_dir_name` after
its grid values (``datasets=mnist__rules=bp``; a list value is joined by ``-``, so
``datasets: [[mnist]]`` names the same directory as ``datasets: [mnist]``; a short hash is appended
when a name would be too long or ambiguous). :func:`plan_runs` lists the runs with their state on
disk (:mod:`dgnlib.sweep.results`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..atomic import canonical_json
from ..checks import finite_number, positive_int, positive_number
from ..records import format_value
from ..textvalues import parse_yaml
from .results import read_status

__all__ = ["RESERVED_PARAMETERS", "MAX_NAME_LENGTH", "AGGREGATE_KEYS", "SweepSpec", "make_spec", "check_aggregate", "load_spec", "parse_cli_values",
           "run_dir_name", "expand_grid", "notebook_parameters", "check_parameters", "RunPlan", "plan_runs"]

RESERVED_PARAMETERS = ("result_path", "checkpoint_dir")  # set by the runner when the notebook declares them
MAX_NAME_LENGTH = 100  # longest run directory name
_SPEC_KEYS = ("notebook", "grid", "fixed", "kernel", "timeout", "description", "aggregate")
# keys of a spec's ``aggregate`` section: the defaults of ``python -m dgnlib.sweep aggregate`` for its run directory
AGGREGATE_KEYS = ("metric", "rows", "cols", "seed_key", "pool", "labels")


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``notebook`` path, ``grid`` (name -> list of values, in order), ``fixed`` values,
    Jupyter ``kernel`` (None: the notebook's), per-cell ``timeout`` in seconds (None: none) and
    ``aggregate``: how its results are tabulated (:data:`AGGREGATE_KEYS`; stored in the run
    directory's manifest, the defaults of :func:`dgnlib.sweep.aggregate_dir`).
    Make one with :func:`make_spec` or :func:`load_spec` (they validate it)."""
    notebook: Path
    grid: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    kernel: Optional[str] = None
    timeout: Optional[float] = None  # per cell, seconds
    aggregate: dict = field(default_factory=dict)


def make_spec(notebook: str | os.PathLike, grid: Optional[Mapping[str, Sequence]] = None,
              fixed: Optional[Mapping[str, Any]] = None, *, kernel: Optional[str] = None,
              timeout: Optional[float] = None, aggregate: Optional[Mapping[str, Any]] = None,
              source: str = "spec") -> SweepSpec:
    """A validated :class:`SweepSpec`.

    Arguments:
      notebook: path of the notebook (checked to exist when the sweep runs).
      grid: parameter name -> non-empty list of values (every combination is one run).
      fixed: parameter name -> value, the same in every run (not also in ``grid``).
      kernel: Jupyter kernel name (default: the notebook's).
      timeout: per-cell execution timeout in seconds (> 0; default none).
      aggregate: defaults of the aggregation of the sweep's results (:data:`AGGREGATE_KEYS`):
        ``metric`` and ``seed_key`` (one name each); ``rows``, ``cols``, ``pool`` (key names, a list
        or a comma-separated string); ``labels`` (value -> display text), as in
        :func:`dgnlib.records.summarize` and :func:`dgnlib.records.format_table`.
      source: names the origin (a file, ``"command line"``) in error messages.

    Returns:
      The spec. ``ValueError`` naming ``source`` and the entry for a bad name or value, a parameter
      in both grid and fixed, or one the runner sets (:data:`RESERVED_PARAMETERS`).
    """
    grid, fixed = dict(grid or {}), dict(fixed or {})
    for k, v in grid.items():
        if not isinstance(k, str) or not k.isidentifier():
            raise ValueError(f"{source}: grid key {k!r} is not a parameter name")
        if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, Sequence) or len(v) == 0:
            raise ValueError(f"{source}: grid.{k} must be a non-empty list of values, got {v!r}")
        grid[k] = list(v)
    for k in fixed:
        if not isinstance(k, str) or not k.isidentifier():
            raise ValueError(f"{source}: fixed key {k!r} is not a parameter name")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ValueError(f"{source}: parameters {both} are both in grid and fixed")
    reserved = sorted(set(RESERVED_PARAMETERS) & (set(grid) | set(fixed)))
    if reserved:
        raise ValueError(f"{source}: {reserved} is set by the runner and cannot be swept or fixed")
    if timeout is not None:

        name = f"{source}: timeout (seconds)"
        timeout = positive_number(name, finite_number(name, timeout))
    if kernel is not None and not isinstance(kernel, str):
        raise ValueError(f"{source}: kernel must be a kernel name, got {kernel!r}")
    return SweepSpec(Path(notebook), grid, fixed, kernel, timeout, check_aggregate(aggregate, source))


def check_aggregate(aggregate: Optional[Mapping[str, Any]], source: str = "spec") -> dict:
    """A spec's ``aggregate`` section, checked.

    Arguments:
      aggregate: None, or a mapping with keys of :data:`AGGREGATE_KEYS`.
      source: names the origin in error messages.

    Returns:
      The section as a dict (empty for None). ``ValueError`` naming ``source`` and the key for an
      unknown key, a key list that is not names, or ``labels`` that is not a mapping of text.
    """
    if aggregate is None:
        return {}
    if not isinstance(aggregate, Mapping):
        raise ValueError(f"{source}: aggregate must be a mapping with keys {list(AGGREGATE_KEYS)}, got {aggregate!r}")
    unknown = [k for k in aggregate if k not in AGGREGATE_KEYS]
    if unknown:
        raise ValueError(f"{source}: unknown aggregate key(s) {unknown}; allowed: {list(AGGREGATE_KEYS)}")
    out = dict(aggregate)
    for k in ("rows", "cols", "pool"):
        if k in out:
            v = out[k]
            names = v.split(",") if isinstance(v, str) else v
            if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
                raise ValueError(f"{source}: aggregate.{k} must be key names (a list or a comma-separated "
                                 f"string), got {v!r}")
            out[k] = list(names)
    for k in ("metric", "seed_key"):
        if k in out and not (isinstance(out[k], str) and out[k]):
            raise ValueError(f"{source}: aggregate.{k} must be one name, got {out[k]!r}")
    if "labels" in out and not (isinstance(out["labels"], Mapping)
                                and all(isinstance(t, str) for t in out["labels"].values())):
        raise ValueError(f"{source}: aggregate.labels must map values to display text, got {out['labels']!r}")
    return out


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read a sweep from a file.

    Arguments:
      path: a YAML (or ``.json``) file with keys ``notebook`` (required), ``grid``, ``fixed``,
        ``kernel``, ``timeout``, ``aggregate``, ``description`` (see :func:`make_spec`). A relative notebook path
        is taken from the current directory, or else from the file's directory.

    Returns:
      The spec. ``FileNotFoundError`` for a missing file or notebook, ``ValueError`` naming the file
      for anything else.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = parse_yaml(text)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a mapping with keys {list(_SPEC_KEYS)}")
    unknown = [k for k in data if k not in _SPEC_KEYS]
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed: {list(_SPEC_KEYS)}")
    nb = data.get("notebook")
    if not isinstance(nb, str) or not nb:
        raise ValueError(f"{path}: key 'notebook' must be the path of a notebook, got {nb!r}")
    for key in ("grid", "fixed"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise ValueError(f"{path}: key '{key}' must be a mapping of parameter names, got {data[key]!r}")
    spec = make_spec(nb, data.get("grid"), data.get("fixed"), kernel=data.get("kernel"),
                     timeout=data.get("timeout"), aggregate=data.get("aggregate"), source=str(path))
    if not spec.notebook.is_absolute() and not spec.notebook.exists():
        if not (path.parent / spec.notebook).exists():
            raise FileNotFoundError(f"{path}: notebook {nb!r} found neither from the current directory "
                                    f"({Path.cwd()}) nor from the sweep file's directory")
        spec = dataclasses.replace(spec, notebook=path.parent / spec.notebook)
    return spec


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: ``"[1,2],3"`` -> ``["[1,2]", "3"]``."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def _yaml_value(text: str):
    import yaml

    if text.strip() == "None":  # Python spelling of null, as in the notebooks' parameter cells
        return None
    try:
        return parse_yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def parse_cli_values(item: str, *, single: bool = False) -> tuple[str, Any]:
    """A parameter given on the command line.

    Arguments:
      item: ``"name=v1,v2"``; each value is read as YAML (``2`` int, ``1e-4`` float (YAML 1.2
        numbers, :func:`dgnlib.textvalues.parse_yaml`), ``true`` bool, ``null`` or ``None`` None,
        ``[256,256]`` list; commas inside brackets or quotes do not split).
      single: the text after ``=`` is one value (``-f``), not a comma-separated list (``-p``).

    Returns:
      ``(name, [v1, v2])``, or ``(name, value)`` with ``single``. ``ValueError`` without ``=`` or
      when the name is not an identifier.
    """
    if "=" not in item:
        raise ValueError(f"expected NAME=VALUE, got {item!r}")
    name, text = item.split("=", 1)
    name = name.strip()
    if not name.isidentifier():
        raise ValueError(f"{item!r}: {name!r} is not a parameter name")
    if single:
        return name, _yaml_value(text)
    return name, [_yaml_value(p.strip()) for p in _split_top_level(text)]


def _check_max_length(max_length: Any) -> None:
    if max_length != MAX_NAME_LENGTH:

        positive_int("max_length", max_length, minimum=10)


def _short_hash(values: Mapping[str, Any]) -> str:
    return hashlib.sha1(canonical_json(dict(values)).encode()).hexdigest()[:8]


def run_dir_name(values: Mapping[str, Any], max_length: int = MAX_NAME_LENGTH) -> str:
    """The directory name of a run.

    Arguments:
      values: the run's grid values, in grid order.
      max_length: longest name (>= 10).

    Returns:
      ``k1=v1__k2=v2`` (values as :func:`dgnlib.records.format_value`: ``[256, 256]`` ->
      ``256-256``, ``True`` -> ``true``), ``run`` for no values; a longer name is cut and suffixed
      by ``-`` and an 8-hex hash of the values.
    """
    _check_max_length(max_length)
    name = "__".join(f"{format_value(k)}={format_value(v)}" for k, v in values.items()) or "run"
    if len(name) > max_length:
        name = f"{name[:max_length - 9]}-{_short_hash(values)}"
    return name


def expand_grid(grid: Mapping[str, Sequence], fixed: Optional[Mapping[str, Any]] = None,
                max_length: int = MAX_NAME_LENGTH) -> list[tuple[str, dict]]:
    """Every run of a grid.

    Arguments:
      grid: parameter name -> list of values.
      fixed: parameters of every run.
      max_length: longest directory name (see :func:`run_dir_name`).

    Returns:
      ``[(name, parameters)]`` for all combinations (the first key varies slowest), the parameters
      being ``fixed`` updated by the combination. Names that would collide (different values, same
      text) get a hash suffix; ``ValueError`` for a repeated combination.
    """
    _check_max_length(max_length)
    keys = list(grid)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*(list(grid[k]) for k in keys))]
    names = [run_dir_name(p, max_length) for p in points]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    names = [n if counts[n] == 1 else f"{n[:max_length - 9]}-{_short_hash(p)}" for n, p in zip(names, points)]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"grid has repeated value combinations: {dup}")
    return [(n, {**dict(fixed or {}), **p}) for n, p in zip(names, points)]


def notebook_parameters(notebook: str | os.PathLike) -> dict:
    """The parameters a notebook declares.

    Arguments:
      notebook: path of the notebook (``FileNotFoundError`` if missing).

    Returns:
      Name -> default value text of its cell tagged ``parameters`` (``papermill.inspect_notebook``;
      empty when it has none).
    """
    import papermill as pm

    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"notebook {path} does not exist")
    return {k: v.get("default") for k, v in pm.inspect_notebook(str(path)).items()}


def check_parameters(spec: SweepSpec) -> dict:
    """Check that the notebook of ``spec`` declares every grid and fixed parameter.

    Arguments:
      spec: the sweep.

    Returns:
      The notebook's parameters (:func:`notebook_parameters`). ``ValueError`` naming the unknown
      parameters and listing the declared ones, or when the notebook has no ``parameters`` cell.
    """
    declared = notebook_parameters(spec.notebook)
    if not declared:
        raise ValueError(f"notebook {spec.notebook} has no cell tagged 'parameters'")
    unknown = [k for k in [*spec.grid, *spec.fixed] if k not in declared]
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for notebook {spec.notebook}; "
                         f"its parameters: {list(declared)}")
    return declared


@dataclass(frozen=True)
class RunPlan:
    """One run of a sweep: ``name`` (sub-directory), ``params``, and ``state`` found on disk:
    ``pending`` | ``running`` (or interrupted) | ``finished`` | ``failed``."""
    name: str
    path: Path
    params: dict
    state: str


def plan_runs(spec: SweepSpec, run_dir: str | os.PathLike, *, force: bool = False) -> list[RunPlan]:
    """The runs of a sweep and their state on disk.

    Arguments:
      spec: the sweep.
      run_dir: its run directory (need not exist).
      force: the runs will be re-run: accept finished runs of other parameters.

    Returns:
      One :class:`RunPlan` per run, in grid order. ``ValueError`` for a finished run whose stored
      parameters differ from the sweep's (naming them), unless ``force``, or when ``run_dir`` is a file.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"run directory {run_dir} is a file; give a directory (created if missing)")
    plans = []
    for name, params in expand_grid(spec.grid, spec.fixed):
        path = run_dir / name
        status = read_status(path)
        state = "pending" if status is None else str(status.get("status", "running"))
        if state == "finished" and not force and canonical_json(status.get("params")) != canonical_json(params):
            old = status.get("params") or {}
            diff = sorted(k for k in set(old) | set(params)
                          if canonical_json(old.get(k)) != canonical_json(params.get(k)))
            raise ValueError(f"run {path} finished with other parameters (differing: {diff}); "
                             f"use another run directory, or force=True / --force to re-run it")
        plans.append(RunPlan(name, path, params, state))
    return plans
