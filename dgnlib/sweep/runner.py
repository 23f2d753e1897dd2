"""Parameter sweeps over papermill notebooks, run on Dask, and their aggregation.

A *sweep* is a notebook, a grid (name -> list of values; every combination is one run) and fixed
parameters. Each run executes the notebook with papermill into its own sub-directory of the run
directory, named after its grid values (e.g. ``datasets=mnist__rules=bp__seed=0``; a short hash is
appended when the name would be too long or ambiguous)::

    RUN_DIR/sweep.json                 the sweep (notebook, grid, fixed, run names in order)
    RUN_DIR/<name>/output.ipynb        the executed notebook (also on failure)
    RUN_DIR/<name>/result.json         the machine-readable result (:mod:`dgnlib.sweep.results`)
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

On a shared machine or cluster, a scheduler on plain ``tcp://`` runs code for anyone who can reach
its port. Start it with TLS (``dask scheduler|worker --tls-ca-file --tls-cert --tls-key``, e.g. with
the certificates of ``examples/slurm/make_dask_certs.sh``) and give the sweep the same files:
``--tls-ca-file/--tls-cert/--tls-key`` on the command line, ``security=`` (a
``distributed.security.Security``, see :func:`tls_security`) in :func:`run_sweep`.

**Results** (``result.json``, written by the notebook through ``result_path``) and their
**aggregation** into the paper's Table 1 live in :mod:`dgnlib.sweep.results`; this module
re-exports them.

CLI::

    python -m dgnlib.sweep run examples/sweeps/small.yaml -o runs/small --n-workers 2
    python -m dgnlib.sweep run --notebook nb.ipynb -p rules=bp,exact -p seed=0,1 -f epochs=2 -o runs/a
    python -m dgnlib.sweep run spec.yaml -o runs/a --scheduler tcp://host:8786
    python -m dgnlib.sweep run spec.yaml -o runs/a --scheduler-file scheduler.json   # dask scheduler/worker
    python -m dgnlib.sweep run spec.yaml -o runs/a --scheduler-file scheduler.json \
        --tls-ca-file tls/ca.pem --tls-cert tls/cert.pem --tls-key tls/key.pem          # a TLS cluster
    python -m dgnlib.sweep aggregate runs/small                 # Table 1 of test accuracy
    python -m dgnlib.sweep aggregate runs/a --rows rules --cols x --metric acc
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
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

from .results import (MANIFEST_FILE, OUTPUT_NOTEBOOK, RESULT_FILE, STATUS_FILE, AggregateReport, Cell,
                            Record, Table, aggregate_dir, atomic_write_text, canonical, format_table,
                            format_value, json_default, load_records, parse_epoch_lines, plot_curves,
                            read_json, read_status, summarize, write_json, write_result, write_table_csv)

__all__ = [
    "SweepSpec", "RunPlan", "RunOutcome", "SweepReport", "load_spec", "make_spec", "parse_cli_values",
    "run_name", "expand_grid", "notebook_parameters", "check_parameters", "plan_runs", "run_sweep",
    "execute_run", "tls_security", "main",
    # re-exported from dgnlib.sweep.results
    "STATUS_FILE", "RESULT_FILE", "OUTPUT_NOTEBOOK", "MANIFEST_FILE", "Record", "Cell", "Table",
    "AggregateReport", "write_result", "atomic_write_text", "format_value", "parse_epoch_lines",
    "load_records", "summarize", "format_table", "write_table_csv", "plot_curves", "aggregate_dir",
]

RESERVED_PARAMETERS = ("result_path", "checkpoint_dir")
CHECKPOINT_DIR = "checkpoints"
MAX_NAME_LENGTH = 100
EVENT_TOPIC = "dgnlib-sweep"
_SPEC_KEYS = ("notebook", "grid", "fixed", "kernel", "timeout", "description")


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

def _short_hash(values: Mapping[str, Any]) -> str:
    return hashlib.sha1(canonical(dict(values)).encode()).hexdigest()[:8]


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


def plan_runs(spec: SweepSpec, run_dir: str | os.PathLike, *, force: bool = False) -> list[RunPlan]:
    """The sweep's runs with their state in ``run_dir``. A finished run whose stored parameters differ
    from the sweep's raises ValueError (unless ``force``: it will be re-run)."""
    run_dir = Path(run_dir)
    plans = []
    for name, params in expand_grid(spec.grid, spec.fixed):
        path = run_dir / name
        status = read_status(path)
        state = "pending" if status is None else str(status.get("status", "running"))
        if state == "finished" and not force and canonical(status.get("params")) != canonical(params):
            old = status.get("params") or {}
            diff = sorted(k for k in set(old) | set(params) if canonical(old.get(k)) != canonical(params.get(k)))
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
    write_json(path / STATUS_FILE, {**base, "status": "running"})
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
                read_json(result_file)
            except ValueError as e:
                written = False
                final.update(status="failed", error=f"{result_file} is not valid JSON: {e}", traceback="")
        if "status" not in final:
            if not written:
                write_json(result_file, {"status": "finished", "params": task.params,
                                          "wall_time_s": round(wall, 3), "stdout": _stdout_lines(nb)})
            final.update(status="finished", result_written_by_notebook=written)
    write_json(path / STATUS_FILE, final)  # last: the marker
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


