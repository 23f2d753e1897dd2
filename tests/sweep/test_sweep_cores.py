"""Sweep workers pinned to their own cores (dgnlib.sweep.cores, run_sweep(pin_cores=True), --pin-cores):
the split of the cores, the workers' environment, the pinning of a process and of what it starts, the
argument errors, and a 2-worker sweep whose kernels each see one core and single-threaded XLA."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dgnlib import sweep
from dgnlib.sweep.cores import CORE_SETS_ENV, SINGLE_CORE_XLA_FLAGS, core_sets, pin_worker, pinning_environment

linux = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="core pinning is Linux-only")


@linux
def test_core_sets_split_the_cores_into_equal_disjoint_sets():
    assert core_sets(2, [3, 0, 2, 1]) == [[0, 1], [2, 3]]
    assert core_sets(3, range(4)) == [[0], [1], [2]]  # the remainder is left unused
    assert core_sets(1, [5, 7]) == [[5, 7]]
    assert core_sets(1) == [sorted(os.sched_getaffinity(0))]
    with pytest.raises(ValueError, match=r"n_workers=3 is more than the 2 core\(s\)"):
        core_sets(3, [0, 1])
    with pytest.raises(ValueError, match="n_workers must be an int >= 1, got 0"):
        core_sets(0, [0, 1])


def test_pinning_environment_makes_single_core_workers_single_threaded():
    env = pinning_environment([[0], [1]], xla_flags="--xla_dump_to=/x")
    assert env == {CORE_SETS_ENV: "0;1", "XLA_FLAGS": f"--xla_dump_to=/x {SINGLE_CORE_XLA_FLAGS}"}
    assert pinning_environment([[0, 1], [2, 3]], xla_flags="") == {CORE_SETS_ENV: "0,1;2,3"}  # XLA's own threads


@linux
def test_pin_worker_pins_every_thread_and_the_processes_started_after(monkeypatch):
    assert pin_worker(0) is None  # no core sets given: nothing pinned
    core = min(os.sched_getaffinity(0))
    code = ("import os, subprocess, sys, threading\n"
            "from dgnlib.sweep.cores import pin_worker\n"
            "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
            "cores = pin_worker(1)\n"
            "tasks = {}\n"
            "for tid in os.listdir('/proc/self/task'):\n"
            "    try: tasks[tid] = sorted(os.sched_getaffinity(int(tid)))\n"
            "    except ProcessLookupError: pass  # the joined thread, gone since the listing\n"
            "child = subprocess.run([sys.executable, '-c', 'import os; print(sorted(os.sched_getaffinity(0)))'],\n"
            "                       capture_output=True, text=True).stdout.strip()\n"
            "print(cores, sorted(set(map(tuple, tasks.values()))), child)")
    env = {**os.environ, CORE_SETS_ENV: f"99;{core}"}  # worker 1 takes the second set
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [f"[{core}]", f"[({core},)]", f"[{core}]"]


@linux
def test_pin_worker_skips_a_thread_that_ends_while_it_pins(monkeypatch):
    # CI once saw the joined thread still listed in /proc/self/task and gone when it was pinned
    from dgnlib.sweep import cores as cores_mod

    core = min(os.sched_getaffinity(0))
    listings = iter([["101", "102"], ["101", "102", "103"], ["101", "103"]])  # 103 started meanwhile
    pinned = []

    def setaffinity(tid, cpus):
        if tid == 102:
            raise ProcessLookupError(3, "No such process")
        pinned.append((tid, sorted(cpus)))

    monkeypatch.setenv(CORE_SETS_ENV, str(core))
    monkeypatch.setattr(cores_mod.os, "listdir", lambda path: next(listings))
    monkeypatch.setattr(cores_mod.os, "sched_setaffinity", setaffinity)
    assert pin_worker(0) == [core]
    assert sorted(pinned) == [(101, [core]), (103, [core])]
    monkeypatch.setattr(cores_mod.os, "sched_setaffinity", lambda tid, cpus: (_ for _ in ()).throw(
        PermissionError(1, "Operation not permitted")))
    monkeypatch.setattr(cores_mod.os, "listdir", lambda path: ["101"])
    with pytest.raises(PermissionError):  # anything but a vanished thread is still an error
        pin_worker(0)


def test_run_sweep_refuses_pinning_it_cannot_do(tmp_path):
    spec = sweep.make_spec(tmp_path / "nb.ipynb", {"x": [1]})
    with pytest.raises(ValueError, match="pin_cores pins the workers of the LocalCluster"):
        sweep.run_sweep(spec, tmp_path / "runs", scheduler="tcp://127.0.0.1:1", pin_cores=True)
    with pytest.raises(ValueError, match="pin_cores must be a bool"):
        sweep.run_sweep(spec, tmp_path / "runs", pin_cores="yes")
    if hasattr(os, "sched_getaffinity"):
        with pytest.raises(ValueError, match="is more than the"):
            sweep.run_sweep(spec, tmp_path / "runs", n_workers=len(os.sched_getaffinity(0)) + 1, pin_cores=True)
    assert not (tmp_path / "runs").exists()  # refused before anything was written


@linux
@pytest.mark.skipif(len(getattr(os, "sched_getaffinity", lambda _: ())(0)) < 2, reason="needs 2 cores")
def test_pinned_sweep_runs_each_kernel_on_one_core_with_single_threaded_xla(tmp_path):
    pytest.importorskip("distributed")
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import json, os\nfrom dgnlib.runtime import environment_info\nenv = environment_info()\n"
        "print(json.dumps([sorted(os.sched_getaffinity(0)), env['cpu_affinity'], env['xla_flags']]))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "where.ipynb")
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "dgnlib.sweep", "run", "--notebook", str(tmp_path / "where.ipynb"), "-p", "x=1,2",
           "-o", str(runs), "--n-workers", "2", "--pin-cores", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = [json.loads(sweep.notebook_stdout(runs / f"x={x}" / "output.ipynb")[0]) for x in (1, 2)]
    for cores, affinity, flags in seen:
        assert len(cores) == 1 and affinity == 1 and flags.endswith(SINGLE_CORE_XLA_FLAGS)
    # (which worker ran which run is Dask's choice: both may have gone to one worker, so no test of "different")
    assert {c for cores, _, _ in seen for c in cores} <= set(core_sets(2)[0] + core_sets(2)[1])
