"""Argument checks shared by every part of dgnlib: one definition of each contract.

Each check raises ``ValueError`` naming the argument, the value found and what was expected, so a
bad call fails at the boundary with a message that says how to fix it. The array checks also work
under ``jit``/``vmap``: there the check is attached to the returned array with
``equinox.error_if`` (using the result raises with the same kind of message). JAX and Equinox are
imported by those two checks only, so a module that needs none (the sweep runner) stays light.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Sequence

import numpy as np

__all__ = ["choice", "positive_int", "finite_number", "positive_number", "check_finite", "check_labels"]


def choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``allowed``, else ``ValueError`` naming ``name``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an ``int`` >= ``minimum`` (bools and non-integers raise ``ValueError``)."""
    try:
        v = operator.index(value)
    except TypeError:
        v = None
    if v is None or isinstance(value, (bool, np.bool_)) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(v)


def finite_number(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` (``ValueError`` naming ``name`` otherwise)."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a number, got the text {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, (bool, np.bool_)) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


def positive_number(name: str, value: Any):
    """``value`` (a number or an array of numbers), checked to be finite and > 0; a scalar is
    returned as ``float``, an array unchanged."""
    if np.ndim(value) == 0:
        v = finite_number(name, value)
        if not v > 0:
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        return v
    a = np.asarray(value)
    if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must hold positive finite numbers, got {value!r}")
    return value


def check_finite(x, name: str = "x"):
    """``x``, checked to hold only finite numbers (no NaN or infinity).

    Concrete arrays are checked on the host (``ValueError`` naming ``name`` and counting the
    bad values). Under ``jit``/``vmap`` (tracers) the check is attached to the returned array
    with ``equinox.error_if``: using the result raises a runtime error naming ``name``.
    A NaN input would otherwise give, e.g., a silent NaN loss with the BP baseline.
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    if not jnp.issubdtype(jnp.result_type(x), jnp.inexact):
        return x  # integers (e.g. uint8 pixels) are always finite
    if isinstance(x, jax.core.Tracer):
        return eqx.error_if(x, jnp.logical_not(jnp.all(jnp.isfinite(x))),
                            f"{name} must be finite, but it holds NaN or infinite values")
    if isinstance(x, jax.Array):
        # Reduced on the device (no copy of a large array to the host), eagerly, also when a
        # concrete array is closed over inside a jitted function.
        with jax.ensure_compile_time_eval():
            if bool(jnp.all(jnp.isfinite(x))):
                return x
    bad = ~np.isfinite(np.asarray(x))
    if bad.any():
        raise ValueError(f"{name} must be finite, but {int(bad.sum())} of its {bad.size} values "
                         f"are NaN or infinite (first at index {tuple(int(i) for i in np.argwhere(bad)[0])})")
    return x


def check_labels(labels, n_classes: int, name: str = "labels"):
    """``labels``, checked to be integers in ``0..n_classes-1``.

    Concrete arrays are checked on the host (``ValueError`` naming ``name``, the values found
    and the range expected). Under ``jit``/``vmap`` (tracers) the range check is attached to
    the returned array with ``equinox.error_if``: using the result raises a runtime error
    with the same kind of message. Out-of-range labels would otherwise become all-zero
    one-hot rows, i.e. a silent loss of 0.
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise ValueError(f"{name} must hold integer class labels, got dtype {jnp.result_type(labels)}")
    expected = f"{name} must hold class labels in 0..{n_classes - 1} ({n_classes} classes)"
    if isinstance(labels, jax.core.Tracer):
        bad = jnp.any((labels < 0) | (labels >= n_classes))
        return eqx.error_if(labels, bad, f"{expected}; some labels lie outside that range")
    if isinstance(labels, jax.Array):
        # Reduced on the device (no copy to the host), eagerly, also when a concrete array is
        # closed over inside a jitted function.
        with jax.ensure_compile_time_eval():
            if labels.size == 0 or (int(jnp.min(labels)) >= 0 and int(jnp.max(labels)) < n_classes):
                return labels
    host = np.asarray(labels)
    if host.size and (host.min() < 0 or host.max() >= n_classes):
        n_bad = int(np.sum((host < 0) | (host >= n_classes)))
        raise ValueError(f"{expected}, got {n_bad} of {host.size} outside it "
                         f"(values from {host.min()} to {host.max()})")
    return labels
