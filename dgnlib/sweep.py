"""Parameter sweeps over papermill notebooks, run on Dask, and their aggregation.

A *sweep* is a notebook, a grid (name -> list of values; every combination is one run) and fixed
parameters. Each run executes the notebook with papermill into its own sub-directory of the run
directory, named after its grid values (e.g. ``datasets=mnist__rules=bp__seed=0``; a short hash is
appended when the name would be too long or ambiguous)::

    RUN_DIR/sweep.json                 the sweep (notebook, grid, fixed, run names in order)
    RUN_DIR/<name>/output.ipynb        the executed notebook (also on failure)
    RUN_DIR/<name>/result.json         the machine-readable result (see below)
    RUN_DIR/<name>/status.json         "running" | "finished" | "failed" (+ error and traceback),
                                       parameters, start/end time, wall time, worker

``RUN_DIR/<name>/checkpoints/`` is where a notebook that declares ``checkpoint_dir = None`` in its
``parameters`` cell saves its training state after every epoch (the runner passes that folder):
a run killed at any point (SIGKILL, a node lost, a wall-time limit) and re-run resumes from its last
finished epoch instead of starting again; ``force=True`` deletes it first.

``status.json`` is written last, atomically (temporary file + ``os.replace``): a run is finished
if and only if its status says so. Re-running the same sweep skips finished runs and retries failed
or interrupted ones (``force=True`` re-runs everything); a finished run whose stored parameters
differ from the sweep's is an error (use another run directory). Do not run two sweeps on one
run directory at the same time (a run of the other would look interrupted and be re-run).

Runs execute on Dask: a ``distributed.LocalCluster`` by default (``n_workers`` processes, one thread
each), or any scheduler (``scheduler="tcp://host:8786"`` or a scheduler file), so a dask-jobqueue
(SLURM, PBS) or Kubernetes cluster runs the same sweep; the workers and the scheduler (it unpickles
the tasks) must be able to import ``dgnlib``, and the workers must see the run directory and the
notebook on a shared file system (SLURM: ``examples/slurm/table1.sbatch``). ``dask`` and ``distributed``
are imported only when a sweep runs.

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

CLI::

    python -m dgnlib.sweep run examples/sweeps/small.yaml -o runs/small --n-workers 2
    python -m dgnlib.sweep run --notebook nb.ipynb -p rules=bp,exact -p seed=0,1 -f epochs=2 -o runs/a
    python -m dgnlib.sweep run spec.yaml -o runs/a --scheduler tcp://host:8786
    python -m dgnlib.sweep run spec.yaml -o runs/a --scheduler-file scheduler.json   # dask scheduler/worker
    python -m dgnlib.sweep aggregate runs/small                 # Table 1 of test accuracy
    python -m dgnlib.sweep aggregate runs/a --rows rules --cols x --metric acc
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

from .atomic import atomic_path

__all__ = [
    "SweepSpec", "RunPlan", "RunOutcome", "SweepReport", "Record", "Cell", "Table", "AggregateReport",
    "write_result", "atomic_write_text", "load_spec", "make_spec", "parse_cli_values", "format_value",
    "run_name", "expand_grid", "notebook_parameters", "check_parameters", "plan_runs", "run_sweep",
    "execute_run", "parse_epoch_lines", "load_records", "summarize", "format_table", "write_table_csv",
    "plot_curves", "aggregate_dir", "main",
]

STATUS_FILE, RESULT_FILE, OUTPUT_NOTEBOOK, MANIFEST_FILE = "status.json", "result.json", "output.ipynb", "sweep.json"
RESERVED_PARAMETERS = ("result_path", "checkpoint_dir")
CHECKPOINT_DIR = "checkpoints"
MAX_NAME_LENGTH = 100
EVENT_TOPIC = "dgnlib-sweep"
_SPEC_KEYS = ("notebook", "grid", "fixed", "kernel", "timeout", "description")


# ----------------------------------------------------------------------------------------- files

def _json_default(obj):
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


def _write_json(path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=1, default=_json_default) + "\n")


def write_result(result_path: Optional[str | os.PathLike], result: Mapping[str, Any]) -> Optional[Path]:
    """Atomically write a notebook's ``result`` dict as JSON to ``result_path`` (NumPy/JAX arrays
    become lists). Does nothing and returns None when ``result_path`` is None (interactive use)."""
    if result_path is None:
        return None
    if not isinstance(result, Mapping):
        raise TypeError(f"result must be a mapping (dict), got {type(result).__name__}")
    return _write_json(result_path, dict(result))


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ------------------------------------------------------------------------------------ the spec

@dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``notebook`` path, ``grid`` (name -> list of values, in order) and ``fixed`` values."""
    notebook: Path
    grid: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    kernel: Optional[str] = None
    timeout: Optional[float] = None  # per cell, seconds


