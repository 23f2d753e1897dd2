"""Per-sample losses of the dis-inhibitory networks, with their error signals.

Shapes: ``y`` and ``yhat`` are ``(..., K)``; losses reduce the last axis.
The error signal ``e`` is what the controller is driven by (minus the gradient of the
loss with respect to ``yhat``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..checks import check_labels

__all__ = ["mse", "mse_error", "softmax_cross_entropy", "cross_entropy_error", "soft_targets"]


def mse(y, yhat):
    """``0.5 * sum_k (y - yhat)^2``."""
    return 0.5 * jnp.sum((y - yhat) ** 2, axis=-1)


def mse_error(y, yhat):
    """``e = y - yhat``."""
    return y - yhat


def softmax_cross_entropy(y, logits):
    """``-sum_k y_k log softmax(logits)_k``."""
    return -jnp.sum(y * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def cross_entropy_error(y, logits):
    """``e = y - softmax(logits)``."""
    return y - jax.nn.softmax(logits, axis=-1)


def soft_targets(labels, num_classes: int, value: float = 0.99):
    """One-hot targets with the true class at ``value`` and the rest at ``(1-value)/(K-1)``.

    ``labels``: integer array ``(...,)`` in ``0..num_classes-1`` (checked when concrete:
    ``jax.nn.one_hot`` would silently turn any other label into a row of zeros); returns
    float32 ``(..., num_classes)``. ``value = 1`` gives hard one-hot targets.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if not 0.0 < value <= 1.0:
        raise ValueError(f"value must lie in (0, 1], got {value}")
    if not isinstance(labels, jax.core.Tracer):
        # concrete labels are checked here; under jit the caller checks them (check_labels)
        check_labels(labels, num_classes)
    off = (1.0 - value) / (num_classes - 1)
    one_hot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    return one_hot * (value - off) + off
