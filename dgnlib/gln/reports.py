"""Printed results of the one-pass experiments: one log line per checkpoint, task and summary, in
fixed formats that CI compares number by number (``ci/notebooks.json``)."""
from __future__ import annotations

import numpy as np

__all__ = ["format_curve_line", "format_task_line", "format_search", "format_one_pass", "format_forgetting"]


def format_curve_line(dataset: str, name: str, rate: float, seed: int, samples: int, accuracy: float) -> str:
    """The log line of one checkpoint: ``curve <dataset> <learner> lr <rate> seed <s> samples <n>: accuracy <a>``."""
    return f"curve {dataset} {name} lr {rate:.0e} seed {seed} samples {samples:6d}: accuracy {accuracy:.4f}"


def format_task_line(name: str, seed: int, task: int, accuracies) -> str:
    """The log line after a task's pass: ``forgetting <learner> seed <s> after task <i>: <acc on each task>``."""
    return f"forgetting {name} seed {seed} after task {task}: " + " ".join(f"{a:.4f}" for a in accuracies)


def format_search(result, dataset: str):
    """Lines ``search <dataset> <learner> lr <rate>: validation accuracy <mean over seeds>`` (one per
    searched rate) and ``chosen <dataset> <learner>: lr <rate>``.

    Arguments:
        result: a :class:`dgnlib.gln.CurveResult` of the search.
        dataset: the data set's name.

    Returns:
        A list of strings.
    """
    lines = []
    for name, acc in result.accuracy.items():
        final = acc[:, :, -1].mean(axis=1)
        for rate, a in zip(result.rates[name], final):
            lines.append(f"search {dataset} {name} lr {rate:.0e}: validation accuracy {a:.4f}")
        lines.append(f"chosen {dataset} {name}: lr {result.rates[name][int(np.argmax(final))]:.0e}")
    return lines


def format_one_pass(result, dataset: str):
    """Lines ``one-pass <dataset> <learner> lr <rate>: test accuracy <mean> ± <std> (<n> seeds)``, the
    accuracy after the whole pass, std over seeds (ddof 0).

    Arguments:
        result: a :class:`dgnlib.gln.CurveResult` with one rate per learner.
        dataset: the data set's name.

    Returns:
        A list of strings.
    """
    lines = []
    for name, acc in result.accuracy.items():
        for rate, final in zip(result.rates[name], acc[:, :, -1]):
            lines.append(f"one-pass {dataset} {name} lr {rate:.0e}: test accuracy {final.mean():.4f} "
                         f"± {final.std():.4f} ({final.size} seeds)")
    return lines


def format_forgetting(result):
    """Lines ``forgetting <learner>: average <mean> ± <std>, drop on task 1 <mean> ± <std> (<n> seeds)``.

    Arguments:
        result: a :class:`dgnlib.gln.ForgettingResult`.

    Returns:
        A list of strings.
    """
    lines = []
    for name in result.matrix:
        avg, drop = result.average_final(name), result.drop_first(name)
        lines.append(f"forgetting {name}: average {avg.mean():.4f} ± {avg.std():.4f}, drop on task 1 "
                     f"{drop.mean():.4f} ± {drop.std():.4f} ({avg.size} seeds)")
    return lines
