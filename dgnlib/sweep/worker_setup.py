"""Set-up of the LocalCluster's Dask worker processes (a ``preload`` module, run in each worker).

Ctrl-C in a terminal sends SIGINT to every process of the sweep, the Dask workers included; each
worker then died with a page of asyncio tracebacks while the client was already shutting the cluster
down. The workers ignore SIGINT: the client (``python -m dgnlib.sweep``) handles Ctrl-C, cancels the
runs and closes the cluster, which stops its workers.
"""
from __future__ import annotations

import signal
import threading

if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def dask_setup(worker) -> None:  # noqa: ARG001 - the preload protocol's hook; the work is done on import
    """Nothing more to do: SIGINT is ignored from the import of this module on."""
