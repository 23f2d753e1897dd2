"""Online training of DGNs as compiled programs: one epoch (a ``lax.scan`` over samples), a whole
run (a ``lax.scan`` over epochs) and many networks at once.

The protocol is the colab's: epoch 0 evaluates the untrained network on both splits; each later
epoch is one online pass over the training split (the reported train metrics are those of the
predictions made sample by sample *before* each update) followed by an evaluation of the test split.
:func:`run` compiles the whole protocol for one network, :func:`run_many` for ``S`` networks
(hyperplane seeds or a learning-rate sweep); the epoch-by-epoch loop with the colab's printed log is
:mod:`dgnlib.dgn.epoch_log`.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import positive_int
from .divergence import warn_if_diverged
from .inputs import as_dtype, precision, prepare_inputs
from .model import DGNConfig, forward, gates, predict_batch, sample_loss, step, validate_config
from .params import DGNParams

__all__ = ["train_epoch", "epoch_metrics", "RunResult", "run", "run_many"]


@partial(jax.jit, static_argnames=("cfg",))
def train_epoch(params: DGNParams, x, y, learning_rate, cfg: DGNConfig = DGNConfig(), layer_gates=None):
    """One online pass over the samples in order, updating after each sample.

    Arguments:
        params: one network.
        x: samples ``(n, d)``.
        y: targets ``(n,)``.
        learning_rate: the step size of the local rule.
        cfg: the options (static).
        layer_gates: ``gates(params.hyperplanes, x)``, to reuse them across epochs.

    Returns:
        ``(params, predictions (n,))``, each prediction made before its sample's update.
    """
    cfg = validate_config(cfg)  # at trace time: free in the compiled program
    if layer_gates is None:
        layer_gates = gates(params.hyperplanes, x)
    if cfg.weight_form == "colab":
        return _train_epoch_colab(params, x, y, learning_rate, cfg, layer_gates)

    def body(p, sample):
        xi, yi, gi = sample
        return step(p, xi, yi, learning_rate, cfg, layer_gates=gi)

    return jax.lax.scan(body, params, (x, y, layer_gates))


# --- The colab form on neuron-summed weights -------------------------------------------------
# In the colab form a neuron reads only W[b, i] = sum_m w[m, b, i], and the local update
# w[n, b, i] -= eta g[n, b] err[n] in[i] moves that sum by -eta (sum_n g[n, b] err[n]) in[i]. So a
# pass can carry the small (B, I_k) sums instead of the (N_k, B, I_k) weights, record each sample's
# errors (N_k,) and layer inputs (I_k,), and rebuild the per-neuron weights afterwards with one
# matrix product per layer. Same numbers as dgnlib.dgn.step up to round-off, far less memory traffic.


def _summed_pass(sums, x, y, learning_rate, cfg, layer_gates):
    """Online pass on summed weights. Returns ``(sums, preds (n,), errors, inputs)`` where
    ``errors[k]`` is ``(n, N_k)`` and ``inputs[k]`` is ``(n, I_k)``."""

    def body(sums, sample):
        xi, yi, gi = sample
        pred, local = forward(sums, gi, xi, yi, cfg, summed=True)
        sums = tuple(
            s - learning_rate * jnp.einsum("n,nb->b", err, g)[:, None] * inp[None, :]  # sum_n g[n,b] err[n]
            for s, g, (err, inp) in zip(sums, gi, local)
        )
        return sums, (pred, tuple(err for err, _ in local), tuple(inp for _, inp in local))

    sums, (preds, errors, inputs) = jax.lax.scan(body, sums, (x, y, layer_gates))
    return sums, preds, errors, inputs


def _rebuild_weights(weights, layer_gates, errors, inputs, learning_rate):
    """``w - learning_rate * sum_t g_t[n, b] err_t[n] in_t[i]`` per layer; ``t`` may span epochs."""
    return tuple(
        w - learning_rate * jnp.einsum("tnb,tn,ti->nbi", g, err, inp)
        for w, g, err, inp in zip(weights, layer_gates, errors, inputs)
    )


def _summed_predictions(sums, x, cfg, layer_gates):
    one = lambda xi, gi: forward(sums, gi, xi, 0.0, cfg, summed=True)[0]  # noqa: E731
    return jax.vmap(one)(x, layer_gates)


def _train_epoch_colab(params, x, y, learning_rate, cfg, layer_gates):
    sums = tuple(w.sum(axis=0) for w in params.weights)
    _, preds, errors, inputs = _summed_pass(sums, x, y, learning_rate, cfg, layer_gates)
    weights = _rebuild_weights(params.weights, layer_gates, errors, inputs, learning_rate)
    return DGNParams(weights, params.hyperplanes), preds


def epoch_metrics(y, preds, cfg: DGNConfig = DGNConfig()) -> dict:
    """Mean loss and, for the Bernoulli loss, accuracy over the last axis (one compiled program per
    shape when called eagerly; traced into the caller's program under ``jit``).

    Arguments:
        y: targets ``(..., n)``.
        preds: predictions of the same shape.
        cfg: the options.

    Returns:
        ``{"loss": ..., "accuracy": ...}`` (accuracy ``mean(round(pred) == y)``, Bernoulli only),
        each of shape ``preds.shape[:-1]``, in the predictions' precision.
    """
    return _ordered(_metrics_program(y, preds, validate_config(cfg)))


@partial(jax.jit, static_argnames=("cfg",))
def _metrics_program(y, preds, cfg):
    out = {"loss": jnp.mean(sample_loss(y, preds, cfg), axis=-1)}
    if cfg.loss == "bernoulli":
        # in the predictions' precision (a mean of booleans would be float32 even in a float64 run)
        out["accuracy"] = jnp.mean((jnp.round(preds) == y).astype(jnp.result_type(preds)), axis=-1)
    return out


def _ordered(metrics: dict) -> dict:
    # a compiled program returns its dicts with sorted keys: loss first, as epoch_metrics writes them
    return {k: metrics[k] for k in ("loss", "accuracy") if k in metrics}


def _whole_run(params, x_train, y_train, x_test, y_test, learning_rate, epochs, cfg):
    """The protocol for one network, traced into the caller's program (see :func:`run`).

    Epoch 0 is a training pass at learning rate 0: ``w - 0 * update == w`` exactly, so its
    predictions are those of an evaluation (exactly so for the zero weights every initialiser
    gives), and the program holds one train pass and one test pass instead of two of each, which
    compiles in about half the time (as :func:`dgnlib.dgn.iterate_epochs` reuses its epoch program).
    """
    g_train = gates(params.hyperplanes, x_train)  # fixed for the whole run
    g_test = gates(params.hyperplanes, x_test)
    rates = jnp.concatenate([jnp.zeros((1,), jnp.result_type(learning_rate)),
                             jnp.full((epochs,), learning_rate)])  # per epoch 0 .. epochs
    if cfg.weight_form == "colab":
        # carry the summed weights through all epochs; rebuild per-neuron weights once at the end
        def one_epoch(sums, rate):
            sums, train_preds, errors, inputs = _summed_pass(sums, x_train, y_train, rate, cfg, g_train)
            return sums, (train_preds, _summed_predictions(sums, x_test, cfg, g_test), errors, inputs)

        sums0 = tuple(w.sum(axis=0) for w in params.weights)
        _, (train_preds, test_preds, errors, inputs) = jax.lax.scan(one_epoch, sums0, rates)
        # epochs 1 .. epochs: (epochs, n, ...) -> (epochs * n, ...)
        trained = lambda a: a[1:].reshape((-1,) + a.shape[2:])  # noqa: E731
        tiled = tuple(jnp.tile(g, (epochs, 1, 1)) for g in g_train)
        weights = _rebuild_weights(params.weights, tiled, tuple(map(trained, errors)), tuple(map(trained, inputs)),
                                   learning_rate)
        params = DGNParams(weights, params.hyperplanes)
    else:
        def one_epoch(p, rate):
            p, train_preds = train_epoch(p, x_train, y_train, rate, cfg, g_train)
            return p, (train_preds, predict_batch(p, x_test, cfg, g_test))

        params, (train_preds, test_preds) = jax.lax.scan(one_epoch, params, rates)
    return params, epoch_metrics(y_train, train_preds, cfg), epoch_metrics(y_test, test_preds, cfg)


_run_program = jax.jit(_whole_run, static_argnames=("epochs", "cfg"))


@partial(jax.jit, static_argnames=("epochs", "cfg", "chunk_size"))
def _run_many_program(params, x_train, y_train, x_test, y_test, learning_rate, epochs, cfg, chunk_size):
    run_one = partial(_whole_run, epochs=epochs, cfg=cfg)
    # batch_size=None: a plain sequential map (batch_size=1 would add size-1 vmapped axes)
    return jax.lax.map(lambda a: run_one(a[0], x_train, y_train, x_test, y_test, a[1]), (params, learning_rate),
                       batch_size=None if chunk_size == 1 else chunk_size)


def _auto_chunk_size(n_nets: int) -> int:
    # On the CPU the per-sample loop is bound by dispatch, and XLA runs one network's small
    # operations faster than a vmapped batch of them (measured: 32 seeds, 0.75 s one after another
    # against 1.3 s all vmapped, on 2 cores); accelerators want the whole batch at once.
    return 1 if jax.default_backend() == "cpu" else n_nets


class RunResult(NamedTuple):
    """A whole run: the final ``params`` and the ``train`` and ``test`` metrics (``{"loss": ...,
    "accuracy": ...}``, accuracy for the Bernoulli loss only). Metric arrays have shape
    ``(epochs + 1,)`` (``(S, epochs + 1)`` for :func:`run_many`); index 0 is the untrained network."""

    params: DGNParams
    train: dict
    test: dict


def _result(params, train, test) -> RunResult:
    return RunResult(params, _ordered(train), _ordered(test))


def run(params: DGNParams, data, learning_rate, epochs: int, cfg: DGNConfig = DGNConfig(),
        dtype: str = "float32") -> RunResult:
    """The colab's whole protocol for one network in one jitted call.

    Arguments:
        params: one network (:func:`dgnlib.dgn.init_colab` or :func:`dgnlib.dgn.init`).
        data: ``x_train, y_train, x_test, y_test`` (:class:`dgnlib.dgn.TabularData`).
        learning_rate: a positive number.
        epochs: training passes (an int >= 0); epoch 0 is the untrained network.
        cfg: the options.
        dtype: ``"float32"`` or ``"float64"``.

    Returns:
        A :class:`RunResult`. A run whose loss becomes NaN or infinite warns
        (:class:`dgnlib.dgn.DivergenceWarning`, checked on the host after the compiled program has
        returned) and returns its numbers as they are.
    """
    epochs = positive_int("epochs", epochs, minimum=0)
    with precision(dtype):
        cfg, params, arrays, learning_rate = prepare_inputs(params, data, cfg, dtype, learning_rate)
        result = _result(*_run_program(params, *arrays, learning_rate, epochs, cfg))
    warn_if_diverged(result, learning_rate, cfg, dtype, epochs, "run")
    return result


def run_many(params: DGNParams, data, learning_rate, epochs: int, cfg: DGNConfig = DGNConfig(),
             dtype: str = "float32", chunk_size: Optional[int] = None) -> RunResult:
    """:func:`run` for ``S`` independent networks in one jitted call.

    Arguments:
        params: ``S`` networks with a leading networks axis (:func:`dgnlib.dgn.init_many` or
            :func:`dgnlib.dgn.stack_params`).
        data: as for :func:`run`.
        learning_rate: a positive number, or an ``(S,)`` array (a learning-rate sweep).
        epochs, cfg, dtype: as for :func:`run`.
        chunk_size: networks vmapped together; the chunks run one after another inside the
            compiled program (``jax.lax.map(..., batch_size=chunk_size)``). The default is 1 on the
            CPU, where that is fastest, and ``S`` (everything vmapped at once) on accelerators. The
            numbers do not depend on the chunking.

    Returns:
        A :class:`RunResult` whose arrays carry the networks axis. One
        :class:`dgnlib.dgn.DivergenceWarning` names every network that diverged.
    """
    epochs = positive_int("epochs", epochs, minimum=0)
    first = params.hyperplanes[0]
    if first.ndim != 4:
        raise ValueError(
            "params must carry a leading networks axis (hyperplanes[0] of shape (S, N, B, d+1)), "
            f"got hyperplanes[0] of shape {first.shape}; use init_many or stack_params"
        )
    n_nets = first.shape[0]
    rates = np.asarray(learning_rate)
    if rates.ndim not in (0, 1) or (rates.ndim == 1 and rates.shape[0] != n_nets):
        raise ValueError(f"learning_rate must be a scalar or have shape ({n_nets},), got shape {rates.shape}")
    if chunk_size is None:
        chunk_size = _auto_chunk_size(n_nets)
    chunk_size = positive_int("chunk_size", chunk_size)
    if chunk_size > n_nets:
        raise ValueError(f"chunk_size must be an int in [1, {n_nets}] (the number of networks), got {chunk_size}")
    with precision(dtype):
        cfg, params, arrays, learning_rate = prepare_inputs(params, data, cfg, dtype, learning_rate)
        learning_rate = as_dtype(np.broadcast_to(np.asarray(learning_rate), (n_nets,)), learning_rate.dtype)
        result = _result(*_run_many_program(params, *arrays, learning_rate, epochs, cfg, chunk_size))
    warn_if_diverged(result, learning_rate, cfg, dtype, epochs, "run_many")
    return result
