"""A DGN's parameters and their initialisation.

:class:`DGNParams` holds, per layer ``k``, the branch weights ``(N_k, B, I_k)`` (``I_0 = d + 1``,
``I_k = N_{k-1} + 1``) and the fixed gating hyperplanes ``(N_k, B, d + 1)``. Weights start at zero;
hyperplanes are drawn either exactly as the colab draws them (:func:`init_colab`, NumPy's legacy
RNG) or from JAX keys (:func:`init`, :func:`init_many` for many networks at once). Each neuron's
hyperplanes are divided by the Frobenius norm of their first ``d`` entries, as in the colab.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import positive_int

__all__ = ["DGNParams", "validate_architecture", "init", "init_colab", "init_many", "stack_params"]


class DGNParams(NamedTuple):
    """Per-layer weights ``(N_k, B, I_k)`` and gating hyperplanes ``(N_k, B, d + 1)``.

    With a leading batch axis on every array (see :func:`init_many`), one ``DGNParams``
    holds many independent networks.
    """

    weights: tuple
    hyperplanes: tuple


def validate_architecture(n_features, n_neurons: Sequence[int], n_branches) -> tuple:
    """Check a network's sizes.

    Arguments:
        n_features: input dimension ``d``, an int >= 1.
        n_neurons: neurons per layer, ints >= 1, the last one 1 (the output neuron).
        n_branches: dendritic branches per neuron ``B``, an int >= 1.

    Returns:
        ``n_neurons`` as a tuple of Python ints (``ValueError`` naming the bad size otherwise).
    """
    positive_int("n_features", n_features)
    positive_int("n_branches", n_branches)
    n_neurons = tuple(n_neurons)
    if len(n_neurons) == 0:
        raise ValueError("n_neurons must list at least one layer, got ()")
    n_neurons = tuple(positive_int(f"n_neurons[{k}]", n) for k, n in enumerate(n_neurons))
    if n_neurons[-1] != 1:
        raise ValueError(
            f"n_neurons must end with a single output neuron (last layer 1), got {n_neurons}"
        )
    return n_neurons


def _zero_weights(n_features, n_neurons, n_branches, dtype, xp=jnp):
    n_inputs = [n_features + 1] + [n + 1 for n in n_neurons[:-1]]
    return tuple(xp.zeros((n, n_branches, i), dtype) for n, i in zip(n_neurons, n_inputs))


def _normalise(h):
    # Each neuron's hyperplanes divided by the Frobenius norm of their first d entries,
    # as in the colab. A positive scale changes no gate.
    return h / jnp.linalg.norm(h[:, :, :-1], axis=(1, 2))[:, None, None]


def init_colab(n_features: int, n_neurons=(100, 10, 1), n_branches: int = 20,
               seed: int = 12345) -> DGNParams:
    """Zero weights and the colab's hyperplanes: NumPy's legacy RNG seeded with ``seed``, one
    ``normal(0, 1, (N_k, B, d + 1))`` draw per layer in order (bit-identical to the colab's draws;
    a private ``RandomState`` is used, so NumPy's global RNG is left alone).

    Arguments:
        n_features: input dimension ``d``.
        n_neurons: neurons per layer, ending with 1.
        n_branches: branches per neuron ``B``.
        seed: the legacy NumPy seed (the colab's 12345).

    Returns:
        A :class:`DGNParams` of NumPy float64 arrays, so that a float64 run sees the colab's exact
        hyperplanes; the training functions cast them to the run's precision."""
    n_neurons = validate_architecture(n_features, n_neurons, n_branches)
    rng = np.random.RandomState(seed)  # same stream as np.random.seed(seed) + np.random.normal
    planes = []
    for n in n_neurons:
        h = rng.normal(0, 1, size=(n, n_branches, n_features + 1))
        planes.append(h / np.linalg.norm(h[:, :, :-1], axis=(1, 2))[:, None, None])
    weights = _zero_weights(n_features, n_neurons, n_branches, np.float64, xp=np)
    return DGNParams(weights, tuple(planes))


def init(key, n_features: int, n_neurons=(100, 10, 1), n_branches: int = 20,
         dtype=jnp.float32) -> DGNParams:
    """Zero weights and standard-normal hyperplanes drawn from a JAX key (for new work).

    Arguments:
        key: a JAX PRNG key.
        n_features, n_neurons, n_branches: the sizes (see :func:`init_colab`).
        dtype: the arrays' dtype.

    Returns:
        A :class:`DGNParams`; each neuron's hyperplanes are scaled as the colab scales them."""
    n_neurons = validate_architecture(n_features, n_neurons, n_branches)
    keys = jax.random.split(key, len(n_neurons))
    planes = tuple(
        _normalise(jax.random.normal(k, (n, n_branches, n_features + 1), dtype))
        for k, n in zip(keys, n_neurons)
    )
    return DGNParams(_zero_weights(n_features, n_neurons, n_branches, dtype), planes)


def init_many(keys, n_features: int, n_neurons=(100, 10, 1), n_branches: int = 20,
              dtype=jnp.float32) -> DGNParams:
    """:func:`init` for each key, in one jitted call.

    Arguments:
        keys: ``S`` keys (shape ``(S, 2)`` raw or ``(S,)`` typed).
        n_features, n_neurons, n_branches, dtype: as for :func:`init`.

    Returns:
        A :class:`DGNParams` whose arrays carry a leading networks axis of size ``S``."""
    n_neurons = validate_architecture(n_features, n_neurons, n_branches)
    return _init_many(keys, n_features, n_neurons, n_branches, jnp.dtype(dtype))


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _init_many(keys, n_features, n_neurons, n_branches, dtype):
    return jax.vmap(lambda k: init(k, n_features, n_neurons, n_branches, dtype))(keys)


def stack_params(params: Sequence[DGNParams]) -> DGNParams:
    """Stack networks of the same architecture along a new leading axis.

    Arguments:
        params: a non-empty sequence of :class:`DGNParams`.

    Returns:
        One :class:`DGNParams` with a leading networks axis (for :func:`dgnlib.dgn.run_many`).
        NumPy leaves are stacked by NumPy, so :func:`init_colab`'s float64 hyperplanes stay exact
        (JAX would round them to float32 outside 64-bit mode); JAX leaves by JAX."""
    if len(params) == 0:
        raise ValueError("params must hold at least one network")

    def stack(*leaves):
        return np.stack(leaves) if all(isinstance(a, np.ndarray) for a in leaves) else jnp.stack(leaves)

    return jax.tree_util.tree_map(stack, *params)
