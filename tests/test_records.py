"""dgnlib.records: records as dicts or Record objects, the table (mean ± sample std over seeds),
its text (the one Table-1 formatter), CSV files and curves (PNG file or a notebook's axes)."""
from __future__ import annotations

import csv
import math
import statistics

import pytest

from dgnlib import records as rec


def records():
    """Record dicts of the contract: bp on two data sets (two seeds on mnist), exact on mnist."""
    return [{"rule": r, "dataset": d, "arch": "1x256", "seed": s, "metrics": {"test_accuracy": [0.5, v], "wall": 2.0}}
            for r, d, s, v in [("bp", "mnist", 0, 0.90), ("bp", "mnist", 1, 0.94), ("bp", "fmnist", 0, 0.80),
                               ("exact", "mnist", 0, 0.70), ("exact", "mnist", 1, 0.72)]]


def test_records_from_dicts():
    out = rec.records_from_dicts(records()[:2], params={"epochs": 2, "rule": "other"}, run="r1")
    assert out[0] == rec.Record({"epochs": 2, "rule": "bp", "dataset": "mnist", "arch": "1x256", "seed": 0},
                                {"test_accuracy": [0.5, 0.90], "wall": 2.0}, "r1")
    assert rec.records_from_dicts([{"seed": 3}]) == [rec.Record({"seed": 3}, {}, "")]
    with pytest.raises(ValueError, match="record 1 of run r1 must be a dict"):
        rec.records_from_dicts([{}, 5], run="r1")
    with pytest.raises(ValueError, match="record 0: 'metrics' must be a dict"):
        rec.records_from_dicts([{"metrics": [1]}])


def test_summarize_and_format_table():
    t = rec.summarize(records())  # plain dicts, as a training loop holds them
    assert rec.format_table(t) == rec.format_table(rec.summarize(rec.records_from_dicts(records())))
    assert t.rows == (("bp",), ("exact",)) and t.cols == (("mnist", "1x256"), ("fmnist", "1x256"))
    c = t.cells[(("bp",), ("mnist", "1x256"))]
    assert c.n == 2 and c.values == (0.90, 0.94) and c.seeds == (0, 1) and c.curves == ([0.5, 0.90], [0.5, 0.94])
    assert c.mean == pytest.approx(0.92) and c.std == pytest.approx(statistics.stdev([0.90, 0.94]))  # ddof 1
    one = t.cells[(("bp",), ("fmnist", "1x256"))]
    assert one.n == 1 and one.mean == 0.80 and math.isnan(one.std)
    assert (("exact",), ("fmnist", "1x256")) not in t.cells
    assert rec.format_table(t).splitlines() == [
        "test_accuracy (%), final value, mean ± std over 1/2 seed(s); rows: rule, columns: dataset x arch",
        "rule   mnist 1x256         fmnist 1x256",
        "-----  ------------------  ------------",
        "bp     92.00 ± 2.83 (n=2)  80.00 (n=1)",
        "exact  71.00 ± 1.41 (n=2)  -"]  # cells that differ in n say so
    labelled = rec.format_table(t, precision=1, labels={"bp": "BP", "exact": "Exact inverse"}).splitlines()
    assert labelled[3:] == ["BP             92.0 ± 2.8 (n=2)  80.0 (n=1)", "Exact inverse  71.0 ± 1.4 (n=2)  -"]
    same_n = rec.format_table(rec.summarize(records(), cols="arch", where={"dataset": "mnist"})).splitlines()
    assert same_n[0].startswith("test_accuracy (%), final value, mean ± std over 2 seed(s)")
    assert same_n[3:] == ["bp     92.00 ± 2.83", "exact  71.00 ± 1.41"]  # one n for all: in the title only
    with pytest.raises(ValueError, match="precision must be an int >= 0, got -1"):
        rec.format_table(t, precision=-1)
    wall = rec.format_table(rec.summarize(records(), metric="wall", cols="dataset", where={"seed": 0}))
    assert wall.splitlines()[0].startswith("wall, final value, mean ± std over 1 seed(s)")
    assert "bp     2.0000  2.0000" in wall


def test_summarize_errors():
    with pytest.raises(ValueError, match=r"pools records that differ in \['dataset'\], not only in 'seed'"):
        rec.summarize(records(), cols=("arch",))
    with pytest.raises(ValueError, match=r"metric 'loss' is in no record; available metrics: \['test_accuracy', 'wall'\]"):
        rec.summarize(records(), metric="loss")
    with pytest.raises(ValueError, match=r"key\(s\) \['depth'\] \(rows/cols\) missing in a record of run \(in memory\)"):
        rec.summarize(records(), rows="depth")
    with pytest.raises(ValueError, match=r"has repeated 'seed' values \[0, 1, 0\]"):
        rec.summarize(records() + [records()[0]])
    with pytest.raises(ValueError, match="no records to aggregate match where"):
        rec.summarize(records(), where={"rule": "nope"})
    with pytest.raises(ValueError, match="scale must be a finite number"):
        rec.summarize(records(), scale=float("nan"))
    only = rec.summarize(records(), cols=("arch",), where={"dataset": "mnist"}, scale=1)
    assert only.cells[(("bp",), ("1x256",))].values == (0.90, 0.94) and only.scale == 1.0


