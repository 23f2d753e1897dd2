"""Online one-vs-all training as one compiled program, and batched evaluation.

A pass is a ``lax.scan`` over chunks of ``chunk_size`` samples. Per chunk, everything that does not
depend on the weights is computed at once: the running moments after each sample and the
standardised side information (:func:`dgnlib.gln.chunk_moments`), every neuron's gate bits (one
matrix product of the chunk's side information with all hyperplanes), the input logits and the
learning rates. An inner ``lax.scan`` then advances all classes' networks sample by sample
(:func:`dgnlib.gln.step`). :func:`train_many` runs ``S`` independent sets (learning rates, seeds) in
the same scan with ``vmap``.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import check_finite, check_labels, positive_int
from .config import GLNConfig, validate_config
from .model import context_index, input_logits, logit_bound, step
from .params import Gating, GLNParams, layer_inputs
from .preprocess import Moments, chunk_moments, init_moments, network_inputs
from .schedule import as_schedule, rate_at

__all__ = ["TrainResult", "Stream", "prepare_inputs", "gate_bits", "train", "train_many", "make_stream",
           "check_segment", "train_segment", "scores", "accuracy"]


class TrainResult(NamedTuple):
    """What a pass returns: the weights and moments after it, the samples seen so far (the schedule's
    ``t``) and the class scores ``(n, n_classes)`` of each sample, made before its update."""

    params: GLNParams
    moments: Moments
    n_seen: jax.Array
    outputs: jax.Array


class Stream(NamedTuple):
    """A checked sample stream split into equal chunks, for :func:`train_segment`: ``x``
    ``(n_chunks, chunk_size, d)`` floats, ``labels`` ``(n_chunks, chunk_size)`` int32."""

    x: jax.Array
    labels: jax.Array

    @property
    def chunk_size(self) -> int:
        return self.x.shape[1]

    @property
    def n_samples(self) -> int:
        return self.x.shape[0] * self.x.shape[1]


def prepare_inputs(x, cfg: GLNConfig, dtype=jnp.float32, name: str = "x"):
    """Check samples and turn them into floats.

    Arguments:
        x: ``(n, d)`` floats, or uint8 pixels: kept as values 0..255 when ``cfg.standardise``
            (as DeepMind's example), divided by 255 otherwise.
        cfg: the options.
        dtype: the float dtype.
        name: the argument's name in error messages.

    Returns:
        ``(n, d)`` array of ``dtype``; ``ValueError`` naming ``name`` for a wrong shape, NaN or
        infinity, or (without standardisation) values outside ``[0, 1]``.
    """
    if np.ndim(x) != 2 or np.shape(x)[0] == 0:
        raise ValueError(f"{name} must be a non-empty (n_samples, n_features) array, got shape {np.shape(x)}")
    is_uint8 = jnp.result_type(x) == jnp.uint8
    if not is_uint8 and not jnp.issubdtype(jnp.result_type(x), jnp.number):
        raise ValueError(f"{name} must hold numbers, got dtype {jnp.result_type(x)}")
    x = check_finite(jnp.asarray(x), name)
    x = x.astype(dtype)
    if is_uint8 and not cfg.standardise:
        x = x / 255.0
    if not cfg.standardise and not isinstance(x, jax.core.Tracer):
        lo, hi = float(jnp.min(x)), float(jnp.max(x))
        if lo < 0 or hi > 1:
            raise ValueError(f"{name} must lie in [0, 1] without standardisation (they are probabilities), "
                             f"got values from {lo} to {hi}")
    return x


def _check_shapes(params, gating, n_features, cfg, lead=()):
    n_inputs = layer_inputs(n_features, cfg)
    copies = 1 if cfg.shared_gates else cfg.n_classes
    if len(params.weights) != len(cfg.n_neurons) or len(gating.hyperplanes) != len(cfg.n_neurons):
        raise ValueError(f"params and gating must have {len(cfg.n_neurons)} layers (cfg.n_neurons={cfg.n_neurons}), "
                         f"got {len(params.weights)} and {len(gating.hyperplanes)}")
    for k, (n, i) in enumerate(zip(cfg.n_neurons, n_inputs)):
        want = {f"params.weights[{k}]": (params.weights[k], lead + (cfg.n_classes, n, cfg.n_rows, i)),
                f"gating.hyperplanes[{k}]": (gating.hyperplanes[k], (copies, n, cfg.n_gates, n_features)),
                f"gating.offsets[{k}]": (gating.offsets[k], (copies, n, cfg.n_gates))}
        for name, (a, shape) in want.items():
            if name.startswith("gating") and np.ndim(a) == len(shape) + len(lead):
                shape = tuple(np.shape(a)[:len(lead)]) + shape
            if tuple(np.shape(a)) != shape:
                raise ValueError(f"{name} must have shape {shape} for cfg and inputs of {n_features} features, "
                                 f"got {tuple(np.shape(a))}")


def gate_bits(gating: Gating, side):
    """Every neuron's gate bits for a batch of side information, one matrix product per layer.

    Arguments:
        gating: the hyperplanes ``(C', N_k, G, d)`` and offsets ``(C', N_k, G)``.
        side: ``(T, d)``.

    Returns:
        Per layer a boolean ``(T, C', N_k, G)``: ``h . s > offset``.
    """
    out = []
    for h, o in zip(gating.hyperplanes, gating.offsets):
        proj = side @ h.reshape(-1, h.shape[-1]).T
        out.append(proj.reshape((side.shape[0],) + o.shape) > o)
    return tuple(out)


def _chunk(carry, xs, gating, schedule, cfg):
    p, m, t = carry
    xc, lc = xs
    if cfg.standardise:
        mean, std, m = chunk_moments(m, xc)
    else:
        mean = std = None
    side, prob = network_inputs(xc, mean, std, cfg.standardise)
    bits = gate_bits(gating, side)
    z0 = input_logits(prob, cfg.eps)
    rates = rate_at(schedule, t + jnp.arange(1, xc.shape[0] + 1, dtype=xc.dtype))
    body = lambda q, s: step(q, s[0], s[1], s[2], s[3], cfg)  # noqa: E731
    p, outs = jax.lax.scan(body, p, (bits, z0, lc, rates))
    return (p, m, t + xc.shape[0]), outs


def _pass(params, gating, moments, n_seen, x, labels, schedule, cfg, chunk_size):
    chunk = lambda carry, xs: _chunk(carry, xs, gating, schedule, cfg)  # noqa: E731
    n, d = x.shape
    size = min(chunk_size, n)
    n_full = (n // size) * size
    carry = (params, moments, n_seen)
    carry, outs = jax.lax.scan(chunk, carry, (x[:n_full].reshape(-1, size, d), labels[:n_full].reshape(-1, size)))
    outs = outs.reshape(n_full, -1)
    if n_full < n:
        carry, rest = chunk(carry, (x[n_full:], labels[n_full:]))
        outs = jnp.concatenate([outs, rest])
    return TrainResult(carry[0], carry[1], carry[2], outs)


@partial(jax.jit, static_argnames=("cfg", "chunk_size"))
def _train_jit(params, gating, moments, n_seen, x, labels, schedule, cfg, chunk_size):
    return _pass(params, gating, moments, n_seen, x, labels, schedule, cfg, chunk_size)


@partial(jax.jit, static_argnames=("cfg", "chunk_size", "gating_axis"))
def _train_many_jit(params, gating, moments, n_seen, x, labels, schedule, cfg, chunk_size, gating_axis):
    fn = lambda p, g, m, t, s: _pass(p, g, m, t, x, labels, s, cfg, chunk_size)  # noqa: E731
    return jax.vmap(fn, in_axes=(0, gating_axis, 0, 0, 0))(params, gating, moments, n_seen, schedule)


def _common(params, x, labels, learning_rate, cfg, chunk_size):
    cfg = validate_config(cfg)
    positive_int("chunk_size", chunk_size)
    dtype = params.weights[0].dtype
    x = prepare_inputs(x, cfg, dtype)
    if np.ndim(labels) != 1 or np.shape(labels)[0] != x.shape[0]:
        raise ValueError(f"labels must be a 1-D array of {x.shape[0]} class labels (one per row of x), "
                         f"got shape {np.shape(labels)}")
    labels = check_labels(jnp.asarray(labels), cfg.n_classes)
    schedule = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), as_schedule(learning_rate))
    return cfg, x, labels.astype(jnp.int32), schedule


def train(params: GLNParams, gating: Gating, x, labels, learning_rate, cfg: GLNConfig = GLNConfig(),
          moments: Moments = None, n_seen=0, chunk_size: int = 256) -> TrainResult:
    """One online pass (batch 1) of all classes' networks over the samples, in order.

    Arguments:
        params: the weights (:func:`dgnlib.gln.init_weights`).
        gating: the hyperplanes (:func:`dgnlib.gln.init_gating`).
        x: samples ``(n, d)`` (see :func:`prepare_inputs`).
        labels: classes ``(n,)`` in ``0 .. n_classes - 1``.
        learning_rate: a positive number or a :class:`dgnlib.gln.Schedule`.
        cfg: the options.
        moments: the standardisation's moments to continue from (None: none seen yet).
        n_seen: samples seen before (the schedule's ``t`` continues from it).
        chunk_size: samples whose gates are computed together (speed only; any value gives the
            same numbers up to round-off).

    Returns:
        A :class:`TrainResult`.
    """
    cfg, x, labels, schedule = _common(params, x, labels, learning_rate, cfg, chunk_size)
    _check_shapes(params, gating, x.shape[1], cfg)
    dtype = x.dtype
    moments = init_moments(x.shape[1], dtype) if moments is None else moments
    return _train_jit(params, gating, moments, jnp.asarray(n_seen, dtype), x, labels, schedule, cfg, chunk_size)


def train_many(params: GLNParams, gating: Gating, x, labels, learning_rate, cfg: GLNConfig = GLNConfig(),
               chunk_size: int = 256) -> TrainResult:
    """:func:`train` for ``S`` independent sets of networks in one scan (learning rates, seeds).

    Arguments:
        params: weights with a leading axis ``S`` on every array.
        gating: hyperplanes with a leading axis ``S`` (one gating per set), or without (shared).
        x, labels: the one sample stream all sets learn from.
        learning_rate: a number, an array ``(S,)`` or a :class:`dgnlib.gln.Schedule` of arrays ``(S,)``.
        cfg: the options.
        chunk_size: as in :func:`train`.

    Returns:
        A :class:`TrainResult` whose arrays carry the leading axis ``S``.
    """
    cfg, x, labels, schedule = _common(params, x, labels, learning_rate, cfg, chunk_size)
    n_sets = params.weights[0].shape[0]
    gating_axis = 0 if np.ndim(gating.hyperplanes[0]) == 5 else None
    _check_shapes(params, gating, x.shape[1], cfg, lead=(n_sets,))
    schedule = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n_sets,)), schedule)
    moments = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n_sets,) + a.shape),
                                     init_moments(x.shape[1], x.dtype))
    return _train_many_jit(params, gating, moments, jnp.zeros((n_sets,), x.dtype), x, labels, schedule,
                           cfg, chunk_size, gating_axis)


def make_stream(x, labels, chunk_size: int = 250, cfg: GLNConfig = GLNConfig(), dtype=jnp.float32) -> Stream:
    """Check a sample stream once and split it into chunks of ``chunk_size`` samples.

    Arguments:
        x: samples ``(n, d)`` (see :func:`prepare_inputs`), ``n`` a multiple of ``chunk_size``.
        labels: classes ``(n,)`` in ``0 .. cfg.n_classes - 1``.
        chunk_size: samples per chunk; :func:`train_segment` starts and stops at chunk boundaries.
        cfg: the options (``standardise`` decides how uint8 pixels are read; ``n_classes``).
        dtype: the float dtype.

    Returns:
        A :class:`Stream`; ``ValueError`` naming the argument for bad input.
    """
    cfg = validate_config(cfg)
    positive_int("chunk_size", chunk_size)
    x = prepare_inputs(x, cfg, dtype)
    n, d = x.shape
    if np.ndim(labels) != 1 or np.shape(labels)[0] != n:
        raise ValueError(f"labels must be a 1-D array of {n} class labels (one per row of x), got shape {np.shape(labels)}")
    if n % chunk_size:
        raise ValueError(f"chunk_size must divide the number of samples {n}, got {chunk_size}")
    labels = check_labels(jnp.asarray(labels), cfg.n_classes).astype(jnp.int32)
    return Stream(x.reshape(-1, chunk_size, d), labels.reshape(-1, chunk_size))


@partial(jax.jit, static_argnames=("cfg", "gating_axis", "many"))
def _segment_jit(params, gating, moments, n_seen, stream, start, stop, schedule, cfg, gating_axis, many):
    def run(p, g, m, t, s):
        def body(i, carry):
            return _chunk(carry, (stream.x[i], stream.labels[i]), g, s, cfg)[0]
        return jax.lax.fori_loop(start, stop, body, (p, m, t))

    if not many:
        return run(params, gating, moments, n_seen, schedule)
    return jax.vmap(run, in_axes=(0, gating_axis, 0, 0, 0))(params, gating, moments, n_seen, schedule)


def check_segment(stream, start, stop) -> None:
    """``TypeError`` unless ``stream`` is a :class:`Stream`; ``ValueError`` naming ``start``/``stop``
    unless ``0 <= start <= stop <= n_chunks`` (ints)."""
    if not isinstance(stream, Stream):
        raise TypeError(f"stream must be a dgnlib.gln.Stream (from make_stream), got {type(stream).__name__}")
    n_chunks = stream.x.shape[0]
    for name, v in (("start", start), ("stop", stop)):
        positive_int(name, v, minimum=0)
    if not start <= stop <= n_chunks:
        raise ValueError(f"start and stop must satisfy 0 <= start <= stop <= {n_chunks} (chunks in the stream), "
                         f"got start={start}, stop={stop}")


def train_segment(params: GLNParams, gating: Gating, stream: Stream, start: int, stop: int, learning_rate,
                  cfg: GLNConfig = GLNConfig(), moments: Moments = None, n_seen=None):
    """Continue online learning over chunks ``start .. stop - 1`` of a stream: one compiled program
    for every ``start``/``stop``, so that a learning curve's checkpoints cost no recompilation.

    Arguments:
        params: the weights of one set, or of ``S`` sets (a leading axis ``S`` on every array).
        gating: the hyperplanes, one per set (leading ``S``) or shared by all sets.
        stream: the samples (:func:`make_stream`).
        start, stop: chunk indices, ``0 <= start <= stop <= n_chunks``.
        learning_rate: a positive number, a :class:`dgnlib.gln.Schedule`, or (for ``S`` sets) arrays ``(S,)``.
        cfg: the options.
        moments: the standardisation's moments so far (None: none seen yet).
        n_seen: samples seen before (the schedule's ``t``; None: 0), ``(S,)`` for ``S`` sets.

    Returns:
        ``(params, moments, n_seen)`` after the segment, each with the leading axis ``S`` for sets.
    """
    cfg = validate_config(cfg)
    check_segment(stream, start, stop)
    many = np.ndim(params.weights[0]) == 5
    lead = (params.weights[0].shape[0],) if many else ()
    _check_shapes(params, gating, stream.x.shape[2], cfg, lead=lead)
    dtype = params.weights[0].dtype
    schedule = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(jnp.asarray(a, dtype), lead),
                                      as_schedule(learning_rate))
    if moments is None:
        moments = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, lead + a.shape),
                                         init_moments(stream.x.shape[2], dtype))
    n_seen = jnp.zeros(lead, dtype) if n_seen is None else jnp.broadcast_to(jnp.asarray(n_seen, dtype), lead)
    gating_axis = 0 if many and np.ndim(gating.hyperplanes[0]) == 5 else None
    return _segment_jit(params, gating, moments, n_seen, stream, jnp.int32(start), jnp.int32(stop), schedule,
                        cfg, gating_axis, many)


def _batch_scores(params, gating, moments, x, cfg):
    std = jnp.sqrt(moments.m2 / jnp.maximum(moments.count, 1.0))
    side, prob = network_inputs(x, moments.mean, std, cfg.standardise)
    bits = gate_bits(gating, side)
    z = input_logits(prob, cfg.eps)  # (T, I)
    bound = logit_bound(cfg.eps)
    for k, (w, b) in enumerate(zip(params.weights, bits)):
        every = jnp.einsum("cnri,ti->tcnr", w, z) if k == 0 else jnp.einsum("cnri,tci->tcnr", w, z)
        shape = every.shape[:3]
        if cfg.gating == "gln":
            row = jnp.broadcast_to(context_index(b), shape)
            h = jnp.take_along_axis(every, row[..., None], axis=-1)[..., 0]
        else:
            h = jnp.einsum("tcnb,tcnb->tcn", jnp.broadcast_to(b, every.shape).astype(w.dtype), every)
        hc = jnp.clip(h, -bound, bound)
        z = jnp.concatenate([jnp.ones(shape[:2] + (1,), h.dtype), hc], axis=-1)
    return h[..., 0]


@partial(jax.jit, static_argnames=("cfg", "chunk_size"))
def _scores_jit(params, gating, moments, x, cfg, chunk_size):
    n, d = x.shape
    size = min(chunk_size, n)
    pad = (-n) % size
    xp = jnp.concatenate([x, jnp.zeros((pad, d), x.dtype)]).reshape(-1, size, d)
    out = jax.lax.map(lambda c: _batch_scores(params, gating, moments, c, cfg), xp)
    return out.reshape(-1, cfg.n_classes)[:n]


def scores(params: GLNParams, gating: Gating, moments: Moments, x, cfg: GLNConfig = GLNConfig(),
           chunk_size: int = 1000):
    """Class scores (the output neurons' unclipped logits) of samples, without learning.

    Arguments:
        params, gating: one set of networks (no leading axis).
        moments: the standardisation's moments (``TrainResult.moments``; ignored without standardisation).
        x: samples ``(n, d)``.
        cfg: the options.
        chunk_size: samples evaluated together (memory only).

    Returns:
        ``(n, n_classes)``; the prediction is the argmax over classes.
    """
    cfg = validate_config(cfg)
    positive_int("chunk_size", chunk_size)
    x = prepare_inputs(x, cfg, params.weights[0].dtype)
    _check_shapes(params, gating, x.shape[1], cfg)
    return _scores_jit(params, gating, moments, x, cfg, chunk_size)


def accuracy(params: GLNParams, gating: Gating, moments: Moments, x, labels, cfg: GLNConfig = GLNConfig()):
    """Fraction of samples whose largest class score is their label.

    Arguments:
        params, gating, moments, x, cfg: as in :func:`scores`.
        labels: ``(n,)``.

    Returns:
        A float.
    """
    s = scores(params, gating, moments, x, cfg)
    labels = np.asarray(labels)
    if labels.shape != (s.shape[0],):
        raise ValueError(f"labels must have shape ({s.shape[0]},), got {labels.shape}")
    return float(np.mean(np.asarray(jnp.argmax(s, axis=1)) == labels))
