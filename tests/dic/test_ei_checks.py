"""Bad inputs of the E/I code raise clear errors (never a silent 0 or NaN loss), and the
batch-averaged feedback weights follow the paper's order (average raw Jacobians, then normalise)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dgnlib import vision
from dgnlib.dic.network import EIConfig, feedback_weights, init_params
from dgnlib.dic.training import STATIC_ARGNAMES, evaluate, init_train_state, make_targets, train_step
from dgnlib.checks import check_labels
from dgnlib.dic.losses import soft_targets
from dgnlib.dic.steady_state import solve_open_loop

from ei_helpers import S3, make_problem

CFG = EIConfig()
SIZES = (6, 8, 5)  # K = 5 classes
OPT = optax.sgd(0.1)
train_step_jit = jax.jit(train_step, static_argnames=STATIC_ARGNAMES)


@pytest.fixture(scope="module")
def net():
    p = init_params(jax.random.PRNGKey(0), SIZES)
    opt_state, rule_state = init_train_state(p, OPT)
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, SIZES[0]))
    return p, opt_state, rule_state, x


BAD_LABELS = [(jnp.array([0, 1, 7, 2]), "7"), (jnp.array([0, -1, 2, 3]), "-1")]


@pytest.mark.parametrize("rule", ["bp", "exact", "linear_threshold"])
@pytest.mark.parametrize("labels,value", BAD_LABELS, ids=["7_with_K5", "negative"])
def test_train_step_rejects_labels_outside_range(net, rule, labels, value):
    p, o, r, x = net
    with pytest.raises(ValueError, match=rf"y_batch must hold class labels in 0\.\.4 .*1 of 4 outside.*{value}"):
        train_step(p, o, r, x, labels, rule=rule, optimizer=OPT)
    if rule != "bp":
        return  # under jit the same make_targets check runs for every rule; compile one
    # jitted: a runtime error with the same message instead of a loss of 0
    with pytest.raises(Exception, match=r"y_batch must hold class labels in 0\.\.4"):
        jax.block_until_ready(train_step_jit(p, o, r, x, labels, rule=rule, optimizer=OPT))


@pytest.mark.parametrize("rule", ["bp", "exact"])
def test_train_step_rejects_nan_inputs(net, rule):
    p, o, r, x = net
    bad = x.at[1, 2].set(jnp.nan)
    labels = jnp.array([0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"x_batch must be finite, but 1 of its 24 values .*index \(1, 2\)"):
        train_step(p, o, r, bad, labels, rule=rule, optimizer=OPT)
    if rule == "bp":  # (the exact rule raised a solver error before; jitted: same check as bp)
        with pytest.raises(Exception, match="x_batch must be finite"):
            jax.block_until_ready(train_step_jit(p, o, r, bad, labels, rule=rule, optimizer=OPT))
        # the same batch without the NaN trains (finite loss)
        m = train_step(p, o, r, x, labels, rule=rule, optimizer=OPT)[3]
        assert np.isfinite(float(m.loss))


def test_evaluate_and_targets_reject_bad_values(net):
    p, _, _, x = net
    with pytest.raises(ValueError, match="x must be finite"):
        evaluate(p, x.at[0, 0].set(jnp.inf), jnp.array([0, 1, 2, 3]), model="mlp")
    with pytest.raises(ValueError, match=r"labels must hold class labels in 0\.\.4"):
        evaluate(p, x, jnp.array([0, 1, 5, 3]), model="mlp")
    with pytest.raises(ValueError, match="y must be finite"):
        make_targets(jnp.full((4, 5), jnp.nan), 5)
    with pytest.raises(ValueError, match=r"labels must hold class labels in 0\.\.2"):
        soft_targets(jnp.array([0, 3]), 3)
    with pytest.raises(ValueError, match="integer"):
        check_labels(jnp.array([0.0, 1.0]), 3)
    assert check_labels(jnp.array([0, 2]), 3).shape == (2,)
    # the hard-target loss of an out-of-range label would have been exactly 0
    f = jax.jit(lambda y: check_labels(y, 5, "y") + 0)
    np.testing.assert_array_equal(f(jnp.array([4, 0])), [4, 0])
    with pytest.raises(Exception, match=r"y must hold class labels in 0\.\.4"):
        jax.block_until_ready(f(jnp.array([5, 0])))


def test_vision_entry_points_check_data():
    rng = np.random.default_rng(0)
    x = rng.random((20, 6), dtype=np.float32)
    y = rng.integers(0, 10, 20).astype(np.int32)
    with pytest.raises(ValueError, match="x_train must be finite"):
        vision.make_arrays(np.where(x > 0.9, np.nan, x), y, x, y, x, y)
    data = vision.make_arrays(x, y, x, y, x, y)
    cfg = vision.make_config(hidden=(4,), batch_size=10, seeds=(0,), epochs=1)
    state = vision.init_run(cfg, n_in=6)
    with pytest.raises(ValueError, match=r"data\.y_val must hold class labels in 0\.\.9"):
        vision.train_epoch(state, data._replace(y_val=data.y_val.at[3].set(10)), cfg)
    with pytest.raises(ValueError, match=r"data\.x_test must be finite"):
        vision.train_epoch(state, data._replace(x_test=data.x_test.at[0, 0].set(jnp.nan)), cfg)
    mask = jnp.ones((10,), bool)
    with pytest.raises(ValueError, match=r"y must hold class labels in 0\.\.9"):
        vision.train_batch(state, x[:10], jnp.asarray(y[:10]).at[0].set(-3), mask, cfg)
    with pytest.raises(ValueError, match="x must be finite"):
        vision.train_batch(state, jnp.asarray(x[:10]).at[0, 0].set(jnp.nan), y[:10], mask, cfg)


# ----------------------------------------------------------------------------- average Jacobian
def _numpy_raw_feedback(params, state, cfg):
    """Raw per-sample feedback matrices (B, K, n_l) in NumPy float64, written out independently:
    J_L = W_out^T D_L, J_l = J_{l+1} W_{l+1}^T D_l, then each column times phi_I'(u_I)."""
    f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731  (slope of plain softplus)
    L = len(params.layers)
    D = [sig(f64(u)) for u in state.u_E]
    J = [None] * L
    J[-1] = f64(params.W_out).T[None] * D[-1][:, None, :]
    for l in range(L - 2, -1, -1):
        J[l] = np.einsum("bkm,nm->bkn", J[l + 1], f64(params.layers[l + 1].W)) * D[l][:, None, :]
    return [j * sig(f64(u_I))[:, None, :] for j, u_I in zip(J, state.u_I)]


