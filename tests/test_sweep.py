"""Tests of dgnlib.sweep: grid expansion and names (pure), sweeps of a toy notebook on a Dask
LocalCluster (one 2-worker cluster per module, started once: starting one per test is slow under
load), failure recording, skip/retry on re-run, aggregation and the CLI."""
from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from dgnlib import sweep

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "tests" / "data" / "sweep_toy.ipynb"
VISION = ROOT / "notebooks" / "vision_benchmarks.ipynb"


def toy_final(x: float, seed: int, epochs: int = 3) -> float:
    """The toy notebook's last accuracy value, computed independently of the notebook."""
    return x * epochs / epochs + 0.01 * seed


# ------------------------------------------------------------------------------------- pure

def test_run_name_and_format_value():
    assert sweep.run_name({"datasets": ["mnist"], "rules": ["bp"], "seed": 0}) == "datasets=mnist__rules=bp__seed=0"
    assert sweep.run_name({"hidden_layers": [256, 256, 256], "flag": True, "n": None}) == \
        "hidden_layers=256-256-256__flag=true__n=none"
    assert sweep.run_name({}) == "run"
    assert sweep.format_value("a b/c:d") == "a_b_c_d"
    long = {"p": "x" * 300}
    name = sweep.run_name(long)
    assert len(name) == sweep.MAX_NAME_LENGTH and name.startswith("p=xxx")
    assert name != sweep.run_name({"p": "x" * 299 + "y"})  # the hash tells them apart


def test_expand_grid_order_fixed_and_collisions():
    runs = sweep.expand_grid({"a": [1, 2], "b": ["u", "v", "w"]}, {"epochs": 2})
    assert [n for n, _ in runs] == ["a=1__b=u", "a=1__b=v", "a=1__b=w", "a=2__b=u", "a=2__b=v", "a=2__b=w"]
    assert runs[4][1] == {"epochs": 2, "a": 2, "b": "v"}
    names = [n for n, _ in sweep.expand_grid({"s": ["a b", "a_b"]})]
    assert len(set(names)) == 2 and all(n.startswith("s=a_b-") for n in names)
    assert [n for n, _ in sweep.expand_grid({})] == ["run"]
    with pytest.raises(ValueError, match="repeated"):
        sweep.expand_grid({"a": [1, 1]})


def test_parse_cli_values():
    assert sweep.parse_cli_values("rules=bp,exact") == ("rules", ["bp", "exact"])
    assert sweep.parse_cli_values("hidden_layers=[256],[256,256,256]") == ("hidden_layers", [[256], [256, 256, 256]])
    assert sweep.parse_cli_values("epochs=2") == ("epochs", [2])
    assert sweep.parse_cli_values("flag=true,None,null,none") == ("flag", [True, None, None, "none"])
    assert sweep.parse_cli_values("datasets=[mnist]", single=True) == ("datasets", ["mnist"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        sweep.parse_cli_values("epochs")
    with pytest.raises(ValueError, match="not a parameter name"):
        sweep.parse_cli_values("1x=2")


def test_load_spec_and_errors(tmp_path):
    good = tmp_path / "s.json"
    good.write_text(json.dumps({"notebook": str(TOY), "grid": {"x": [1, 2], "seed": [0]}, "fixed": {"epochs": 4}}))
    spec = sweep.load_spec(good)
    assert spec.grid == {"x": [1, 2], "seed": [0]} and spec.fixed == {"epochs": 4}
    assert set(sweep.check_parameters(spec)) >= {"x", "seed", "epochs", "result_path"}
    y = tmp_path / "s.yaml"
    y.write_text(f"notebook: {TOY}\ngrid:\n  x: [1]\n")
    assert sweep.load_spec(y).grid == {"x": [1]}
    cases = {
        '{"notebook": "a.ipynb", "gird": {}}': r"unknown key\(s\) \['gird'\]",
        '{"grid": {"x": [1]}}': "'notebook'",
        '{"notebook": "a.ipynb", "grid": {"x": 3}}': r"grid\.x must be a non-empty list",
        '{"notebook": "a.ipynb", "grid": {"x": []}}': r"grid\.x must be a non-empty list",
        '{"notebook": "a.ipynb", "grid": {"x": [1]}, "fixed": {"x": 2}}': "both in grid and fixed",
        '{"notebook": "a.ipynb", "fixed": {"result_path": "r"}}': "set by the runner",
        '[1, 2]': "top level must be a mapping",
        '{"notebook": ': "not valid JSON",
    }
    for text, pattern in cases.items():
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ValueError, match=pattern) as info:
            sweep.load_spec(bad)
        assert str(bad) in str(info.value)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        sweep.load_spec(tmp_path / "nope.yaml")
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "toy.ipynb").write_bytes(TOY.read_bytes())
    (tmp_path / "nb" / "rel.yaml").write_text("notebook: toy.ipynb\n")  # relative to the sweep file
    assert sweep.load_spec(tmp_path / "nb" / "rel.yaml").notebook == tmp_path / "nb" / "toy.ipynb"
    (tmp_path / "nb" / "missing.yaml").write_text("notebook: other.ipynb\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml: notebook 'other\.ipynb' found neither"):
        sweep.load_spec(tmp_path / "nb" / "missing.yaml")


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    sweep.atomic_write_text(target, "old")

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep.runner.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        sweep.atomic_write_text(target, '{"status": "finished"}')
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["status.json"]


