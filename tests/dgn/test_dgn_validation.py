"""Every bad input the DGN API can get raises a clear error naming the argument."""
import pickle

import jax
import numpy as np
import pytest

from dgnlib.dgn import model as dgn, training as dgn_train
from dgnlib.dgn.data import TabularData, load_problem


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
    (dict(n_neurons=(4, 0, 1)), r"n_neurons\[1\] must be a positive integer"),
    (dict(n_neurons=(-3, 1)), r"n_neurons\[0\] must be a positive integer"),
    (dict(n_neurons=()), "n_neurons must list at least one layer"),
    (dict(n_branches=0), "n_branches must be a positive integer"),
    (dict(n_branches=2.5), "n_branches must be a positive integer"),
    (dict(n_features=0), "n_features must be a positive integer"),
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
        "train_epoch": lambda cfg: dgn_train.train_epoch(p32, x, y, 1e-3, cfg),
        "evaluate": lambda cfg: dgn_train.evaluate(p32, x, cfg),
        "epoch_metrics": lambda cfg: dgn_train.epoch_metrics(y, y, cfg),
        "validate_data": lambda cfg: dgn_train.validate_data(x, y, 3, cfg),
        "header_lines": lambda cfg: dgn_train.header_lines(cfg, 1, 1e-3),
        "run": lambda cfg: dgn_train.run(params, data, 1e-3, 1, cfg),
        "run_many": lambda cfg: dgn_train.run_many(many, data, 1e-3, 1, cfg),
        "iterate_epochs": lambda cfg: list(dgn_train.iterate_epochs(params, data, 1e-3, 1, cfg)),
        "fit": lambda cfg: dgn_train.fit(params, data, 1e-3, 1, cfg, progress=False, log=None),
    }


ENTRY_POINTS = ["dgn.step", "dgn.predict", "dgn.sample_loss", "train_epoch", "evaluate", "epoch_metrics",
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
    with pytest.raises(TypeError, match="cfg must be a dgnlib.dgn.model.DGNConfig, got tuple"):
        call(("bernoulli", "colab", "error_above_eps", 0.01))


def test_private_reductions_do_not_fall_through():
    g, w, x = np.ones((2, 3)), np.ones((2, 3, 4)), np.ones(4)
    with pytest.raises(ValueError, match="weight_form must be one of .*, got 'xx'"):
        dgn._drive(w, g, x, "xx")
    with pytest.raises(ValueError, match="saturation_rule must be one of .*, got 'never'"):
        dgn._learn_mask(1.0, np.array([0.5]), _bypassing(saturation_rule="never"))


def test_unknown_precision(data, params):
    with pytest.raises(ValueError, match="precision must be one of"):
        dgn_train.run(params, data, 1e-3, 1, dtype="float16")


def test_mismatched_feature_dimension(data):
    wrong = dgn.init_colab(4, (4, 1), 2)
    with pytest.raises(ValueError, match="x_train has 3 features but the network was built for n_features=4"):
        dgn_train.run(wrong, data, 1e-3, 1)


def test_wrong_shapes(data, params):
    with pytest.raises(ValueError, match=r"x_train must have shape \(n_samples, n_features\)"):
        dgn_train.run(params, data._replace(x_train=data.x_train[0]), 1e-3, 1)
    with pytest.raises(ValueError, match=r"y_test must have shape \(4,\)"):
        dgn_train.run(params, data._replace(y_test=data.y_test[:3]), 1e-3, 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs(data, params, bad):
    x = data.x_train.copy()
    x[2, 1] = bad
    with pytest.raises(ValueError, match="x_train contains NaN or infinite values"):
        dgn_train.run(params, data._replace(x_train=x), 1e-3, 1)
    y = data.y_test.copy()
    y[0] = bad
    with pytest.raises(ValueError, match="y_test contains NaN or infinite values"):
        dgn_train.run(params, data._replace(y_test=y), 1e-3, 1, dgn.DGNConfig(loss="square"))


def test_non_binary_targets_for_bernoulli(data, params):
    y = data.y_train.copy()
    y[0] = 0.5
    with pytest.raises(ValueError, match="y_train must hold binary targets 0/1 for the Bernoulli DGN"):
        dgn_train.run(params, data._replace(y_train=y), 1e-3, 1)
    # the same targets are fine for regression
    dgn_train.run(params, data._replace(y_train=y), 1e-3, 1, dgn.DGNConfig(loss="square"))


@pytest.mark.parametrize("lr", [0.0, -1e-3, np.nan])
def test_bad_learning_rate(data, params, lr):
    with pytest.raises(ValueError, match="lr must be positive and finite"):
        dgn_train.run(params, data, lr, 1)


@pytest.mark.parametrize("epochs", [-1, 1.5, True])
def test_bad_epochs(data, params, epochs):
    with pytest.raises(ValueError, match="epochs must be a non-negative integer"):
        dgn_train.run(params, data, 1e-3, epochs)


def test_run_many_needs_a_networks_axis(data, params):
    with pytest.raises(ValueError, match="params must carry a leading networks axis"):
        dgn_train.run_many(params, data, 1e-3, 1)
    many = dgn.stack_params([params, params])
    with pytest.raises(ValueError, match=r"lr must be a scalar or have shape \(2,\)"):
        dgn_train.run_many(many, data, np.array([1e-3, 1e-3, 1e-3]), 1)
    with pytest.raises(ValueError, match=r"chunk_size must be an integer in \[1, 2\]"):
        dgn_train.run_many(many, data, 1e-3, 1, chunk_size=3)


def test_unknown_problem():
    with pytest.raises(ValueError, match="problem must be one of"):
        load_problem("mnist")
