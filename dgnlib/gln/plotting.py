"""Matplotlib figures of the one-pass experiments (imported when a figure is drawn)."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_one_pass_curves", "plot_forgetting"]


def plot_one_pass_curves(curves: dict, axes=None):
    """Accuracy against samples seen (log scale), mean ± std over seeds, one panel per data set.

    Arguments:
        curves: data set name -> :class:`dgnlib.gln.CurveResult` (one rate per learner).
        axes: one axis per data set (new ones when ``None``).

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 3.8), squeeze=False)
        axes = axes[0]
    for ax, (name, result) in zip(axes, curves.items()):
        for learner, acc in result.accuracy.items():
            a = 100 * acc[0]  # (S, K)
            mean, std = a.mean(axis=0), a.std(axis=0)
            ax.plot(result.samples, mean, marker="o", ms=3, label=f"{learner} (lr {result.rates[learner][0]:.0e})")
            ax.fill_between(result.samples, mean - std, mean + std, alpha=0.25)
        ax.set_xscale("log")
        ax.set_xlabel("training samples seen (one online pass)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{name}, {len(result.seeds)} seed(s)")
        ax.grid(alpha=0.3)
        ax.legend()
    plt.tight_layout()
    return axes


def plot_forgetting(result, axes=None):
    """Per learner, the test accuracy on each task (lines) after each task's pass, mean over seeds.

    Arguments:
        result: a :class:`dgnlib.gln.ForgettingResult`.
        axes: one axis per learner (new ones when ``None``).

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    names = list(result.matrix)
    if axes is None:
        _, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False, sharey=True)
        axes = axes[0]
    for ax, name in zip(axes, names):
        m = 100 * result.matrix[name].mean(axis=0)  # (T, T): after task i, on task j
        n_tasks = m.shape[0]
        after = np.arange(1, n_tasks + 1)
        for j in range(n_tasks):
            ax.plot(after[j:], m[j:, j], marker="o", label=f"task {j + 1}")
        ax.set_xticks(after)
        ax.set_xlabel("after the pass over task")
        ax.set_title(f"{name}: average {m[-1].mean():.1f}% at the end")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[-1].legend(fontsize=8)
    plt.tight_layout()
    return axes
