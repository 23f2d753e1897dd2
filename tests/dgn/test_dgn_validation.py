"""Every bad input the DGN API can get raises a clear error naming the argument."""
import pickle

import jax
import numpy as np
import pytest

from dgnlib import dgn
from dgnlib.dgn import TabularData, load_problem


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3))
    y = (rng.random(12) > 0.5).astype(float)
    return TabularData(x[:8], y[:8], x[8:], y[8:])


@pytest.fixture(scope="module")
def params():
    return dgn.init_colab(3, (4, 1), 2)


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_neurons=(4, 2)), "single output neuron"),
    (dict(n_neurons=(4, 0, 1)), r"n_neurons\[1\] must be an int >= 1, got 0"),
    (dict(n_neurons=(-3, 1)), r"n_neurons\[0\] must be an int >= 1, got -3"),
    (dict(n_neurons=()), "n_neurons must list at least one layer"),
    (dict(n_branches=0), "n_branches must be an int >= 1, got 0"),
    (dict(n_branches=2.5), "n_branches must be an int >= 1, got 2.5"),
    (dict(n_features=0), "n_features must be an int >= 1, got 0"),
])
@pytest.mark.parametrize("initialiser", ["colab", "key"])
def test_impossible_architectures(kwargs, match, initialiser):
    args = dict(n_features=3, n_neurons=(4, 1), n_branches=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        if initialiser == "colab":
            dgn.init_colab(**args)
        else:
            dgn.init(jax.random.key(0), **args)


BAD_OPTIONS = [
    (dict(loss="hinge"), r"loss must be one of \('bernoulli', 'square'\), got 'hinge'"),
    (dict(weight_form="xx"), r"weight_form must be one of \('colab', 'per_neuron'\), got 'xx'"),
    (dict(saturation_rule="sometimes"), "saturation_rule must be one of .*, got 'sometimes'"),
    (dict(eps=0.7), r"eps must be a number in \(0, 0.5\), got 0.7"),
    (dict(eps="0.01"), r"eps must be a number in \(0, 0.5\), got '0.01'"),
    (dict(weight_form=None), "weight_form must be one of .*, got None"),
]


@pytest.mark.parametrize("kwargs,match", BAD_OPTIONS)
def test_config_construction_rejects_unknown_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dgn.DGNConfig(**kwargs)
    with pytest.raises(ValueError, match=match):
        dgn.DGNConfig()._replace(**kwargs)
    fields = dgn.DGNConfig()._asdict()
    fields.update(kwargs)
    with pytest.raises(ValueError, match=match):
        dgn.DGNConfig._make(fields.values())
    with pytest.raises(ValueError, match=match):
        dgn.DGNConfig(*fields.values())


def test_valid_config_is_hashable_and_replace_keeps_the_type():
    cfg = dgn.DGNConfig(loss="square")._replace(weight_form="per_neuron")
    assert type(cfg) is dgn.DGNConfig and cfg == dgn.DGNConfig("square", "per_neuron")
    assert hash(cfg) == hash(dgn.DGNConfig("square", "per_neuron")) and cfg.validate() is cfg
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def _bypassing(**kwargs):
    """A DGNConfig whose bad option skipped the constructor's checks (tuple.__new__)."""
    fields = dgn.DGNConfig()._asdict()
    fields.update(kwargs)
    return tuple.__new__(dgn.DGNConfig, tuple(fields.values()))


def _entry_points(data, params):
    x = np.asarray(data.x_train, np.float32)
    y = np.asarray(data.y_train, np.float32)
    p32 = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), params)
    many = dgn.stack_params([params, params])
    return {
        "dgn.step": lambda cfg: dgn.step(p32, x[0], y[0], 1e-3, cfg),
        "dgn.predict": lambda cfg: dgn.predict(p32, x[0], cfg),
        "dgn.sample_loss": lambda cfg: dgn.sample_loss(y, y, cfg),
        "train_epoch": lambda cfg: dgn.train_epoch(p32, x, y, 1e-3, cfg),
        "dgn.predict_batch": lambda cfg: dgn.predict_batch(p32, x, cfg),
        "epoch_metrics": lambda cfg: dgn.epoch_metrics(y, y, cfg),
        "validate_data": lambda cfg: dgn.validate_data(x, y, 3, cfg),
        "header_lines": lambda cfg: dgn.header_lines(cfg, 1, 1e-3),
        "run": lambda cfg: dgn.run(params, data, 1e-3, 1, cfg),
        "run_many": lambda cfg: dgn.run_many(many, data, 1e-3, 1, cfg),
        "iterate_epochs": lambda cfg: list(dgn.iterate_epochs(params, data, 1e-3, 1, cfg)),
        "fit": lambda cfg: dgn.fit(params, data, 1e-3, 1, cfg, progress=False, log=None),
    }


ENTRY_POINTS = ["dgn.step", "dgn.predict", "dgn.sample_loss", "train_epoch", "dgn.predict_batch", "epoch_metrics",
                "validate_data", "header_lines", "run", "run_many", "iterate_epochs", "fit"]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("kwargs,match", [
    (dict(loss="hinge"), "loss must be one of"),
    (dict(weight_form="xx"), "weight_form must be one of"),
    (dict(saturation_rule="sometimes"), "saturation_rule must be one of"),
])
def test_every_entry_point_rejects_a_config_that_skipped_the_checks(data, params, entry, kwargs, match):
    call = _entry_points(data, params)[entry]
    with pytest.raises(ValueError, match=match):
        call(_bypassing(**kwargs))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_rejects_a_config_of_another_type(data, params, entry):
    call = _entry_points(data, params)[entry]
    with pytest.raises(TypeError, match="cfg must be a dgnlib.dgn.DGNConfig, got tuple"):
        call(("bernoulli", "colab", "error_above_eps", 0.01))


