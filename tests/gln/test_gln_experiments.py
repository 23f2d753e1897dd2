"""The pieces of the one-pass experiments: train_segment against train (and so against the NumPy
loop of test_gln_reference), the online MLP against a NumPy per-sample loop, learning curves and
permuted tasks against direct calls, and their argument checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgnlib import gln

N, D, C = 400, 784, 10  # the notebook's input size; a short stream


def _pixels(n=N, seed=0):
    rng = np.random.default_rng(seed)
    proto = rng.integers(0, 256, size=(C, D))
    labels = rng.integers(0, C, size=n)
    noise = rng.integers(-60, 60, size=(n, D))
    return np.clip(proto[labels] + noise, 0, 255).astype(np.uint8), labels


P = dict(n_neurons=(16, 16, 1), standardise=False, initial_weight="average", weight_clip=5.0, eps=0.001)


@pytest.mark.parametrize("gating", ["gln", "dgn"])
@pytest.mark.parametrize("standardise", [False, True])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_segments_equal_one_pass(gating, standardise, dtype):
    """Two segments (3 + 5 chunks of 50) give train()'s weights, moments and t, at 784 inputs, 16-16-1."""
    with jax.enable_x64(dtype == jnp.float64):
        cfg = gln.GLNConfig(gating=gating, **{**P, "standardise": standardise})
        x, y = _pixels()
        params, gating_ = gln.init(jax.random.PRNGKey(1), D, cfg, dtype=dtype)
        sched = gln.decaying(0.01, 1.0, 0.1)
        full = gln.train(params, gating_, x, y, sched, cfg, chunk_size=50)
        stream = gln.make_stream(x, y, 50, cfg, dtype=dtype)
        a = gln.train_segment(params, gating_, stream, 0, 3, sched, cfg)
        b = gln.train_segment(a[0], gating_, stream, 3, 8, sched, cfg, moments=a[1], n_seen=a[2])
        tol = 1e-12 if dtype == jnp.float64 else 2e-5
        for got, want in zip(b[0].weights, full.params.weights):
            assert got.dtype == dtype
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=tol, atol=tol)
        np.testing.assert_allclose(np.asarray(b[1].mean), np.asarray(full.moments.mean), rtol=tol, atol=tol)
        assert float(b[2]) == N


def test_segment_sets_equal_separate_runs():
    """S sets (2 rates x 2 seeds, own gatings) in one vmapped segment = each set alone."""
    cfg = gln.GLNConfig(gating="dgn", **P)
    x, y = _pixels()
    stream = gln.make_stream(x, y, 100, cfg)
    inits = [gln.init(jax.random.PRNGKey(s), D, cfg) for s in (0, 1, 0, 1)]
    rates = np.array([0.01, 0.01, 0.003, 0.003])
    stack = lambda trees: jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)  # noqa: E731
    many = gln.train_segment(stack([p for p, _ in inits]), stack([g for _, g in inits]), stream, 0, 4,
                             gln.decaying(rates, 1.0, 0.1), cfg)
    for k, (p, g) in enumerate(inits):
        one = gln.train_segment(p, g, stream, 0, 4, gln.decaying(float(rates[k]), 1.0, 0.1), cfg)
        for got, want in zip(many[0].weights, one[0].weights):
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want), rtol=1e-5, atol=1e-6)


def _numpy_mlp_pass(params, x, y, rates):
    """Online SGD on softmax cross-entropy, one hidden ReLU layer, float64, sample by sample."""
    w1, w2 = (np.array(w, np.float64) for w in params.weights)
    b1, b2 = (np.array(b, np.float64) for b in params.biases)
    for xi, yi, r in zip(x, y, rates):
        a = xi @ w1 + b1
        h = np.maximum(a, 0)
        z = h @ w2 + b2
        p = np.exp(z - z.max())
        p /= p.sum()
        dz = p - np.eye(len(p))[yi]
        dh = (w2 @ dz) * (a > 0)
        w2 -= r * np.outer(h, dz)
        b2 -= r * dz
        w1 -= r * np.outer(xi, dh)
        b1 -= r * dh
    return w1, b1, w2, b2


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_mlp_segment_equals_numpy_loop(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        x, y = _pixels(200)
        cfg = gln.MLPConfig(n_hidden=(64,))
        params = gln.init_mlp(jax.random.PRNGKey(0), D, cfg, dtype=dtype)
        stream = gln.make_stream(x, y, 50, gln.GLNConfig(standardise=False), dtype=dtype)
        sched = gln.decaying(0.05, 1.0, 0.1)
        a = gln.train_mlp_segment(params, stream, 0, 1, sched)
        out, n_seen = gln.train_mlp_segment(a[0], stream, 1, 4, sched, n_seen=a[1])
        t = np.arange(1, 201)
        want = _numpy_mlp_pass(params, x / 255.0, y, np.minimum(0.05, 1.0 / (1 + 0.1 * t)))
        tol = 1e-10 if dtype == jnp.float64 else 1e-4
        got = (out.weights[0], out.biases[0], out.weights[1], out.biases[1])
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g), w, rtol=tol, atol=tol)
        assert float(n_seen) == 200


