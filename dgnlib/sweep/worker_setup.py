"""Set-up of the LocalCluster's Dask worker processes (a ``preload`` module, run in each worker).

Ctrl-C in a terminal sends SIGINT to every process of the sweep, the Dask workers included; each
worker then died with a page of asyncio tracebacks while the client was already shutting the cluster
down. The workers ignore SIGINT: the client (``python -m dgnlib.sweep``) handles Ctrl-C, cancels the
runs and closes the cluster, which stops its workers.

The cancellation of the runs then made each busy worker log a WARNING ("Async instruction for <Task
cancelled ...> ended with CancelledError"), and each notebook kernel, orphaned when its worker
stopped, one more ("Parent appears to have exited, shutting down"). A cancelled run is what the
user asked for: a logging filter drops the first, and the workers' kernels log errors only
(:attr:`dgnlib.sweep.kernels.IPCKernelManager.ipykernel_log_level`), so Ctrl-C prints one line.

With ``pin_cores`` each worker also pins itself to its own CPU cores (:mod:`dgnlib.sweep.cores`).
"""
from __future__ import annotations

import logging
import signal
import threading

from .cores import pin_worker
from .kernels import IPCKernelManager

if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class CancelledTaskFilter(logging.Filter):
    """Drops distributed's WARNING that a task ended with ``CancelledError`` (the client cancelled it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "ended with CancelledError" not in record.getMessage()


logging.getLogger("distributed.worker.state_machine").addFilter(CancelledTaskFilter())
IPCKernelManager.ipykernel_log_level = "ERROR"


def dask_setup(worker) -> None:
    """The preload protocol's hook. SIGINT is ignored and the log settings above apply from the import of
    this module on; here, when the sweep pins its workers (``pin_cores``), this worker's threads go to its
    own cores (:func:`dgnlib.sweep.cores.pin_worker`)."""
    pin_worker(worker.name)
