"""The run loop and its reports (dgnlib.vision.run, reports, __main__): results as data, log lines,
Table 1 and curves formatted from the records, the command line."""
import json

import numpy as np
import pytest

from dgnlib import vision
from dgnlib.records import format_table, plot_curves, summarize

from vision_helpers import config, synthetic

# the config of test_vision_training's vmapped-seeds test (same compiled epoch program)
SETTINGS = dict(hidden=(12,), batch_size=10, epochs=2, seeds=(3, 7), eval_batch_size=4, learning_rate=1e-2,
                soft_target=0.99)  # the run and vision_helpers.config alike


@pytest.fixture(scope="module")
def runs():
    """One run_benchmarks call (bp and exact on a synthetic "mnist", 2 seeds, 2 epochs) shared by
    the tests of this module: (results, printed lines, data)."""
    data = synthetic()
    lines = []
    results = vision.run_benchmarks("mnist", ["bp", "exact"], data={"mnist": data}, log=lines.append,
                                    progress=False, **SETTINGS)
    return results, lines, data


def test_run_benchmarks_returns_records_and_logs_epoch_lines(runs):
    results, lines, data = runs
    assert [(r["dataset"], r["arch"], r["rule"], r["seed"]) for r in results.records] == [
        ("mnist", "1x12", rule, s) for rule in ("bp", "exact") for s in (3, 7)]
    assert list(results.wall_s) == list(results.epoch_s) == ["mnist 1x12 bp", "mnist 1x12 exact"]
    for label, times in results.epoch_s.items():  # per epoch, measured, within the run's wall time
        assert len(times["wall"]) == len(times["cpu"]) == 2 and min(times["wall"] + times["cpu"]) > 0
        assert sum(times["wall"]) <= results.wall_s[label]
    assert json.loads(json.dumps(results.epoch_s)) == results.epoch_s
    # the same numbers as the run's own loop, and the log lines formatted from them
    cfg = config(rule="exact", **{k: v for k, v in SETTINGS.items() if k != "hidden"})
    history = [m for _, m, _ in vision.iterate_epochs(vision.init_run(cfg, 20), data, cfg, progress=False)]
    assert results.records[2:] == vision.records_from_history("mnist", cfg, history)
    expected = [vision.format_epoch_line("mnist 1x12 exact", s, m, i) for m in history
                for i, s in enumerate(cfg.seeds)]
    assert lines[4:] == expected and len(lines) == 8
    rec = results.records[3]
    assert rec["metrics"]["epoch"] == [1, 2]
    assert rec["metrics"]["test_accuracy"] == [float(m.test.accuracy[1]) for m in history]
    assert set(rec["metrics"]) == {"epoch", "solver_success"} | {
        f"{split}_{metric}" for split in ("train", "train_ol", "val", "test") for metric in ("loss", "accuracy")}
    assert json.loads(json.dumps(results.records)) == results.records  # JSON-ready (result.json)


def test_log_line_format():
    data = synthetic()
    cfg = config(seeds=(3, 7))
    st, m = vision.train_epoch(vision.init_run(cfg, 20), data, cfg)
    line = vision.format_epoch_line(vision.run_label("mnist", cfg), 7, m, 1)
    assert line.startswith("mnist 1x12 exact seed 7 epoch 1: train loss ")
    assert f"test loss {float(m.test.loss[1]):.4f} acc {float(m.test.accuracy[1]):.4f}" in line
    steps = max(int(m.solver.ol_steps[1]), int(m.solver.cl_steps[1]))
    assert line.endswith(f"solver ok, max steps {steps}, unit iters {int(m.solver.unit_iterations[1])}")
    assert vision.arch_label(cfg._replace(hidden=(256, 128))) == "256-128"


def test_table_and_final_lines_from_records(runs):
    results, _, _ = runs
    table = summarize(results.records)
    text = format_table(table)
    for rule in ("bp", "exact"):
        acc = 100 * np.array([r["metrics"]["test_accuracy"][-1] for r in results.records if r["rule"] == rule])
        assert f"{acc.mean():.2f} ± {acc.std(ddof=1):.2f}" in text
    assert text.splitlines()[1].split() == ["rule", "mnist", "1x12"]
    val = summarize(results.records, "val_accuracy")
    assert val.cells[(("exact",), ("mnist", "1x12"))].seeds == (3, 7)
    line = vision.format_final_line(results.records[0], 12.3)
    acc = results.records[0]["metrics"]["test_accuracy"][-1]
    assert line.startswith("FINAL mnist 1x12 bp seed 3: epochs 2 val acc ")
    assert line.endswith(f"test acc {acc:.4f} wall 12 s")


