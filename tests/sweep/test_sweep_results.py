"""dgnlib.sweep.results: the run directory's files, the records of finished runs (the notebooks'
records are the only input: a finished run without them is reported, never parsed from printed
text), and the aggregation into a table, CSV files and curves (no Dask, no kernel)."""
from __future__ import annotations

import csv
import json
import os
import statistics

import pytest

from dgnlib import sweep


def test_write_result_is_atomic_and_converts_arrays(tmp_path):
    np = pytest.importorskip("numpy")
    assert sweep.write_result(None, {"a": 1}) is None
    p = sweep.write_result(tmp_path / "r.json", {"metrics": {"acc": np.array([0.5, 0.75]), "n": np.int64(3)}})
    assert json.loads(p.read_text()) == {"metrics": {"acc": [0.5, 0.75], "n": 3}}
    assert sorted(os.listdir(tmp_path)) == ["r.json"]  # no temporary file left behind
    with pytest.raises(TypeError):
        sweep.write_result(tmp_path / "x.json", {"bad": object()})
    with pytest.raises(TypeError, match="result must be a mapping"):
        sweep.write_result(tmp_path / "x.json", [1])
    assert sorted(os.listdir(tmp_path)) == ["r.json"]


def make_run(run_dir, name, status, params, result=None):
    """A run directory as the runner leaves it: status.json (and result.json when given)."""
    d = run_dir / name
    d.mkdir(parents=True)
    (d / sweep.STATUS_FILE).write_text(json.dumps({"status": status, "params": params}))
    if result is not None:
        (d / sweep.RESULT_FILE).write_text(result if isinstance(result, str) else json.dumps(result))


def curve(final, seed):
    return [final - 0.1, final + 0.01 * seed]


@pytest.fixture
def run_dir(tmp_path):
    """Runs of every kind: records (two seeds each), one metrics-only run, finished runs without
    records (no result.json, a result without records, invalid JSON), a failed, a running and a
    pending run (in the manifest, no directory)."""
    rd = tmp_path / "runs"
    for rule, final in (("bp", 0.9), ("exact", 0.8)):
        make_run(rd, f"rules={rule}", "finished", {"rules": [rule], "epochs": 2},
                 {"records": [{"dataset": "mnist", "arch": "1x256", "rule": rule, "seed": s,
                               "metrics": {"test_accuracy": curve(final, s)}} for s in (0, 1)], "wall_s": 3.0})
    make_run(rd, "single", "finished", {"rule": "lt", "dataset": "mnist", "arch": "1x256", "seed": 0},
             {"metrics": {"test_accuracy": [0.5, 0.7]}})
    make_run(rd, "printed_only", "finished", {"rules": ["x"]})  # the notebook wrote no result.json
    make_run(rd, "no_records", "finished", {"rules": ["y"]}, {"wall_s": 1.0})
    make_run(rd, "not_json", "finished", {"rules": ["z"]}, "{")
    make_run(rd, "broken", "failed", {"rules": ["w"]})
    make_run(rd, "killed", "running", {"rules": ["v"]})
    names = ["rules=bp", "rules=exact", "single", "printed_only", "no_records", "not_json", "broken", "killed", "later"]
    (rd / sweep.MANIFEST_FILE).write_text(json.dumps({"runs": names}))
    return rd


def test_load_records_reads_records_only(run_dir):
    records, counts = sweep.load_records(run_dir)
    assert counts == {"finished": 6, "failed": 1, "running": 1, "pending": 1,
                      "no_records": ["printed_only", "no_records", "not_json"]}
    assert [(r.run, r.keys["rule"], r.keys["seed"]) for r in records] == [
        ("rules=bp", "bp", 0), ("rules=bp", "bp", 1), ("rules=exact", "exact", 0), ("rules=exact", "exact", 1),
        ("single", "lt", 0)]
    # a record's keys: the run's parameters, updated by the record's items
    assert records[0].keys == {"rules": ["bp"], "epochs": 2, "dataset": "mnist", "arch": "1x256", "rule": "bp",
                               "seed": 0}
    assert records[4].metrics == {"test_accuracy": [0.5, 0.7]}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sweep.load_records(run_dir / "nope")


def test_malformed_records_name_the_run(tmp_path):
    make_run(tmp_path, "a", "finished", {}, {"records": {"seed": 0}})
    with pytest.raises(ValueError, match=r"a/result\.json: 'records' must be a list of record dicts, got dict"):
        sweep.load_records(tmp_path)
    make_run(tmp_path / "b", "r", "finished", {}, {"records": [{"seed": 0, "metrics": [0.5]}]})
    with pytest.raises(ValueError, match=r"record 0 of run r: 'metrics' must be a dict"):
        sweep.load_records(tmp_path / "b")


