"""A diverged DGN run says so: :class:`DivergenceWarning`, :func:`diverged_epoch` and the warning's text.

A learning rate too large for the weight form and loss makes the weights blow up and the loss NaN
or infinite. The training entry points check the losses on the host after the compiled program
has returned, warn once naming the run, the first diverged epoch and the learning rate, and
return the numbers as they are. The warning points at the first caller outside ``dgnlib.dgn``.
"""
from __future__ import annotations

import inspect
import os
import warnings

import numpy as np

from .model import DGNConfig

__all__ = ["DivergenceWarning", "diverged_epoch", "divergence_message", "warn_diverged", "warn_if_diverged"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class DivergenceWarning(RuntimeWarning):
    """A DGN run diverged: its loss became NaN or infinite (the learning rate is too large for the
    weight form and loss). :func:`dgnlib.dgn.run`, :func:`~dgnlib.dgn.run_many`,
    :func:`~dgnlib.dgn.iterate_epochs` and :func:`~dgnlib.dgn.fit` warn on the host after the
    compiled program has returned, naming the run, the first diverged epoch and the learning rate;
    the numbers they return are left as they are (NaN/inf)."""


def diverged_epoch(result):
    """The first epoch whose train or test loss is not finite, or -1 where the run did not diverge.

    Arguments:
        result: a :class:`dgnlib.dgn.RunResult` of :func:`dgnlib.dgn.run` (metrics
            ``(epochs + 1,)``) or of :func:`dgnlib.dgn.run_many` (``(S, epochs + 1)``).

    Returns:
        An ``int`` for one run, an ``(S,)`` integer array for many.
    """
    bad = ~(np.isfinite(np.asarray(result.train["loss"])) & np.isfinite(np.asarray(result.test["loss"])))
    first = np.where(bad.any(axis=-1), bad.argmax(axis=-1), -1)
    return int(first) if first.ndim == 0 else first


def divergence_message(epoch: int, learning_rate: float, cfg: DGNConfig, dtype: str, epochs: int) -> str:
    """``"loss not finite from epoch 1 of 3 (learning rate 1, loss='square', weight_form='per_neuron',
    float32)"``: what a :class:`DivergenceWarning` says about one network.

    Arguments:
        epoch: the first diverged epoch.
        learning_rate: the network's learning rate.
        cfg: its options (loss and weight form are named).
        dtype: the run's precision.
        epochs: the run's number of training epochs.

    Returns:
        The text.
    """
    return (f"loss not finite from epoch {epoch} of {epochs} (learning rate {learning_rate:g}, "
            f"loss={cfg.loss!r}, weight_form={cfg.weight_form!r}, {dtype})")


def warn_diverged(detail: str) -> None:
    """Issue a :class:`DivergenceWarning` ``detail + ". Lower the learning rate."`` pointing at the
    first frame outside ``dgnlib.dgn`` (the user's call), however deep inside the package it is raised.

    Arguments:
        detail: what diverged (e.g. ``"run diverged: " + divergence_message(...)``).
    """
    frame, level = inspect.currentframe(), 1  # stacklevel 1: this function's frame
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    del frame
    warnings.warn(detail + ". Lower the learning rate.", DivergenceWarning, stacklevel=level)


def warn_if_diverged(result, learning_rate, cfg: DGNConfig, dtype: str, epochs: int, what: str) -> None:
    """Warn once (:func:`warn_diverged`) if any network of ``result`` diverged.

    Arguments:
        result: a :class:`dgnlib.dgn.RunResult` of one network (``what="run"``) or of many
            (``what="run_many"``).
        learning_rate: a scalar or one per network.
        cfg, dtype, epochs: the run's options, precision and training epochs.
        what: ``"run"`` or ``"run_many"`` (the message's opening words).
    """
    first = np.atleast_1d(diverged_epoch(result))
    bad = np.flatnonzero(first >= 0)
    if bad.size == 0:
        return
    rates = np.broadcast_to(np.asarray(learning_rate, dtype=float), first.shape)
    if what == "run":
        detail = "run diverged: " + divergence_message(first[0], rates[0], cfg, dtype, epochs)
    else:
        detail = f"run_many: {bad.size} of {first.size} networks diverged: " + "; ".join(
            f"network {i}: " + divergence_message(first[i], rates[i], cfg, dtype, epochs) for i in bad)
    warn_diverged(detail)
