"""The DGN model against hand computations and the NumPy per-sample loop; whole runs, many networks,
the epoch-by-epoch loop and the notebooks' experiments against each other.

Compiling a program costs seconds, running one of these small cases milliseconds: every training
test below uses the same small data (``N_TRAIN`` / ``N_TEST`` rows), architecture and epoch count, so
tests of the same configuration share one compiled program (``jax.jit``'s cache), and results used by
several tests are computed once (module-scoped fixtures).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgnlib import dgn
from dgnlib.dgn import TabularData, load_problem
from dgnlib.dgn.reference import numpy_hyperplanes, run_numpy

EPS = 0.01


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def logit(p):
    return np.log(p / (1 - p))


@pytest.fixture(scope="module")
def tiny():
    """d = 2 features, layers (2, 1), 2 branches, fixed hyperplanes and non-zero weights."""
    planes = (
        np.array([[[1.0, 0.5, -1.0], [-1.0, 1.0, 1.0]],      # neuron 0: s=[1,x1,x2]
                  [[0.2, -1.0, 0.3], [0.5, 0.5, 0.5]]]),     # neuron 1
        np.array([[[1.0, 1.0, 1.0], [-1.0, -1.0, 2.0]]]),
    )
    weights = (
        np.array([[[0.1, 0.2, -0.3], [0.4, -0.5, 0.6]],
                  [[-0.2, 0.3, 0.1], [0.05, 0.1, -0.4]]]),
        np.array([[[0.3, -0.2, 0.5], [0.1, 0.4, -0.1]]]),
    )
    return dgn.DGNParams(weights, planes)


def hand_step(params, x, y, lr, loss, form):
    """One step written out with explicit loops, independent of dgnlib."""
    planes, weights = params.hyperplanes, [w.copy() for w in params.weights]
    s = np.concatenate([[1.0], x])
    r = np.clip(sigmoid(x), EPS, 1 - EPS) if loss == "bernoulli" else x
    for k in range(len(weights)):
        w = weights[k]
        n_neurons, n_branches, n_inputs = w.shape
        g = np.array([[1.0 if planes[k][n, b] @ s > 0 else 0.0 for b in range(n_branches)]
                      for n in range(n_neurons)])
        if loss == "bernoulli":
            inp = logit(np.concatenate([[sigmoid(1.0)], r]))
        else:
            inp = np.concatenate([[1.0], r])
        out = np.zeros(n_neurons)
        for n in range(n_neurons):
            eff = np.zeros(n_inputs)
            for b in range(n_branches):
                if form == "colab":
                    eff += g[n, b] * sum(w[m, b] for m in range(n_neurons))
                else:
                    eff += g[n, b] * w[n, b]
            out[n] = eff @ inp
        if loss == "bernoulli":
            unclipped = sigmoid(out)
            out = np.clip(unclipped, EPS, 1 - EPS)
            err = (out - y) * (np.abs(y - unclipped) > EPS)
        else:
            err = out - y
        new_w = w.copy()
        for n in range(n_neurons):
            for b in range(n_branches):
                new_w[n, b] -= lr * g[n, b] * err[n] * inp
        weights[k] = new_w
        r = out
    return weights, r[0]


@pytest.mark.parametrize("loss", ["bernoulli", "square"])
@pytest.mark.parametrize("form", ["colab", "per_neuron"])
def test_step_matches_hand_computation(tiny, loss, form):
    x, y, lr = np.array([0.3, -1.2]), 1.0, 0.05
    expected_w, expected_pred = hand_step(tiny, x, y, lr, loss, form)
    cfg = dgn.DGNConfig(loss=loss, weight_form=form)
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(jnp.asarray, tiny)
        new, pred = dgn.step(params, jnp.asarray(x), y, lr, cfg)
        assert float(pred) == pytest.approx(expected_pred, rel=1e-12)
        for got, want in zip(new.weights, expected_w):
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-14)
        # the weights really moved: the case is not trivial
        assert any(not np.allclose(a, b) for a, b in zip(expected_w, tiny.weights))


def test_weight_forms_differ(tiny):
    x = jnp.asarray([0.3, -1.2])
    p_colab = dgn.predict(tiny, x, dgn.DGNConfig(weight_form="colab"))
    p_neuron = dgn.predict(tiny, x, dgn.DGNConfig(weight_form="per_neuron"))
    assert abs(float(p_colab) - float(p_neuron)) > 1e-3


def _saturated_case(rule):
    """A single neuron whose unclipped output is ~0.9999 for target 1."""
    planes = (np.array([[[1.0, 0.0]]]),)          # d = 1, branch always open for s = [1, 0]
    weights = (np.array([[[9.0, 0.0]]]),)         # bias input logit(sigmoid(1)) = 1: drive 9
    params = dgn.DGNParams(weights, planes)
    cfg = dgn.DGNConfig(saturation_rule=rule)
    with jax.enable_x64(True):
        new, pred = dgn.step(jax.tree_util.tree_map(jnp.asarray, params), jnp.asarray([0.0]), 1.0, 0.1, cfg)
    return float(np.asarray(new.weights[0])[0, 0, 0] - 9.0), float(pred)


def test_saturation_rules():
    moved = {rule: _saturated_case(rule)[0] for rule in dgn.SATURATION_RULES}
    # unclipped sigmoid(9) = 0.99988: |1 - r| < eps and r > 1 - eps
    assert moved["error_above_eps"] == 0.0
    assert moved["in_range"] == 0.0
    # "always" learns from the clipped output 0.99: w -= lr * (0.99 - 1) * 1
    assert moved["always"] == pytest.approx(0.1 * 0.01, rel=1e-9)


def test_in_range_and_error_rules_differ():
    """Target 0 with output near 1: the error is large (colab rule learns) but the unclipped output
    lies outside [eps, 1 - eps] (the in-range rule does not)."""
    planes = (np.array([[[1.0, 0.0]]]),)
    params = dgn.DGNParams((np.array([[[9.0, 0.0]]]),), planes)
    out = {}
    for rule in ("error_above_eps", "in_range"):
        with jax.enable_x64(True):
            new, _ = dgn.step(jax.tree_util.tree_map(jnp.asarray, params), jnp.asarray([0.0]), 0.0, 0.1,
                              dgn.DGNConfig(saturation_rule=rule))
        out[rule] = float(np.asarray(new.weights[0])[0, 0, 0])
    assert out["error_above_eps"] == pytest.approx(9.0 - 0.1 * 0.99, rel=1e-12)
    assert out["in_range"] == 9.0


N_TRAIN, N_TEST = 40, 10          # the small problems of every training test below
ARCH, BRANCHES, EPOCHS = (6, 3, 1), 4, 3
RATES = {"classification": 1e-3, "regression": 1e-4}
LOSSES = {"classification": "bernoulli", "regression": "square"}


@pytest.fixture(scope="module")
def small():
    """The first ``N_TRAIN`` / ``N_TEST`` rows of both problems."""
    out = {}
    for problem in LOSSES:
        d = load_problem(problem)
        out[problem] = TabularData(d.x_train[:N_TRAIN], d.y_train[:N_TRAIN], d.x_test[:N_TEST], d.y_test[:N_TEST])
    return out


@pytest.fixture(scope="module")
def seeds(small):
    """Three networks with hyperplanes from JAX keys, trained in one run_many call (float32, colab form)."""
    return dgn.run_seeds(small["classification"], 3, 1e-3, EPOCHS, dgn.DGNConfig(), ARCH, BRANCHES)


@pytest.mark.parametrize("problem", ["classification", "regression"])
@pytest.mark.parametrize("form", ["colab", "per_neuron"])
def test_run_matches_numpy_loop(small, problem, form):
    data, loss, learning_rate = small[problem], LOSSES[problem], RATES[problem]
    ref = run_numpy(data, ARCH, BRANCHES, learning_rate, EPOCHS, classification=(loss == "bernoulli"), seed=7,
                    implementation="literal", weight_form=form)
    params = dgn.init_colab(data.n_features, ARCH, BRANCHES, seed=7)
    got = dgn.run(params, data, learning_rate, EPOCHS, dgn.DGNConfig(loss=loss, weight_form=form), dtype="float64")
    for split in ("train", "test"):
        np.testing.assert_allclose(np.asarray(getattr(got, split)["loss"]),
                                   [r[f"{split}_loss"] for r in ref], rtol=1e-9)
        if loss == "bernoulli":
            np.testing.assert_allclose(np.asarray(getattr(got, split)["accuracy"]),
                                       [r[f"{split}_accuracy"] for r in ref])
    # learning happened
    assert float(got.train["loss"][-1]) < float(got.train["loss"][0])


def test_summed_epoch_equals_per_sample_steps(small):
    """The colab-form epoch carries neuron-summed weights; it must equal sample-by-sample steps."""
    data = small["classification"]
    params = dgn.init_colab(data.n_features, ARCH, BRANCHES, seed=3)
    cfg = dgn.DGNConfig()
    step = jax.jit(dgn.step, static_argnames="cfg")  # one compiled step for the 40 samples
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(jnp.asarray, params)
        x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
        fast, fast_preds = dgn.train_epoch(params, x, y, 1e-2, cfg)
        slow, slow_preds = params, []
        for xi, yi in zip(x, y):
            slow, pred = step(slow, xi, yi, 1e-2, cfg)
            slow_preds.append(pred)
        np.testing.assert_allclose(np.asarray(fast_preds), np.asarray(slow_preds), rtol=1e-10)
        for a, b in zip(fast.weights, slow.weights):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)


def test_init_colab_draws_match_numpy_legacy_rng():
    params = dgn.init_colab(30, (100, 10, 1), 20, seed=12345)
    np.random.seed(12345)
    for k, n in enumerate((100, 10, 1)):
        raw = np.random.normal(0, 1, size=(n, 20, 31))
        want = raw / np.linalg.norm(raw[:, :, :-1], axis=(1, 2))[:, None, None]
        np.testing.assert_array_equal(params.hyperplanes[k], want)
    for h, h_ref in zip(params.hyperplanes, numpy_hyperplanes(30, (100, 10, 1), 20)):
        np.testing.assert_array_equal(h, h_ref)
    assert [w.shape for w in params.weights] == [(100, 20, 31), (10, 20, 101), (1, 20, 11)]
    assert all(not np.any(w) for w in params.weights)


def test_stack_params_keeps_numpy_float64_exact():
    params = dgn.init_colab(30, ARCH, BRANCHES)
    stacked = dgn.stack_params([params, params])
    for h, s in zip(params.hyperplanes, stacked.hyperplanes):
        assert s.dtype == np.float64 and s.shape == (2,) + h.shape
        np.testing.assert_array_equal(s[1], h)


def test_jax_key_init_is_deterministic_and_seed_dependent(small):
    d = small["classification"].n_features  # the shapes of test_same_seed_same_numbers: one compilation
    a = dgn.init(jax.random.key(1), d, ARCH, BRANCHES)
    b = dgn.init(jax.random.key(1), d, ARCH, BRANCHES)
    c = dgn.init(jax.random.key(2), d, ARCH, BRANCHES)
    np.testing.assert_array_equal(a.hyperplanes[0], b.hyperplanes[0])
    assert not np.allclose(a.hyperplanes[0], c.hyperplanes[0])
    assert a.hyperplanes[0].dtype == jnp.float32


def test_run_many_equals_individual_runs(small, seeds):
    data = small["classification"]
    keys = jax.random.split(jax.random.key(0), 3)
    many_params = dgn.init_many(keys, data.n_features, ARCH, BRANCHES)  # what run_seeds trained
    cfg = dgn.DGNConfig()
    assert seeds.test["loss"].shape == (3, EPOCHS + 1)
    assert list(seeds.test) == list(seeds.train) == ["loss", "accuracy"]  # the order of epoch_metrics
    vmapped = dgn.run_many(many_params, data, 1e-3, EPOCHS, cfg, chunk_size=3)  # all three vmapped at once
    np.testing.assert_allclose(np.asarray(vmapped.test["loss"]), np.asarray(seeds.test["loss"]), rtol=1e-5)
    for i in range(3):
        one = dgn.run(jax.tree_util.tree_map(lambda a: a[i], many_params), data, 1e-3, EPOCHS, cfg)
        np.testing.assert_allclose(np.asarray(seeds.test["loss"][i]), np.asarray(one.test["loss"]), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(seeds.train["accuracy"][i]), np.asarray(one.train["accuracy"]))
    # different hyperplanes give different runs
    assert not np.allclose(np.asarray(seeds.train["loss"][0]), np.asarray(seeds.train["loss"][1]))


def test_run_many_learning_rate_sweep(small):
    data = small["regression"]
    params = dgn.init_colab(data.n_features, ARCH, BRANCHES, seed=1)
    rates = np.array([1e-5, 1e-3])
    cfg = dgn.DGNConfig(loss="square", weight_form="per_neuron")
    sweep = dgn.run_many(dgn.stack_params([params, params]), data, rates, EPOCHS, cfg)
    for i, rate in enumerate(rates):
        one = dgn.run(params, data, rate, EPOCHS, cfg)
        np.testing.assert_allclose(np.asarray(sweep.train["loss"][i]), np.asarray(one.train["loss"]), rtol=1e-5)


def test_same_seed_same_numbers(small):
    data = small["classification"]
    runs = [dgn.run(dgn.init(jax.random.key(5), data.n_features, ARCH, BRANCHES), data, 1e-3, EPOCHS)
            for _ in range(2)]
    np.testing.assert_array_equal(np.asarray(runs[0].train["loss"]), np.asarray(runs[1].train["loss"]))


def test_fit_prints_colab_lines(small, capsys):
    data = small["classification"]
    _, history = dgn.fit(dgn.init_colab(data.n_features, ARCH, BRANCHES), data, 1e-3, 2, progress=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[:2] == ["Problem: classification (Bernoulli log loss), epochs: 2, learning rate: 0.001",
                         "Training online, one sample at a time; please be patient."]
    assert len(lines) == 2 + 3
    assert lines[2].startswith("epoch: 0, test loss: 0.693 (train: 0.693), test accuracy: ")
    assert list(history["epoch"]) == [0, 1, 2]
    assert dgn.format_epoch_line(
        {"epoch": 1, "test_loss": 0.0992, "train_loss": 0.19585, "test_accuracy": 0.97368, "train_accuracy": 0.9626}
    ) == "epoch: 1, test loss: 0.099 (train: 0.196), test accuracy: 0.974 (train: 0.963)"
    assert dgn.format_epoch_line({"epoch": 3, "test_loss": 0.3284, "train_loss": 0.39991}) == \
        "epoch: 3, test loss: 0.328 (train: 0.400)"


@pytest.mark.parametrize("form", ["colab", "per_neuron"])
def test_whole_run_equals_epoch_by_epoch(small, form):
    """run() (one program, summed weights rebuilt once at the end for the colab form) and
    iterate_epochs() (one program per epoch) give the same metrics and final weights."""
    data = small["classification"]
    params = dgn.init_colab(data.n_features, ARCH, BRANCHES, seed=2)
    cfg = dgn.DGNConfig(weight_form=form)
    whole = dgn.run(params, data, 1e-2, EPOCHS, cfg, "float64")
    records = list(dgn.iterate_epochs(params, data, 1e-2, EPOCHS, cfg, "float64"))
    np.testing.assert_allclose(np.asarray(whole.train["loss"]), [r["train_loss"] for r in records], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(whole.test["loss"]), [r["test_loss"] for r in records], rtol=1e-10)
    for a, b in zip(whole.params.weights, records[-1]["params"].weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-13)
        assert np.any(np.asarray(a) != 0)
