"""examples/lt_alignment.py: the control-free update of the linear-threshold rule over a (tiny) training
run, from the command line: its table, its JSON and its argument errors. Needs the offline MNIST cache
(``make data``); skipped without it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vision_helpers import mnist_cached

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "lt_alignment.py"


def run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.skipif(not mnist_cached(), reason="MNIST cache not prepared (make data)")
def test_script_measures_before_and_after_training_and_writes_json(tmp_path):
    out = tmp_path / "a" / "mnist.json"
    proc = run("--epochs", "1", "--n-train", "300", "--n-batches", "2", "-o", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [l.split() for l in proc.stdout.splitlines() if l.split() and l.split()[0].isdigit()]
    assert [l[0] for l in lines] == ["0", "1"] and lines[0][1:3] == ["-", "-"]
    res = json.loads(out.read_text())
    assert [r["epoch"] for r in res["rows"]] == [0, 1] and res["n_batches"] == 2
    assert res["rows"][0]["train_ol_loss"] is None and res["rows"][1]["train_ol_loss"] > 0
    for row in res["rows"]:
        assert row["sample"]["control_free"] < 1e-3 < row["batch_mean"]["control_free"]
        assert row["batch_mean"]["exact_control_free"] < 1e-5
        printed = float(lines[[r["epoch"] for r in res["rows"]].index(row["epoch"])][3])
        assert abs(printed - row["batch_mean"]["control_free"]) <= 6e-4  # the table prints the JSON's numbers
    assert res["environment"]["dgnlib_commit"]


def test_script_argument_errors():
    proc = run("--epochs", "1", "--measure-at", "0,5")
    assert proc.returncode != 0 and "--measure-at 5 is after the last epoch (--epochs 1)" in proc.stderr
    proc = run("--measure-at", "a,b")
    assert proc.returncode != 0 and "expected comma-separated integers" in proc.stderr
    proc = run("--n-batches", "0")
    assert proc.returncode != 0 and "--n-batches must be >= 1" in proc.stderr
