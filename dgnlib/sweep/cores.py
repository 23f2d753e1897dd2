"""Each LocalCluster worker on its own CPU cores (``run_sweep(..., pin_cores=True)``, ``--pin-cores``).

Two notebook kernels that each let XLA use every core of a small machine slow each other down: on
2 cores, two 3 x 256 exact-inverse runs side by side trained 3.2 s per seed-epoch (10,000 samples,
``benchmarks/bench_sweep.py``'s set-up), against 2.6 s when each ran single-threaded on a core of
its own (4.2 s for one run alone on both cores). With ``pin_cores`` the machine's cores (those this
process may use) are split into ``n_workers`` equal, disjoint sets; each worker process pins all its
threads to its set, so the kernels it starts inherit it, and, with one core per worker, XLA runs
single-threaded in them (:data:`SINGLE_CORE_XLA_FLAGS`, appended to the worker's ``XLA_FLAGS``).
Single-threaded matrix products sum in another order: the same seed gives the same numbers up to
float32 rounding, not bit for bit, so the setting is part of each result's environment
(:func:`dgnlib.runtime.environment_info`: ``cpu_affinity``, ``xla_flags``). Linux only.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

__all__ = ["CORE_SETS_ENV", "SINGLE_CORE_XLA_FLAGS", "core_sets", "pinning_environment", "pin_worker"]

#: The environment variable that hands each worker the core sets (``"0;1"``, ``"0,1;2,3"``).
CORE_SETS_ENV = "DGNLIB_SWEEP_CORE_SETS"
#: XLA's CPU flags of a kernel with one core: no Eigen thread pool, one intra-op thread.
SINGLE_CORE_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def core_sets(n_workers: int, cores: Optional[Sequence[int]] = None) -> List[List[int]]:
    """Split ``cores`` (default: the cores this process may run on) into ``n_workers`` equal, disjoint
    sets (the remainder is left unused).

    Arguments:
      n_workers: the number of worker processes, >= 1.
      cores: CPU core numbers (default ``os.sched_getaffinity(0)``).

    Returns:
      one sorted list of cores per worker. ``ValueError`` when there are fewer cores than workers or
      the platform cannot pin processes.
    """
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("pin_cores needs os.sched_setaffinity (Linux); run without pinning on this platform")
    cores = sorted(os.sched_getaffinity(0) if cores is None else cores)
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an int >= 1, got {n_workers!r}")
    k = len(cores) // n_workers
    if k < 1:
        raise ValueError(f"pin_cores gives each worker cores of its own: n_workers={n_workers} is more than "
                         f"the {len(cores)} core(s) this process may use ({cores})")
    return [cores[i * k:(i + 1) * k] for i in range(n_workers)]


def pinning_environment(sets: Sequence[Sequence[int]], xla_flags: Optional[str] = None) -> Dict[str, str]:
    """The environment of the pinned workers: :data:`CORE_SETS_ENV`, and with one core per worker
    ``XLA_FLAGS`` = ``xla_flags`` (default: this process's) plus :data:`SINGLE_CORE_XLA_FLAGS`."""
    env = {CORE_SETS_ENV: ";".join(",".join(str(c) for c in s) for s in sets)}
    if max(len(s) for s in sets) == 1:
        base = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
        env["XLA_FLAGS"] = f"{base} {SINGLE_CORE_XLA_FLAGS}".strip()
    return env


def pin_worker(name) -> Optional[List[int]]:
    """Pin every thread of this process to its core set: set ``int(name) % len(sets)`` of
    :data:`CORE_SETS_ENV` (LocalCluster names its workers 0, 1, ...). Threads and processes started
    afterwards (the notebook kernels) inherit the set. Returns the cores, or None when the variable
    is not set (no pinning asked for)."""
    spec = os.environ.get(CORE_SETS_ENV)
    if not spec:
        return None
    sets = [[int(c) for c in s.split(",")] for s in spec.split(";")]
    cores = sets[int(name) % len(sets)]
    done = set()
    while True:  # again until no thread is new: one may have started while the others were pinned
        tids = set(os.listdir("/proc/self/task")) - done
        if not tids:
            return cores
        for tid in tids:
            try:
                os.sched_setaffinity(int(tid), cores)
            except ProcessLookupError:
                pass  # the thread ended after it was listed (a joined thread can linger in the listing)
        done |= tids