def test_notebook_curves_from_records(runs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results, _, _ = runs
    axes = plot_curves(summarize(results.records, "test_accuracy"), labels=vision.RULE_LABELS, suffix=" (test)")
    plot_curves(summarize(results.records, "val_accuracy"), axes=axes, linestyle="--", labels=vision.RULE_LABELS,
                suffix=" (validation)")
    labels = [line.get_label() for line in axes[0].get_lines()]
    assert labels == ["BP (test) (n=2)", "Exact inverse (test) (n=2)", "BP (validation) (n=2)",
                      "Exact inverse (validation) (n=2)"]
    exact = [line for line in axes[0].get_lines() if "Exact inverse" in line.get_label() and "test" in line.get_label()]
    mean = np.mean([r["metrics"]["test_accuracy"] for r in results.records if r["rule"] == "exact"], axis=0)
    np.testing.assert_allclose(exact[0].get_ydata(), 100 * mean)
    plt.close("all")


def test_run_benchmarks_resumes_from_its_checkpoints(tmp_path, runs):
    results, _, data = runs
    first = vision.run_benchmarks("mnist", "exact", data={"mnist": data}, checkpoint_dir=tmp_path,
                                  log=None, progress=False, **SETTINGS)
    assert first.records == results.records[2:]
    assert [p.name for p in tmp_path.iterdir()] == ["mnist_1x12_exact.ckpt"]
    lines = []
    again = vision.run_benchmarks(["mnist"], ["exact"], data={"mnist": data}, checkpoint_dir=tmp_path,
                                  log=lines.append, progress=False, epoch_times=True, **SETTINGS)
    assert again.records == first.records  # restored, not recomputed
    assert again.epoch_s == first.epoch_s  # with the times of the call that trained them
    assert "after epoch 2 of 2 (epochs 1-2 restored, not recomputed)" in lines[0]
    assert len(lines) == 5 and all(line.endswith(" | restored") for line in lines[1:])


def test_run_benchmarks_checks_its_arguments():
    data = {"mnist": synthetic()}
    for kwargs, match in ((dict(datasets="cifar10"), r"datasets\[0\] must be one of"),
                          (dict(rules=["bp", "sgd"]), r"rules\[1\] must be one of"),
                          (dict(learning_rate=0.0), "learning_rate"),
                          (dict(rule="bp"), "rules"),
                          (dict(datasets="fashion_mnist"), "not in datasets")):
        args = dict(datasets="mnist", rules="bp", data=data, log=None, progress=False, **SETTINGS)
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            vision.run_benchmarks(args.pop("datasets"), args.pop("rules"), **args)


def test_cli_train_prints_epoch_and_final_lines(capsys, monkeypatch):
    """python -m dgnlib.vision train: the run loop with epoch times, then FINAL lines (data: the
    synthetic set instead of the loaded one)."""
    from dgnlib.vision import run
    from dgnlib.vision.__main__ import main

    asked = []
    monkeypatch.setattr(run, "load_arrays", lambda name, n_train=None: asked.append((name, n_train)) or synthetic())
    assert main(["train", "--datasets", "mnist", "--rules", "bp", "--hidden", "12", "--epochs", "1",
                 "--n-train", "23", "--seeds", "3", "7", "--batch-size", "10", "--learning-rate", "0.01",
                 "--soft-target", "0.9"]) == 0
    assert asked == [("mnist", 23)]
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["mnist 1x12 bp seed 3 epoch 1", "mnist 1x12 bp seed 7 epoch 1",
                                                    "FINAL mnist 1x12 bp seed 3", "FINAL mnist 1x12 bp seed 7"]
    assert out[0].endswith(" s") and "| solver ok, max steps 0, unit iters 0 | " in out[0]
    assert out[3].endswith(" s") and " wall " in out[3]
    with pytest.raises(SystemExit):
        main(["train", "--rules", "sgd"])


def test_cli_train_bad_input_is_one_line_and_exit_2(capsys, tmp_path):
    """Bad settings print one line naming the argument (no traceback) and exit 2, before any data
    is loaded or anything trains."""
    from dgnlib.vision.__main__ import main

    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [(["--epochs", "0"], "error: epochs must be an int >= 1 (the number of epochs to train), got 0"),
             (["--hidden", "0"], "error: hidden[0] must be an int >= 1, got 0"),
             (["--learning-rate", "-1"], "error: learning_rate must be a positive finite number, got -1.0"),
             (["--checkpoint-dir", str(a_file)], f"error: checkpoint_dir '{a_file}' is a file; give a folder")]
    for extra, message in cases:
        assert main(["train", "--rules", "bp", "--n-train", "23", *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


def test_every_command_line_option_is_documented():
    """--help documents every option of python -m dgnlib.vision and python -m dgnlib.sweep."""
    import argparse

    from dgnlib.sweep.cli import build_parser as sweep_parser
    from dgnlib.vision.__main__ import build_parser as vision_parser

    def undocumented(parser, path):
        missing = []
        for action in parser._actions:  # noqa: SLF001 - argparse has no public list of actions
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                for name, sub in action.choices.items():
                    missing += undocumented(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:  # noqa: SLF001
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
        return missing

    assert undocumented(vision_parser(), "vision") == []
    assert undocumented(sweep_parser(), "sweep") == []
