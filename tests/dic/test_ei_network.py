"""Tests of dgnlib.dic.network: parameters, checks, vector fields, feedback weights."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgnlib.dic.activations import SoftRectifier
from dgnlib.dic.network import (
    EIConfig,
    EIParams,
    Layer,
    check_inputs,
    closed_loop_vector_field,
    dynamic_part,
    feedback_weights,
    init_params,
    input_drive,
    layer_sizes,
    open_loop_vector_field,
    readout_jacobians,
    steady_state_residual,
    zero_state,
)
from dgnlib.dic.steady_state import solve_closed_loop, solve_open_loop

CFG = EIConfig()
S1 = (12, 16, 10)  # same shapes as the other test files (compiled solvers are reused)
S2 = (12, 16, 16, 10)
S3 = (12, 16, 16, 16, 10)


def _net(sizes, seed=0, B=4):
    kp, kx, _ = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = init_params(kp, sizes)
    x = 2.0 * jax.random.uniform(kx, (B, sizes[0]))
    return params, x


def test_flat_namespace_exports_the_core_api():
    from dgnlib import dic

    missing = [name for name in dic.__all__ if not hasattr(dic, name)]
    assert not missing
    assert dic.RULES == ("bp", "exact", "linear_threshold") and dic.SOLVERS == ("algebraic", "ode")
    assert dic.train_step is __import__("dgnlib.dic.training", fromlist=["x"]).train_step


def test_init_shapes_biases_and_scale():
    sizes = (300, 200, 150, 10)
    p = init_params(jax.random.PRNGKey(1), sizes)
    assert layer_sizes(p) == sizes
    assert [l.W.shape for l in p.layers] == [(300, 200), (200, 150)]
    assert p.W_out.shape == (150, 10)
    for l in p.layers:
        assert l.b.shape == (l.W.shape[1],) and float(jnp.max(jnp.abs(l.b))) == 0.0
        assert l.W.dtype == jnp.float32
        # LeCun normal: variance 1 / fan_in
        np.testing.assert_allclose(float(jnp.std(l.W)) * np.sqrt(l.W.shape[0]), 1.0, rtol=0.05)
    p2 = init_params(jax.random.PRNGKey(2), sizes)
    assert not np.allclose(p.layers[0].W, p2.layers[0].W)
    p1b = init_params(jax.random.PRNGKey(1), np.array(sizes))  # numpy ints are fine
    np.testing.assert_array_equal(p.W_out, p1b.W_out)


@pytest.mark.parametrize("sizes", [(10, 10), (10, 0, 10), (10, 5, 1), (10, 5.0, 10), (10, True, 10)])
def test_init_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        init_params(jax.random.PRNGKey(0), sizes)


def test_check_inputs_messages():
    p, x = _net(S2)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 12\)"):
        check_inputs(p, jnp.zeros((4, 7)))
    with pytest.raises(ValueError, match=r"y must have shape \(4, 10\)"):
        check_inputs(p, x, y=jnp.zeros((4, 9)))
    Q = tuple(jnp.zeros((4, 10, 16)) for _ in range(2))
    check_inputs(p, x, Q=Q)
    check_inputs(p, x, Q=tuple(q[0] for q in Q))  # batch-averaged feedback weights
    with pytest.raises(ValueError, match="Q must be a tuple of 2"):
        check_inputs(p, x, Q=Q[:1])
    with pytest.raises(ValueError, match=r"Q\[1\] must have shape"):
        check_inputs(p, x, Q=(Q[0], Q[1][:, :, :-1]))
    bad = EIParams((Layer(p.layers[0].W, p.layers[0].b), Layer(p.layers[1].W[:-1], p.layers[1].b)), p.W_out)
    with pytest.raises(ValueError, match=r"params.layers\[1\].W has 15 inputs"):
        check_inputs(bad, x)
    with pytest.raises(ValueError, match=r"params.layers\[0\].b must have shape"):
        check_inputs(EIParams((Layer(p.layers[0].W, p.layers[0].b[:3]), p.layers[1]), p.W_out), x)
    with pytest.raises(ValueError, match="params.W_out"):
        check_inputs(EIParams(p.layers, p.W_out[:-1]), x)
    with pytest.raises(ValueError, match="params must be an EIParams"):
        check_inputs({"W": 1}, x)


def test_vector_field_at_zero_state_matches_equations():
    p, x = _net(S2)
    B = x.shape[0]
    ff0 = input_drive(p, x)
    np.testing.assert_allclose(ff0, x @ p.layers[0].W + p.layers[0].b, rtol=1e-6)
    z = dynamic_part(zero_state(p, B))
    d = open_loop_vector_field(p, ff0, z, CFG)
    sp0 = np.log(2.0)  # softplus(0)
    np.testing.assert_allclose(d.u_E[0], (ff0 - sp0) / CFG.tau_E, rtol=1e-5)
    np.testing.assert_allclose(d.u_I[0], np.full(ff0.shape, sp0) / CFG.tau_I, rtol=1e-5)
    h = np.full((B, 16), sp0, np.float32)
    np.testing.assert_allclose(d.u_E[1], (h @ np.asarray(p.layers[1].W) - sp0) / CFG.tau_E,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d.u_out, h @ np.asarray(p.W_out) / CFG.tau_E, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(d.c_int, 0.0)
    # closed loop: the inhibitory units receive -Q^T c, the readout +c, c = k_p e at c_int = 0
    Q = tuple(jnp.ones((10, 16)) / np.sqrt(160.0) for _ in range(2))
    y = jax.nn.one_hot(jnp.arange(B) % 10, 10)
    dc = closed_loop_vector_field(p, ff0, z, Q, y, CFG)
    c = CFG.controller.k_p * (y - 0.1)
    np.testing.assert_allclose(dc.u_I[1], (sp0 - c @ Q[1]) / CFG.tau_I, rtol=1e-5)
    np.testing.assert_allclose(dc.u_out, (h @ np.asarray(p.W_out) + c) / CFG.tau_E, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dc.c_int, (y - 0.1) / CFG.controller.tau_c, rtol=1e-5)


def test_vector_fields_vanish_at_steady_states():
    p, x = _net(S3)
    ff0 = input_drive(p, x)
    ol, _ = solve_open_loop(p, x, CFG)
    d = open_loop_vector_field(p, ff0, dynamic_part(ol), CFG)
    for leaf in jax.tree_util.tree_leaves(d):
        assert float(jnp.max(jnp.abs(leaf))) < 1e-3
    assert float(steady_state_residual(p, ff0, ol, CFG)) < 1e-5
    # the zero state is not a steady state (the test can fail)
    assert float(steady_state_residual(p, ff0, zero_state(p, 4), CFG)) > 1e-2
    Q = feedback_weights(p, ol, CFG)
    y = jax.nn.one_hot(jnp.arange(4) % 10, 10)
    cl, _ = solve_closed_loop(p, x, y, Q, ol, CFG)
    dc = closed_loop_vector_field(p, ff0, dynamic_part(cl), Q, y, CFG)
    for leaf in jax.tree_util.tree_leaves(dc):
        assert float(jnp.max(jnp.abs(leaf))) < 1e-3
    assert float(steady_state_residual(p, ff0, ol, CFG, Q, y)) > 1e-2  # OL is not the CL state


def test_readout_jacobians_match_autodiff():
    p, x = _net(S3)
    ol, _ = solve_open_loop(p, x, CFG)
    Js = readout_jacobians(p, ol, CFG)
    L = len(p.layers)
    # feed-forward chain: u^{m} = h^{m-1} W_m + b_m + offset_m (offsets reproduce the state)
    hs = [CFG.phi_E(u) for u in ol.u_E]
    offsets = [ol.u_E[m] - (hs[m - 1] @ p.layers[m].W + p.layers[m].b) for m in range(1, L)]
    for l in range(L):
        def drive(u_l, offs, l=l):
            h = CFG.phi_E(u_l)
            for m in range(l + 1, L):
                h = CFG.phi_E(h @ p.layers[m].W + p.layers[m].b + offs[m - 1])
            return h @ p.W_out
        J = jax.jit(jax.vmap(jax.jacfwd(drive)))(ol.u_E[l], offsets)
        np.testing.assert_allclose(Js[l], J, rtol=1e-4, atol=1e-6)
        assert float(jnp.max(jnp.abs(J))) > 1e-2


def test_feedback_weights_normalised_and_averaged():
    p, x = _net(S2)
    B = x.shape[0]
    ol, _ = solve_open_loop(p, x, CFG)
    Js = readout_jacobians(p, ol, CFG)
    Q = feedback_weights(p, ol, CFG)
    Qa = feedback_weights(p, ol, CFG, average=True)
    for l in range(2):
        assert Q[l].shape == (B, 10, 16)
        np.testing.assert_allclose(jnp.sqrt(jnp.sum(Q[l] ** 2, axis=(1, 2))), 1.0, rtol=1e-5)
        raw = Js[l] * CFG.phi_I.slope(ol.u_I[l])[:, None, :]
        ratio = Q[l] / raw  # one positive constant per sample
        np.testing.assert_allclose(ratio, ratio[:, :1, :1] * jnp.ones_like(ratio), rtol=1e-4)
        assert Qa[l].shape == Q[l].shape[1:]
        # batch average as in the paper's code: mean of the RAW matrices, then normalised
        mean_raw = jnp.mean(raw, axis=0)
        np.testing.assert_allclose(Qa[l], mean_raw / jnp.sqrt(jnp.sum(mean_raw ** 2)), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(jnp.sqrt(jnp.sum(Qa[l] ** 2)), 1.0, rtol=1e-5)
    # with a different inhibitory slope the weights change (phi_I' enters)
    cfg2 = CFG._replace(phi_I=SoftRectifier(1.0, 3.0, 1.0))
    ol2 = ol._replace(u_I=tuple(u * 0.3 for u in ol.u_I))
    Q2 = feedback_weights(p, ol2, cfg2)
    assert not np.allclose(Q2[0], Q[0], atol=1e-3)
