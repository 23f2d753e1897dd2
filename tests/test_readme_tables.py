"""The README's result tables equal what ``python3 -m dgnlib.sweep aggregate results/NAME`` prints
from the committed result files (ci/readme_tables.py generates them; nothing is typed by hand)."""
from __future__ import annotations

import json
import sys

import pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))

import readme_tables  # noqa: E402


def test_readme_tables_agree_with_the_result_files():
    readme = readme_tables.README.read_text(encoding="utf-8")
    assert "<!-- results:table1 -->" in readme
    assert readme_tables.render(readme) == readme, "run python3 ci/readme_tables.py (results/ changed)"


def test_render_writes_the_aggregate_text_of_a_results_directory(tmp_path):
    run = tmp_path / "results" / "demo" / "rules=bp"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"status": "finished", "params": {"rules": "bp"}}))
    (run / "result.json").write_text(json.dumps({"records": [
        {"dataset": "mnist", "arch": "1x256", "rule": "bp", "seed": s, "metrics": {"test_accuracy": [0.5, v]}}
        for s, v in ((0, 0.97), (1, 0.99))]}))
    (run / "status.json").write_text(json.dumps({"status": "finished", "params": {"rules": "bp"}, "wall_time_s": 90}))
    text = ("a\n<!-- results:demo -->\nold\n<!-- /results:demo -->\n<!-- results:none -->\n<!-- /results:none -->\n"
            "<!-- results:demo.cost -->\n<!-- /results:demo.cost -->\n")
    out = readme_tables.render(text, tmp_path)
    assert out.startswith("a\n<!-- results:demo -->\n```text\n$ python3 -m dgnlib.sweep aggregate results/demo\n")
    assert "bp    98.00 ± 1.41" in out and "old" not in out
    assert "(no finished runs in results/none yet)" in out
    cost = out.split("<!-- results:demo.cost -->\n")[1].splitlines()
    assert cost[1].startswith("configuration") and cost[2].split()[:4] == ["mnist", "1x256", "bp,", "1"]
    assert "1.5 min" in cost[2] and cost[2].split()[4:6] == ["2", "1.5"]  # 1 unit, 2 seeds, 90 s
    assert cost[2].split()[7] == "-" and cost[3].startswith("* from the sweep's status")  # no epoch times
    assert readme_tables.render(out, tmp_path) == out  # stable
    # NAME@METRIC: the table of another metric of the same records
    other = readme_tables.render("<!-- results:demo@test_accuracy -->\n<!-- /results:demo@test_accuracy -->\n",
                                 tmp_path)
    assert "$ python3 -m dgnlib.sweep aggregate results/demo --metric test_accuracy\n" in other
    assert "bp    98.00 ± 1.41" in other
    with pytest.raises(ValueError, match="val_loss"):  # a metric the records lack: an error, not "no runs"
        readme_tables.render("<!-- results:demo@val_loss -->\n<!-- /results:demo@val_loss -->\n", tmp_path)
    # a unit with its epochs' times: their sums (over the runs of the unit), wall and CPU
    result = json.loads((run / "result.json").read_text())
    result["epoch_s"] = {"mnist 1x256 bp": {"wall": [60.0, 30.0, 30.0], "cpu": [90.0, 45.0, 45.0]}}
    (run / "result.json").write_text(json.dumps(result))
    cost = readme_tables.render(out, tmp_path).split("<!-- results:demo.cost -->\n")[1].splitlines()
    assert cost[2].split()[4:10] == ["2", "2.0", "min", "3.0", "min", "?"] and "* from" not in "".join(cost)
    # a unit run pinned to 1 of 2 cores (--pin-cores) says so in its machine column
    result["environment"] = {"devices": "cpu x 1", "cpu_count": 2, "cpu_affinity": 1}
    (run / "result.json").write_text(json.dumps(result))
    cost = readme_tables.render(out, tmp_path).split("<!-- results:demo.cost -->\n")[1].splitlines()
    assert cost[2].endswith("cpu x 1, 2 CPU cores (1 per run)")
    # an epoch without its time (resumed from an older checkpoint): the status's wall time again
    result["epoch_s"]["mnist 1x256 bp"]["cpu"][0] = None
    (run / "result.json").write_text(json.dumps(result))
    cost = readme_tables.render(out, tmp_path).split("<!-- results:demo.cost -->\n")[1].splitlines()
    assert cost[2].split()[4:6] == ["2", "1.5"] and cost[2].split()[7] == "-"


def test_cost_columns_line_up_for_a_long_configuration_name(tmp_path):
    long = "hard labels, averaged Jacobian, and a protocol name longer than the usual column"
    for name, rule, protocol in (("a", "bp", "hard labels"), ("b", "linear_threshold", long)):
        run = tmp_path / name
        run.mkdir()
        (run / "status.json").write_text(json.dumps({"status": "finished", "params": {"rules": rule},
                                                     "wall_time_s": 60}))
        (run / "result.json").write_text(json.dumps({"records": [
            {"dataset": "fashion_mnist", "arch": "1x256", "rule": rule, "protocol": protocol, "seed": 0,
             "metrics": {"test_accuracy": [0.9]}}]}))
    lines = readme_tables.cost_text(tmp_path).splitlines()
    assert len(lines) == 5 and lines[2].startswith("fashion_mnist 1x256 linear_threshold, " + long + " ")
    # every row's unit count sits under the header's "units"
    at = lines[0].index("units") + len("units") - 1
    assert all(row[at] == "1" and row[at + 1] == " " for row in lines[1:3])


def test_log_block_holds_the_summary_lines_of_the_full_run(tmp_path):
    (tmp_path / "expected_outputs").mkdir()
    (tmp_path / "expected_outputs" / "demo_full.txt").write_text(
        "# header\ncurve mnist DGN lr 1e-03 seed 0 samples    250: accuracy 0.5000\nchosen mnist DGN: lr 1e-03\n"
        "one-pass mnist DGN lr 1e-03: test accuracy 0.9400 ± 0.0010 (3 seeds)\n"
        "forgetting DGN seed 0 after task 1: 0.9 0.1\nforgetting DGN: average 0.8 ± 0.0, drop on task 1 0.1 ± 0.0 (1 seeds)\n")
    out = readme_tables.render("<!-- results:demo.log -->\n<!-- /results:demo.log -->\n", tmp_path)
    body = out.split("```text\n")[1].split("```")[0].splitlines()
    assert body == ["chosen mnist DGN: lr 1e-03", "one-pass mnist DGN lr 1e-03: test accuracy 0.9400 ± 0.0010 (3 seeds)",
                    "forgetting DGN: average 0.8 ± 0.0, drop on task 1 0.1 ± 0.0 (1 seeds)"]
    assert "(no full run in expected_outputs/none_full.txt yet)" in readme_tables.render(
        "<!-- results:none.log -->\n<!-- /results:none.log -->\n", tmp_path)