def make_spec(notebook: str | os.PathLike, grid: Optional[Mapping[str, Sequence]] = None,
              fixed: Optional[Mapping[str, Any]] = None, *, kernel: Optional[str] = None,
              timeout: Optional[float] = None, source: str = "spec") -> SweepSpec:
    """Validated :class:`SweepSpec`; ``source`` names the origin in error messages."""
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
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"{source}: timeout must be a positive number of seconds, got {timeout!r}")
    if kernel is not None and not isinstance(kernel, str):
        raise ValueError(f"{source}: kernel must be a kernel name, got {kernel!r}")
    return SweepSpec(Path(notebook), grid, fixed, kernel, timeout)


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read a sweep from a YAML or JSON file with keys ``notebook`` (required), ``grid``, ``fixed``,
    ``kernel``, ``timeout``, ``description``. A relative notebook path is taken from the current
    directory, or else from the file's directory."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
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
                     timeout=data.get("timeout"), source=str(path))
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
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def parse_cli_values(item: str, *, single: bool = False) -> tuple[str, Any]:
    """``"name=v1,v2"`` -> ``(name, [v1, v2])`` (each value read as YAML: ``2`` int, ``true`` bool,
    ``null`` or ``None`` None, ``[256,256]`` list; commas inside brackets do not split).
    ``single``: ``(name, value)``."""
    if "=" not in item:
        raise ValueError(f"expected NAME=VALUE, got {item!r}")
    name, text = item.split("=", 1)
    name = name.strip()
    if not name.isidentifier():
        raise ValueError(f"{item!r}: {name!r} is not a parameter name")
    if single:
        return name, _yaml_value(text)
    return name, [_yaml_value(p.strip()) for p in _split_top_level(text)]


# ------------------------------------------------------------------------------ grid and names

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


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def _short_hash(values: Mapping[str, Any]) -> str:
    return hashlib.sha1(_canonical(dict(values)).encode()).hexdigest()[:8]


def run_name(values: Mapping[str, Any], max_length: int = MAX_NAME_LENGTH) -> str:
    """Directory name of a run from its grid ``values``: ``k1=v1__k2=v2`` (``run`` for no values),
    cut and suffixed by an 8-hex hash of the values when longer than ``max_length``."""
    name = "__".join(f"{format_value(k)}={format_value(v)}" for k, v in values.items()) or "run"
    if len(name) > max_length:
        name = f"{name[:max_length - 9]}-{_short_hash(values)}"
    return name


def expand_grid(grid: Mapping[str, Sequence], fixed: Optional[Mapping[str, Any]] = None,
                max_length: int = MAX_NAME_LENGTH) -> list[tuple[str, dict]]:
    """All combinations of ``grid`` (the first key varies slowest) as ``(name, parameters)``, the
    parameters being ``fixed`` updated by the combination. Names that would collide (different
    values, same sanitised text) get a hash suffix."""
    keys = list(grid)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*(list(grid[k]) for k in keys))]
    names = [run_name(p, max_length) for p in points]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    names = [n if counts[n] == 1 else f"{n[:max_length - 9]}-{_short_hash(p)}" for n, p in zip(names, points)]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"grid has repeated value combinations: {dup}")
    return [(n, {**dict(fixed or {}), **p}) for n, p in zip(names, points)]


def notebook_parameters(notebook: str | os.PathLike) -> dict:
    """Parameters of a notebook's ``parameters`` cell (``papermill.inspect_notebook``):
    name -> default text."""
    import papermill as pm

    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"notebook {path} does not exist")
    return {k: v.get("default") for k, v in pm.inspect_notebook(str(path)).items()}


def check_parameters(spec: SweepSpec) -> dict:
    """Raise ValueError naming any grid/fixed parameter the notebook does not declare (listing the
    declared ones); returns the notebook's parameters."""
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


def _read_status(run_path: Path) -> Optional[dict]:
    try:
        return _read_json(run_path / STATUS_FILE)
    except (OSError, ValueError):
        return None


