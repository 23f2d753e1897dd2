"""Running a sweep on Dask: :func:`run_sweep` executes every not-yet-finished run of a spec.

Runs execute on a ``distributed.LocalCluster`` by default (``n_workers`` processes, one thread
each), or on any scheduler (``scheduler="tcp://host:8786"`` or a scheduler file), so a
dask-jobqueue (SLURM, PBS) or Kubernetes cluster runs the same sweep; the workers and the
scheduler (it unpickles the tasks) must be able to import ``dgnlib``, and the workers must see the
run directory and the notebook on a shared file system (SLURM: ``examples/slurm/table1.sbatch``).
``dask`` and ``distributed`` are imported only when a sweep runs.

Re-running the same sweep skips finished runs and retries failed or interrupted ones
(``force=True`` re-runs everything); a finished run whose stored parameters differ from the
sweep's is an error (use another run directory). Do not run two sweeps on one run directory at the
same time (a run of the other would look interrupted and be re-run).

On a shared machine or cluster, a scheduler on plain ``tcp://`` runs code for anyone who can reach
its port. Start it with TLS (``dask scheduler|worker --tls-ca-file --tls-cert --tls-key``, e.g. with
the certificates of ``examples/slurm/make_dask_certs.sh``) and give the sweep the same files
(``security=tls_security(ca, cert, key)``; on the command line ``--tls-ca-file/--tls-cert/--tls-key``).
"""
from __future__ import annotations

import contextlib
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..atomic import read_json, write_json
from .cores import core_sets, pinning_environment
from ..checks import positive_int
from .execute import EVENT_TOPIC, RunTask, execute_run
from .results import MANIFEST_FILE, NO_RECORDS_HINT, STATUS_FILE, utc_timestamp
from .spec import SweepSpec, check_parameters, plan_runs

__all__ = ["RunOutcome", "SweepReport", "tls_security", "run_sweep"]


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one run in this call: ``status`` ``finished`` | ``failed`` | ``skipped``
    (finished before), its wall time in seconds and error (None when none)."""
    name: str
    status: str
    wall_time_s: Optional[float] = None
    error: Optional[str] = None


@dataclass
class SweepReport:
    """Result of :func:`run_sweep`: the run directory and one :class:`RunOutcome` per run, in grid order."""
    run_dir: Path
    outcomes: list

    def names(self, status: str) -> list[str]:
        """The names of the runs whose outcome is ``status``."""
        return [o.name for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        """No run failed."""
        return not self.names("failed")

    def summary(self) -> str:
        """One line: the runs finished, skipped and failed (naming the failed ones)."""
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


def _quiet_dask_logs() -> None:
    """Silence distributed's and tornado's loggers (the tracebacks of a cluster shut down by Ctrl-C)."""
    import logging

    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextlib.contextmanager
def _dask_client(client=None, scheduler: Optional[str] = None, scheduler_file: Optional[str] = None,
                 n_workers: int = 1, security=None, worker_env: Optional[dict] = None) -> Iterator[Any]:
    """The given client; a client of ``scheduler``/``scheduler_file`` (with ``security``); or a new
    LocalCluster (its workers' extra environment: ``worker_env``)."""
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
    # no dashboard; the scheduler's HTTP server (health, metrics) on a free port: on its default, 8787, it
    # warned "Port 8787 is already in use" whenever another cluster ran on the machine
    extra = {"env": worker_env} if worker_env else {}
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": ":0"}, preload=["dgnlib.sweep.worker_setup"],
                      **extra) as cluster, Client(cluster) as c:  # workers ignore Ctrl-C (and pin their cores)
        yield c