def test_average_jacobian_is_normalised_mean_of_raw_jacobians():
    params, x, _ = make_problem(S3, seed=11)  # B = 4: the compiled solver of test_steady_state.py
    x = x.at[0].multiply(5.0)  # samples of very different Jacobian norms: the order matters
    ol, _ = solve_open_loop(params, x, CFG)
    raw = _numpy_raw_feedback(params, ol, CFG)
    Qa = feedback_weights(params, ol, CFG, average=True)
    w = np.array([1, 0, 1, 1], np.float32)  # a padded batch's mask
    Qw = feedback_weights(params, ol, CFG, average=True, sample_weights=w)
    Qs = feedback_weights(params, ol, CFG)
    for l, R in enumerate(raw):
        want = R.mean(axis=0) / np.linalg.norm(R.mean(axis=0))
        np.testing.assert_allclose(Qa[l], want, rtol=1e-5, atol=1e-7)
        want_w = R[w > 0].mean(axis=0) / np.linalg.norm(R[w > 0].mean(axis=0))
        np.testing.assert_allclose(Qw[l], want_w, rtol=1e-5, atol=1e-7)
        assert np.linalg.norm(np.asarray(Qa[l])) == pytest.approx(1.0, rel=1e-5)
        # the other order (mean of normalised matrices) is a different matrix of norm < 1
        other = np.mean(np.asarray(Qs[l], np.float64), axis=0)
        assert np.linalg.norm(other) < 0.999
        assert np.max(np.abs(other - want)) > 100 * 1e-5 * np.max(np.abs(want))  # >> the tolerance above
    with pytest.raises(ValueError, match="sample_weights"):
        feedback_weights(params, ol, CFG, sample_weights=w)


def test_checks_of_concrete_arrays_closed_over_inside_jit():
    """A concrete array closed over by a jitted function is checked when traced (not turned into
    a tracer by the reduction): good values pass, bad ones raise at trace time."""
    from dgnlib.checks import check_finite

    good_x, good_y = jnp.ones((3, 4)), jnp.array([0, 1, 2])
    bad_x, bad_y = good_x.at[1, 2].set(jnp.nan), jnp.array([0, 7, 2])
    out = jax.jit(lambda: check_finite(good_x, "x").sum() + check_labels(good_y, 3, "y").sum())()
    assert float(out) == 15.0
    with pytest.raises(ValueError, match="x must be finite"):
        jax.jit(lambda: check_finite(bad_x, "x").sum())()
    with pytest.raises(ValueError, match=r"y must hold class labels in 0..2"):
        jax.jit(lambda: check_labels(bad_y, 3, "y").sum())()
