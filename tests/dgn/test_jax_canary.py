"""Canary for XLA miscompiles that dgnlib's results depend on.

jax/jaxlib 0.10.2 on x86 CPUs miscompiles the multiply-and-reduce below when it is jitted and
vmapped over more than 16 rows (rows 16.. differ by up to 1.19; eager is right). That made the
DGN's per-neuron float32 test metrics wrong. dgnlib pins a version on which these pass and writes
its own reductions as contractions (``einsum``), but these tests run the raw patterns, so a version
bump that brings such a bug back fails here, loudly, whatever dgnlib's code does.

Each pattern is compared jitted against eager and against NumPy in float64, at the DGN notebooks'
real sizes (114 test and 455 training samples) and around the 16-row edge.

The inputs are drawn with NumPy, once per size (drawing them with ``jax.random`` would compile a
random-number program for every shape, which cost more than the checks themselves).
"""
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROWS = (8, 16, 17, 33, 114, 455)


@lru_cache(maxsize=None)
def _draws(n_rows, n_neurons=100, n_branches=20, n_inputs=31):
    """Weights ~ N(0, 0.01^2), gates open with probability 1/2, inputs ~ N(0, 1), in float64."""
    rng = np.random.default_rng(n_rows)
    w = rng.normal(size=(n_neurons, n_branches, n_inputs)) * 0.01
    g = (rng.normal(size=(n_rows, n_neurons, n_branches)) > 0).astype(np.float64)
    x = rng.normal(size=(n_rows, n_inputs))
    return w, g, x


def _inputs(n_rows, dtype=jnp.float32):
    return tuple(jnp.asarray(a, dtype) for a in _draws(n_rows))


# Per-sample functions of (w, g_i, x_i), vmapped over the rows (g_i, x_i), each with its float64
# NumPy reference over all rows.
PATTERNS = {
    # the reproducer of the 0.10.2 miscompile: per-neuron drive of a DGN layer
    "per_neuron_multiply_reduce": (
        lambda w, gi, xi: jnp.sum(gi * jnp.sum(w * xi, -1), -1),
        lambda w, g, x: np.einsum("ijk,nij,nk->ni", w, g, x),
    ),
    # the colab form: branch weights summed over neurons first
    "colab_multiply_reduce": (
        lambda w, gi, xi: jnp.sum(gi * jnp.sum(w.sum(0) * xi, -1), -1),
        lambda w, g, x: np.einsum("jk,nij,nk->ni", w.sum(0), g, x),
    ),
    # the same contractions as dgnlib now writes them
    "per_neuron_einsum": (
        lambda w, gi, xi: jnp.einsum("nb,nb->n", gi, jnp.einsum("nbi,i->nb", w, xi)),
        lambda w, g, x: np.einsum("ijk,nij,nk->ni", w, g, x),
    ),
    "colab_einsum": (
        lambda w, gi, xi: jnp.einsum("nb,b->n", gi, jnp.einsum("bi,i->b", w.sum(0), xi)),
        lambda w, g, x: np.einsum("jk,nij,nk->ni", w.sum(0), g, x),
    ),
}


@pytest.mark.parametrize("n_rows", ROWS)
@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_jit_equals_eager_and_numpy_float32(name, n_rows):
    fn, ref_fn = PATTERNS[name]
    w, g, x = _inputs(n_rows)
    batched = jax.vmap(fn, in_axes=(None, 0, 0))
    jitted = np.asarray(jax.jit(batched)(w, g, x), np.float64)
    eager = np.asarray(batched(w, g, x), np.float64)
    ref = ref_fn(*(np.asarray(a, np.float64) for a in (w, g, x)))
    scale = np.abs(ref).max()
    # float32 rounding of a 20 x 31 sum of products of size ~0.01-1: well below 1e-5 of the scale
    bad = np.argwhere(np.abs(jitted - ref) > 1e-5 * scale)
    assert bad.size == 0, (
        f"{name}: jitted result differs from NumPy float64 in {len(np.unique(bad[:, 0]))} of "
        f"{n_rows} rows (first row {bad[0, 0]}, max abs diff {np.abs(jitted - ref).max():.3g}) on "
        f"jax {jax.__version__} / {jax.default_backend()}: an XLA miscompile; see README, versions"
    )
    np.testing.assert_allclose(eager, ref, rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_jit_equals_numpy_float64(name):
    fn, ref_fn = PATTERNS[name]
    with jax.enable_x64(True):
        w, g, x = _inputs(114, jnp.float64)
        got = np.asarray(jax.jit(jax.vmap(fn, in_axes=(None, 0, 0)))(w, g, x))
    ref = ref_fn(*(np.asarray(a) for a in (w, g, x)))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