def plan_runs(spec: SweepSpec, run_dir: str | os.PathLike, *, force: bool = False) -> list[RunPlan]:
    """The sweep's runs with their state in ``run_dir``. A finished run whose stored parameters differ
    from the sweep's raises ValueError (unless ``force``: it will be re-run)."""
    run_dir = Path(run_dir)
    plans = []
    for name, params in expand_grid(spec.grid, spec.fixed):
        path = run_dir / name
        status = _read_status(path)
        state = "pending" if status is None else str(status.get("status", "running"))
        if state == "finished" and not force and _canonical(status.get("params")) != _canonical(params):
            old = status.get("params") or {}
            diff = sorted(k for k in set(old) | set(params) if _canonical(old.get(k)) != _canonical(params.get(k)))
            raise ValueError(f"run {path} finished with other parameters (differing: {diff}); "
                             f"use another run directory, or force=True / --force to re-run it")
        plans.append(RunPlan(name, path, params, state))
    return plans


# ---------------------------------------------------------------------------------- execution

@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs to execute one run (picklable)."""
    name: str
    path: str
    notebook: str
    params: dict
    pass_result_path: bool
    kernel: Optional[str] = None
    timeout: Optional[float] = None
    cwd: Optional[str] = None
    pass_checkpoint_dir: bool = False
    fresh: bool = False  # delete the run's checkpoints first (force)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _stdout_lines(nb) -> list[str]:
    chunks = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text = out.get("text", "")
                chunks.append("".join(text) if isinstance(text, list) else text)
    return "".join(chunks).splitlines()


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _log_event(msg: dict) -> None:
    """Send ``msg`` to the client's status lines when running on a Dask worker."""
    try:
        from distributed import get_worker

        get_worker().log_event(EVENT_TOPIC, msg)
    except Exception:  # noqa: BLE001 - not on a worker, or no distributed: nothing to report to
        pass


# Set by Dask's nanny in every worker (distributed.nanny.pre-spawn-environ) for workloads of many small
# tasks; a notebook kernel started by the worker inherits it, and it makes the vision epochs 1.55x slower
# (glibc returns freed memory to the OS after every large array). Kernels start without it.
_KERNEL_ENV_DROP = ("MALLOC_TRIM_THRESHOLD_",)


