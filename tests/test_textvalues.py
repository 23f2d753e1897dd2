"""Parameter values given as text: YAML 1.2 numbers (1e-4 is a float) in sweep files and on the sweep's
command line, and list parameters that papermill's -p hands a notebook as text."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dgnlib import sweep, vision
from dgnlib.textvalues import list_parameter, parse_yaml

ROOT = Path(__file__).resolve().parent.parent


def test_parse_yaml_reads_exponent_numbers_as_floats():
    assert parse_yaml("[1e-4, 1E5, -2e3, +1.5e-3, 0.0001, 3, abc, 1e, e5, '1e-4']") == \
        [1e-4, 1e5, -2e3, 1.5e-3, 1e-4, 3, "abc", "1e", "e5", "1e-4"]  # quoted text stays text
    assert parse_yaml("learning_rate: 1e-4\nepochs: 2\n") == {"learning_rate": 1e-4, "epochs": 2}


def test_sweep_values_are_numbers_and_one_run_per_value(tmp_path):
    assert sweep.parse_cli_values("learning_rate=1e-4,0.001") == ("learning_rate", [1e-4, 1e-3])
    assert sweep.parse_cli_values("learning_rate=1e-4", single=True) == ("learning_rate", 1e-4)
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(f"notebook: {ROOT / 'notebooks' / 'vision_benchmarks.ipynb'}\n"
                         "grid:\n  learning_rate: [1e-4, 0.0001]\n")
    spec = sweep.load_spec(spec_file)
    assert spec.grid["learning_rate"] == [1e-4, 1e-4]
    with pytest.raises(ValueError, match="repeated value combinations"):  # 1e-4 and 0.0001: one run
        sweep.expand_grid(spec.grid)
    assert sweep.run_dir_name({"learning_rate": 1e-4}) == sweep.run_dir_name({"learning_rate": 0.0001})


def test_list_parameter_reads_lists_given_as_text():
    assert list_parameter("n_neurons", "[100, 10, 1]") == [100, 10, 1]
    assert list_parameter("datasets", "[mnist, fashion_mnist]") == ["mnist", "fashion_mnist"]
    assert list_parameter("targets", "(4.0, 3.0)") == [4.0, 3.0]
    assert list_parameter("rates", "[1e-4, 1e-3]") == [1e-4, 1e-3]
    assert list_parameter("rates", "[]") == [] and list_parameter("x", (1, 2)) == [1, 2]
    for bad in ("mnist", "[mnist", "100"):
        with pytest.raises(ValueError, match=r"n_neurons must be a list, got the text .*give lists with -y, "
                                             r"e\.g\. -y 'n_neurons: \[\.\.\.\]'"):
            list_parameter("n_neurons", bad)
    with pytest.raises(ValueError, match="n_neurons must be a list, got 3"):
        list_parameter("n_neurons", 3)
    assert vision.as_choices("datasets", "[mnist, fashion_mnist]", vision.DATASETS) == ("mnist", "fashion_mnist")
    assert vision.as_choices("datasets", "mnist", vision.DATASETS) == ("mnist",)


def test_notebook_list_parameters_given_as_text_work(tmp_path):
    """papermill -p passes every list as a string: the notebooks read it as the list."""
    pm = pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / "plasticity_sign.ipynb"), str(out), progress_bar=False,
                        kernel_manager_class=sweep.KERNEL_MANAGER,
                        parameters={"targets": "(4.0, 3.0)", "n_grid": 201}, cwd=str(ROOT / "notebooks"))
    printed = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"]
                      for o in c.get("outputs", []) if o.get("name") == "stdout")
    assert "protocol=topdown target=4 " in printed and "protocol=topdown target=3 " in printed
