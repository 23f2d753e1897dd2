"""The trainable weights and the fixed random gating of a one-vs-all classifier, and their start.

Per layer ``k`` (``N_k`` neurons, ``I_k`` inputs: ``I_0 = d + 1``, ``I_k = N_{k-1} + 1``, the first
input being the bias):

* ``GLNParams.weights[k]``: ``(n_classes, N_k, R, I_k)``, ``R = 2 ** context_dim`` table rows
  (``"gln"``) or ``R = n_branches`` branches (``"dgn"``);
* ``Gating.hyperplanes[k]``: ``(C, N_k, G, d)`` unit-norm hyperplanes over the side information and
  ``Gating.offsets[k]``: ``(C, N_k, G)``, with ``G = context_dim`` or ``n_branches`` and ``C = 1``
  when the classes share their gates (``shared_gates``), ``n_classes`` otherwise.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..checks import positive_int
from .config import GLNConfig, validate_config

__all__ = ["GLNParams", "Gating", "layer_inputs", "init_weights", "init_gating", "init"]


class GLNParams(NamedTuple):
    """Trainable weights, one ``(n_classes, N_k, R, I_k)`` array per layer."""

    weights: tuple


class Gating(NamedTuple):
    """Fixed random hyperplanes ``(C, N_k, G, d)`` and offsets ``(C, N_k, G)`` per layer."""

    hyperplanes: tuple
    offsets: tuple


def layer_inputs(n_features: int, cfg: GLNConfig) -> tuple:
    """Inputs per layer, the bias included: ``(d + 1, N_0 + 1, ..., N_{L-2} + 1)``.

    Arguments:
        n_features: the input dimension ``d``.
        cfg: the options.

    Returns:
        A tuple of ints.
    """
    n_features = positive_int("n_features", n_features)
    return (n_features + 1,) + tuple(n + 1 for n in validate_config(cfg).n_neurons[:-1])


def init_weights(n_features: int, cfg: GLNConfig = GLNConfig(), dtype=jnp.float32) -> GLNParams:
    """Starting weights (``cfg.initial_weight``).

    Arguments:
        n_features: the input dimension ``d``.
        cfg: the options.
        dtype: the arrays' dtype.

    Returns:
        A :class:`GLNParams`.
    """
    weights = []
    for n, i in zip(cfg.n_neurons, layer_inputs(n_features, cfg)):
        if cfg.initial_weight == "zero":
            value = 0.0
        else:
            value = 1.0 / i if cfg.gating == "gln" else 2.0 / (i * cfg.n_branches)
        weights.append(jnp.full((cfg.n_classes, n, cfg.n_rows, i), value, dtype))
    return GLNParams(tuple(weights))


def init_gating(key, n_features: int, cfg: GLNConfig = GLNConfig(), dtype=jnp.float32) -> Gating:
    """Random gating: standard-normal hyperplanes scaled to unit norm, normal offsets with standard
    deviation ``cfg.hyperplane_offset``.

    Arguments:
        key: a JAX PRNG key.
        n_features: the input dimension ``d``.
        cfg: the options (``shared_gates``, ``gating``, ``context_dim`` / ``n_branches``).
        dtype: the arrays' dtype.

    Returns:
        A :class:`Gating`.
    """
    layer_inputs(n_features, cfg)  # checks n_features and cfg
    n_copies = 1 if cfg.shared_gates else cfg.n_classes
    planes, offsets = [], []
    for k_layer, n in zip(jax.random.split(key, len(cfg.n_neurons)), cfg.n_neurons):
        k_plane, k_offset = jax.random.split(k_layer)
        h = jax.random.normal(k_plane, (n_copies, n, cfg.n_gates, n_features), dtype)
        planes.append(h / jnp.linalg.norm(h, axis=-1, keepdims=True))
        offsets.append(cfg.hyperplane_offset * jax.random.normal(k_offset, (n_copies, n, cfg.n_gates), dtype))
    return Gating(tuple(planes), tuple(offsets))


def init(key, n_features: int, cfg: GLNConfig = GLNConfig(), dtype=jnp.float32):
    """Starting weights and random gating.

    Arguments:
        key: a JAX PRNG key (for the gating).
        n_features: the input dimension ``d``.
        cfg: the options.
        dtype: the arrays' dtype.

    Returns:
        ``(GLNParams, Gating)``.
    """
    return init_weights(n_features, cfg, dtype), init_gating(key, n_features, cfg, dtype)
