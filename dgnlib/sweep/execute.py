"""One run of a sweep, executed on a Dask worker (or in this process): papermill and the run's files.

:func:`execute_run` runs the notebook of a :class:`RunTask` into its run directory and writes the
files of :mod:`dgnlib.sweep.results`: ``status.json`` first as ``running`` and last (atomically) as
``finished`` or ``failed``, so a run is finished if and only if its status says so. A notebook
error never raises: it is recorded (error, traceback, the last printed lines) and the sweep goes on.

The runner passes ``result_path`` (the run's ``result.json``) and ``checkpoint_dir`` (its
``checkpoints/`` folder) to a notebook that declares them in its ``parameters`` cell: the notebook
writes its records to the first and saves its training state after every epoch into the second,
so a run killed at any point (SIGKILL, a node lost, a wall-time limit) resumes from its last
finished epoch when run again; ``fresh`` deletes the checkpoints first.

Dask pickles :func:`execute_run` and :class:`RunTask` by reference: the workers import them from
this module (``dgnlib`` must be importable there).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..atomic import read_json, write_json
from .results import CHECKPOINT_DIR, OUTPUT_NOTEBOOK, RESULT_FILE, STATUS_FILE, notebook_stdout, utc_timestamp

__all__ = ["EVENT_TOPIC", "KERNEL_MANAGER", "RunTask", "execute_run"]

EVENT_TOPIC = "dgnlib-sweep"  # Dask event topic of the workers' "started" messages
# papermill's kernel_manager_class: kernels over IPC on POSIX (dgnlib.sweep.kernels; a string, imported when used)
KERNEL_MANAGER = "dgnlib.sweep.kernels.IPCKernelManager"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Set by Dask's nanny in every worker (distributed.nanny.pre-spawn-environ) for workloads of many small
# tasks; a notebook kernel started by the worker inherits it, and it makes the vision epochs 1.55x slower
# (glibc returns freed memory to the OS after every large array). Kernels start without it.
_KERNEL_ENV_DROP = ("MALLOC_TRIM_THRESHOLD_",)


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs to execute one run (picklable): the run's ``name`` and directory
    ``path``, the ``notebook`` and its ``params``; whether to pass ``result_path`` and
    ``checkpoint_dir`` (the notebook declares them); the Jupyter ``kernel``, per-cell ``timeout``
    (seconds) and working directory ``cwd`` (None: defaults); ``fresh``: delete the run's
    checkpoints first (``force``); ``command``: the command line of the sweep (kept in the status)."""
    name: str
    path: str
    notebook: str
    params: dict
    pass_result_path: bool
    kernel: Optional[str] = None
    timeout: Optional[float] = None
    cwd: Optional[str] = None
    pass_checkpoint_dir: bool = False
    fresh: bool = False
    command: Optional[str] = None


def _log_event(msg: dict) -> None:
    """Send ``msg`` to the client's status lines when running on a Dask worker."""
    try:
        from distributed import get_worker

        get_worker().log_event(EVENT_TOPIC, msg)
    except Exception:  # noqa: BLE001 - not on a worker, or no distributed: nothing to report to
        pass


@contextlib.contextmanager
def _kernel_environment() -> Iterator[None]:
    """The worker's environment without :data:`_KERNEL_ENV_DROP` while a kernel starts (restored after)."""
    saved = {k: os.environ.pop(k) for k in _KERNEL_ENV_DROP if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def execute_run(task: RunTask) -> dict:
    """Execute one run with papermill and write its files.

    Arguments:
      task: the run.

    Returns:
      The final status dict (also written to ``status.json``): ``status`` ``"finished"`` or
      ``"failed"`` (with ``error``, ``traceback`` and ``stdout_tail``), ``params``, ``host``,
      ``pid``, ``started``, ``ended``, ``wall_time_s``, ``command`` (when given) and, when finished,
      ``result_written`` (whether the notebook wrote ``result.json``: a run without it has no records
      to aggregate). A stale ``result.json`` of an earlier attempt is deleted first; a ``result.json`` that is not
      valid JSON fails the run. Never raises for an error of the notebook.
    """
    import papermill as pm

    path = Path(task.path)
    path.mkdir(parents=True, exist_ok=True)
    result_file = path / RESULT_FILE
    with contextlib.suppress(FileNotFoundError):
        result_file.unlink()  # a stale result of an earlier attempt must not count
    base = {"name": task.name, "params": task.params, "notebook": task.notebook,
            "host": socket.gethostname(), "pid": os.getpid(), "started": utc_timestamp()}
    if task.command:
        base["command"] = task.command
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
    try:
        with _kernel_environment():
            pm.execute_notebook(
                task.notebook, str(path / OUTPUT_NOTEBOOK), parameters=params, kernel_name=task.kernel,
                progress_bar=False, cwd=task.cwd or str(Path(task.notebook).parent),
                execution_timeout=task.timeout, kernel_manager_class=KERNEL_MANAGER)
    except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
        if hasattr(e, "ename") and hasattr(e, "evalue"):  # papermill.PapermillExecutionError
            error = f"{e.ename}: {e.evalue}"
            tb = _ANSI.sub("", "\n".join(getattr(e, "traceback", []) or []))
        else:
            error = f"{type(e).__name__}: {e}"
            tb = traceback.format_exc()
    wall = time.perf_counter() - t0
    final = {**base, "ended": utc_timestamp(), "wall_time_s": round(wall, 3)}
    if error is None and result_file.is_file():
        try:
            read_json(result_file)
        except ValueError as e:
            error, tb = f"{result_file} is not valid JSON: {e}", ""
    if error is not None:
        with contextlib.suppress(Exception):
            final["stdout_tail"] = notebook_stdout(path / OUTPUT_NOTEBOOK)[-30:]
        final.update(status="failed", error=error, traceback=tb)
    else:
        final.update(status="finished", result_written=result_file.is_file())
    write_json(path / STATUS_FILE, final)  # last: the marker
    return final
