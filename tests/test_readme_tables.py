"""The README's result tables equal what ``python3 -m dgnlib.sweep aggregate results/NAME`` prints
from the committed result files (ci/readme_tables.py generates them; nothing is typed by hand)."""
from __future__ import annotations

import json
import sys
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
    assert readme_tables.render(out, tmp_path) == out  # stable
