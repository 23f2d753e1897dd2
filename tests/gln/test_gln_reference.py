"""The jitted one-vs-all scan (dgnlib.gln.train) against the plain per-sample NumPy loop
(dgnlib.gln.reference): both gatings, shared gates or not, every saturation rule, with and without
standardisation, in float64 (tight) and float32 (loose)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgnlib import gln
from dgnlib.gln.reference import run_numpy

N_SAMPLES, N_FEATURES, N_CLASSES = 300, 12, 4


def _data(standardise=True):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_SAMPLES, N_FEATURES)) * 3 + 1
    labels = np.argmax(x @ rng.normal(size=(N_FEATURES, N_CLASSES)), axis=1)
    if not standardise:
        x = 1 / (1 + np.exp(-x))  # probabilities in (0, 1)
    return x, labels


def _cfg(gating, shared, **kw):
    return gln.GLNConfig(n_classes=N_CLASSES, n_neurons=(5, 3, 1), gating=gating, context_dim=3, n_branches=3,
                         shared_gates=shared, hyperplane_offset=0.1, **kw)


def _compare(cfg, dtype, chunk_size, schedule, rtol, atol):
    x, labels = _data(cfg.standardise)
    params, gating = gln.init(jax.random.PRNGKey(1), N_FEATURES, cfg, dtype=dtype)
    out = gln.train(params, gating, x.astype(dtype), labels, schedule, cfg, chunk_size=chunk_size)
    weights, outputs, moments = run_numpy(params, gating, x, labels, schedule, cfg, dtype=np.dtype(dtype).type)
    np.testing.assert_allclose(np.asarray(out.outputs), outputs, rtol=rtol, atol=atol)
    for got, want in zip(out.params.weights, weights):
        np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)
    if cfg.standardise:
        np.testing.assert_allclose(np.asarray(out.moments.mean), moments["mean"], rtol=rtol, atol=atol)
        np.testing.assert_allclose(np.asarray(out.moments.m2), moments["m2"], rtol=rtol, atol=100 * atol)
    assert float(out.n_seen) == N_SAMPLES
    return out, params, gating


@pytest.mark.parametrize("gating", ["gln", "dgn"])
@pytest.mark.parametrize("shared", [False, True])
def test_float64_equals_numpy(gating, shared):
    with jax.enable_x64(True):
        cfg = _cfg(gating, shared, weight_clip=2.0)
        _compare(cfg, jnp.float64, 64, gln.decaying(0.05, 1.0, 0.1), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("gating", ["gln", "dgn"])
@pytest.mark.parametrize("shared", [False, True])
def test_float32_close_to_numpy(gating, shared):
    cfg = _cfg(gating, shared, weight_clip=2.0)
    _compare(cfg, jnp.float32, 128, gln.constant(0.02), rtol=1e-4, atol=2e-4)


@pytest.mark.parametrize("gating, rule, standardise", [
    ("gln", "in_range", True), ("dgn", "error_above_eps", True), ("gln", "error_above_eps", False),
    ("dgn", "in_range", False), ("dgn", "always", False),
])
def test_options_float64(gating, rule, standardise):
    with jax.enable_x64(True):
        cfg = _cfg(gating, False, saturation_rule=rule, standardise=standardise, initial_weight="average")
        _compare(cfg, jnp.float64, 300, gln.constant(0.05), rtol=1e-9, atol=1e-10)


def test_chunk_size_changes_nothing_and_scores_match_training():
    with jax.enable_x64(True):
        cfg = _cfg("gln", False)
        x, labels = _data()
        params, gating = gln.init(jax.random.PRNGKey(2), N_FEATURES, cfg, dtype=jnp.float64)
        a = gln.train(params, gating, x, labels, 0.05, cfg, chunk_size=300)
        b = gln.train(params, gating, x, labels, 0.05, cfg, chunk_size=7)  # 42 chunks and a remainder of 6
        np.testing.assert_allclose(np.asarray(a.outputs), np.asarray(b.outputs), rtol=1e-9, atol=1e-10)
        # Two half passes continue the moments and the schedule's t.
        h1 = gln.train(params, gating, x[:150], labels[:150], gln.decaying(0.05, 1.0, 0.1), cfg)
        h2 = gln.train(h1.params, gating, x[150:], labels[150:], gln.decaying(0.05, 1.0, 0.1), cfg,
                       moments=h1.moments, n_seen=h1.n_seen)
        full = gln.train(params, gating, x, labels, gln.decaying(0.05, 1.0, 0.1), cfg)
        np.testing.assert_allclose(np.asarray(h2.outputs), np.asarray(full.outputs[150:]), rtol=1e-9, atol=1e-10)
        # Batched evaluation (every row or branch, then the selection) equals the training path's
        # forward pass; without standardisation a rate too small to move a weight freezes the network.
        xp, _ = _data(standardise=False)
        for gating_kind in ("gln", "dgn"):
            for shared in (False, True):
                cfg = _cfg(gating_kind, shared, standardise=False)
                params, gating = gln.init(jax.random.PRNGKey(3), N_FEATURES, cfg, dtype=jnp.float64)
                trained = gln.train(params, gating, xp, labels, 0.05, cfg).params
                frozen = gln.train(trained, gating, xp, labels, 1e-300, cfg)
                got = gln.scores(trained, gating, gln.init_moments(N_FEATURES, jnp.float64), xp, cfg, chunk_size=16)
                np.testing.assert_allclose(np.asarray(got), np.asarray(frozen.outputs), rtol=1e-9, atol=1e-10)
                acc = gln.accuracy(trained, gating, frozen.moments, xp, labels, cfg)
                assert acc == np.mean(np.argmax(np.asarray(got), 1) == labels)


def test_train_many_equals_separate_runs():
    with jax.enable_x64(True):
        cfg = _cfg("dgn", False)
        x, labels = _data()
        params, gating = gln.init(jax.random.PRNGKey(4), N_FEATURES, cfg, dtype=jnp.float64)
        rates = np.array([0.01, 0.05])
        many = jax.tree_util.tree_map(lambda w: jnp.stack([w, w]), params)
        out = gln.train_many(many, gating, x, labels, gln.Schedule(rates, rates, np.zeros(2)), cfg)
        for s, rate in enumerate(rates):
            one = gln.train(params, gating, x, labels, float(rate), cfg)
            np.testing.assert_allclose(np.asarray(out.outputs[s]), np.asarray(one.outputs), rtol=1e-9, atol=1e-10)