def run_sweep(spec: SweepSpec, run_dir: str | os.PathLike, *, n_workers: Optional[int] = None,
              scheduler: Optional[str] = None, scheduler_file: Optional[str] = None, client=None,
              force: bool = False, cwd: Optional[str] = None, progress: bool = True,
              log: Optional[Callable[[str], None]] = None, security=None,
              command: Optional[str] = None, pin_cores: bool = False) -> SweepReport:
    """Execute every not-yet-finished run of ``spec`` into ``run_dir`` on Dask.

    Arguments:
      spec: the sweep (:func:`dgnlib.sweep.load_spec`, :func:`dgnlib.sweep.make_spec`); its
        parameters are checked against the notebook's before anything runs.
      run_dir: the run directory (created; ``sweep.json`` records the sweep and its run names).
      n_workers: processes of the LocalCluster started when no cluster is given (default:
        min(CPUs, runs)); 1 thread each; closed at the end.
      scheduler, scheduler_file: address or scheduler file of a running Dask cluster.
      client: a ``distributed.Client`` to use (first choice).
      force: re-run finished runs too (and delete their checkpoints).
      cwd: the notebooks' working directory (default: the notebook's directory).
      progress: show a progress bar over the runs.
      log: sink of the status lines (started / finished / FAILED; default ``tqdm.write``).
      security: a ``distributed.security.Security`` for the scheduler (a TLS cluster:
        :func:`tls_security`; None: Dask's configuration).
      command: the command line that started the sweep, stored in every run's ``status.json``
        (the command line interface passes its own).
      pin_cores: give each worker of the LocalCluster its own equal share of this machine's cores,
        and with one core each run its kernels' XLA single-threaded (:mod:`dgnlib.sweep.cores`:
        faster when several runs share a small machine; changes float32 rounding, recorded in the
        results' environment). Only with the LocalCluster that this function starts.

    Returns:
      The :class:`SweepReport`. ``FileNotFoundError`` for a missing notebook or scheduler file,
      ``ValueError`` for unknown parameters, a finished run of other parameters, or ``pin_cores``
      with another cluster or with more workers than cores,
      ``ConnectionError`` when the scheduler cannot be reached.
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir).resolve()
    notebook = Path(spec.notebook).resolve()
    if n_workers is not None:
        n_workers = positive_int("n_workers", n_workers)
    if not isinstance(pin_cores, bool):
        raise ValueError(f"pin_cores must be a bool, got {pin_cores!r}")
    if pin_cores and (client is not None or scheduler or scheduler_file):
        raise ValueError("pin_cores pins the workers of the LocalCluster that run_sweep starts; with a client, "
                         "scheduler or scheduler file, pin the workers where they are started")
    if pin_cores:
        core_sets(n_workers or 1)  # fewer cores than workers, or no pinning on this platform: before anything runs
    if client is None and scheduler_file and not Path(scheduler_file).is_file():
        # distributed would wait for the file forever
        raise FileNotFoundError(f"Dask scheduler file {scheduler_file} does not exist (is the scheduler running?)")
    declared = check_parameters(spec)
    plans = plan_runs(spec, run_dir, force=force)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"notebook": str(notebook), "grid": spec.grid, "fixed": spec.fixed, "kernel": spec.kernel,
                "timeout": spec.timeout, "aggregate": spec.aggregate, "runs": [p.name for p in plans],
                "written": utc_timestamp()}
    old = read_json(run_dir / MANIFEST_FILE) if (run_dir / MANIFEST_FILE).is_file() else {}
    manifest["runs"] = list(dict.fromkeys([*old.get("runs", []), *manifest["runs"]]))
    write_json(run_dir / MANIFEST_FILE, manifest)

    write = log or (lambda s: tqdm.write(s))
    if "result_path" not in declared:
        write(f"[{_stamp()}] note: {notebook.name} declares no result_path parameter: its runs give no "
              f"records to aggregate ({NO_RECORDS_HINT})")
    todo = [p for p in plans if force or p.state != "finished"]
    outcomes = {p.name: RunOutcome(p.name, "skipped") for p in plans if p not in todo}
    if outcomes:
        write(f"[{_stamp()}] skipping {len(outcomes)} finished run(s) in {run_dir}")
    if todo:
        tasks = [RunTask(p.name, str(p.path), str(notebook), p.params, "result_path" in declared,
                         spec.kernel, spec.timeout, cwd, "checkpoint_dir" in declared, force, command)
                 for p in todo]
        workers = n_workers or max(1, min(os.cpu_count() or 1, len(tasks)))
        env = pinning_environment(core_sets(workers)) if pin_cores else None
        with _dask_client(client, scheduler, scheduler_file, workers, security, env) as c:
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
                      "ended": utc_timestamp(), "wall_time_s": None}
                write_json(Path(task.path) / STATUS_FILE, st)
            wall, status = st.get("wall_time_s"), st.get("status")
            took = f"{wall:.1f} s" if isinstance(wall, (int, float)) else "?"
            if status == "finished":
                none = "" if st.get("result_written") or not task.pass_result_path else \
                    " (it wrote no result.json: no records to aggregate)"
                write(f"[{_stamp()}] finished {task.name} in {took}{none}")
            else:
                write(f"[{_stamp()}] FAILED   {task.name} after {took}: {st.get('error')} "
                      f"(traceback in {Path(task.path) / STATUS_FILE})")
            outcomes[task.name] = RunOutcome(task.name, "finished" if status == "finished" else "failed",
                                             wall, st.get("error"))
            bar.update(1)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):  # Ctrl-C: the workers die with the cluster; their logs are noise
            _quiet_dask_logs()
        client.cancel(list(futures))
        raise
    finally:
        bar.close()
        if subscribed:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(EVENT_TOPIC)
    return outcomes
