"""The notebooks' experiments (dgnlib.dgn.experiments): records, and printed lines byte-identical to
what the notebooks printed before the logic moved into dgnlib (the notebooks' old cell code is kept
here as the oracle)."""
import io
from contextlib import redirect_stdout

import jax.numpy as jnp
import numpy as np
import pytest

from dgnlib import dgn

# the sizes of tests/dgn/test_dgn.py, so that the per-neuron sweep below reuses its compiled run_many
N_TRAIN, N_TEST, ARCH, BRANCHES, EPOCHS = 40, 10, (6, 3, 1), 4, 3


def old_weight_form_table(history, learning_rate, rates, sweep, epochs, precision, loss):
    """Cell 11 of the DGN notebooks before issue 11, verbatim but for the run_many call."""
    rates = np.asarray(rates, dtype=float)
    diverged = np.atleast_1d(dgn.diverged_epoch(sweep)) >= 0
    columns = ["loss"] + (["accuracy"] if loss == "bernoulli" else [])
    print(f"final epoch ({epochs}), {precision}")
    print(f"{'form':<10}  {'rate':>8}" + "".join(f"  {'test ' + c:>13}  {'train ' + c:>14}" for c in columns))

    def table_row(form, rate, test, train):
        return f"{form:<10}  {rate:8.0e}" + "".join(f"  {test[c]:13.4f}  {train[c]:14.4f}" for c in columns)

    final = lambda split: {c: history[f"{split}_{c}"][-1] for c in columns}  # noqa: E731
    print(table_row("colab", learning_rate, final("test"), final("train")))
    for i, rate in enumerate(rates):
        if diverged[i]:
            print(f"{'per-neuron':<10}  {rate:8.0e}  diverged")
        else:
            at = lambda split: {c: float(getattr(sweep, split)[c][i, -1]) for c in columns}  # noqa: E731
            print(table_row("per-neuron", rate, at("test"), at("train")))


def old_seeds_lines(many, n_seeds, loss):
    """Cell 14 of the DGN notebooks before issue 11 (the printing part)."""
    for metric in ["loss"] + (["accuracy"] if loss == "bernoulli" else []):
        final = np.asarray(many.test[metric][:, -1])
        print(f"{n_seeds} hyperplane seeds, final test {metric}: {final.mean():.3f} +- {final.std():.3f} "
              f"(min {final.min():.3f}, max {final.max():.3f})")


def printed(fn, *args):
    out = io.StringIO()
    with redirect_stdout(out):
        fn(*args)
    return out.getvalue()


@pytest.fixture(scope="module")
def regression():
    """A colab-form baseline and a per-neuron sweep whose largest rate diverges."""
    d = dgn.load_problem("regression")
    data = dgn.TabularData(d.x_train[:N_TRAIN], d.y_train[:N_TRAIN], d.x_test[:N_TEST], d.y_test[:N_TEST])
    cfg = dgn.DGNConfig(loss="square")
    params = dgn.init_colab(data.n_features, ARCH, BRANCHES, seed=1)
    _, history = dgn.fit(params, data, 1e-4, EPOCHS, cfg, progress=False, log=None)
    with pytest.warns(dgn.DivergenceWarning, match="run_many: 1 of 2 networks diverged"):
        forms = dgn.compare_weight_forms(params, data, history, 1e-4, [1e-3, 10.0], cfg)
    return history, forms


def test_weight_form_records(regression):
    history, forms = regression
    base, finite, diverged = forms.records
    assert base == {"form": "colab", "learning_rate": 1e-4, "epoch": EPOCHS, "dtype": "float32",
                    "diverged_epoch": -1, "test_loss": float(history["test_loss"][-1]),
                    "train_loss": float(history["train_loss"][-1])}
    assert finite["form"] == "per_neuron" and finite["learning_rate"] == 1e-3 and finite["diverged_epoch"] == -1
    assert finite["test_loss"] == float(forms.per_neuron.test["loss"][0, -1])
    assert diverged["diverged_epoch"] == 1 and not np.isfinite(diverged["test_loss"])
    assert forms.baseline is history and forms.per_neuron.test["loss"].shape == (2, EPOCHS + 1)


def test_weight_form_table_prints_what_the_notebooks_printed(regression):
    history, forms = regression
    old = printed(old_weight_form_table, history, 1e-4, [1e-3, 10.0], forms.per_neuron, EPOCHS, "float32", "square")
    new = printed(print, dgn.format_weight_forms(forms))
    assert new == old
    assert new.splitlines()[-1] == "per-neuron     1e+01  diverged"
    assert dgn.format_weight_forms(forms.records) == dgn.format_weight_forms(forms)


def test_weight_form_table_with_accuracies():
    """The Bernoulli table (four metric columns), from made-up float32 results."""
    rng = np.random.default_rng(0)
    history = {k: rng.random(4) for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy")}
    history["epoch"] = np.arange(4)
    rates = [1e-4, 1e-3, 1e-2, 1e-1]
    metrics = lambda: {m: jnp.asarray(rng.random((4, 4)), jnp.float32) for m in ("loss", "accuracy")}  # noqa: E731
    sweep = dgn.RunResult(None, metrics(), metrics())
    keys = [(s, m) for s in ("test", "train") for m in ("loss", "accuracy")]
    head = {"epoch": 3, "dtype": "float64", "diverged_epoch": -1}
    records = [{"form": "colab", "learning_rate": 1e-4, **head,
                **{f"{s}_{m}": float(history[f"{s}_{m}"][-1]) for s, m in keys}}]
    for i, rate in enumerate(rates):
        records.append({"form": "per_neuron", "learning_rate": rate, **head,
                        **{f"{s}_{m}": float(getattr(sweep, s)[m][i, -1]) for s, m in keys}})
    old = printed(old_weight_form_table, history, 1e-4, rates, sweep, 3, "float64", "bernoulli")
    assert printed(print, dgn.format_weight_forms(records)) == old
    assert old.splitlines()[1] == ("form            rate      test loss      train loss  test accuracy  "
                                   "train accuracy")


@pytest.mark.parametrize("loss", ["bernoulli", "square"])
def test_seeds_summary_prints_what_the_notebooks_printed(loss):
    rng = np.random.default_rng(1)
    names = ["loss"] + (["accuracy"] if loss == "bernoulli" else [])
    # keys sorted as a compiled program returns them: the lines must still come loss first
    many = dgn.RunResult(None, {}, {m: jnp.asarray(rng.random((32, 4)), jnp.float32) for m in sorted(names)})
    summary = dgn.seeds_summary(many)
    assert [(r["split"], r["metric"], r["n"]) for r in summary] == [("test", m, 32) for m in names]
    final = np.asarray(many.test["loss"][:, -1])
    assert summary[0]["std"] == float(final.std()) and summary[0]["max"] == float(final.max())
    assert printed(print, dgn.format_seeds_summary(summary)) == printed(old_seeds_lines, many, 32, loss)


def test_figures(regression):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history, forms = regression
    ax = dgn.plot_weight_forms(forms)
    assert [line.get_label() for line in ax.get_lines()] == [
        "colab form, rate 0.0001", "per-neuron, rate 0.001", "per-neuron, rate 10"]
    axes = dgn.plot_seeds(forms.per_neuron)
    assert [a.get_ylabel() for a in axes] == ["test loss"]
    axes = dgn.plot_learning_curves(history, title="t")
    assert [a.get_title() for a in axes] == ["t: loss"]
    plt.close("all")