def test_learning_curve_ends_where_direct_calls_end():
    """The last checkpoint's accuracy = gln.accuracy after gln.train / mlp_accuracy after the MLP's pass."""
    x, y = _pixels()
    xe, ye = _pixels(300, seed=1)
    dgn = gln.GLNConfig(gating="dgn", **P)
    mlp = gln.MLPConfig(n_hidden=(32,))
    lines = []
    res = gln.learning_curves([gln.Learner("DGN", dgn, gln.decaying([0.003, 0.01], 1.0, 0.1)),
                               gln.Learner("MLP", mlp, 0.01)], x, y, xe, ye, seeds=(3,), chunk_size=50,
                              dataset="toy", log=lines.append)
    np.testing.assert_array_equal(res.samples, [50, 100, 200, 400])
    assert res.accuracy["DGN"].shape == (2, 1, 4) and res.accuracy["MLP"].shape == (1, 1, 4)
    assert len(lines) == 4 * 3 and lines[-1].startswith("curve toy MLP lr 1e-02 seed 3 samples    400: accuracy ")
    for k, rate in enumerate((0.003, 0.01)):
        p, g = gln.init(jax.random.PRNGKey(3), D, dgn)
        out = gln.train(p, g, x, y, gln.decaying(rate, 1.0, 0.1), dgn, chunk_size=50)
        assert abs(res.accuracy["DGN"][k, 0, -1] - gln.accuracy(out.params, g, out.moments, xe, ye, dgn)) < 1e-12
    p = gln.init_mlp(jax.random.PRNGKey(3), D, mlp)
    q, _ = gln.train_mlp_segment(p, gln.make_stream(x, y, 50, gln.GLNConfig(standardise=False)), 0, 8, 0.01)
    assert abs(res.accuracy["MLP"][0, 0, -1] - gln.mlp_accuracy(q, xe, ye)) < 1e-12
    best = gln.with_best_rate(gln.Learner("DGN", dgn, gln.decaying([0.003, 0.01], 1.0, 0.1)), res)
    assert float(best.learning_rate.maximum) == gln.best_rate(res, "DGN")
    assert gln.format_search(res, "toy")[-1].startswith("chosen toy MLP: lr 1e-02")


def test_permuted_tasks_first_row_is_the_plain_pass():
    x, y = _pixels()
    xe, ye = _pixels(300, seed=1)
    dgn = gln.GLNConfig(gating="dgn", **P)
    learner = gln.Learner("DGN", dgn, gln.decaying(0.01, 1.0, 0.1))
    res = gln.permuted_tasks([learner], x, y, xe, ye, n_tasks=3, seeds=(0, 1), chunk_size=100, log=None)
    m = res.matrix["DGN"]
    assert m.shape == (2, 3, 3)
    curve = gln.learning_curves([learner], x, y, xe, ye, seeds=(0, 1), chunk_size=100, log=None)
    np.testing.assert_allclose(m[:, 0, 0], curve.accuracy["DGN"][0, :, -1], atol=1e-12)
    perms = gln.permute_pixels(x, 3, 0)
    np.testing.assert_array_equal(perms[0], np.arange(D))
    assert sorted(perms[2]) == list(range(D)) and (perms[1] != perms[2]).any()
    assert m[:, 0, 1].max() < 0.5  # task 2 is unseen after task 1
    np.testing.assert_allclose(res.drop_first("DGN"), m[:, 0, 0] - m[:, 2, 0])
    np.testing.assert_allclose(res.average_final("DGN"), m[:, 2, :].mean(axis=1))
    assert gln.format_forgetting(res)[0].startswith("forgetting DGN: average ")


def test_counts():
    dgn = gln.GLNConfig(gating="dgn", **P)
    assert gln.count_weights(dgn, 784) == 10 * 4 * (16 * 785 + 16 * 17 + 1 * 17)
    assert gln.count_weights(gln.MLPConfig(n_hidden=(646,)), 784) == 785 * 646 + 647 * 10
    h = gln.mlp_hidden_for(gln.count_weights(dgn, 784), 784)
    assert abs(gln.count_weights(gln.MLPConfig(n_hidden=(h,)), 784) - gln.count_weights(dgn, 784)) < 795


def test_bad_inputs_name_the_argument():
    x, y = _pixels(100)
    cfg = gln.GLNConfig(gating="dgn", **P)
    with pytest.raises(ValueError, match="chunk_size must divide"):
        gln.make_stream(x, y, 30, cfg)
    stream = gln.make_stream(x, y, 50, cfg)
    p, g = gln.init(jax.random.PRNGKey(0), D, cfg)
    with pytest.raises(ValueError, match="start and stop"):
        gln.train_segment(p, g, stream, 2, 1, 0.01, cfg)
    with pytest.raises(TypeError, match="stream must be"):
        gln.train_segment(p, g, (x, y), 0, 1, 0.01, cfg)
    with pytest.raises(ValueError, match="learners must have distinct names"):
        gln.learning_curves([gln.Learner("A", cfg, 0.01)] * 2, x, y, x, y, chunk_size=50)
    with pytest.raises(ValueError, match=r"learning_rate's maximum, scale and decay"):
        gln.learning_curves([gln.Learner("A", cfg, gln.decaying([0.1, 0.2], [1.0, 1.0, 1.0], 0.1))], x, y, x, y,
                            chunk_size=50)
    with pytest.raises(ValueError, match="one learning rate"):
        gln.permuted_tasks([gln.Learner("A", cfg, [0.1, 0.2])], x, y, x, y, n_tasks=2, chunk_size=50)
    with pytest.raises(ValueError, match="n_hidden"):
        gln.MLPConfig(n_hidden=(0,))
    with pytest.raises(ValueError, match="n_validation must be below"):
        gln.load_one_pass_data("mnist", n_train=100, n_validation=100)
