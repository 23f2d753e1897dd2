"""The baseline of the one-vs-all classifiers: a multi-layer perceptron trained online on the same
sample stream (batch 1, plain SGD on the softmax cross-entropy, ReLU hidden layers).

It reads the same :class:`dgnlib.gln.Stream` as :func:`dgnlib.gln.train_segment` (inputs in
``[0, 1]``: make the stream with ``GLNConfig(standardise=False)``), follows the same learning-rate
schedules (:class:`dgnlib.gln.Schedule`) and, like it, advances ``S`` independent sets (seeds,
learning rates) in one compiled ``lax.fori_loop`` over chunks with a ``lax.scan`` over samples.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import positive_int
from .config import GLNConfig
from .params import layer_inputs
from .schedule import as_schedule, rate_at
from .training import Stream, check_segment, prepare_inputs

__all__ = ["MLPConfig", "MLPParams", "init_mlp", "mlp_logits", "mlp_step", "train_mlp_segment",
           "mlp_accuracy", "count_weights", "mlp_hidden_for"]


class _MLPConfigFields(NamedTuple):
    n_classes: int = 10
    n_hidden: tuple = (256,)


class MLPConfig(_MLPConfigFields):
    """Static options of the online MLP.

    Arguments:
        n_classes: outputs (an int >= 2).
        n_hidden: units per hidden layer (ints >= 1; ``()`` is a linear softmax classifier).
    """

    __slots__ = ()

    def __new__(cls, n_classes=10, n_hidden=(256,)):
        try:
            n_hidden = tuple(n_hidden)
        except TypeError:
            raise ValueError(f"n_hidden must be a sequence of positive ints, got {n_hidden!r}") from None
        positive_int("n_classes", n_classes, minimum=2)
        for k, n in enumerate(n_hidden):
            positive_int(f"n_hidden[{k}]", n)
        return super().__new__(cls, int(n_classes), tuple(int(n) for n in n_hidden))


class MLPParams(NamedTuple):
    """Per layer a weight matrix ``(fan_in, fan_out)`` and a bias ``(fan_out,)``."""

    weights: tuple
    biases: tuple


def _check_cfg(cfg):
    if not isinstance(cfg, MLPConfig):
        raise TypeError(f"cfg must be a dgnlib.gln.MLPConfig, got {type(cfg).__name__}: {cfg!r}")
    return cfg


def init_mlp(key, n_features: int, cfg: MLPConfig = MLPConfig(), dtype=jnp.float32) -> MLPParams:
    """He-normal weights (``N(0, 2 / fan_in)``; the output layer ``N(0, 1 / fan_in)``), zero biases.

    Arguments:
        key: a PRNG key.
        n_features: inputs per sample.
        cfg: the options.
        dtype: the float dtype.

    Returns:
        An :class:`MLPParams`.
    """
    cfg = _check_cfg(cfg)
    positive_int("n_features", n_features)
    sizes = (n_features,) + cfg.n_hidden + (cfg.n_classes,)
    keys = jax.random.split(key, len(sizes) - 1)
    weights, biases = [], []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        gain = 1.0 if k == len(sizes) - 2 else 2.0
        weights.append(jax.random.normal(keys[k], (fan_in, fan_out), dtype) * np.sqrt(gain / fan_in).astype(dtype))
        biases.append(jnp.zeros((fan_out,), dtype))
    return MLPParams(tuple(weights), tuple(biases))


def mlp_logits(params: MLPParams, x):
    """Class logits of samples ``x`` ``(..., d)``: ReLU hidden layers, a linear output layer."""
    h = x
    last = len(params.weights) - 1
    for k, (w, b) in enumerate(zip(params.weights, params.biases)):
        h = h @ w + b
        if k < last:
            h = jax.nn.relu(h)
    return h


def _loss(params, x, label):
    logits = mlp_logits(params, x)
    return jax.nn.logsumexp(logits) - logits[label], logits


def mlp_step(params: MLPParams, x, label, learning_rate):
    """One online SGD step on one sample's softmax cross-entropy.

    Arguments:
        params: the weights.
        x: one sample ``(d,)``.
        label: its class (an int).
        learning_rate: this step's rate.

    Returns:
        ``(new_params, logits)``, the logits made before the update.
    """
    grads, logits = jax.grad(_loss, has_aux=True)(params, x, label)
    return jax.tree_util.tree_map(lambda p, g: p - learning_rate * g, params, grads), logits


@partial(jax.jit, static_argnames=("many",))
def _segment_jit(params, n_seen, stream, start, stop, schedule, many):
    def run(p, t, s):
        def chunk(i, carry):
            q, t = carry
            xc, lc = stream.x[i], stream.labels[i]
            rates = rate_at(s, t + jnp.arange(1, xc.shape[0] + 1, dtype=xc.dtype))
            q, _ = jax.lax.scan(lambda q, a: mlp_step(q, a[0], a[1], a[2]), q, (xc, lc, rates))
            return q, t + xc.shape[0]
        return jax.lax.fori_loop(start, stop, chunk, (p, t))

    if not many:
        return run(params, n_seen, schedule)
    return jax.vmap(run)(params, n_seen, schedule)


def train_mlp_segment(params: MLPParams, stream: Stream, start: int, stop: int, learning_rate, n_seen=None):
    """Continue online SGD over chunks ``start .. stop - 1`` of a stream (as
    :func:`dgnlib.gln.train_segment`; one compiled program for every ``start``/``stop``).

    Arguments:
        params: the weights of one MLP, or of ``S`` (a leading axis ``S`` on every array).
        stream: the samples, inputs in ``[0, 1]``.
        start, stop: chunk indices, ``0 <= start <= stop <= n_chunks``.
        learning_rate: a positive number, a :class:`dgnlib.gln.Schedule`, or (for ``S`` sets) arrays ``(S,)``.
        n_seen: samples seen before (the schedule's ``t``; None: 0).

    Returns:
        ``(params, n_seen)`` after the segment.
    """
    check_segment(stream, start, stop)
    if params.weights[0].shape[-2] != stream.x.shape[2]:
        raise ValueError(f"params.weights[0] must have {stream.x.shape[2]} rows (the stream's features), "
                         f"got shape {params.weights[0].shape}")
    many = params.weights[0].ndim == 3
    lead = (params.weights[0].shape[0],) if many else ()
    dtype = params.weights[0].dtype
    schedule = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(jnp.asarray(a, dtype), lead),
                                      as_schedule(learning_rate))
    n_seen = jnp.zeros(lead, dtype) if n_seen is None else jnp.broadcast_to(jnp.asarray(n_seen, dtype), lead)
    return _segment_jit(params, n_seen, stream, jnp.int32(start), jnp.int32(stop), schedule, many)


@jax.jit
def _predictions(params, x):
    return jnp.argmax(mlp_logits(params, x), axis=-1)


def mlp_accuracy(params: MLPParams, x, labels) -> float:
    """Fraction of samples whose largest logit is their label.

    Arguments:
        params: one MLP (no leading axis).
        x: samples ``(n, d)``: uint8 pixels (read as ``pixel / 255``) or floats in ``[0, 1]``.
        labels: ``(n,)``.

    Returns:
        A float.
    """
    x = prepare_inputs(x, GLNConfig(standardise=False), params.weights[0].dtype)
    labels = np.asarray(labels)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {labels.shape}")
    return float(np.mean(np.asarray(_predictions(params, x)) == labels))


def count_weights(cfg, n_features: int) -> int:
    """Trainable weights of one classifier (every class's network, or the MLP; gating excluded).

    Arguments:
        cfg: a :class:`dgnlib.gln.GLNConfig` or an :class:`MLPConfig`.
        n_features: inputs per sample.

    Returns:
        An int.
    """
    if isinstance(cfg, MLPConfig):
        sizes = (n_features,) + cfg.n_hidden + (cfg.n_classes,)
        return int(sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])))
    if isinstance(cfg, GLNConfig):
        return int(sum(cfg.n_classes * n * cfg.n_rows * i for n, i in zip(cfg.n_neurons, layer_inputs(n_features, cfg))))
    raise TypeError(f"cfg must be a GLNConfig or an MLPConfig, got {type(cfg).__name__}")


def mlp_hidden_for(n_weights: int, n_features: int, n_classes: int = 10) -> int:
    """Width of a one-hidden-layer MLP with about ``n_weights`` trainable weights.

    Arguments:
        n_weights: the target count (e.g. :func:`count_weights` of a DGN).
        n_features, n_classes: the MLP's inputs and outputs.

    Returns:
        The width ``H`` (>= 1) minimising ``|(d + 1) H + (H + 1) C - n_weights|``.
    """
    positive_int("n_weights", n_weights)
    return max(1, int(round((n_weights - n_classes) / (n_features + 1 + n_classes))))
