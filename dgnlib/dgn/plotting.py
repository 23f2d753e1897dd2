"""Matplotlib figures for the notebooks (learning curves, spread over many runs)."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_learning_curves", "plot_runs_spread"]


def _axes(ax, ncols):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.5), squeeze=False)
    return axes[0]


def plot_learning_curves(history: dict, axes=None, label: str = "", title: str = ""):
    """Train and test loss (and accuracy when present) against epoch.

    ``history``: dict with ``epoch``, ``train_loss``, ``test_loss`` and optionally
    ``train_accuracy``, ``test_accuracy``, each of length ``epochs + 1`` (as :func:`dgnlib.dgn.training.fit`
    returns). Returns the axes.
    """
    metrics = ["loss"] + (["accuracy"] if "test_accuracy" in history else [])
    axes = _axes(axes, len(metrics))
    epochs = np.asarray(history["epoch"])
    prefix = f"{label} " if label else ""
    for ax, metric in zip(axes, metrics):
        ax.plot(epochs, history[f"train_{metric}"], "o-", label=f"{prefix}train")
        ax.plot(epochs, history[f"test_{metric}"], "s--", label=f"{prefix}test")
        ax.set_xlabel("epoch (0 = before training)")
        ax.set_ylabel(metric)
        ax.set_xticks(epochs)
        ax.legend()
        if title:
            ax.set_title(f"{title}: {metric}")
    return axes


def plot_runs_spread(values, split: str, metric: str, ax=None, label: str = ""):
    """Mean and spread (min-max band, +-1 std bars) of a metric over runs.

    ``values``: array ``(S, epochs + 1)`` for ``S`` runs. Returns the axis.
    """
    ax = _axes(ax, 1)[0] if ax is None else ax
    values = np.asarray(values)
    epochs = np.arange(values.shape[1])
    mean, std = values.mean(0), values.std(0)
    ax.fill_between(epochs, values.min(0), values.max(0), alpha=0.2, label=f"{label} min-max".strip())
    ax.errorbar(epochs, mean, yerr=std, fmt="o-", capsize=3, label=f"{label} mean +- std".strip())
    ax.set_xlabel("epoch (0 = before training)")
    ax.set_ylabel(f"{split} {metric}")
    ax.set_xticks(epochs)
    ax.legend()
    return ax