@contextlib.contextmanager
def _kernel_environment() -> Iterator[None]:
    """The worker's environment without :data:`_KERNEL_ENV_DROP` while a kernel starts (restored after)."""
    saved = {k: os.environ.pop(k) for k in _KERNEL_ENV_DROP if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def execute_run(task: RunTask) -> dict:
    """Execute one run with papermill (on a worker, or locally) and write its files; never raises
    for a notebook error: returns the final status dict (``status`` ``finished`` or ``failed``)."""
    import papermill as pm

    path = Path(task.path)
    path.mkdir(parents=True, exist_ok=True)
    result_file = path / RESULT_FILE
    with contextlib.suppress(FileNotFoundError):
        result_file.unlink()  # a stale result of an earlier attempt must not count
    base = {"name": task.name, "params": task.params, "notebook": task.notebook,
            "host": socket.gethostname(), "pid": os.getpid(), "started": _now()}
    _write_json(path / STATUS_FILE, {**base, "status": "running"})
    _log_event({"event": "started", "name": task.name, "host": base["host"]})
    params = dict(task.params)
    if task.pass_result_path:
        params["result_path"] = str(result_file.resolve())
    checkpoints = path / CHECKPOINT_DIR
    if task.fresh and checkpoints.exists():
        shutil.rmtree(checkpoints)
    if task.pass_checkpoint_dir:
        params["checkpoint_dir"] = str(checkpoints.resolve())
    t0 = time.perf_counter()
    error = tb = None
    nb = None
    try:
        with _kernel_environment():
            nb = pm.execute_notebook(
                task.notebook, str(path / OUTPUT_NOTEBOOK), parameters=params, kernel_name=task.kernel,
                progress_bar=False, cwd=task.cwd or str(Path(task.notebook).parent),
                execution_timeout=task.timeout)
    except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
        if hasattr(e, "ename") and hasattr(e, "evalue"):  # papermill.PapermillExecutionError
            error = f"{e.ename}: {e.evalue}"
            tb = _ANSI.sub("", "\n".join(getattr(e, "traceback", []) or []))
        else:
            error = f"{type(e).__name__}: {e}"
            tb = traceback.format_exc()
    wall = time.perf_counter() - t0
    final = {**base, "ended": _now(), "wall_time_s": round(wall, 3)}
    if error is not None:
        with contextlib.suppress(Exception):
            import nbformat

            final["stdout_tail"] = _stdout_lines(nbformat.read(str(path / OUTPUT_NOTEBOOK), as_version=4))[-30:]
        final.update(status="failed", error=error, traceback=tb)
    else:
        written = result_file.is_file()
        if written:
            try:
                _read_json(result_file)
            except ValueError as e:
                written = False
                final.update(status="failed", error=f"{result_file} is not valid JSON: {e}", traceback="")
        if "status" not in final:
            if not written:
                _write_json(result_file, {"status": "finished", "params": task.params,
                                          "wall_time_s": round(wall, 3), "stdout": _stdout_lines(nb)})
            final.update(status="finished", result_written_by_notebook=written)
    _write_json(path / STATUS_FILE, final)  # last: the marker
    return final


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one run in this call: ``finished`` | ``failed`` | ``skipped`` (finished before)."""
    name: str
    status: str
    wall_time_s: Optional[float] = None
    error: Optional[str] = None


@dataclass
class SweepReport:
    """Result of :func:`run_sweep`."""
    run_dir: Path
    outcomes: list

    def names(self, status: str) -> list[str]:
        return [o.name for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.names("failed")

    def summary(self) -> str:
        n = {s: len(self.names(s)) for s in ("finished", "skipped", "failed")}
        text = (f"{len(self.outcomes)} run(s) in {self.run_dir}: {n['finished']} finished, "
                f"{n['skipped']} skipped (finished before), {n['failed']} failed")
        return text + (f": {self.names('failed')}" if n["failed"] else "")


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


@contextlib.contextmanager
def _dask_client(client=None, scheduler: Optional[str] = None, scheduler_file: Optional[str] = None,
                 n_workers: int = 1) -> Iterator[Any]:
    """The given client; a client of ``scheduler``/``scheduler_file``; or a new LocalCluster."""
    if client is not None:
        yield client
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise ImportError(f"running a sweep needs Dask: pip install dask distributed ({e})") from e

    if scheduler or scheduler_file:
        try:
            c = Client(scheduler, scheduler_file=scheduler_file)
        except OSError as e:
            raise ConnectionError(f"cannot connect to the Dask scheduler {scheduler or scheduler_file}: {e}") from e
        with c:
            yield c
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def run_sweep(spec: SweepSpec, run_dir: str | os.PathLike, *, n_workers: Optional[int] = None,
              scheduler: Optional[str] = None, scheduler_file: Optional[str] = None, client=None,
              force: bool = False, cwd: Optional[str] = None, progress: bool = True,
              log: Optional[Callable[[str], None]] = None) -> SweepReport:
    """Execute every not-yet-finished run of ``spec`` into ``run_dir`` on Dask and return a report.

    Cluster: ``client`` (a ``distributed.Client``), else ``scheduler`` address or ``scheduler_file``,
    else a new LocalCluster of ``n_workers`` processes (default: min(CPUs, runs)), 1 thread each,
    closed at the end. ``force``: re-run finished runs. ``cwd``: the notebooks' working directory
    (default: the notebook's directory). ``log``: status-line sink (default: ``tqdm.write``).
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir).resolve()
    notebook = Path(spec.notebook).resolve()
    if client is None and scheduler_file and not Path(scheduler_file).is_file():
        # distributed would wait for the file forever
        raise FileNotFoundError(f"Dask scheduler file {scheduler_file} does not exist (is the scheduler running?)")
    declared = check_parameters(spec)
    plans = plan_runs(spec, run_dir, force=force)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"notebook": str(notebook), "grid": spec.grid, "fixed": spec.fixed, "kernel": spec.kernel,
                "timeout": spec.timeout, "runs": [p.name for p in plans], "written": _now()}
    old = _read_json(run_dir / MANIFEST_FILE) if (run_dir / MANIFEST_FILE).is_file() else {}
    manifest["runs"] = list(dict.fromkeys([*old.get("runs", []), *manifest["runs"]]))
    _write_json(run_dir / MANIFEST_FILE, manifest)

    write = log or (lambda s: tqdm.write(s))
    todo = [p for p in plans if force or p.state != "finished"]
    outcomes = {p.name: RunOutcome(p.name, "skipped") for p in plans if p not in todo}
    if outcomes:
        write(f"[{_stamp()}] skipping {len(outcomes)} finished run(s) in {run_dir}")
    if todo:
        tasks = [RunTask(p.name, str(p.path), str(notebook), p.params, "result_path" in declared,
                         spec.kernel, spec.timeout, cwd, "checkpoint_dir" in declared, force) for p in todo]
        workers = n_workers or max(1, min(os.cpu_count() or 1, len(tasks)))
        with _dask_client(client, scheduler, scheduler_file, workers) as c:
            outcomes.update(_submit_all(c, tasks, write, progress, tqdm))
    return SweepReport(run_dir, [outcomes[p.name] for p in plans])


