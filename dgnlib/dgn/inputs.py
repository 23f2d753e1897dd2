"""A DGN run's inputs, checked and cast: the data splits, the learning rate and the precision.

Every training entry point (:func:`dgnlib.dgn.run`, :func:`~dgnlib.dgn.run_many`,
:func:`~dgnlib.dgn.iterate_epochs`, :func:`~dgnlib.dgn.fit`) calls :func:`prepare_inputs` on the
host before compiling anything, so a bad input fails at the boundary with a message naming it.
"""
from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import check_finite, choice, positive_number
from .model import DGNConfig, validate_config
from .params import DGNParams

__all__ = ["PRECISIONS", "precision", "float_dtype", "validate_data", "prepare_inputs", "as_dtype"]

PRECISIONS = ("float32", "float64")


def precision(name: str):
    """Context manager for a run's floating-point precision.

    Arguments:
        name: ``"float64"`` enables JAX's 64-bit mode inside the block only (the colab computes in
            float64); ``"float32"`` is JAX's default and changes nothing.

    Returns:
        The context manager (``ValueError`` for any other name).
    """
    if choice("precision", name, PRECISIONS) == "float64":
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def float_dtype(name: str):
    """The JAX dtype of a precision name (``"float32"`` or ``"float64"``)."""
    return jnp.float64 if choice("precision", name, PRECISIONS) == "float64" else jnp.float32


def validate_data(x, y, n_features: int, cfg: DGNConfig, name: str = "x"):
    """Check one data split.

    Arguments:
        x: samples ``(n, d)`` with ``n >= 1`` and ``d == n_features``, all finite.
        y: targets ``(n,)``, finite, and 0 or 1 for the Bernoulli loss.
        n_features: the network's input dimension.
        cfg: the options (``loss`` decides the target check).
        name: the split's name in messages (``"x_train"``; the targets are named ``"y_train"``).

    Returns:
        ``(x, y)`` as NumPy float64 copies.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    cfg = validate_config(cfg)
    yname = "y" + name[1:]
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_features), got shape {x.shape}")
    if x.shape[1] != n_features:
        raise ValueError(
            f"{name} has {x.shape[1]} features but the network was built for n_features={n_features}"
        )
    if y.shape != (x.shape[0],):
        raise ValueError(f"{yname} must have shape ({x.shape[0]},) to match {name}, got {y.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no samples")
    check_finite(x, name)
    check_finite(y, yname)
    if cfg.loss == "bernoulli" and not np.all((y == 0) | (y == 1)):
        bad = np.unique(y[(y != 0) & (y != 1)])[:5]
        raise ValueError(
            f"{yname} must hold binary targets 0/1 for the Bernoulli DGN, got values such as {bad}"
        )
    return x, y


def prepare_inputs(params: DGNParams, data, cfg: DGNConfig, dtype: str, learning_rate):
    """Check a run's inputs and cast them to its precision (call inside :func:`precision`).

    Arguments:
        params: one network, or many with a leading networks axis.
        data: ``x_train, y_train, x_test, y_test`` (:class:`dgnlib.dgn.TabularData`).
        cfg: the options.
        dtype: ``"float32"`` or ``"float64"``.
        learning_rate: a positive finite number, or an array of them (one per network).

    Returns:
        ``(cfg, params, (x_train, y_train, x_test, y_test), learning_rate)`` with every array a JAX
        array of the run's dtype.
    """
    cfg = validate_config(cfg)
    n_features = params.hyperplanes[0].shape[-1] - 1
    x_tr, y_tr = validate_data(data.x_train, data.y_train, n_features, cfg, "x_train")
    x_te, y_te = validate_data(data.x_test, data.y_test, n_features, cfg, "x_test")
    positive_number("learning_rate", learning_rate)
    dt = float_dtype(dtype)
    params = jax.tree_util.tree_map(lambda a: as_dtype(a, dt), params)
    return cfg, params, tuple(as_dtype(a, dt) for a in (x_tr, y_tr, x_te, y_te)), as_dtype(learning_rate, dt)


def as_dtype(a, dtype):
    """``a`` as a JAX array of ``dtype``, converted on the host.

    ``jnp.asarray(a, dtype)`` converts on the device, which compiles one small XLA program per
    shape and dtype (a whole notebook compiled six of them, one more per new data shape); a NumPy
    cast (round to nearest, as XLA's) and one transfer compile nothing. A JAX array already of
    ``dtype`` (and not weakly typed) is returned as it is.

    Arguments:
        a: a number, a NumPy array or a JAX array.
        dtype: the JAX dtype (``jnp.float32`` or ``jnp.float64``).

    Returns:
        The JAX array.
    """
    if isinstance(a, jax.Array) and a.dtype == dtype and not a.weak_type:
        return a
    host = np.asarray(a).astype(dtype, copy=False)
    return jnp.asarray(host, dtype=host.dtype)  # a transfer (without the dtype, jnp.asarray compiles a copy)
