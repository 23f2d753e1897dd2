"""The DGN notebooks' experiments as data, and the lines they print.

* :func:`compare_weight_forms`: a run (the colab's weight form, usually) against the paper's
  per-neuron form over a sweep of learning rates, all per-neuron networks trained in one
  :func:`dgnlib.dgn.run_many` call on the same hyperplanes; one record per row of the final-epoch
  table, printed by :func:`format_weight_forms` (the notebooks' ``per-neuron`` lines, which CI
  compares with ``expected_outputs/``).
* :func:`run_seeds`: many networks with independent hyperplanes in one call; :func:`seeds_summary`
  gives the spread of their final metrics as records, :func:`format_seeds_summary` prints them.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple, Sequence

import jax
import numpy as np

from ..checks import positive_int
from .model import DGNConfig, validate_config
from .params import DGNParams, init_many, stack_params
from .training import RunResult, run_many

__all__ = ["FORM_LABELS", "WeightFormComparison", "compare_weight_forms", "format_weight_forms",
           "run_seeds", "seeds_summary", "format_seeds_summary"]

FORM_LABELS = {"colab": "colab", "per_neuron": "per-neuron"}  # a weight form as the tables print it


class WeightFormComparison(NamedTuple):
    """What :func:`compare_weight_forms` returns.

    Attributes:
        records: one dict per table row, the baseline run first, then one per per-neuron learning
            rate: ``form``, ``learning_rate``, ``epoch`` (the final one), ``dtype``,
            ``diverged_epoch`` (-1 when finite), ``test_loss``, ``train_loss`` (and
            ``test_accuracy``, ``train_accuracy`` for the Bernoulli loss) at the final epoch.
        baseline: the baseline's history (as :func:`dgnlib.dgn.fit` returns it).
        per_neuron: the per-neuron runs (:class:`dgnlib.dgn.RunResult`, metrics ``(R, epochs + 1)``).
    """

    records: list
    baseline: dict
    per_neuron: RunResult


def _metric_names(cfg: DGNConfig) -> list:
    return ["loss"] + (["accuracy"] if cfg.loss == "bernoulli" else [])


def compare_weight_forms(params: DGNParams, data, history: dict, learning_rate: float,
                         per_neuron_learning_rates: Sequence[float], cfg: DGNConfig,
                         dtype: str = "float32") -> WeightFormComparison:
    """Train the per-neuron form at several learning rates and set it against a finished run.

    Arguments:
        params: the untrained network the baseline started from (the same hyperplanes are used).
        data: the baseline's data (:class:`dgnlib.dgn.TabularData`).
        history: the baseline's history (:func:`dgnlib.dgn.fit`); its length sets the epochs.
        learning_rate: the baseline's learning rate.
        per_neuron_learning_rates: one or more positive learning rates for the per-neuron form.
        cfg: the baseline's options; the per-neuron runs use ``cfg`` with ``weight_form="per_neuron"``.
        dtype: the runs' precision (``"float32"`` or ``"float64"``).

    Returns:
        A :class:`WeightFormComparison`. A per-neuron run that diverges warns
        (:class:`dgnlib.dgn.DivergenceWarning`) and its record carries its ``diverged_epoch``.
    """
    cfg = validate_config(cfg)
    rates = np.asarray(per_neuron_learning_rates, dtype=float)
    if rates.ndim != 1 or rates.size == 0:
        raise ValueError(f"per_neuron_learning_rates must list at least one learning rate, "
                         f"got {per_neuron_learning_rates!r}")
    epochs = len(history["epoch"]) - 1
    per_neuron = run_many(stack_params([params] * rates.size), data, rates,
                          epochs, cfg._replace(weight_form="per_neuron"), dtype=dtype)
    names = _metric_names(cfg)
    losses = np.asarray([history["train_loss"], history["test_loss"]])
    bad = ~np.all(np.isfinite(losses), axis=0)
    records = [{"form": cfg.weight_form, "learning_rate": float(learning_rate), "epoch": epochs, "dtype": dtype,
                "diverged_epoch": int(np.argmax(bad)) if bad.any() else -1,
                **{f"{split}_{m}": float(history[f"{split}_{m}"][-1]) for split in ("test", "train") for m in names}}]
    # on the host: indexing the JAX arrays would compile a slicing program per index shape
    metrics = {(split, m): np.asarray(getattr(per_neuron, split)[m]) for split in ("test", "train") for m in names}
    for i, rate in enumerate(rates):
        bad = ~(np.isfinite(metrics["train", "loss"][i]) & np.isfinite(metrics["test", "loss"][i]))
        records.append({
            "form": "per_neuron", "learning_rate": float(rate), "epoch": epochs, "dtype": dtype,
            "diverged_epoch": int(np.argmax(bad)) if bad.any() else -1,
            **{f"{split}_{m}": float(metrics[split, m][i, -1]) for split in ("test", "train") for m in names}})
    return WeightFormComparison(records, history, per_neuron)


def format_weight_forms(comparison) -> str:
    """The final-epoch table of :func:`compare_weight_forms`, e.g.::

        final epoch (3), float64
        form            rate      test loss      train loss  ...
        colab          1e-04         0.0990          0.0700  ...
        per-neuron     1e-04         0.1572          0.1232  ...
        per-neuron     1e-02  diverged

    Arguments:
        comparison: a :class:`WeightFormComparison` or its ``records``.

    Returns:
        The lines, joined by newlines (a diverged row says ``diverged``).
    """
    records = comparison.records if isinstance(comparison, WeightFormComparison) else list(comparison)
    first = records[0]
    names = ["loss"] + (["accuracy"] if "test_accuracy" in first else [])
    lines = [f"final epoch ({first['epoch']}), {first['dtype']}",
             f"{'form':<10}  {'rate':>8}" + "".join(f"  {'test ' + m:>13}  {'train ' + m:>14}" for m in names)]
    for r in records:
        head = f"{FORM_LABELS[r['form']]:<10}  {r['learning_rate']:8.0e}"
        if r["diverged_epoch"] >= 0:
            lines.append(f"{head}  diverged")
        else:
            lines.append(head + "".join(f"  {r['test_' + m]:13.4f}  {r['train_' + m]:14.4f}" for m in names))
    return "\n".join(lines)


def run_seeds(data, n_seeds: int, learning_rate, epochs: int, cfg: DGNConfig, n_neurons=(100, 10, 1),
              n_branches: int = 20, key: int = 0, dtype: str = "float32") -> RunResult:
    """``n_seeds`` networks with independent hyperplanes, trained in one :func:`dgnlib.dgn.run_many` call.

    Arguments:
        data: the problem (:class:`dgnlib.dgn.TabularData`).
        n_seeds: networks (an int >= 1); their hyperplanes come from ``jax.random.split(key, n_seeds)``.
        learning_rate, epochs, cfg, dtype: as for :func:`dgnlib.dgn.run`.
        n_neurons, n_branches: the architecture.
        key: the integer seed of the JAX key that is split.

    Returns:
        A :class:`dgnlib.dgn.RunResult` with metrics ``(n_seeds, epochs + 1)``.
    """
    keys = _split_key(key, positive_int("n_seeds", n_seeds))
    return run_many(init_many(keys, data.n_features, n_neurons, n_branches), data, learning_rate, epochs, cfg,
                    dtype=dtype)


@partial(jax.jit, static_argnums=(0, 1))
def _split_key(key: int, n: int):
    # one compiled program instead of the three that jax.random.key and split compile when called eagerly
    return jax.random.split(jax.random.key(key), n)


def seeds_summary(result: RunResult, split: str = "test") -> list:
    """The spread of the final metrics over the networks of a :func:`run_seeds` result.

    Arguments:
        result: a :class:`dgnlib.dgn.RunResult` with a networks axis.
        split: ``"test"`` or ``"train"``.

    Returns:
        One record per metric: ``split``, ``metric``, ``n`` (networks), ``mean``, ``std``
        (population, ddof 0), ``min``, ``max`` of the final epoch's values.
    """
    out = []
    metrics = getattr(result, split)
    for metric in [m for m in ("loss", "accuracy") if m in metrics]:
        final = np.asarray(metrics[metric])[:, -1]  # sliced on the host: no slicing program compiled
        out.append({"split": split, "metric": metric, "n": int(final.shape[0]), "mean": float(final.mean()),
                    "std": float(final.std()), "min": float(final.min()), "max": float(final.max())})
    return out


def format_seeds_summary(summary: Sequence[dict]) -> str:
    """The lines of :func:`seeds_summary`, e.g.
    ``"32 hyperplane seeds, final test loss: 0.101 +- 0.012 (min 0.080, max 0.130)"``.

    Arguments:
        summary: the records of :func:`seeds_summary`.

    Returns:
        One line per record, joined by newlines.
    """
    return "\n".join(f"{r['n']} hyperplane seeds, final {r['split']} {r['metric']}: {r['mean']:.3f} +- "
                     f"{r['std']:.3f} (min {r['min']:.3f}, max {r['max']:.3f})" for r in summary)
