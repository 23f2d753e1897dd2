"""dgnlib.dic.alignment: the rules' update alignment and the linear-threshold rule's control-free update.

Checks with known answers: the exact rule has no control-free update; nor has the linear-threshold
rule when its line is fitted at each sample's own open-loop rate, or when the batch is one sample
(batch mean = the sample); fitted at the mean of a real batch it has one. The measures agree in
float32 and float64 at the vision benchmark's size (784-256-10, batch 100) and for 2 hidden layers.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgnlib import dic
from dgnlib.dic.alignment import RuleAlignment, rule_alignment


def _problem(sizes=(784, 256, 10), batch=100, seed=0, dtype=jnp.float32):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = dic.init_params(k1, sizes, dtype)
    # sparse non-negative inputs like pixel intensities
    x = jax.random.uniform(k2, (batch, sizes[0]), dtype) * jax.random.bernoulli(k3, 0.2, (batch, sizes[0]))
    y = jnp.arange(batch) % sizes[-1]
    return params, x, y


@pytest.fixture(scope="module")
def mnist_sized():
    params, x, y = _problem()
    return params, x, y, rule_alignment(params, x, y), rule_alignment(params, x, y, lt_point="sample")


def test_exact_and_per_sample_fits_have_no_control_free_update_batch_mean_has(mnist_sized):
    _, _, _, mean_fit, sample_fit = mnist_sized
    for a in (mean_fit, sample_fit):
        assert isinstance(a, RuleAlignment) and all(len(f) == 1 for f in a)
        assert a.exact_control_free[0] < 1e-5
        assert all(-1.0 - 1e-6 <= c <= 1.0 + 1e-6 for c in a.cos_lt_exact + a.cos_lt_bp + a.cos_exact_bp)
        assert a.cos_exact_bp[0] > 0.3  # the exact rule descends the loss
    assert sample_fit.control_free[0] < 1e-4  # the line is exact at each sample's open-loop rate
    assert mean_fit.control_free[0] > 1e-2  # off the line, a target-independent update
    assert sample_fit.cos_lt_exact[0] > mean_fit.cos_lt_exact[0]
    assert mean_fit.cos_exact_bp == sample_fit.cos_exact_bp  # the fit touches the LT rule only
    # what the control drives is the exact rule's update, through the fitted slope
    assert sample_fit.cos_controlled_exact[0] > 0.99 and abs(sample_fit.controlled_to_exact[0] - 1) < 0.05
    assert mean_fit.cos_controlled_exact[0] > 0.5


def test_a_batch_of_one_sample_has_no_control_free_update():
    params, x, y = _problem(batch=1, seed=3)
    a = rule_alignment(params, x, y)  # the batch mean is the sample's own rate
    assert a.control_free[0] < 1e-4
    assert a.cos_lt_exact[0] > 0.999


def test_float32_matches_float64_mnist_size_and_two_layers(mnist_sized):
    params, x, y, a32, _ = mnist_sized
    p2, x2, y2 = _problem(sizes=(50, 32, 24, 5), batch=40, seed=1)
    b32 = rule_alignment(p2, x2, y2)
    assert all(len(f) == 2 for f in b32) and b32.control_free[0] > 1e-2
    with jax.enable_x64(True):
        cast = lambda t: jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), t)
        a64 = rule_alignment(cast(params), cast(x), y)
        b64 = rule_alignment(cast(p2), cast(x2), y2)
    for r32, r64 in ((a32, a64), (b32, b64)):
        for name, v32, v64 in zip(RuleAlignment._fields, r32, r64):
            np.testing.assert_allclose(v32, v64, atol=2e-3, err_msg=name)


def test_bad_arguments_are_named():
    params, x, y = _problem(sizes=(6, 4, 3), batch=5)
    with pytest.raises(ValueError, match="lt_point must be one of"):
        rule_alignment(params, x, y, lt_point="running")
    with pytest.raises(ValueError, match="y has 4 samples but x has 5"):
        rule_alignment(params, x, y[:4])
    with pytest.raises(ValueError, match="y"):
        rule_alignment(params, x, y + 3)  # labels beyond the 3 classes
    with pytest.raises(ValueError, match="x"):
        rule_alignment(params, x.at[0, 0].set(jnp.nan), y)


def _softplus(z):
    return np.logaddexp(0.0, z)


def test_control_free_update_against_a_numpy_float64_reference(mnist_sized):
    """The control-free update from scratch in NumPy float64: the 1-layer open-loop steady state per
    unit by bisection (u_E = ff - phi_I(phi_E(u_E)) with softplus rates, so u_I = phi_E(u_E)), the
    tangent of softplus^-1 at the batch-mean inhibitory rate, the error (theta + delta r_I - r_E)
    phi_E'(u_E), the batch mean of x (x) error. rule_alignment's control_free must equal its norm over
    the full update's."""
    params, x, y, a32, _ = mnist_sized
    W, b = (np.asarray(v, np.float64) for v in params.layers[0])
    xs = np.asarray(x, np.float64)
    ff = xs @ W + b
    lo, hi = ff - _softplus(_softplus(ff)) - 1.0, ff + 1.0  # the root lies in [lo, hi]: f(lo) < 0 < f(hi)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        below = mid + _softplus(_softplus(mid)) < ff
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    u_E = 0.5 * (lo + hi)
    u_I = _softplus(u_E)
    r_E, r_I = _softplus(u_E), _softplus(u_I)
    y0 = np.maximum(r_I.mean(axis=0), 1e-3)
    u0 = np.log(np.expm1(y0))
    delta = 1.0 + np.exp(-u0)  # 1 / sigmoid(u0)
    theta = u0 - y0 * delta
    err = (theta + delta * r_I - r_E) / (1.0 + np.exp(-u_E))  # times phi_E'(u_E) = sigmoid(u_E)
    g0 = xs.T @ err / xs.shape[0]

    cfg = dic.EIConfig()
    targets, _ = dic.make_targets(y, 10, cfg)
    ol, _ = dic.solve_open_loop(params, x, cfg)
    cl, _ = dic.solve_closed_loop(params, x, targets, dic.feedback_weights(params, ol, cfg), ol, cfg,
                                  state0_is_open_loop=True)
    g_lt, _ = dic.linear_threshold_gradients(params, x, cl, ol, dic.init_rule_state(params), cfg)
    g_lt0, _ = dic.linear_threshold_gradients(params, x, ol, ol, dic.init_rule_state(params), cfg)
    np.testing.assert_allclose(np.asarray(g_lt0.layers[0].W), g0, rtol=0, atol=1e-3 * np.abs(g0).max())
    np.testing.assert_allclose(a32.control_free[0], np.linalg.norm(g0) / np.linalg.norm(g_lt.layers[0].W),
                               rtol=1e-3)