def _submit_all(client, tasks: list, write, progress: bool, tqdm) -> dict:
    """Submit ``tasks`` to ``client``; print status lines; return name -> RunOutcome."""
    from distributed import as_completed

    def on_event(event):
        msg = event[1] if isinstance(event, tuple) else event
        if isinstance(msg, dict) and msg.get("event") == "started":
            write(f"[{_stamp()}] started  {msg.get('name')} on {msg.get('host')}")

    subscribed = False
    with contextlib.suppress(Exception):
        client.subscribe_topic(EVENT_TOPIC, on_event)
        subscribed = True
    token = f"{time.time_ns():x}"
    futures = {client.submit(execute_run, t, key=f"dgnlib-sweep-{t.name}-{token}", pure=False): t for t in tasks}
    outcomes = {}
    bar = tqdm(total=len(tasks), desc="sweep", unit="run", disable=not progress)
    try:
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                st = fut.result()
            except Exception as e:  # noqa: BLE001 - the worker died (KilledWorker, ...): record it here
                st = {"name": task.name, "params": task.params, "notebook": task.notebook, "status": "failed",
                      "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
                      "ended": _now(), "wall_time_s": None}
                _write_json(Path(task.path) / STATUS_FILE, st)
            wall, status = st.get("wall_time_s"), st.get("status")
            took = f"{wall:.1f} s" if isinstance(wall, (int, float)) else "?"
            if status == "finished":
                write(f"[{_stamp()}] finished {task.name} in {took}")
            else:
                write(f"[{_stamp()}] FAILED   {task.name} after {took}: {st.get('error')} "
                      f"(traceback in {Path(task.path) / STATUS_FILE})")
            outcomes[task.name] = RunOutcome(task.name, "finished" if status == "finished" else "failed",
                                             wall, st.get("error"))
            bar.update(1)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        bar.close()
        if subscribed:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(EVENT_TOPIC)
    return outcomes


# -------------------------------------------------------------------------------- aggregation

_EPOCH_LINE = re.compile(
    r"^(?P<dataset>\S+) (?P<arch>\S+) (?P<rule>\S+) seed (?P<seed>\d+) epoch (?P<epoch>\d+): "
    r"train loss (?P<train_loss>\S+) acc (?P<train_accuracy>\S+) \| "
    r"val loss (?P<val_loss>\S+) acc (?P<val_accuracy>\S+) \| "
    r"test loss (?P<test_loss>\S+) acc (?P<test_accuracy>\S+)")


