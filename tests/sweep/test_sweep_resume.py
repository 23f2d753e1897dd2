"""Crash and resume of a real sweep: the vision notebook on a local Dask cluster, the whole process
tree killed with SIGKILL while a run is in the middle of an epoch, the sweep command run again.

Checks: the run finished before the kill is skipped (its files untouched), the killed run resumes
after its last checkpointed epoch (its earlier epochs are not recomputed), and every final number
equals that of an uninterrupted sweep of the same grid. Needs the offline MNIST cache
(``make data``); skipped without it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dgnlib import checkpoint as ckpt
from dgnlib import sweep
from vision_helpers import mnist_cached

ROOT = Path(__file__).resolve().parents[2]
VISION = ROOT / "notebooks" / "vision_benchmarks.ipynb"
EPOCHS = 6
# two units that differ only in length: the 1-epoch one finishes while the other is in its first few epochs
# (two rules of different cost raced, and on a loaded machine the cheap one sometimes lost)
FAST, SLOW = "epochs=1", f"epochs={EPOCHS}"


pytestmark = pytest.mark.skipif(not mnist_cached(), reason="MNIST cache not prepared (make data)")


def write_spec(path: Path) -> Path:
    spec = {"notebook": str(VISION), "grid": {"epochs": [1, EPOCHS]},
            "fixed": {"datasets": ["mnist"], "rules": ["exact"], "hidden_layers": [64], "n_seeds": 2,
                      "n_train": 20000, "show_plots": False}}
    path.write_text(json.dumps(spec))
    return path


def sweep_cmd(spec: Path, run_dir: Path) -> list:
    return [sys.executable, "-m", "dgnlib.sweep", "run", str(spec), "-o", str(run_dir), "--n-workers", "2",
            "--no-progress"]


def env():
    return {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}


def run_sweep(spec, run_dir) -> str:
    out = subprocess.run(sweep_cmd(spec, run_dir), cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def checkpoint_epoch(run_dir: Path):
    files = list((run_dir / SLOW / sweep.CHECKPOINT_DIR).glob("*.ckpt"))
    if not files:
        return None
    return ckpt.read_manifest(files[0])["metadata"]["epoch"]


def status(run_dir: Path, name: str):
    try:
        return json.loads((run_dir / name / sweep.STATUS_FILE).read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def kill_tree(proc: subprocess.Popen) -> int:
    """SIGKILL the sweep process and every descendant (Dask nanny/workers, Jupyter kernels, which
    run in sessions of their own), as when a node dies. Returns how many processes were killed."""
    import psutil

    root = psutil.Process(proc.pid)
    procs = [root] + root.children(recursive=True)
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)
    proc.wait(timeout=30)
    return len(procs)


def results(run_dir: Path) -> dict:
    out = {}
    for name in (FAST, SLOW):
        for rec in json.loads((run_dir / name / sweep.RESULT_FILE).read_text())["records"]:
            out[(name, rec["rule"], rec["seed"])] = rec["metrics"]
    return out


def test_sigkill_mid_epoch_then_rerun_resumes_and_matches_uninterrupted(tmp_path):
    spec = write_spec(tmp_path / "spec.json")
    ref_dir, run_dir = tmp_path / "uninterrupted", tmp_path / "killed"
    run_sweep(spec, ref_dir)

    proc = subprocess.Popen(sweep_cmd(spec, run_dir), cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:  # the fast run finished and the slow one is between its first and last epoch
            e = checkpoint_epoch(run_dir)
            if status(run_dir, FAST) == "finished" and e is not None and 1 <= e < EPOCHS - 1:
                break
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert e is None or e < EPOCHS - 1, f"the slow run got to epoch {e} before the fast one finished"
            assert time.monotonic() < deadline, "timed out waiting for the first checkpoint"
            time.sleep(0.02)
        time.sleep(0.1)  # into the next epoch
        assert kill_tree(proc) >= 3  # sweep, workers, kernels
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    done = checkpoint_epoch(run_dir)
    assert 1 <= done < EPOCHS and status(run_dir, SLOW) == "running"  # killed inside epoch done + 1
    fast_status = (run_dir / FAST / sweep.STATUS_FILE).read_bytes()
    fast_nb_mtime = (run_dir / FAST / sweep.OUTPUT_NOTEBOOK).stat().st_mtime_ns

    log = run_sweep(spec, run_dir)
    assert "skipping 1 finished run" in log
    assert (run_dir / FAST / sweep.STATUS_FILE).read_bytes() == fast_status  # not recomputed
    assert (run_dir / FAST / sweep.OUTPUT_NOTEBOOK).stat().st_mtime_ns == fast_nb_mtime
    assert status(run_dir, SLOW) == "finished"
    printed = "\n".join(sweep.notebook_stdout(run_dir / SLOW / sweep.OUTPUT_NOTEBOOK))
    assert f"after epoch {done} of {EPOCHS} (epochs 1-{done} restored, not recomputed)" in printed

    ref, got = results(ref_dir), results(run_dir)
    assert set(ref) == set(got) == {(n, "exact", s) for n in (FAST, SLOW) for s in (0, 1)}
    for key in ref:
        assert got[key] == ref[key], key  # every metric of every epoch, exactly
    # the resumed run still has every epoch's wall and CPU time: the killed execution's from the checkpoint
    times = json.loads((run_dir / SLOW / sweep.RESULT_FILE).read_text())["epoch_s"]
    for t in times.values():
        assert len(t["wall"]) == len(t["cpu"]) == EPOCHS and min(t["wall"] + t["cpu"]) > 0
    a = sweep.aggregate_dir(ref_dir, plot=False, where={"epochs": EPOCHS}).text.splitlines()[:5]
    b = sweep.aggregate_dir(run_dir, plot=False, where={"epochs": EPOCHS}).text.splitlines()[:5]
    assert a == b