def test_unknown_parameter_lists_the_notebooks():
    spec = sweep.make_spec(TOY, {"x": [1], "sed": [0]})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['sed'\].*'x', 'rule', 'seed'"):
        sweep.check_parameters(spec)


@pytest.mark.parametrize("name,n_runs", [("table1.yaml", 12), ("small.yaml", 6)])
def test_example_specs_match_the_vision_notebook(name, n_runs):
    spec = sweep.load_spec(ROOT / "examples" / "sweeps" / name)
    assert spec.notebook.resolve() == VISION.resolve()
    sweep.check_parameters(spec)  # every name is a parameter of the notebook
    assert len(sweep.expand_grid(spec.grid, spec.fixed)) == n_runs


def test_write_result_is_atomic_and_converts_arrays(tmp_path):
    np = pytest.importorskip("numpy")
    assert sweep.write_result(None, {"a": 1}) is None
    p = sweep.write_result(tmp_path / "r.json", {"metrics": {"acc": np.array([0.5, 0.75]), "n": np.int64(3)}})
    assert json.loads(p.read_text()) == {"metrics": {"acc": [0.5, 0.75], "n": 3}}
    assert sorted(os.listdir(tmp_path)) == ["r.json"]  # no temporary file left behind
    with pytest.raises(TypeError):
        sweep.write_result(tmp_path / "x.json", {"bad": object()})
    assert sorted(os.listdir(tmp_path)) == ["r.json"]


def test_plan_runs_states_and_changed_parameters(tmp_path):
    spec = sweep.make_spec(TOY, {"x": [1, 2, 3]}, {"epochs": 3})
    (tmp_path / "x=1").mkdir()
    (tmp_path / "x=1" / "status.json").write_text(json.dumps({"status": "finished", "params": {"epochs": 3, "x": 1}}))
    (tmp_path / "x=2").mkdir()
    (tmp_path / "x=2" / "status.json").write_text(json.dumps({"status": "running", "params": {"epochs": 3, "x": 2}}))
    assert [p.state for p in sweep.plan_runs(spec, tmp_path)] == ["finished", "running", "pending"]
    changed = sweep.make_spec(TOY, {"x": [1]}, {"epochs": 5})
    with pytest.raises(ValueError, match=r"other parameters \(differing: \['epochs'\]\)"):
        sweep.plan_runs(changed, tmp_path)
    assert sweep.plan_runs(changed, tmp_path, force=True)[0].state == "finished"


