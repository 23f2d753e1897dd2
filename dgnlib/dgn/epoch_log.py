"""The colab's protocol epoch by epoch, with its printed log: :func:`iterate_epochs`, :func:`fit`.

Each epoch is one compiled program (train pass, test pass, metrics), compiled once per
configuration and reused for every epoch, so progress can be shown and logged as it happens.
The log lines are formatted from the epoch records (:func:`format_epoch_line`,
:func:`header_lines`); nothing is parsed back from text.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Iterator, Optional

import jax
import numpy as np

from ..checks import positive_int, positive_number
from .divergence import divergence_message, warn_diverged
from .inputs import as_dtype, precision, prepare_inputs
from .model import DGNConfig, predict_batch, validate_config
from .params import DGNParams
from .training import epoch_metrics, train_epoch

__all__ = ["iterate_epochs", "fit", "format_epoch_line", "header_lines"]


@partial(jax.jit, static_argnames=("cfg",))
def _epoch_program(params, x_train, y_train, x_test, y_test, learning_rate, cfg):
    """One epoch of the protocol as one compiled program: train pass, test pass, metrics.

    With ``learning_rate = 0`` the train pass changes no weight (``w - 0 * update == w`` exactly), so
    its predictions are those of an evaluation: epoch 0 reuses this program instead of compiling another.
    """
    params, train_preds = train_epoch(params, x_train, y_train, learning_rate, cfg)
    test_preds = predict_batch(params, x_test, cfg)
    return params, epoch_metrics(y_train, train_preds, cfg), epoch_metrics(y_test, test_preds, cfg)


def iterate_epochs(params: DGNParams, data, learning_rate, epochs: int, cfg: DGNConfig = DGNConfig(),
                   dtype: str = "float32") -> Iterator[dict]:
    """The colab's protocol epoch by epoch, for progress bars and live logs.

    Arguments:
        params: one network.
        data: ``x_train, y_train, x_test, y_test`` (:class:`dgnlib.dgn.TabularData`).
        learning_rate: a positive number.
        epochs: training passes (an int >= 0).
        cfg: the options.
        dtype: ``"float32"`` or ``"float64"``.

    Returns:
        A generator of one record per epoch ``0 .. epochs``: ``epoch``, ``train_loss``,
        ``test_loss`` (and ``train_accuracy``, ``test_accuracy`` for the Bernoulli loss) as Python
        floats, and ``params`` after that epoch. At the first epoch whose loss is not finite it
        warns once (:class:`dgnlib.dgn.DivergenceWarning`) and goes on.
    """
    epochs = positive_int("epochs", epochs, minimum=0)
    with precision(dtype):
        cfg, params, arrays, learning_rate = prepare_inputs(params, data, cfg, dtype, learning_rate)
        zero_rate = as_dtype(0.0, learning_rate.dtype)  # made on the host: 0 * learning_rate would compile
    diverged = False
    for epoch in range(epochs + 1):
        with precision(dtype):
            params, train, test = _epoch_program(params, *arrays, learning_rate if epoch else zero_rate, cfg)
            record = {"epoch": epoch}
            record.update({f"train_{k}": float(v) for k, v in train.items()})
            record.update({f"test_{k}": float(v) for k, v in test.items()})
        if not diverged and not (np.isfinite(record["train_loss"]) and np.isfinite(record["test_loss"])):
            diverged = True
            warn_diverged("run diverged: " + divergence_message(epoch, float(learning_rate), cfg, dtype, epochs))
        record["params"] = params
        yield record


def format_epoch_line(record: dict) -> str:
    """The colab's epoch line.

    Arguments:
        record: ``epoch``, ``train_loss``, ``test_loss`` and optionally ``train_accuracy``,
            ``test_accuracy`` (a record of :func:`iterate_epochs`).

    Returns:
        E.g. ``"epoch: 1, test loss: 0.099 (train: 0.196), test accuracy: 0.974 (train: 0.963)"``.
    """
    line = "epoch: {epoch}, test loss: {test_loss:.3f} (train: {train_loss:.3f})".format(**record)
    if "test_accuracy" in record:
        line += ", test accuracy: {test_accuracy:.3f} (train: {train_accuracy:.3f})".format(**record)
    return line


def header_lines(cfg: DGNConfig, epochs: int, learning_rate) -> list:
    """The two lines printed before the epoch log.

    Arguments:
        cfg: the options (the loss names the problem).
        epochs: training passes.
        learning_rate: the run's learning rate.

    Returns:
        ``["Problem: classification (Bernoulli log loss), epochs: 3, learning rate: 0.0001",
        "Training online, one sample at a time; please be patient."]``.
    """
    cfg = validate_config(cfg)
    problem = "classification (Bernoulli log loss)" if cfg.loss == "bernoulli" else "regression (square loss)"
    return [
        f"Problem: {problem}, epochs: {epochs}, learning rate: {learning_rate:g}",
        "Training online, one sample at a time; please be patient.",
    ]


def fit(params: DGNParams, data, learning_rate, epochs: int, cfg: DGNConfig = DGNConfig(),
        dtype: str = "float32", progress: bool = True, log: Optional[Callable[[str], None]] = print):
    """Train with the colab's protocol, printing its header and one line per epoch.

    Arguments:
        params, data, learning_rate, epochs, cfg, dtype: as for :func:`iterate_epochs`.
        progress: show a tqdm progress bar (``tqdm.auto``: a widget in notebooks, stderr
            elsewhere) over the epochs; it does not touch the printed log.
        log: where the lines go (``print``; ``None`` for silence).

    Returns:
        ``(params, history)``: the trained network and a dict mapping ``epoch``, ``train_loss``,
        ``test_loss`` (and the accuracies) to NumPy arrays of length ``epochs + 1``. A run whose
        loss becomes NaN or infinite warns (:class:`dgnlib.dgn.DivergenceWarning`).
    """
    from tqdm.auto import tqdm

    cfg = validate_config(cfg)
    epochs = positive_int("epochs", epochs, minimum=0)
    if log is not None:
        for line in header_lines(cfg, epochs, positive_number("learning_rate", learning_rate)):
            log(line)
    history: dict = {}
    with tqdm(total=epochs + 1, desc="epochs", disable=not progress, leave=False) as bar:
        for record in iterate_epochs(params, data, learning_rate, epochs, cfg, dtype):
            params = record.pop("params")
            for key, value in record.items():
                history.setdefault(key, []).append(value)
            if log is not None:
                log(format_epoch_line(record))
            bar.update(1)
    return params, {k: np.asarray(v) for k, v in history.items()}
