"""A diverged DGN run says so: DivergenceWarning from run, run_many, iterate_epochs and fit."""
import warnings

import numpy as np
import pytest

from dgnlib import dgn
from dgnlib.dgn import load_problem

ARCH, BRANCHES = (10, 1), 4
SQUARE_PN = dgn.DGNConfig(loss="square", weight_form="per_neuron")


@pytest.fixture(scope="module")
def data():
    return load_problem("regression")


@pytest.fixture(scope="module")
def params(data):
    return dgn.init_colab(data.n_features, ARCH, BRANCHES)


def test_warning_class_is_exported_and_a_runtime_warning():
    assert "DivergenceWarning" in dgn.__all__ and "diverged_epoch" in dgn.__all__
    assert issubclass(dgn.DivergenceWarning, RuntimeWarning)


def test_run_warns_naming_epoch_and_learning_rate(data, params):
    # regression at learning rate 1: the weights blow up during the first training pass
    with pytest.warns(dgn.DivergenceWarning,
                      match=r"^run diverged: loss not finite from epoch 1 of 2 \(learning rate 1, "
                            r"loss='square', weight_form='per_neuron', float32\)"):
        result = dgn.run(params, data, 1.0, 2, SQUARE_PN)
    assert dgn.diverged_epoch(result) == 1
    assert np.isfinite(result.test["loss"][0]) and not np.isfinite(result.test["loss"][1])


def test_square_loss_on_binary_targets_diverges_at_the_colab_rate():
    data = load_problem("classification")
    params = dgn.init_colab(data.n_features)  # the notebook's 100-10-1, 20 branches
    cfg = dgn.DGNConfig(loss="square", weight_form="colab")
    with pytest.warns(dgn.DivergenceWarning, match=r"epoch 1 of 1 \(learning rate 0.0001, loss='square', "
                                                         r"weight_form='colab', float64\)"):
        result = dgn.run(params, data, 1e-4, 1, cfg, dtype="float64")
    assert dgn.diverged_epoch(result) == 1


def test_run_many_names_only_the_diverged_networks(data, params):
    rates = np.array([1e-4, 1.0, 1e-3, 2.0])
    with pytest.warns(dgn.DivergenceWarning) as record:
        result = dgn.run_many(dgn.stack_params([params] * 4), data, rates, 2, SQUARE_PN, chunk_size=2)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("run_many: 2 of 4 networks diverged: ")
    assert "network 1: loss not finite from epoch 1 of 2 (learning rate 1," in message
    assert "network 3: loss not finite from epoch 1 of 2 (learning rate 2," in message
    assert "network 0" not in message and "network 2" not in message
    np.testing.assert_array_equal(dgn.diverged_epoch(result), [-1, 1, -1, 1])
    assert record[0].filename == __file__  # points at the caller, not into dgnlib


@pytest.mark.parametrize("entry", ["fit", "iterate_epochs"])
def test_epoch_by_epoch_paths_warn_once(data, params, entry):
    lines = []
    with pytest.warns(dgn.DivergenceWarning) as record:
        if entry == "fit":
            _, history = dgn.fit(params, data, 1.0, 3, SQUARE_PN, progress=False, log=lines.append)
            losses = history["test_loss"]
        else:
            losses = [r["test_loss"] for r in dgn.iterate_epochs(params, data, 1.0, 3, SQUARE_PN)]
    assert len(record) == 1 and record[0].filename == __file__
    assert str(record[0].message).startswith(
        "run diverged: loss not finite from epoch 1 of 3 (learning rate 1, loss='square'")
    assert np.isfinite(losses[0]) and not np.any(np.isfinite(losses[1:]))
    if entry == "fit":
        assert lines[-1] == "epoch: 3, test loss: nan (train: nan)"


def test_finite_runs_do_not_warn(data, params):
    with warnings.catch_warnings():
        warnings.simplefilter("error", dgn.DivergenceWarning)
        result = dgn.run(params, data, 1e-3, 2, SQUARE_PN)
        many = dgn.run_many(dgn.stack_params([params] * 2), data, np.array([1e-3, 1e-4]), 2, SQUARE_PN)
        dgn.fit(params, data, 1e-3, 2, SQUARE_PN, progress=False, log=None)
    assert dgn.diverged_epoch(result) == -1
    np.testing.assert_array_equal(dgn.diverged_epoch(many), [-1, -1])