def test_aggregate_dir_table_files_and_the_runs_without_records(run_dir):
    rep = sweep.aggregate_dir(run_dir)
    assert rep.table.rows == (("bp",), ("exact",), ("lt",)) and rep.table.cols == (("mnist", "1x256"),)
    bp = [curve(0.9, s)[-1] * 100 for s in (0, 1)]
    assert f"bp     {statistics.mean(bp):.2f} ± {statistics.stdev(bp):.2f}" in rep.text
    assert "lt     70.00" in rep.text
    lines = rep.text.splitlines()
    assert lines[0] == ("test_accuracy (%), final value, mean ± std over 1/2 seed(s); rows: rule, "
                        "columns: dataset x arch")
    assert lines[-1].startswith("runs: 6 finished, 1 failed, 1 running or interrupted, 1 pending; "
                                "3 finished run(s) wrote no records")
    assert "['printed_only', 'no_records', 'not_json']" in lines[-1] and "write_result" in lines[-1]
    assert rep.counts["no_records"] == ["printed_only", "no_records", "not_json"]
    with open(rep.long_csv_path, newline="") as f:
        summary = list(csv.DictReader(f))
    assert [(r["rule"], r["dataset"], r["n"]) for r in summary] == [("bp", "mnist", "2"), ("exact", "mnist", "2"),
                                                                      ("lt", "mnist", "1")]
    assert rep.csv_path == run_dir / sweep.AGGREGATE_DIR / "table_test_accuracy.csv"
    assert rep.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_aggregate_defaults_come_from_the_spec_and_export_keeps_the_small_files(run_dir, tmp_path):
    """The manifest's aggregate section (the sweep spec's) sets the defaults of aggregate_dir;
    export_runs copies the finished runs' status and result files (and merges the manifests of
    several sweeps), and the copy aggregates exactly like the original."""
    manifest = json.loads((run_dir / sweep.MANIFEST_FILE).read_text())
    (run_dir / sweep.MANIFEST_FILE).write_text(json.dumps({**manifest, "aggregate": {
        "rows": ["rule"], "cols": ["arch"], "labels": {"bp": "BP"}}}))
    (run_dir / "rules=bp" / sweep.OUTPUT_NOTEBOOK).write_text("{}")  # big files stay behind
    (run_dir / "rules=bp" / sweep.CHECKPOINT_DIR).mkdir()
    rep = sweep.aggregate_dir(run_dir, plot=False)
    assert rep.table.cols == (("1x256",),) and rep.text.splitlines()[3].startswith("BP ")
    assert sweep.aggregate_dir(run_dir, cols="dataset", plot=False).table.cols == (("mnist",),)  # given wins
    status = json.loads((run_dir / "rules=bp" / sweep.STATUS_FILE).read_text())
    (run_dir / "rules=bp" / sweep.STATUS_FILE).write_text(json.dumps({
        **status, "notebook": "/some/machine/repo/notebooks/nb.ipynb",
        "command": f"python -m dgnlib.sweep run spec.yaml -o {run_dir.resolve()} --n-workers 1"}))
    dest = tmp_path / "results"
    copied = sweep.export_runs(run_dir, dest)
    kept = json.loads((dest / "rules=bp" / sweep.STATUS_FILE).read_text())  # no path of this machine
    assert kept["notebook"] == "notebooks/nb.ipynb"
    assert kept["command"] == "python -m dgnlib.sweep run spec.yaml -o RUN_DIR --n-workers 1"
    assert copied == ["rules=bp", "rules=exact", "single", "no_records"]  # finished, with a result.json
    assert sorted(p.name for p in (dest / "rules=bp").iterdir()) == [sweep.RESULT_FILE, sweep.STATUS_FILE]
    again = sweep.aggregate_dir(dest, plot=False)
    assert again.text.splitlines()[:-1] == rep.text.splitlines()[:-1]
    assert again.text.splitlines()[-1].startswith("runs: 4 finished, 0 failed, 0 running or interrupted, 5 pending")
    assert sweep.export_runs(run_dir, dest) == []  # nothing new
    other = tmp_path / "other"
    make_run(other, "rules=lt2", "finished", {"rules": ["lt2"]}, {"records": []})
    (other / sweep.MANIFEST_FILE).write_text(json.dumps({"runs": ["rules=lt2"]}))
    assert sweep.export_runs(other, dest) == ["rules=lt2"]
    merged = json.loads((dest / sweep.MANIFEST_FILE).read_text())
    assert merged["runs"][-1] == "rules=lt2" and merged["runs"][0] == "rules=bp"
    assert merged["aggregate"]["cols"] == ["arch"]  # a sweep without a section keeps the one already there
    with pytest.raises(ValueError, match="dest must differ"):
        sweep.export_runs(run_dir, run_dir)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sweep.export_runs(tmp_path / "nope", dest)


def test_aggregate_dir_without_any_records_says_why(tmp_path):
    make_run(tmp_path, "a", "finished", {"x": 1})
    make_run(tmp_path, "b", "failed", {"x": 2})
    with pytest.raises(ValueError) as info:
        sweep.aggregate_dir(tmp_path)
    msg = str(info.value)
    assert "no records in finished runs (runs: 1 finished, 1 failed, 0 running or interrupted, 0 pending)" in msg
    assert "1 finished run(s) wrote no records" in msg and "['a']" in msg and "result_path = None" in msg
    assert "`python -m dgnlib.sweep run SPEC -o RUN_DIR` again resumes the unfinished runs" in msg


def test_aggregate_of_an_interrupted_sweep_says_how_to_resume(tmp_path):
    make_run(tmp_path, "a", "running", {"x": 1})
    (tmp_path / sweep.MANIFEST_FILE).write_text(json.dumps({"runs": ["a", "b"]}))
    with pytest.raises(ValueError, match=r"0 finished, 0 failed, 1 running or interrupted, 1 pending\); "
                                         r"`python -m dgnlib.sweep run SPEC -o RUN_DIR` again resumes"):
        sweep.aggregate_dir(tmp_path)


def test_notebook_stdout():
    nb = {"cells": [{"outputs": [{"output_type": "stream", "name": "stdout", "text": ["a\n", "b"]},
                                 {"output_type": "stream", "name": "stderr", "text": "warning\n"}]},
                    {"cell_type": "markdown"},
                    {"outputs": [{"output_type": "stream", "name": "stdout", "text": "c\nd\n"}]}]}
    assert sweep.notebook_stdout(nb) == ["a", "bc", "d"]