def test_private_reductions_do_not_fall_through():
    g, w, x = np.ones((2, 3)), np.ones((2, 3, 4)), np.ones(4)
    with pytest.raises(ValueError, match="weight_form must be one of .*, got 'xx'"):
        dgn.drive(w, g, x, "xx")
    with pytest.raises(ValueError, match="saturation_rule must be one of .*, got 'never'"):
        dgn.learn_mask(1.0, np.array([0.5]), _bypassing(saturation_rule="never"))


def test_unknown_precision(data, params):
    with pytest.raises(ValueError, match="precision must be one of"):
        dgn.run(params, data, 1e-3, 1, dtype="float16")


def test_mismatched_feature_dimension(data):
    wrong = dgn.init_colab(4, (4, 1), 2)
    with pytest.raises(ValueError, match="x_train has 3 features but the network was built for n_features=4"):
        dgn.run(wrong, data, 1e-3, 1)


def test_wrong_shapes(data, params):
    with pytest.raises(ValueError, match=r"x_train must have shape \(n_samples, n_features\)"):
        dgn.run(params, data._replace(x_train=data.x_train[0]), 1e-3, 1)
    with pytest.raises(ValueError, match=r"y_test must have shape \(4,\)"):
        dgn.run(params, data._replace(y_test=data.y_test[:3]), 1e-3, 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs(data, params, bad):
    x = data.x_train.copy()
    x[2, 1] = bad
    with pytest.raises(ValueError, match=r"x_train must be finite, but 1 of its 24 values are NaN or infinite "
                                         r"\(first at index \(2, 1\)\)"):
        dgn.run(params, data._replace(x_train=x), 1e-3, 1)
    y = data.y_test.copy()
    y[0] = bad
    with pytest.raises(ValueError, match="y_test must be finite, but 1 of its 4 values"):
        dgn.run(params, data._replace(y_test=y), 1e-3, 1, dgn.DGNConfig(loss="square"))


def test_non_binary_targets_for_bernoulli(data, params):
    y = data.y_train.copy()
    y[0] = 0.5
    with pytest.raises(ValueError, match="y_train must hold binary targets 0/1 for the Bernoulli DGN"):
        dgn.run(params, data._replace(y_train=y), 1e-3, 1)
    # the same targets are fine for regression
    dgn.run(params, data._replace(y_train=y), 1e-3, 1, dgn.DGNConfig(loss="square"))


@pytest.mark.parametrize("learning_rate,match", [
    (0.0, "learning_rate must be a positive finite number, got 0.0"),
    (-1e-3, "learning_rate must be a positive finite number, got -0.001"),
    (np.nan, "learning_rate must be a finite number, got nan"),
    (None, "learning_rate must be a number, got None"),
])
def test_bad_learning_rate(data, params, learning_rate, match):
    with pytest.raises(ValueError, match=match):
        dgn.run(params, data, learning_rate, 1)
    with pytest.raises(ValueError, match=match):
        dgn.fit(params, data, learning_rate, 1, progress=False, log=None)


def test_bad_learning_rate_in_a_sweep(data, params):
    many = dgn.stack_params([params, params])
    with pytest.raises(ValueError, match="learning_rate must hold positive finite numbers"):
        dgn.run_many(many, data, np.array([1e-3, 0.0]), 1)


@pytest.mark.parametrize("epochs", [-1, 1.5, True])
def test_bad_epochs(data, params, epochs):
    with pytest.raises(ValueError, match=f"epochs must be an int >= 0, got {epochs!r}"):
        dgn.run(params, data, 1e-3, epochs)
    with pytest.raises(ValueError, match="epochs must be an int >= 0"):
        dgn.fit(params, data, 1e-3, epochs, progress=False, log=None)


def test_run_many_needs_a_networks_axis(data, params):
    with pytest.raises(ValueError, match="params must carry a leading networks axis"):
        dgn.run_many(params, data, 1e-3, 1)
    many = dgn.stack_params([params, params])
    with pytest.raises(ValueError, match=r"learning_rate must be a scalar or have shape \(2,\)"):
        dgn.run_many(many, data, np.array([1e-3, 1e-3, 1e-3]), 1)
    with pytest.raises(ValueError, match=r"chunk_size must be an int in \[1, 2\]"):
        dgn.run_many(many, data, 1e-3, 1, chunk_size=3)


def test_unknown_problem():
    with pytest.raises(ValueError, match=r"problem must be one of \('classification', 'regression'\), got 'mnist'"):
        load_problem("mnist")


def test_reference_rejects_unknown_options(data):
    from dgnlib.dgn.reference import run_numpy

    with pytest.raises(ValueError, match="implementation must be one of .*, got 'fast'"):
        run_numpy(data, (4, 1), 2, implementation="fast")
    with pytest.raises(ValueError, match="weight_form must be one of .*, got 'xx'"):
        run_numpy(data, (4, 1), 2, weight_form="xx")


def test_experiments_reject_bad_arguments(data, params):
    history = {"epoch": [0, 1], "train_loss": [0.7, 0.6], "test_loss": [0.7, 0.6],
               "train_accuracy": [0.5, 0.6], "test_accuracy": [0.5, 0.6]}
    with pytest.raises(ValueError, match="per_neuron_learning_rates must list at least one learning rate"):
        dgn.compare_weight_forms(params, data, history, 1e-3, [], dgn.DGNConfig())
    with pytest.raises(ValueError, match="n_seeds must be an int >= 1, got 0"):
        dgn.run_seeds(data, 0, 1e-3, 1, dgn.DGNConfig(), (4, 1), 2)