def test_parse_epoch_lines():
    lines = [
        "jax 0.10.2 on cpu; seeds (0, 1)",
        "mnist 1x256 bp seed 0 epoch 1: train loss 1.6458 acc 0.5868 | val loss 1.0232 acc 0.7930 | "
        "test loss 1.0131 acc 0.8019 | solver ok, max steps 0, unit iters 0",
        "mnist 1x256 bp seed 1 epoch 1: train loss 1.6 acc 0.5 | val loss 1.0 acc 0.7 | "
        "test loss 1.0 acc 0.81 | solver ok",
        "mnist 1x256 bp seed 0 epoch 2: train loss 0.7892 acc 0.8395 | val loss 0.6418 acc 0.8358 | "
        "test loss 0.6399 acc 0.8353 | solver ok, max steps 0, unit iters 0",
    ]
    recs = sweep.parse_epoch_lines(lines)
    assert [(r["dataset"], r["arch"], r["rule"], r["seed"]) for r in recs] == [("mnist", "1x256", "bp", 0),
                                                                                 ("mnist", "1x256", "bp", 1)]
    assert recs[0]["metrics"]["test_accuracy"] == [0.8019, 0.8353]
    assert recs[0]["metrics"]["epoch"] == [1, 2] and recs[1]["metrics"]["val_loss"] == [1.0]


def test_summarize_and_format_pure():
    R = sweep.Record
    recs = [R({"rule": r, "dataset": d, "arch": "1x256", "seed": s}, {"test_accuracy": [0.5, v]}, f"{r}{d}{s}")
            for r, d, s, v in [("bp", "mnist", 0, 0.90), ("bp", "mnist", 1, 0.94), ("bp", "fmnist", 0, 0.80),
                               ("exact", "mnist", 0, 0.70), ("exact", "mnist", 1, 0.72)]]
    t = sweep.summarize(recs)
    assert t.rows == (("bp",), ("exact",)) and t.cols == (("mnist", "1x256"), ("fmnist", "1x256"))
    c = t.cells[(("bp",), ("mnist", "1x256"))]
    assert c.n == 2 and c.mean == pytest.approx(0.92) and c.std == pytest.approx(statistics.stdev([0.90, 0.94]))
    text = sweep.format_table(t)
    assert "92.00 ± 2.83" in text and "80.00" in text and "exact" in text and text.count("-  ") >= 1
    assert (("exact",), ("fmnist", "1x256")) not in t.cells
    with pytest.raises(ValueError, match=r"differ in \['dataset'\]"):
        sweep.summarize(recs, cols=("arch",))
    with pytest.raises(ValueError, match="available metrics"):
        sweep.summarize(recs, metric="loss")
    only = sweep.summarize(recs, cols=("arch",), where={"dataset": "mnist"}, scale=1)
    assert only.cells[(("bp",), ("1x256",))].values == (0.90, 0.94)


# --------------------------------------------------------------------------------- on Dask

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_sweep_runs_and_aggregates(client, tmp_path):
    spec = sweep.make_spec(TOY, {"x": [1.0, 2.5], "seed": [0, 1]}, {"rule": "a"})
    lines = []
    report = sweep.run_sweep(spec, tmp_path, client=client, progress=False, log=lines.append)
    assert report.ok and report.names("finished") == ["x=1.0__seed=0", "x=1.0__seed=1", "x=2.5__seed=0",
                                                      "x=2.5__seed=1"]
    for name in report.names("finished"):
        d = tmp_path / name
        assert json.loads((d / "status.json").read_text())["status"] == "finished"
        assert (d / "output.ipynb").is_file()
        assert json.loads((d / "result.json").read_text())["metrics"]["acc"][-1] == \
            pytest.approx(toy_final(float(name.split("__")[0][2:]), int(name[-1])))
    assert sum("finished" in s for s in lines) == 4 and any("started" in s for s in lines)

    rep = sweep.aggregate_dir(tmp_path, metric="acc", rows="x", cols="rule")
    for x in (1.0, 2.5):
        vals = [toy_final(x, s) for s in (0, 1)]
        cell = rep.table.cells[((x,), ("a",))]
        assert cell.n == 2 and cell.mean == pytest.approx(statistics.mean(vals))
        assert cell.std == pytest.approx(statistics.stdev(vals))
        row = [r for r in _read_csv(rep.csv_path) if float(r["x"]) == x][0]
        assert float(row["a mean"]) == pytest.approx(statistics.mean(vals))
        assert float(row["a std"]) == pytest.approx(statistics.stdev(vals)) and row["a n"] == "2"
        assert f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" in rep.text
    assert len(_read_csv(rep.long_csv_path)) == 2
    assert rep.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_run_is_recorded_and_retried(client, tmp_path):
    fail_dir = tmp_path / "markers"
    fail_dir.mkdir()
    (fail_dir / "fail-x=2-seed=0").write_text("")
    spec = sweep.make_spec(TOY, {"x": [1, 2]}, {"seed": 0, "fail_dir": str(fail_dir)})
    runs = tmp_path / "runs"
    report = sweep.run_sweep(spec, runs, client=client, progress=False, log=lambda s: None)
    assert report.names("finished") == ["x=1"] and report.names("failed") == ["x=2"] and not report.ok
    st = json.loads((runs / "x=2" / "status.json").read_text())
    assert st["status"] == "failed" and st["error"].startswith("RuntimeError: toy failure for x=2 seed=0")
    assert "RuntimeError" in st["traceback"] and not (runs / "x=2" / "result.json").exists()
    finished_mtime = (runs / "x=1" / "status.json").stat().st_mtime_ns
    assert sweep.aggregate_dir(runs, metric="acc", rows="x", cols=(), plot=False).counts["failed"] == 1

    (fail_dir / "fail-x=2-seed=0").unlink()
    again = sweep.run_sweep(spec, runs, client=client, progress=False, log=lambda s: None)
    assert again.names("skipped") == ["x=1"] and again.names("finished") == ["x=2"] and again.ok
    assert (runs / "x=1" / "status.json").stat().st_mtime_ns == finished_mtime  # not re-run
    assert json.loads((runs / "x=2" / "status.json").read_text())["status"] == "finished"


