"""The CI fails when a notebook's printed log drifts from its expected output."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_drifted_log_fails(tmp_path):
    expected = (ROOT / "expected_outputs" / "dgn_classification.txt").read_text().splitlines()[:2]
    # one number off by 0.002 (twice the tolerance) in epoch 1's test accuracy
    expected[1] = expected[1].replace("test accuracy: 0.974", "test accuracy: 0.976")
    (tmp_path / "drifted.txt").write_text("\n".join(expected) + "\n")
    config = [{
        "name": "drift_check", "notebook": "notebooks/dgn_classification.ipynb",
        "parameters": {"epochs": 1, "n_seeds": 2, "per_neuron_learning_rates": [1e-3], "show_plots": False},
        "expected": str(tmp_path / "drifted.txt"), "lines": "^epoch: ", "tolerance": {"abs": 0.001},
    }]
    (tmp_path / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "ci" / "run_notebooks.py"), "--config", str(tmp_path / "config.json"),
         "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL drift_check" in proc.stdout
    assert "expected 0.976, got 0.974" in proc.stdout
    # the epoch-0 line matched: only one line is reported
    assert proc.stdout.count("  expected: ") == 1
