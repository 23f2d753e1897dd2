"""dgnlib.sweep.spec: grid expansion, run directory names, spec files and command-line values, the
notebook's parameters, the runs' states on disk (no Dask, no kernel)."""
from __future__ import annotations

import json

import pytest
from toy_sweep import ROOT, TOY

from dgnlib import sweep

VISION = ROOT / "notebooks" / "vision_benchmarks.ipynb"


def test_run_dir_name():
    assert sweep.run_dir_name({"datasets": ["mnist"], "rules": ["bp"], "seed": 0}) == "datasets=mnist__rules=bp__seed=0"
    # a plain value names the same directory as a one-element list
    assert sweep.run_dir_name({"datasets": "mnist", "rules": "bp", "seed": 0}) == "datasets=mnist__rules=bp__seed=0"
    assert sweep.run_dir_name({"hidden_layers": [256, 256, 256], "flag": True, "n": None}) == \
        "hidden_layers=256-256-256__flag=true__n=none"
    assert sweep.run_dir_name({}) == "run"
    assert sweep.run_dir_name({"s": "a b/c:d"}) == "s=a_b_c_d"
    long = {"p": "x" * 300}
    name = sweep.run_dir_name(long)
    assert len(name) == sweep.MAX_NAME_LENGTH and name.startswith("p=xxx")
    assert name != sweep.run_dir_name({"p": "x" * 299 + "y"})  # the hash tells them apart
    assert len(sweep.run_dir_name(long, max_length=40)) == 40
    with pytest.raises(ValueError, match="max_length must be an int >= 10, got 5"):
        sweep.run_dir_name(long, max_length=5)


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
    assert sweep.parse_cli_values("s='a,b',c") == ("s", ["a,b", "c"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        sweep.parse_cli_values("epochs")
    with pytest.raises(ValueError, match="not a parameter name"):
        sweep.parse_cli_values("1x=2")


def test_load_spec_and_errors(tmp_path):
    good = tmp_path / "s.json"
    good.write_text(json.dumps({"notebook": str(TOY), "grid": {"x": [1, 2], "seed": [0]}, "fixed": {"epochs": 4},
                                "timeout": 30}))
    spec = sweep.load_spec(good)
    assert spec.grid == {"x": [1, 2], "seed": [0]} and spec.fixed == {"epochs": 4} and spec.timeout == 30
    assert set(sweep.check_parameters(spec)) >= {"x", "seed", "epochs", "result_path"}
    y = tmp_path / "s.yaml"
    y.write_text(f"notebook: {TOY}\ngrid:\n  x: [1]\n")
    assert sweep.load_spec(y).grid == {"x": [1]} and sweep.load_spec(y).aggregate == {}
    y.write_text(f"notebook: {TOY}\naggregate:\n  rows: rule,protocol\n  pool: [first_seed]\n  labels: {{bp: BP}}\n")
    assert sweep.load_spec(y).aggregate == {"rows": ["rule", "protocol"], "pool": ["first_seed"], "labels": {"bp": "BP"}}
    cases = {
        '{"notebook": "a.ipynb", "gird": {}}': r"unknown key\(s\) \['gird'\]",
        '{"grid": {"x": [1]}}': "'notebook'",
        '{"notebook": "a.ipynb", "grid": {"x": 3}}': r"grid\.x must be a non-empty list",
        '{"notebook": "a.ipynb", "grid": {"x": []}}': r"grid\.x must be a non-empty list",
        '{"notebook": "a.ipynb", "grid": {"x": [1]}, "fixed": {"x": 2}}': "both in grid and fixed",
        '{"notebook": "a.ipynb", "fixed": {"result_path": "r"}}': "set by the runner",
        '{"notebook": "a.ipynb", "timeout": -1}': r"timeout \(seconds\) must be a positive finite number, got -1",
        '{"notebook": "a.ipynb", "timeout": [1]}': r"timeout \(seconds\) must be a number",
        '{"notebook": "a.ipynb", "aggregate": {"row": "rule"}}': r"unknown aggregate key\(s\) \['row'\]",
        '{"notebook": "a.ipynb", "aggregate": {"rows": [1]}}': r"aggregate\.rows must be key names",
        '{"notebook": "a.ipynb", "aggregate": {"labels": ["a"]}}': r"aggregate\.labels must map values",
        '{"notebook": "a.ipynb", "aggregate": {"seed_key": ["seed"]}}': r"aggregate\.seed_key must be one name",
        '{"notebook": "a.ipynb", "aggregate": 3}': r"aggregate must be a mapping",
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


def test_unknown_parameter_lists_the_notebooks():
    spec = sweep.make_spec(TOY, {"x": [1], "sed": [0]})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['sed'\].*'x', 'rule', 'seed'"):
        sweep.check_parameters(spec)


@pytest.mark.parametrize("name,n_runs", [("table1.yaml", 24), ("table1_soft_targets.yaml", 12),
                                         ("table1_averaged_jacobian.yaml", 8), ("lt_gap.yaml", 4),
                                         ("lt_gap_momentum.yaml", 2), ("small.yaml", 6)])
def test_example_specs_match_the_vision_notebook(name, n_runs):
    spec = sweep.load_spec(ROOT / "examples" / "sweeps" / name)
    assert spec.notebook.resolve() == VISION.resolve()
    sweep.check_parameters(spec)  # every name is a parameter of the notebook
    runs = sweep.expand_grid(spec.grid, spec.fixed)
    assert len(runs) == n_runs
    # the run directories' names (ci/run_sweep.py's and users' run directories) do not depend on
    # whether the grid is written with plain values or one-element lists
    assert runs[0][0].startswith(("datasets=mnist__", "hidden_layers=256__datasets=mnist__"))


def test_plan_runs_states_and_changed_parameters(tmp_path):
    spec = sweep.make_spec(TOY, {"x": [1, 2, 3]}, {"epochs": 3})
    (tmp_path / "x=1").mkdir()
    (tmp_path / "x=1" / "status.json").write_text(json.dumps({"status": "finished", "params": {"epochs": 3, "x": 1}}))
    (tmp_path / "x=2").mkdir()
    (tmp_path / "x=2" / "status.json").write_text(json.dumps({"status": "running", "params": {"epochs": 3, "x": 2}}))
    assert [p.state for p in sweep.plan_runs(spec, tmp_path)] == ["finished", "running", "pending"]
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="run directory .*a_file is a file; give a directory"):
        sweep.plan_runs(spec, tmp_path / "a_file")
    changed = sweep.make_spec(TOY, {"x": [1]}, {"epochs": 5})
    with pytest.raises(ValueError, match=r"other parameters \(differing: \['epochs'\]\)"):
        sweep.plan_runs(changed, tmp_path)
    assert sweep.plan_runs(changed, tmp_path, force=True)[0].state == "finished"
