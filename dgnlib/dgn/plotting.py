"""Matplotlib figures for the DGN notebooks: learning curves, the weight-form comparison, and the
spread of many runs. Matplotlib is imported when a figure is drawn, not with the package."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_learning_curves", "plot_weight_forms", "plot_runs_spread", "plot_seeds"]

EPOCH_LABEL = "epoch (0 = before training)"


def _axes(ax, ncols, figsize=None):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    fig, axes = plt.subplots(1, ncols, figsize=figsize or (5 * ncols, 3.5), squeeze=False)
    return axes[0]


def plot_learning_curves(history: dict, axes=None, label: str = "", title: str = ""):
    """Train and test loss (and accuracy when present) against epoch.

    Arguments:
        history: ``epoch``, ``train_loss``, ``test_loss`` and optionally ``train_accuracy``,
            ``test_accuracy``, each of length ``epochs + 1`` (as :func:`dgnlib.dgn.fit` returns).
        axes: one axis per metric (new ones when ``None``).
        label: prefix of the legend entries.
        title: prefix of the axes' titles.

    Returns:
        The axes.
    """
    metrics = ["loss"] + (["accuracy"] if "test_accuracy" in history else [])
    axes = _axes(axes, len(metrics))
    epochs = np.asarray(history["epoch"])
    prefix = f"{label} " if label else ""
    for ax, metric in zip(axes, metrics):
        ax.plot(epochs, history[f"train_{metric}"], "o-", label=f"{prefix}train")
        ax.plot(epochs, history[f"test_{metric}"], "s--", label=f"{prefix}test")
        ax.set_xlabel(EPOCH_LABEL)
        ax.set_ylabel(metric)
        ax.set_xticks(epochs)
        ax.legend()
        if title:
            ax.set_title(f"{title}: {metric}")
    return axes


def plot_weight_forms(comparison, ax=None):
    """Test loss against epoch: the baseline run and each per-neuron learning rate.

    Arguments:
        comparison: a :class:`dgnlib.dgn.WeightFormComparison` (:func:`dgnlib.dgn.compare_weight_forms`).
        ax: the axis (a new 6 x 4 figure when ``None``).

    Returns:
        The axis.
    """
    ax = _axes(ax, 1, figsize=(6, 4))[0] if ax is None else ax
    base, *rows = comparison.records
    epochs = comparison.baseline["epoch"]
    ax.plot(epochs, comparison.baseline["test_loss"], "k-o",
            label=f"{base['form'].replace('_', '-')} form, rate {base['learning_rate']:g}")
    test_loss = np.asarray(comparison.per_neuron.test["loss"])  # indexed on the host: no slicing program compiled
    for i, row in enumerate(rows):
        ax.plot(epochs, test_loss[i], "--", label=f"per-neuron, rate {row['learning_rate']:g}")
    ax.set_xlabel(EPOCH_LABEL)
    ax.set_ylabel("test loss")
    ax.set_title("weight forms")
    ax.legend(fontsize=8)
    return ax


def plot_runs_spread(values, split: str, metric: str, ax=None, label: str = ""):
    """Mean and spread (min-max band, +-1 std bars) of a metric over runs.

    Arguments:
        values: ``(S, epochs + 1)`` for ``S`` runs.
        split, metric: the y label's words (``"test"``, ``"loss"``).
        ax: the axis (new when ``None``).
        label: prefix of the legend entries.

    Returns:
        The axis.
    """
    ax = _axes(ax, 1)[0] if ax is None else ax
    values = np.asarray(values)
    epochs = np.arange(values.shape[1])
    mean, std = values.mean(0), values.std(0)
    ax.fill_between(epochs, values.min(0), values.max(0), alpha=0.2, label=f"{label} min-max".strip())
    ax.errorbar(epochs, mean, yerr=std, fmt="o-", capsize=3, label=f"{label} mean +- std".strip())
    ax.set_xlabel(EPOCH_LABEL)
    ax.set_ylabel(f"{split} {metric}")
    ax.set_xticks(epochs)
    ax.legend()
    return ax


def plot_seeds(result, split: str = "test", axes=None):
    """:func:`plot_runs_spread` of every metric of a many-networks result, side by side.

    Arguments:
        result: a :class:`dgnlib.dgn.RunResult` of :func:`dgnlib.dgn.run_seeds` or
            :func:`dgnlib.dgn.run_many` (metrics ``(S, epochs + 1)``).
        split: ``"test"`` or ``"train"``.
        axes: one axis per metric (new ones when ``None``).

    Returns:
        The axes.
    """
    metrics = getattr(result, split)
    names = [m for m in ("loss", "accuracy") if m in metrics]
    axes = _axes(axes, len(names))
    for ax, metric in zip(axes, names):
        plot_runs_spread(metrics[metric], split, metric, ax=ax, label=f"{np.shape(metrics[metric])[0]} seeds")
    return axes