def test_cli_end_to_end(client, tmp_path):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(f"notebook: {TOY}\ngrid:\n  x: [1.5]\n  seed: [0, 1]\nfixed:\n  epochs: 3\n")
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "dgnlib.sweep"]
    dry = subprocess.run(cmd + ["run", str(spec_file), "-o", str(runs), "--dry-run"],
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "pending   x=1.5__seed=0" in dry.stdout and not runs.exists()
    run = subprocess.run(cmd + ["run", str(spec_file), "-f", "epochs=4", "-o", str(runs), "--no-progress",
                                "--scheduler", client.scheduler.address], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 run(s)" in run.stdout and "2 finished" in run.stdout
    agg = subprocess.run(cmd + ["aggregate", str(runs), "--metric", "acc", "--rows", "x", "--cols", "epochs"],
                         capture_output=True, text=True, timeout=60)
    assert agg.returncode == 0, agg.stderr
    vals = [toy_final(1.5, s, 4) for s in (0, 1)]
    assert f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" in agg.stdout
    assert (runs / "aggregate" / "curves_acc.png").is_file() and (runs / "aggregate" / "table_acc.csv").is_file()
    bad = subprocess.run(cmd + ["run", "--notebook", str(TOY), "-p", "nope=1", "-o", str(runs)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown parameter(s) ['nope']" in bad.stderr


def test_execute_run_without_result_path_stores_stdout(tmp_path):
    """The runner's fallback result (no ``result_path`` passed), executed in-process."""
    task = sweep.RunTask("x=3", str(tmp_path / "x=3"), str(TOY), {"x": 3, "seed": 1}, pass_result_path=False)
    (tmp_path / "x=3").mkdir()
    (tmp_path / "x=3" / "result.json").write_text('{"metrics": {"acc": [9]}}')  # stale, of an earlier attempt
    st = sweep.execute_run(task)
    assert st["status"] == "finished" and st["result_written_by_notebook"] is False
    res = json.loads((tmp_path / "x=3" / "result.json").read_text())
    assert res["params"] == {"x": 3, "seed": 1} and res["wall_time_s"] > 0
    assert res["stdout"][-1] == f"a x=3 seed 1 epoch 3: acc {toy_final(3, 1):.4f}"


def test_kernels_do_not_inherit_dasks_malloc_trim_threshold(tmp_path, monkeypatch):
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers (1.55x slower vision epochs when a
    kernel inherits it): the runner starts kernels without it and restores the worker's value."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os\nprint('trim', os.environ.get('MALLOC_TRIM_THRESHOLD_'), 'home', bool(os.environ.get('HOME')))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "env.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    task = sweep.RunTask("x=1", str(tmp_path / "x=1"), str(path), {"x": 1}, pass_result_path=False)
    assert sweep.execute_run(task)["status"] == "finished"
    assert json.loads((tmp_path / "x=1" / "result.json").read_text())["stdout"] == ["trim None home True"]
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"