def parse_epoch_lines(lines: Sequence[str]) -> list[dict]:
    """Records from dgnlib's vision epoch log (``dgnlib.vision_training.format_epoch_line``)::

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
    order = _read_json(manifest).get("runs", []) if manifest.is_file() else []
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
    planned = _read_json(manifest).get("runs", []) if manifest.is_file() else []
    order = _run_order(run_dir)
    counts["pending"] = len([n for n in planned if n not in order])
    records = []
    for name in order:
        status = _read_status(run_dir / name) or {}
        state = status.get("status", "running")
        counts[state if state in counts else "running"] += 1
        if state != "finished":
            continue
        try:
            result = _read_json(run_dir / name / RESULT_FILE)
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
        records = [r for r in records if all(k in r.keys and _canonical(r.keys[k]) == _canonical(v)
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
        varying = [k for k in other if len({_canonical(r.keys.get(k)) for r in group}) > 1]
        if varying:
            raise ValueError(f"configuration rows={_label(rv)!r} cols={_label(cv)!r} pools records that differ "
                             f"in {varying}, not only in {seed_key!r}; add them to rows/cols or select with where")
        seeds = tuple(r.keys.get(seed_key) for r in group)
        if len(group) > 1 and len({_canonical(s) for s in seeds}) < len(seeds):
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
    import io

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


# ------------------------------------------------------------------------------------------ CLI

def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dgnlib.sweep", description=__doc__.split("\n\n")[0],
                                epilog="examples:" + __doc__.split("CLI::")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute a sweep (skips finished runs, retries failed ones)")
    r.add_argument("spec", nargs="?", help="sweep file (YAML or JSON: notebook, grid, fixed)")
    r.add_argument("--notebook", help="notebook to sweep (overrides the file's)")
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME=V1,V2",
                   help="grid axis (values read as YAML; commas inside [] do not split); repeatable")
    r.add_argument("-f", "--fixed", action="append", default=[], metavar="NAME=VALUE",
                   help="fixed parameter (read as YAML); repeatable")
    r.add_argument("-o", "--run-dir", required=True, help="directory of the runs")
    r.add_argument("--n-workers", type=int, help="LocalCluster worker processes (default: min(CPUs, runs))")
    r.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786")
    r.add_argument("--scheduler-file", help="Dask scheduler file (dask-jobqueue, `dask scheduler --scheduler-file`)")
    r.add_argument("--kernel", help="Jupyter kernel name (default: the notebook's)")
    r.add_argument("--timeout", type=float, help="per-cell execution timeout in seconds")
    r.add_argument("--cwd", help="working directory of the notebooks (default: the notebook's directory)")
    r.add_argument("--force", action="store_true", help="re-run finished runs too")
    r.add_argument("--dry-run", action="store_true", help="list the runs and their state; execute nothing")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = sub.add_parser("aggregate", help="table (CSV) and curves (PNG) of a run directory")
    a.add_argument("run_dir")
    a.add_argument("--metric", default="test_accuracy", help="metric (default test_accuracy)")
    a.add_argument("--rows", default="rule", help="row key(s), comma-separated (default rule)")
    a.add_argument("--cols", default="dataset,arch", help="column key(s), comma-separated (default dataset,arch)")
    a.add_argument("--seed-key", default="seed", help="key of the replicates (default seed)")
    a.add_argument("--where", action="append", default=[], metavar="KEY=VALUE", help="keep matching records only")
    a.add_argument("--scale", type=float, help="factor of the shown values (default 100 for accuracies)")
    a.add_argument("--out", help="output directory (default RUN_DIR/aggregate)")
    a.add_argument("--no-plot", action="store_true", help="no PNG")
    return p


def _spec_from_args(args, parser) -> SweepSpec:
    if args.spec is None and args.notebook is None:
        parser.error("run: give a sweep file or --notebook")
    base = load_spec(args.spec) if args.spec else make_spec(args.notebook)
    grid, fixed = dict(base.grid), dict(base.fixed)
    try:
        for item in args.param:
            k, vals = parse_cli_values(item)
            fixed.pop(k, None)
            grid[k] = vals
        for item in args.fixed:
            k, val = parse_cli_values(item, single=True)
            grid.pop(k, None)
            fixed[k] = val
    except ValueError as e:
        parser.error(f"run: {e}")
    return make_spec(args.notebook or base.notebook, grid, fixed, kernel=args.kernel or base.kernel,
                     timeout=args.timeout or base.timeout, source="command line")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point (``python -m dgnlib.sweep``); returns the exit status (1 if a run failed)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            spec = _spec_from_args(args, parser)
            if args.dry_run:
                check_parameters(spec)
                plans = plan_runs(spec, args.run_dir, force=args.force)
                for pl in plans:
                    print(f"{pl.state:9s} {pl.name}  {json.dumps(pl.params, default=_json_default)}")
                print(f"{len(plans)} run(s) of {spec.notebook} in {args.run_dir}")
                return 0
            report = run_sweep(spec, args.run_dir, n_workers=args.n_workers, scheduler=args.scheduler,
                               scheduler_file=args.scheduler_file, force=args.force, cwd=args.cwd,
                               progress=not args.no_progress)
            print(report.summary())
            return 0 if report.ok else 1
        where = dict(parse_cli_values(w, single=True) for w in args.where)
        rep = aggregate_dir(args.run_dir, args.out, metric=args.metric, rows=args.rows, cols=args.cols,
                            seed_key=args.seed_key, where=where, scale=args.scale, plot=not args.no_plot)
        print(rep.text)
        print(f"wrote {rep.csv_path}, {rep.long_csv_path}" + (f", {rep.png_path}" if rep.png_path else ""))
        return 0
    except (ValueError, FileNotFoundError, ImportError, ConnectionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Import the installed module so that Dask pickles dgnlib.sweep.execute_run by reference,
    # not this __main__ copy.
    from dgnlib.sweep import main as _main

    sys.exit(_main())
