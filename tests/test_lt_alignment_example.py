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
    assert res["command"] == f"python3 examples/lt_alignment.py --epochs 1 --n-train 300 --n-batches 2 -o {out}"


def test_script_argument_errors():
    proc = run("--epochs", "1", "--measure-at", "0,5")
    assert proc.returncode != 0 and "--measure-at 5 is after the last epoch (--epochs 1)" in proc.stderr
    proc = run("--measure-at", "a,b")
    assert proc.returncode != 0 and "expected comma-separated integers" in proc.stderr
    proc = run("--n-batches", "0")
    assert proc.returncode != 0 and "--n-batches must be >= 1" in proc.stderr


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two 2 x 16 linear-threshold runs (seeds 0, 1 and seed 2) of one epoch on 300 MNIST samples,
    saved as the sweep saves them."""
    from dgnlib import vision

    tmp = tmp_path_factory.mktemp("ckpt")
    data = vision.load_arrays("mnist", n_train=300)
    paths = []
    for seeds in ((0, 1), (2,)):
        cfg = vision.make_config(rule="linear_threshold", hidden=(16, 16), seeds=seeds, epochs=1)
        state, metrics = vision.train_epoch(vision.init_run(cfg, n_in=data.x_train.shape[1]), data, cfg)
        paths.append(tmp / f"seeds{seeds[0]}.ckpt")
        vision.save_checkpoint(paths[-1], state, [metrics], vision.checkpoint_identity(cfg, data))
    return paths


@pytest.mark.skipif(not mnist_cached(), reason="MNIST cache not prepared (make data)")
def test_checkpoint_mode_measures_every_layer_of_every_saved_seed(checkpoints, tmp_path):
    a, b = checkpoints
    out = tmp_path / "layers.json"
    proc = run("--checkpoint", str(a), "--checkpoint", str(b), "--n-train", "300", "--n-batches", "2", "-o", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(out.read_text())
    assert res["command"].endswith(f"--checkpoint {a} --checkpoint {b} --n-train 300 --n-batches 2 -o {out}")
    assert res["environment"]["dgnlib_commit"] and res["n_batches"] == 2 and list(res)[-1] == "environment"
    rows = res["rows"]
    assert sorted((r["seed"], r["epoch"]) for r in rows) == [(s, e) for s in (0, 1, 2) for e in (0, 1)]
    for r in rows:
        for point in ("batch_mean", "sample"):
            assert all(len(v) == 2 for v in r[point].values())  # one value per hidden layer
        assert max(r["sample"]["control_free"]) < 1e-3 < min(r["batch_mean"]["control_free"])
        assert max(r["batch_mean"]["exact_control_free"]) < 1e-5
    before = {r["seed"]: r["batch_mean"]["cos_lt_exact"] for r in rows if r["epoch"] == 0}
    after = {r["seed"]: r["batch_mean"]["cos_lt_exact"] for r in rows if r["epoch"] == 1}
    assert before != after  # the saved networks, not the initial ones again
    # the table: one line per (epoch, fit, layer), each cell the mean +- std over the 3 seeds of the JSON
    lines = [l.split() for l in proc.stdout.splitlines() if l.split() and l.split()[0].isdigit()]
    assert [(l[0], l[1], l[2]) for l in lines] == [(e, p, k) for e in "01" for p in ("batch_mean", "sample")
                                                  for k in "12"]
    last = lines[3]  # epoch 0, sample fit, layer 2: control_free column
    vals = [r["sample"]["control_free"][1] for r in rows if r["epoch"] == 0]
    assert abs(float(last[3].split("+-")[0]) - sum(vals) / 3) <= 6e-4
    cos = [r["batch_mean"]["cos_lt_exact"][0] for r in rows if r["epoch"] == 1]
    assert abs(float(lines[4][4].split("+-")[0]) - sum(cos) / 3) <= 6e-4


@pytest.mark.skipif(not mnist_cached(), reason="MNIST cache not prepared (make data)")
def test_checkpoint_mode_errors(checkpoints, tmp_path):
    a = checkpoints[0]
    proc = run("--checkpoint", str(a), "--n-train", "400", "--n-batches", "1")
    assert proc.returncode != 0 and f"--checkpoint {a} does not fit --dataset mnist --n-train 400" in proc.stderr
    proc = run("--checkpoint", str(a), "--checkpoint", str(a), "--n-train", "300", "--n-batches", "1")
    assert proc.returncode != 0 and "repeats seed(s) [0, 1]" in proc.stderr
    proc = run("--checkpoint", str(tmp_path / "missing.ckpt"), "--n-batches", "1")
    assert proc.returncode != 0 and f"--checkpoint {tmp_path / 'missing.ckpt'}" in proc.stderr