def test_summarize_pools_keys_that_only_choose_seeds():
    """A configuration whose seeds ran in groups (a run parameter first_seed = 0 / 1): without pool
    its records differ in first_seed and are refused; pooled, they form one cell of n = 2."""
    grouped = [{**r, "first_seed": r["seed"]} for r in records() if r["dataset"] == "mnist"]
    with pytest.raises(ValueError, match=r"differ in \['first_seed'\].*pool them \(pool=\)"):
        rec.summarize(grouped)
    t = rec.summarize(grouped, pool="first_seed")
    assert t.cells[(("bp",), ("mnist", "1x256"))].values == (0.90, 0.94)
    assert rec.format_table(t) == rec.format_table(rec.summarize([r for r in records() if r["dataset"] == "mnist"]))
    with pytest.raises(ValueError, match="has repeated 'seed' values"):  # pooling never hides a repeated seed
        rec.summarize(grouped + [{**grouped[0], "first_seed": 5}], pool=["first_seed"])


def test_write_table_csv(tmp_path):
    t = rec.summarize(records())
    path = rec.write_table_csv(t, tmp_path / "t.csv", tmp_path / "s.csv")
    with open(path, newline="") as f:
        wide = list(csv.reader(f))
    assert wide[0] == ["rule", "mnist 1x256 mean", "mnist 1x256 std", "mnist 1x256 n",
                       "fmnist 1x256 mean", "fmnist 1x256 std", "fmnist 1x256 n"]
    assert wide[2][0] == "exact" and wide[2][4:] == ["", "", "0"]  # a missing cell
    assert float(wide[1][1]) == pytest.approx(92.0) and float(wide[1][2]) == pytest.approx(statistics.stdev([90, 94]))
    assert wide[1][4:] == ["80.0", "", "1"]  # one seed: no std
    with open(tmp_path / "s.csv", newline="") as f:
        long = list(csv.DictReader(f))
    assert [(r["rule"], r["dataset"], r["arch"], r["n"]) for r in long] == [
        ("bp", "mnist", "1x256", "2"), ("bp", "fmnist", "1x256", "1"), ("exact", "mnist", "1x256", "2")]
    assert long[0]["seeds"] == "[0, 1]" and long[0]["values"] == "[90.0, 94.0]" and long[0]["runs"] == " "
    assert long[0]["metric"] == "test_accuracy" and long[0]["scale"] == "100.0" and long[1]["std"] == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "t.csv"]  # written atomically


def test_plot_curves_into_a_file_and_into_axes(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = rec.summarize(records())
    png = rec.plot_curves(t, tmp_path / "c.png")
    assert png == tmp_path / "c.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rec.plot_curves(rec.summarize(records(), metric="wall"), tmp_path / "w.png") is None  # no curves
    assert not (tmp_path / "w.png").exists()

    # a notebook: test (solid) and another table (dashed) into the same axes, colours by row
    mnist = rec.summarize(records(), where={"dataset": "mnist"})
    fig, ax = plt.subplots()
    axes = rec.plot_curves(mnist, axes=ax, labels={"bp": "BP"}, suffix=" (test)")
    rec.plot_curves(mnist, axes=[ax], linestyle="--", suffix=" (validation)")
    assert axes == [ax] and ax.get_title() == "dataset=mnist arch=1x256"
    assert [ln.get_label() for ln in ax.get_lines()] == ["BP (test) (n=2)", "rule=exact (test) (n=2)",
                                                         "rule=bp (validation) (n=2)",
                                                         "rule=exact (validation) (n=2)"]
    lines = ax.get_lines()
    assert lines[0].get_color() == lines[2].get_color() != lines[1].get_color()
    assert list(lines[0].get_ydata()) == pytest.approx([50.0, 92.0])
    with pytest.raises(ValueError, match=r"axes: 1 given, the table has 2 column\(s\) with curves"):
        rec.plot_curves(t, axes=ax)
    fig2, axs = plt.subplots(1, 2)
    assert rec.plot_curves(t, axes=axs) == list(axs)
    new = rec.plot_curves(t)  # a new pyplot figure (shown by a notebook)
    assert len(new) == 2 and new[0].figure not in (fig, fig2)
    plt.close("all")