def tls_security(ca_file: str | os.PathLike, cert: str | os.PathLike, key: str | os.PathLike):
    """A ``distributed.security.Security`` for a client of a TLS-only Dask cluster.

    Arguments:
      ca_file: PEM file of the cluster's certificate authority (``dask ... --tls-ca-file``).
      cert: PEM certificate the client presents, signed by that authority (``--tls-cert``).
      key: PEM private key of ``cert`` (``--tls-key``).

    Returns:
      ``Security(tls_ca_file=..., tls_client_cert=..., tls_client_key=..., require_encryption=True)``.
      Raises ``FileNotFoundError`` naming the argument when a file does not exist.
    """
    files = {"ca_file": ca_file, "cert": cert, "key": key}
    for name, path in files.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"TLS {name} {str(path)!r} does not exist (expected a PEM file)")
    try:
        from distributed.security import Security
    except ImportError as e:
        raise ImportError(f"running a sweep needs Dask: pip install dask distributed ({e})") from e
    return Security(tls_ca_file=str(ca_file), tls_client_cert=str(cert), tls_client_key=str(key),
                    require_encryption=True)


@contextlib.contextmanager
def _dask_client(client=None, scheduler: Optional[str] = None, scheduler_file: Optional[str] = None,
                 n_workers: int = 1, security=None) -> Iterator[Any]:
    """The given client; a client of ``scheduler``/``scheduler_file`` (with ``security``); or a new
    LocalCluster."""
    if client is not None:
        yield client
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise ImportError(f"running a sweep needs Dask: pip install dask distributed ({e})") from e

    if scheduler or scheduler_file:
        where = scheduler or scheduler_file
        try:
            c = Client(scheduler, scheduler_file=scheduler_file, security=security)
        except TypeError as e:
            if "ssl_context" not in str(e):
                raise
            # distributed's message for a tls:// address without certificates
            raise ConnectionError(f"the Dask scheduler {where} uses TLS: give its certificates "
                                  "(--tls-ca-file, --tls-cert, --tls-key; security= in run_sweep)") from e
        except OSError as e:
            raise ConnectionError(f"cannot connect to the Dask scheduler {where}: {e}") from e
        with c:
            yield c
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def run_sweep(spec: SweepSpec, run_dir: str | os.PathLike, *, n_workers: Optional[int] = None,
              scheduler: Optional[str] = None, scheduler_file: Optional[str] = None, client=None,
              force: bool = False, cwd: Optional[str] = None, progress: bool = True,
              log: Optional[Callable[[str], None]] = None, security=None) -> SweepReport:
    """Execute every not-yet-finished run of ``spec`` into ``run_dir`` on Dask and return a report.

    Cluster: ``client`` (a ``distributed.Client``), else ``scheduler`` address or ``scheduler_file``,
    connected to with ``security`` (a ``distributed.security.Security``, e.g. :func:`tls_security`, for
    a TLS cluster; None: Dask's configuration), else a new LocalCluster of ``n_workers`` processes
    (default: min(CPUs, runs)), 1 thread each, closed at the end. ``force``: re-run finished runs.
    ``cwd``: the notebooks' working directory (default: the notebook's directory). ``log``:
    status-line sink (default: ``tqdm.write``).
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
    old = read_json(run_dir / MANIFEST_FILE) if (run_dir / MANIFEST_FILE).is_file() else {}
    manifest["runs"] = list(dict.fromkeys([*old.get("runs", []), *manifest["runs"]]))
    write_json(run_dir / MANIFEST_FILE, manifest)

    write = log or (lambda s: tqdm.write(s))
    todo = [p for p in plans if force or p.state != "finished"]
    outcomes = {p.name: RunOutcome(p.name, "skipped") for p in plans if p not in todo}
    if outcomes:
        write(f"[{_stamp()}] skipping {len(outcomes)} finished run(s) in {run_dir}")
    if todo:
        tasks = [RunTask(p.name, str(p.path), str(notebook), p.params, "result_path" in declared,
                         spec.kernel, spec.timeout, cwd, "checkpoint_dir" in declared, force) for p in todo]
        workers = n_workers or max(1, min(os.cpu_count() or 1, len(tasks)))
        with _dask_client(client, scheduler, scheduler_file, workers, security) as c:
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
                write_json(Path(task.path) / STATUS_FILE, st)
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
    r.add_argument("--tls-ca-file", metavar="PEM",
                   help="TLS cluster: its CA certificate (as `dask scheduler --tls-ca-file`); "
                        "needs --tls-cert, --tls-key")
    r.add_argument("--tls-cert", metavar="PEM", help="TLS cluster: the certificate this client presents")
    r.add_argument("--tls-key", metavar="PEM", help="TLS cluster: the private key of --tls-cert")
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
                    print(f"{pl.state:9s} {pl.name}  {json.dumps(pl.params, default=json_default)}")
                print(f"{len(plans)} run(s) of {spec.notebook} in {args.run_dir}")
                return 0
            tls = {"--tls-ca-file": args.tls_ca_file, "--tls-cert": args.tls_cert, "--tls-key": args.tls_key}
            security = None
            if any(tls.values()):
                missing = [k for k, v in tls.items() if not v]
                if missing:
                    parser.error(f"run: {', '.join(missing)} missing: TLS needs --tls-ca-file, --tls-cert "
                                 "and --tls-key together")
                if not (args.scheduler or args.scheduler_file):
                    parser.error("run: --tls-ca-file/--tls-cert/--tls-key are for a running cluster: "
                                 "give --scheduler or --scheduler-file too")
                security = tls_security(args.tls_ca_file, args.tls_cert, args.tls_key)
            report = run_sweep(spec, args.run_dir, n_workers=args.n_workers, scheduler=args.scheduler,
                               scheduler_file=args.scheduler_file, force=args.force, cwd=args.cwd,
                               progress=not args.no_progress, security=security)
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
