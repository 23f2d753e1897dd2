"""Loss of the dis-inhibitory networks' outputs and the targets it compares them with.

Shapes: ``y`` and ``logits`` are ``(..., n_classes)``; the loss reduces the last axis. (The
error signal that drives the controller, ``e = y - softmax(logits)``, is part of the network:
:func:`dgnlib.dic.network.control_signal`.)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..checks import check_labels, positive_int

__all__ = ["softmax_cross_entropy", "soft_targets"]


def softmax_cross_entropy(y, logits):
    """``-sum_k y_k log softmax(logits)_k``.

    Arguments: ``y`` targets and ``logits``, both ``(..., n_classes)``.
    Returns: the per-sample loss ``(...)``.
    """
    return -jnp.sum(y * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def soft_targets(labels, n_classes: int, value: float = 0.99):
    """One-hot targets with the true class at ``value`` and the rest at ``(1-value)/(n_classes-1)``.

    Arguments: ``labels``, an integer array ``(...,)`` in ``0..n_classes-1`` (checked when
    concrete: ``jax.nn.one_hot`` would silently turn any other label into a row of zeros);
    ``n_classes`` >= 2; ``value`` in ``(0, 1]`` (1 gives hard one-hot targets).
    Returns: float32 ``(..., n_classes)``.
    """
    n_classes = positive_int("n_classes", n_classes, minimum=2)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"value must lie in (0, 1], got {value}")
    if not isinstance(labels, jax.core.Tracer):
        # concrete labels are checked here; under jit the caller checks them (check_labels)
        check_labels(labels, n_classes)
    off = (1.0 - value) / (n_classes - 1)
    one_hot = jax.nn.one_hot(labels, n_classes, dtype=jnp.float32)
    return one_hot * (value - off) + off
