"""Training loop of the vision benchmarks (MNIST / Fashion-MNIST; spec section 2).

BP baseline, exact-inverse and linear-threshold learning of the dis-inhibitory E/I network,
with the whole epoch as ONE jitted program and several seeds trained at once:

* the data sets live on the device (uint8 pixels are turned into ``pixel / 255`` float32 per
  batch, the paper's scaling, identical to :func:`dgnlib.vision.data.as_float`);
* every epoch draws a permutation from ``fold_in(run_key, epoch)``, pads the index vector to a
  whole number of batches and ``lax.scan`` s over the batches; padded slots carry a zero mask and
  are left out of every mean (gradients, linear-threshold rate fit, batch-averaged Jacobian,
  metrics), so each training sample is used exactly once per epoch and a batch of ``m`` valid
  samples gives exactly the update of an unpadded batch of ``m`` (the paper's code crashed when
  the batch size did not divide the data);
* soft targets (default 0.99 on the true class, ``(1 - v) / 9`` elsewhere) are applied: the same
  targets drive the loss, the BP gradient and the controller (``EIConfig.target_value``; the
  paper's code silently trained on hard labels);
* after the training scan the same program evaluates the validation and test sets open loop
  (chunked, padded and masked the same way) and summarises the solver statistics of every solve
  of the epoch (max steps / iterations, max residual, all-success flag);
* ``jax.vmap`` over the leading *seed* axis of the :class:`RunState` trains all seeds at once.

Public API (pure functions, NamedTuple pytrees, float32)::

    cfg = make_config(hidden=(256,), rule="exact", epochs=50, seeds=(0, 1, 2))
    data = make_arrays(*arrays)  or  arrays_from_vision_data(load_dataset("mnist"))
    state = init_run(cfg, n_in=784)                       # leading axis: seeds
    state, m = train_epoch(state, data, cfg)              # one epoch, all seeds, one program
    ev = evaluate(state.params, x, y, cfg)                # open-loop (E/I) or MLP (bp) metrics
    for state, m in fit(state, data, cfg): ...            # generator over epochs (tqdm bar)

Rules: ``"bp"`` (softplus MLP with the same parameters, autodiff), ``"exact"`` and
``"linear_threshold"`` (E/I network: open-loop solve, feedback weights from the OL state,
closed-loop solve with the controller, local updates from the CL state, Adam). Training metrics
are closed loop for the E/I rules (as in the paper), validation/test open loop.
"""
from __future__ import annotations

import hashlib
import math
import operator
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import checkpoint as _ckpt
from ..checks import check_finite, check_labels
from ..dic.network import EIConfig, EIParams, init_params
from ..dic.training import RULES, train_step
from ..dic.learning_rules import RuleState, init_rule_state, mlp_forward
from ..dic.losses import soft_targets, softmax_cross_entropy
from ..dic.steady_state import SOLVERS, SolveStats, SteadyStateError, solve_open_loop

__all__ = [
    "RULES",
    "SOLVERS",
    "DATASETS",
    "TrainConfig",
    "VisionArrays",
    "RunState",
    "SolverSummary",
    "StepSums",
    "SplitMetrics",
    "EpochMetrics",
    "make_config",
    "ei_config",
    "make_arrays",
    "arrays_from_vision_data",
    "load_arrays",
    "init_run",
    "batch_indices",
    "masked_train_step",
    "train_batch",
    "train_epoch",
    "evaluate",
    "fit",
    "checkpoint_path",
    "checkpoint_identity",
    "save_checkpoint",
    "load_checkpoint",
    "run_name",
    "format_epoch_line",
    "history_arrays",
    "table1",
    "plot_curves",
]

DATASETS = ("mnist", "fashion_mnist")
_ON_FAILURE = ("flag", "raise")
_F32 = jnp.float32


# ----------------------------------------------------------------------------- config
class TrainConfig(NamedTuple):
    """Data-set-independent settings (hashable: a static argument of the jitted epoch).

    ``hidden``: widths of the hidden layers; ``rule``: "bp" | "exact" | "linear_threshold";
    ``solver``: "algebraic" (default) | "ode"; ``batch_size``; ``lr`` (Adam); ``epochs``;
    ``soft_target``: value of the true class in the targets (1.0 = hard labels);
    ``average_jacobian``: batch-averaged feedback weights; ``seeds``: one run per seed;
    ``eval_batch_size``: chunk size of the open-loop evaluation; ``n_classes``;
    ``lt_min_rate``/``lt_momentum``: guard and running-average factor of the linear-threshold
    fit; ``on_failure``: "flag" (solver failures are recorded in the metrics, :func:`fit` warns)
    or "raise" (:func:`fit` raises :class:`~dgnlib.dic.steady_state.SteadyStateError` after the
    epoch); ``ei``: network constants (its ``target_value`` is replaced by ``soft_target``).
    Build it with :func:`make_config` (checks and normalises the fields).
    """

    hidden: Tuple[int, ...] = (256,)
    rule: str = "exact"
    solver: str = "algebraic"
    batch_size: int = 100
    lr: float = 1e-3
    epochs: int = 50
    soft_target: float = 0.99
    average_jacobian: bool = False
    seeds: Tuple[int, ...] = (0,)
    eval_batch_size: int = 1000
    n_classes: int = 10
    lt_min_rate: float = 1e-3
    lt_momentum: float = 0.0
    on_failure: str = "flag"
    ei: EIConfig = EIConfig()


def _positive_int(name, value, minimum=1):
    try:
        v = operator.index(value)
    except TypeError:
        v = None
    if v is None or isinstance(value, bool) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(v)


def _choice(name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def make_config(**kwargs) -> TrainConfig:
    """A checked :class:`TrainConfig`; lists become tuples. Bad values raise ``ValueError``
    naming the field (unknown field names too)."""
    unknown = set(kwargs) - set(TrainConfig._fields)
    if unknown:
        raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}; known: {TrainConfig._fields}")
    return _checked(TrainConfig(**kwargs))


def _checked(cfg: TrainConfig) -> TrainConfig:
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    hidden = cfg.hidden
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if not isinstance(hidden, (tuple, list)) or len(hidden) < 1:
        raise ValueError(f"hidden must be a non-empty sequence of widths, got {cfg.hidden!r}")
    hidden = tuple(_positive_int(f"hidden[{i}]", h) for i, h in enumerate(hidden))
    seeds = tuple(cfg.seeds) if isinstance(cfg.seeds, range) else cfg.seeds
    if not isinstance(seeds, (tuple, list)) or len(seeds) < 1:
        raise ValueError(f"seeds must be a non-empty sequence of seed values, e.g. (0,) or range(3); "
                         f"got {cfg.seeds!r}")
    seeds = tuple(_positive_int(f"seeds[{i}]", s, 0) for i, s in enumerate(seeds))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    _choice("rule", cfg.rule, RULES)
    _choice("solver", cfg.solver, SOLVERS)
    _choice("on_failure", cfg.on_failure, _ON_FAILURE)
    batch_size = _positive_int("batch_size", cfg.batch_size)
    eval_batch_size = _positive_int("eval_batch_size", cfg.eval_batch_size)
    epochs = _positive_int("epochs", cfg.epochs, 0)
    n_classes = _positive_int("n_classes", cfg.n_classes, 2)
    if not isinstance(cfg.average_jacobian, (bool, np.bool_)):
        raise ValueError(f"average_jacobian must be a bool, got {cfg.average_jacobian!r}")
    try:
        lr = float(cfg.lr)
        soft = float(cfg.soft_target)
        min_rate = float(cfg.lt_min_rate)
        momentum = float(cfg.lt_momentum)
    except (TypeError, ValueError) as err:
        raise ValueError(f"lr, soft_target, lt_min_rate, lt_momentum must be numbers ({err})") from None
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number, got {cfg.lr!r}")
    if not 1.0 / n_classes < soft <= 1.0:
        raise ValueError(f"soft_target must lie in (1/n_classes, 1], got {cfg.soft_target!r}")
    if not min_rate > 0:
        raise ValueError(f"lt_min_rate must be > 0, got {cfg.lt_min_rate!r}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"lt_momentum must lie in [0, 1), got {cfg.lt_momentum!r}")
    if not isinstance(cfg.ei, EIConfig):
        raise ValueError(f"ei must be an EIConfig, got {type(cfg.ei).__name__}")
    return cfg._replace(
        hidden=hidden, seeds=seeds, batch_size=batch_size, eval_batch_size=eval_batch_size,
        epochs=epochs, n_classes=n_classes, average_jacobian=bool(cfg.average_jacobian), lr=lr,
        soft_target=soft, lt_min_rate=min_rate, lt_momentum=momentum,
        ei=cfg.ei._replace(target_value=soft),
    )


def ei_config(cfg: TrainConfig) -> EIConfig:
    """The network constants with ``target_value = cfg.soft_target``."""
    return cfg.ei._replace(target_value=float(cfg.soft_target))


def _program_cfg(cfg: TrainConfig) -> TrainConfig:
    """Only what the compiled epoch depends on (seed values and epoch count dropped)."""
    return cfg._replace(seeds=(), epochs=0)


# ----------------------------------------------------------------------------- data
class VisionArrays(NamedTuple):
    """Device arrays of one data set. ``x_*``: uint8 pixels ``(n, n_in)`` (turned into
    ``pixel / 255`` per batch) or float32 inputs ``(n, n_in)``; ``y_*``: int32 labels ``(n,)``."""

    x_train: jax.Array
    y_train: jax.Array
    x_val: jax.Array
    y_val: jax.Array
    x_test: jax.Array
    y_test: jax.Array


def _check_split(name, x, y, n_classes=None, n_in=None):
    x = np.asarray(x) if not isinstance(x, jax.Array) else x
    if x.ndim == 3:
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"x_{name} must have shape (n, n_in) or (n, 28, 28) with n >= 1, got {x.shape}")
    if n_in is not None and x.shape[1] != n_in:
        raise ValueError(f"x_{name} has {x.shape[1]} inputs per sample, expected {n_in}")
    if not (x.dtype == np.uint8 or jnp.issubdtype(x.dtype, jnp.floating)):
        raise ValueError(f"x_{name} must be uint8 pixels or floats, got dtype {x.dtype}")
    if x.dtype != np.uint8:
        x = x.astype(np.float32) if isinstance(x, np.ndarray) else x.astype(_F32)
        check_finite(x, f"x_{name}")
    y = np.asarray(y) if not isinstance(y, jax.Array) else y
    if y.ndim != 1 or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"y_{name} must be 1-D integer labels, got dtype {y.dtype} shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y_{name} has {y.shape[0]} labels but x_{name} has {x.shape[0]} samples")
    if n_classes is not None:
        lo, hi = int(jnp.min(y)), int(jnp.max(y))
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"y_{name} must hold labels in 0..{n_classes - 1}, got range {lo}..{hi}")
    return jnp.asarray(x), jnp.asarray(y, jnp.int32)


def make_arrays(x_train, y_train, x_val, y_val, x_test, y_test, *, n_classes: int = 10) -> VisionArrays:
    """Check shapes/dtypes/labels and put the six arrays on the device (images flattened)."""
    xt, yt = _check_split("train", x_train, y_train, n_classes)
    n_in = xt.shape[1]
    xv, yv = _check_split("val", x_val, y_val, n_classes, n_in)
    xs, ys = _check_split("test", x_test, y_test, n_classes, n_in)
    return VisionArrays(xt, yt, xv, yv, xs, ys)


def arrays_from_vision_data(data, n_validation: int = 6000, n_train: Optional[int] = None) -> VisionArrays:
    """:class:`VisionArrays` from a :class:`dgnlib.vision.data.VisionData`.

    Validation = the FIRST ``n_validation`` training examples (file order), training = the rest
    (its first ``n_train`` when given; ``None`` = all 54k), test = the test split. Pixels stay
    uint8 on the device (4x less memory); the float conversion is ``pixel / 255``.
    """
    from .data import train_validation_split

    split = train_validation_split(data, n_validation)
    x_tr, y_tr = split.x_train, split.y_train
    if n_train is not None:
        n_train = _positive_int("n_train", n_train)
        if n_train > len(x_tr):
            raise ValueError(f"n_train must be at most {len(x_tr)}, got {n_train}")
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    return make_arrays(x_tr, y_tr, split.x_test, split.y_test, data.x_test, data.y_test)


def load_arrays(dataset: str, *, n_train: Optional[int] = None, n_validation: int = 6000,
                **load_kwargs) -> VisionArrays:
    """``arrays_from_vision_data(load_dataset(dataset, **load_kwargs), ...)``; ``dataset``:
    "mnist" | "fashion_mnist" (checked before anything is loaded)."""
    _choice("dataset", dataset, DATASETS)
    from .loading import load_dataset

    return arrays_from_vision_data(load_dataset(dataset, **load_kwargs), n_validation, n_train)


def _as_input(x):
    """uint8 pixels -> float32 ``pixel / 255``; floats -> float32."""
    if x.dtype == jnp.uint8:
        return x.astype(_F32) / _F32(255.0)
    return x.astype(_F32)


# ----------------------------------------------------------------------------- state
class RunState(NamedTuple):
    """State of the runs (every leaf has a leading seed axis ``S``).

    ``params``: :class:`EIParams`; ``opt_state``: Adam's; ``rule_state``: linear-threshold
    running rates; ``key``: per-run data key ``(S, 2)`` uint32 (shuffling); ``epoch``: ``(S,)``
    int32, epochs done.
    """

    params: EIParams
    opt_state: tuple
    rule_state: RuleState
    key: jax.Array
    epoch: jax.Array


def _optimizer(cfg: TrainConfig):
    return optax.adam(cfg.lr)


def _init_one(key, n_in, cfg):
    k_init, k_data = jax.random.split(key)
    params = init_params(k_init, (n_in,) + cfg.hidden + (cfg.n_classes,))
    return RunState(params, _optimizer(cfg).init(params), init_rule_state(params), k_data,
                    jnp.asarray(0, jnp.int32))


def init_run(cfg: TrainConfig, n_in: int = 784, keys=None) -> RunState:
    """Initial :class:`RunState` of all seeds: ``PRNGKey(seed)`` split into (init key, data key).

    ``keys``: optional ``(S, 2)`` uint32 keys replacing ``PRNGKey(seed)`` for ``cfg.seeds``.
    Parameters: LeCun-normal kernels, zero biases (:func:`~dgnlib.dic.network.init_params`).
    """
    cfg = _checked(cfg)
    n_in = _positive_int("n_in", n_in)
    if keys is None:
        keys = jnp.stack([jax.random.PRNGKey(s) for s in cfg.seeds])
    keys = jnp.asarray(keys)
    if keys.ndim != 2 or keys.shape != (len(cfg.seeds), 2) or keys.dtype != jnp.uint32:
        raise ValueError(f"keys must be uint32 of shape ({len(cfg.seeds)}, 2), got {keys.dtype} {keys.shape}")
    return _init_jit(keys, n_in, _program_cfg(cfg))


_init_jit = jax.jit(jax.vmap(_init_one, in_axes=(0, None, None)), static_argnums=(1, 2))


# ----------------------------------------------------------------------------- one step
class SolverSummary(NamedTuple):
    """Solver statistics over a set of solves: ``ol_steps``/``cl_steps`` (max ODE steps, or
    Newton iterations on ``c`` for the algebraic closed loop), ``unit_iterations`` (max scalar
    Newton iterations), ``residual`` (max ``|tau du/dt|``), ``success`` (all solves succeeded)."""

    ol_steps: jax.Array
    cl_steps: jax.Array
    unit_iterations: jax.Array
    residual: jax.Array
    success: jax.Array


def _summary(ol: Optional[SolveStats] = None, cl: Optional[SolveStats] = None) -> SolverSummary:
    z, zf, t = jnp.asarray(0, jnp.int32), jnp.asarray(0.0, _F32), jnp.asarray(True)
    if ol is None and cl is None:
        return SolverSummary(z, z, z, zf, t)
    ol_steps = z if ol is None else ol.steps.astype(jnp.int32)
    cl_steps = z if cl is None else cl.steps.astype(jnp.int32)
    its = [s.unit_iterations.astype(jnp.int32) for s in (ol, cl) if s is not None]
    res = [s.residual.astype(_F32) for s in (ol, cl) if s is not None]
    ok = [s.success for s in (ol, cl) if s is not None]
    return SolverSummary(ol_steps, cl_steps, jnp.max(jnp.stack(its)), jnp.max(jnp.stack(res)),
                         jnp.all(jnp.stack(ok)))


def _merge(a: SolverSummary, b: SolverSummary) -> SolverSummary:
    return SolverSummary(jnp.maximum(a.ol_steps, b.ol_steps), jnp.maximum(a.cl_steps, b.cl_steps),
                         jnp.maximum(a.unit_iterations, b.unit_iterations),
                         jnp.maximum(a.residual, b.residual), a.success & b.success)


def _reduce_summary(s: SolverSummary) -> SolverSummary:
    """Reduce a stacked summary (leading axis) to one."""
    return SolverSummary(jnp.max(s.ol_steps), jnp.max(s.cl_steps), jnp.max(s.unit_iterations),
                         jnp.max(s.residual), jnp.all(s.success))


class StepSums(NamedTuple):
    """Sums over the valid samples of one batch: ``n``, ``loss``/``correct`` (CL for the E/I
    rules, the MLP for bp), ``ol_loss``/``ol_correct``, and the solver summary."""

    n: jax.Array
    loss: jax.Array
    correct: jax.Array
    ol_loss: jax.Array
    ol_correct: jax.Array
    solver: SolverSummary


def masked_train_step(params: EIParams, opt_state, rule_state: RuleState, x, labels, mask,
                      cfg: TrainConfig):
    """One Adam step on the valid samples (``mask`` 1) of a padded batch.

    :func:`dgnlib.dic.training.train_step` with ``sample_weights=mask`` and the settings of
    ``cfg`` (rule, solver, Adam with ``cfg.lr``, ``average_jacobian``, the linear-threshold
    guard and momentum, solver failures flagged), its metrics turned into sums.
    ``x``: float32 ``(B, n_in)``; ``labels``: int ``(B,)``; ``mask``: ``(B,)`` of 0/1 with at
    least one 1. Every batch mean is taken over the valid samples only, so the result is the
    step on the unpadded batch. Soft targets with ``cfg.soft_target`` feed the loss, the BP
    gradient and the controller. Returns ``(params, opt_state, rule_state, StepSums)``.
    The inner step of the jitted epoch: it does not check its data (labels in ``0..K-1``,
    finite ``x``); :func:`make_arrays`, :func:`train_epoch` and :func:`train_batch` do, on the
    host.
    """
    w = mask.astype(_F32)
    params, opt_state, rule_state, m = train_step(
        params, opt_state, rule_state, x, labels, rule=cfg.rule, solver=cfg.solver,
        average_jacobian=cfg.average_jacobian, cfg=ei_config(cfg), optimizer=_optimizer(cfg),
        on_failure="flag", lt_min_rate=cfg.lt_min_rate, lt_momentum=cfg.lt_momentum,
        sample_weights=w, check_data=False)
    n = jnp.maximum(jnp.sum(w), 1.0)  # the weighted means' denominator: back to sums
    solver = _summary() if cfg.rule == "bp" else _summary(m.ol_stats, m.cl_stats)
    sums = StepSums(jnp.sum(w), m.loss * n, m.accuracy * n, m.ol_loss * n, m.ol_accuracy * n, solver)
    return params, opt_state, rule_state, sums


def batch_indices(key, n: int, batch_size: int):
    """Shuffled sample indices ``(n_batches, batch_size)`` and mask of the same shape.

    ``jax.random.permutation(key, n)``, padded at the end to ``ceil(n / batch_size)`` whole
    batches with (repeated) valid indices whose mask is 0: each sample appears exactly once
    with mask 1.
    """
    nb = -(-n // batch_size)
    pad = nb * batch_size - n
    perm = jax.random.permutation(key, n)
    idx = jnp.concatenate([perm, perm[jnp.arange(pad) % n]])
    mask = jnp.concatenate([jnp.ones((n,), jnp.bool_), jnp.zeros((pad,), jnp.bool_)])
    return idx.reshape(nb, batch_size), mask.reshape(nb, batch_size)


# ----------------------------------------------------------------------------- evaluation
class SplitMetrics(NamedTuple):
    """Mean ``loss`` (cross-entropy vs the soft targets) and ``accuracy`` over a split."""

    loss: jax.Array
    accuracy: jax.Array


def _evaluate_one(params, x, y, cfg: TrainConfig):
    """Open-loop (E/I) / MLP (bp) loss and accuracy over all of ``x``, chunked; + solver summary."""
    ei = ei_config(cfg)
    n = x.shape[0]
    B = min(cfg.eval_batch_size, n)
    nb = -(-n // B)
    pad = nb * B - n
    idx = jnp.concatenate([jnp.arange(n), jnp.arange(pad) % n]).reshape(nb, B)
    mask = jnp.concatenate([jnp.ones((n,), _F32), jnp.zeros((pad,), _F32)]).reshape(nb, B)
    K = params.W_out.shape[1]

    def chunk(args):
        i, w = args
        xb, yb = _as_input(x[i]), y[i]
        if cfg.rule == "bp":
            logits, summ = mlp_forward(params, xb, ei), _summary()
        else:
            ol, stats = solve_open_loop(params, xb, ei, cfg.solver, on_failure="flag")
            logits, summ = ol.u_out, _summary(stats, None)
        ce = softmax_cross_entropy(soft_targets(yb, K, cfg.soft_target), logits)
        correct = (jnp.argmax(logits, axis=-1) == yb).astype(_F32)
        return jnp.sum(w * ce), jnp.sum(w * correct), summ

    loss_s, corr_s, summ = jax.lax.map(chunk, (idx, mask))
    return SplitMetrics(jnp.sum(loss_s) / n, jnp.sum(corr_s) / n), _reduce_summary(summ)


_evaluate_jit = jax.jit(jax.vmap(_evaluate_one, in_axes=(0, None, None, None)), static_argnums=(3,))


def evaluate(params: EIParams, x, y, cfg: TrainConfig):
    """Open-loop (E/I rules) or MLP (bp) evaluation of every seed's ``params``.

    ``params``: :class:`EIParams` with a leading seed axis (as in :class:`RunState`);
    ``x``: uint8 pixels or floats ``(n, n_in)`` (or ``(n, 28, 28)``); ``y``: int labels ``(n,)``.
    Returns ``(SplitMetrics, SolverSummary)`` with arrays of shape ``(S,)``.
    """
    cfg = _checked(cfg)
    if not isinstance(params, EIParams):
        raise ValueError(f"params must be an EIParams, got {type(params).__name__}")
    if params.W_out.ndim != 3:
        raise ValueError(f"params must carry a leading seed axis (W_out of shape (S, n_L, K)), "
                         f"got W_out of shape {params.W_out.shape}")
    x, y = _check_split("eval", x, y, params.W_out.shape[-1], params.layers[0].W.shape[1])
    return _evaluate_jit(params, x, y, _program_cfg(cfg))


# ----------------------------------------------------------------------------- one epoch
class EpochMetrics(NamedTuple):
    """Metrics of one epoch (arrays of shape ``(S,)``, one entry per seed).

    ``epoch`` (1-based count of epochs done); ``train``: CL metrics of the E/I rules (MLP for bp),
    averaged over the epoch's batches as training went (sample-weighted); ``train_ol``: the
    open-loop metrics of the same training batches; ``val``/``test``: open-loop (MLP for bp)
    after the epoch; ``solver``: statistics of every solve of the epoch (training and evaluation).
    """

    epoch: jax.Array
    train: SplitMetrics
    train_ol: SplitMetrics
    val: SplitMetrics
    test: SplitMetrics
    solver: SolverSummary


def _epoch_one(state: RunState, data: VisionArrays, cfg: TrainConfig):
    n = data.x_train.shape[0]
    key = jax.random.fold_in(state.key, state.epoch)
    idx, mask = batch_indices(key, n, cfg.batch_size)

    def body(carry, batch):
        params, opt_state, rule_state = carry
        i, m = batch
        xb, yb = _as_input(data.x_train[i]), data.y_train[i]
        params, opt_state, rule_state, sums = masked_train_step(params, opt_state, rule_state, xb, yb, m, cfg)
        return (params, opt_state, rule_state), sums

    (params, opt_state, rule_state), sums = jax.lax.scan(
        body, (state.params, state.opt_state, state.rule_state), (idx, mask))
    train = SplitMetrics(jnp.sum(sums.loss) / n, jnp.sum(sums.correct) / n)
    train_ol = SplitMetrics(jnp.sum(sums.ol_loss) / n, jnp.sum(sums.ol_correct) / n)
    val, s_val = _evaluate_one(params, data.x_val, data.y_val, cfg)
    test, s_test = _evaluate_one(params, data.x_test, data.y_test, cfg)
    solver = _merge(_merge(_reduce_summary(sums.solver), s_val), s_test)
    epoch = state.epoch + 1
    new_state = RunState(params, opt_state, rule_state, state.key, epoch)
    return new_state, EpochMetrics(epoch, train, train_ol, val, test, solver)


_epoch_jit = jax.jit(jax.vmap(_epoch_one, in_axes=(0, None, None)), static_argnums=(2,))


def _check_state(state, cfg):
    if not isinstance(state, RunState):
        raise ValueError(f"state must be a RunState (from init_run), got {type(state).__name__}")
    if state.key.ndim != 2:
        raise ValueError(f"state must carry a leading seed axis (key of shape (S, 2)), got {state.key.shape}")
    widths = tuple(l.W.shape[-1] for l in state.params.layers)
    if widths != cfg.hidden or state.params.W_out.shape[-1] != cfg.n_classes:
        raise ValueError(f"state has hidden widths {widths} and {state.params.W_out.shape[-1]} outputs but "
                         f"cfg has hidden={cfg.hidden}, n_classes={cfg.n_classes}")


def _check_data(data, state):
    if not isinstance(data, VisionArrays):
        raise ValueError(f"data must be a VisionArrays (make_arrays / arrays_from_vision_data), got "
                         f"{type(data).__name__}")
    n_in = state.params.layers[0].W.shape[1]
    for split in ("train", "val", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if x.ndim != 2 or x.shape[1] != n_in or y.shape != (x.shape[0],):
            raise ValueError(f"data.x_{split}/y_{split} must have shapes (n, {n_in}) and (n,), got "
                             f"{x.shape} and {y.shape}")
        # the jitted epoch does not check its data: a bad label would give a silent loss
        check_labels(y, state.params.W_out.shape[-1], f"data.y_{split}")
        if x.dtype != jnp.uint8:
            check_finite(x, f"data.x_{split}")


def train_epoch(state: RunState, data: VisionArrays, cfg: TrainConfig):
    """One epoch of every seed, as one jitted program: shuffle, scan over the (padded) batches,
    evaluate validation and test. Returns ``(state, EpochMetrics)``.
    """
    cfg = _checked(cfg)
    _check_state(state, cfg)
    _check_data(data, state)
    return _epoch_jit(state, data, _program_cfg(cfg))


def _batch_one(state: RunState, x, y, mask, cfg):
    params, opt_state, rule_state, sums = masked_train_step(
        state.params, state.opt_state, state.rule_state, _as_input(x), y, mask, cfg)
    return state._replace(params=params, opt_state=opt_state, rule_state=rule_state), sums


_batch_jit = jax.jit(jax.vmap(_batch_one, in_axes=(0, None, None, None, None)), static_argnums=(4,))


def train_batch(state: RunState, x, y, mask, cfg: TrainConfig):
    """One training step of every seed on the same batch (jitted):
    ``x`` ``(B, n_in)`` uint8 or finite floats, ``y`` ``(B,)`` int labels in ``0..n_classes-1``,
    ``mask`` ``(B,)`` bool (labels and finiteness are checked on the host; shapes are not).
    For per-batch Python loops (benchmark, debugging). Returns ``(state, StepSums)``;
    ``state.epoch`` unchanged."""
    cfg = _checked(cfg)
    check_labels(y, cfg.n_classes, "y")
    if jnp.result_type(x) != jnp.uint8:
        check_finite(x, "x")
    return _batch_jit(state, x, y, mask, _program_cfg(cfg))


# ----------------------------------------------------------------------------- checkpoints
CHECKPOINT_KIND = "dgnlib.vision_training.fit"  # as stored since the first checkpoints: old files still resume


def checkpoint_path(directory: str | os.PathLike, dataset: str, cfg: TrainConfig) -> Path:
    """The checkpoint file of one run in ``directory``: ``<dataset>_<depth>x<width>_<rule>.ckpt``."""
    return Path(directory) / (run_name(dataset, cfg).replace(" ", "_") + ".ckpt")


def _jsonable(value):
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {k: _jsonable(v) for k, v in zip(value._fields, value)}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return repr(value)


def checkpoint_identity(cfg: TrainConfig, data: VisionArrays) -> dict:
    """What a checkpoint must match to be resumed: every config field except ``epochs`` (a run
    may be extended), and each data array's shape, dtype and SHA-256."""
    cfg = _checked(cfg)
    config = _jsonable(cfg)
    del config["epochs"]
    arrays = {}
    for name, arr in zip(VisionArrays._fields, data):
        host = np.ascontiguousarray(jax.device_get(arr))
        arrays[name] = {"shape": list(host.shape), "dtype": host.dtype.str,
                        "sha256": hashlib.sha256(host.tobytes()).hexdigest()}
    return {"kind": CHECKPOINT_KIND, "config": config, "data": arrays}


def _stack(history: Sequence[EpochMetrics]) -> EpochMetrics:
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *history)


def _history_template(n_epochs: int, n_seeds: int) -> EpochMetrics:
    z = lambda dt: np.zeros((n_epochs, n_seeds), dt)  # noqa: E731
    split = lambda: SplitMetrics(z(np.float32), z(np.float32))  # noqa: E731
    solver = SolverSummary(z(np.int32), z(np.int32), z(np.int32), z(np.float32), z(np.bool_))
    return EpochMetrics(z(np.int32), split(), split(), split(), split(), solver)


def save_checkpoint(path: str | os.PathLike, state: RunState, history: Sequence[EpochMetrics],
                    identity: dict) -> Path:
    """Atomically save ``state`` and the per-epoch metrics ``history`` (one :class:`EpochMetrics`
    per epoch done, arrays ``(S,)``) with ``identity`` (:func:`checkpoint_identity`)."""
    done = {int(e) for e in np.asarray(jax.device_get(state.epoch))}
    if done != {len(history)}:
        raise ValueError(f"state has done epochs {sorted(done)} but history holds {len(history)} epochs")
    from .. import __version__

    meta = {**identity, "epoch": len(history), "jax": jax.__version__, "dgnlib": __version__,
            "platform": jax.devices()[0].platform}
    return _ckpt.save(path, {"state": state, "history": _stack(history)}, meta)


def load_checkpoint(path: str | os.PathLike, like: RunState, identity: dict):
    """Read a checkpoint written by :func:`save_checkpoint`: returns ``(state, history)`` with
    ``state`` placed like ``like`` (the run's initial state: same layout, devices, sharding).
    Raises ``FileNotFoundError``, :class:`~dgnlib.checkpoint.CheckpointCorruptError` or
    :class:`~dgnlib.checkpoint.CheckpointMismatchError` (other config / data / layout)."""
    path = Path(path)
    n = _ckpt.read_manifest(path)["metadata"].get("epoch")
    if not isinstance(n, int) or n < 1:
        raise _ckpt.CheckpointCorruptError(f"checkpoint {path} is damaged: bad epoch count {n!r}")
    template = {"state": like, "history": _history_template(n, like.key.shape[0])}
    tree, _ = _ckpt.load(path, template, expect=identity)
    state, stacked = tree["state"], tree["history"]
    epochs_done = np.asarray(jax.device_get(state.epoch))
    if not (np.all(epochs_done == n) and np.array_equal(stacked.epoch[:, 0], np.arange(1, n + 1))):
        raise _ckpt.CheckpointCorruptError(
            f"checkpoint {path} is damaged: state epochs {epochs_done.tolist()} and history epochs "
            f"{stacked.epoch[:, 0].tolist()} disagree with its manifest ({n} epochs)")
    return state, [jax.tree.map(lambda a: a[e], stacked) for e in range(n)]


# ----------------------------------------------------------------------------- fit + logs
def fit(state: RunState, data: VisionArrays, cfg: TrainConfig, *, epochs: Optional[int] = None,
        progress: bool = True, desc: str = "", checkpoint: Optional[str | os.PathLike] = None,
        log: Optional[Callable[[str], None]] = print) -> Iterator[Tuple[RunState, EpochMetrics, Optional[float]]]:
    """Generator over epochs: yields ``(state, metrics, seconds)`` after each epoch.

    ``epochs`` defaults to ``cfg.epochs``; ``progress``: a ``tqdm.auto`` bar over epochs (on
    stderr / a widget). Solver failures: a ``RuntimeWarning`` (``cfg.on_failure="flag"``) or
    :class:`~dgnlib.dic.steady_state.SteadyStateError` (``"raise"``) after the epoch.

    ``checkpoint``: a file (:func:`checkpoint_path`) where the state and metric history are saved
    atomically after every epoch. If it exists when ``fit`` starts, it must belong to this config
    and data (else :class:`~dgnlib.checkpoint.CheckpointMismatchError` /
    :class:`~dgnlib.checkpoint.CheckpointCorruptError`); its state replaces ``state``, its epochs
    are yielded first (with ``seconds=None`` and the restored state) and training continues from
    there, with the numbers of an uninterrupted run. With a checkpoint, ``epochs`` is the total
    count since the start of the run, not the count still to do. ``log`` receives the resume line.
    """
    cfg = _checked(cfg)
    epochs = cfg.epochs if epochs is None else _positive_int("epochs", epochs, 0)
    history, identity = [], None
    if checkpoint is not None:
        _check_state(state, cfg)
        _check_data(data, state)
        identity = checkpoint_identity(cfg, data)
        done = sorted({int(e) for e in np.asarray(jax.device_get(state.epoch))})
        if done != [0]:
            raise ValueError(f"with checkpoint=, pass the run's initial state (init_run: 0 epochs done); "
                             f"state has done {done} epochs")
        if Path(checkpoint).exists():
            state, history = load_checkpoint(checkpoint, state, identity)
            if len(history) > epochs:
                raise _ckpt.CheckpointMismatchError(
                    f"checkpoint {checkpoint} has {len(history)} epochs done, more than the {epochs} asked for")
            if log is not None:
                log(f"{desc or cfg.rule}: resumed from {checkpoint} after epoch {len(history)} of {epochs} "
                    f"(epochs 1-{len(history)} restored, not recomputed)")
        todo = epochs - len(history)
    else:
        todo = epochs
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(history) + todo, initial=len(history), desc=desc or cfg.rule, leave=False)
    try:
        for metrics in list(history):
            yield state, metrics, None
        for _ in range(todo):
            t0 = time.perf_counter()
            state, metrics = train_epoch(state, data, cfg)
            metrics = jax.device_get(metrics)
            seconds = time.perf_counter() - t0
            if not bool(np.all(metrics.solver.success)):
                msg = (f"{cfg.rule}: a steady-state solve failed in epoch {int(np.max(metrics.epoch))} "
                       f"(seeds {[s for s, ok in zip(cfg.seeds, metrics.solver.success) if not ok]})")
                if cfg.on_failure == "raise":
                    raise SteadyStateError(msg)
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
            if checkpoint is not None:
                history.append(metrics)
                save_checkpoint(checkpoint, state, history, identity)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(val_acc=f"{float(np.mean(metrics.val.accuracy)):.4f}")
            yield state, metrics, seconds
    finally:
        if bar is not None:
            bar.close()


def run_name(dataset: str, cfg: TrainConfig) -> str:
    """``"<dataset> <depth>x<width> <rule>"``, e.g. ``"mnist 1x256 exact"`` (mixed widths:
    ``256-128``)."""
    h = cfg.hidden
    arch = f"{len(h)}x{h[0]}" if len(set(h)) == 1 else "-".join(map(str, h))
    return f"{dataset} {arch} {cfg.rule}"


def format_epoch_line(name: str, seed: int, m: EpochMetrics, i: int = 0) -> str:
    """One stable, parseable log line for seed index ``i`` of epoch metrics ``m``::

        mnist 1x256 exact seed 0 epoch 3: train loss 0.1234 acc 0.9612 | val loss 0.1300 acc 0.9600 |
        test loss 0.1290 acc 0.9610 | solver ok, max steps 7, unit iters 6
    """
    s = m.solver
    ok = "ok" if bool(np.asarray(s.success)[i]) else "FAILED"
    steps = max(int(np.asarray(s.ol_steps)[i]), int(np.asarray(s.cl_steps)[i]))
    g = lambda a: float(np.asarray(a)[i])  # noqa: E731
    return (f"{name} seed {seed} epoch {int(np.asarray(m.epoch)[i])}: "
            f"train loss {g(m.train.loss):.4f} acc {g(m.train.accuracy):.4f} | "
            f"val loss {g(m.val.loss):.4f} acc {g(m.val.accuracy):.4f} | "
            f"test loss {g(m.test.loss):.4f} acc {g(m.test.accuracy):.4f} | "
            f"solver {ok}, max steps {steps}, unit iters {int(np.asarray(s.unit_iterations)[i])}")


def history_arrays(history: Sequence[EpochMetrics]) -> dict:
    """Stack a list of per-epoch metrics into NumPy arrays of shape ``(epochs, S)``: keys
    ``epoch``, ``{train,train_ol,val,test}_{loss,accuracy}``, ``solver_success``."""
    out = {"epoch": np.stack([np.asarray(m.epoch) for m in history])}
    for split in ("train", "train_ol", "val", "test"):
        for metric in ("loss", "accuracy"):
            out[f"{split}_{metric}"] = np.stack([np.asarray(getattr(getattr(m, split), metric)) for m in history])
    out["solver_success"] = np.stack([np.asarray(m.solver.success) for m in history])
    return out


RULE_LABELS = {"bp": "BP", "exact": "Exact inverse", "linear_threshold": "Linear threshold"}


def table1(results: dict, rules: Sequence[str] = RULES, metric: str = "test_accuracy") -> str:
    """Text table like the paper's Table 1: rows = rules, columns = (data set, depth).

    ``results[(dataset, arch, rule)]`` = :func:`history_arrays` dict; the cell is the last epoch's
    ``metric`` in percent: mean ± sample std (ddof 1) over seeds, or the single value for one seed.
    """
    cols = []
    for (ds, arch, _r) in results:
        if (ds, arch) not in cols:
            cols.append((ds, arch))
    header = ["rule"] + [f"{ds} {arch}" for ds, arch in cols]
    rows = []
    n_seeds = set()
    for rule in rules:
        row = [RULE_LABELS.get(rule, rule)]
        for ds, arch in cols:
            h = results.get((ds, arch, rule))
            if h is None:
                row.append("-")
                continue
            v = 100.0 * np.asarray(h[metric], np.float64)[-1]
            n_seeds.add(v.size)
            row.append(f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if v.size > 1 else f"{v.mean():.2f}")
        rows.append(row)
    widths = [max(len(r[j]) for r in [header] + rows) for j in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    n_txt = "/".join(str(n) for n in sorted(n_seeds)) or "0"
    spread = "mean ± std over" if max(n_seeds, default=1) > 1 else "one run each,"
    title = f"{metric.replace('_', ' ')} (%) after the last epoch, {spread} n={n_txt} seed(s)"
    return "\n".join([title, fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def plot_curves(results: dict, dataset: str, arch: str, rules: Sequence[str] = RULES, axes=None):
    """Accuracy and loss against epoch for the ``rules`` of one (data set, architecture), side by
    side: test (solid) and validation (dashed), mean over seeds with a +-1 std band.
    ``results`` as in :func:`table1`. Returns the two axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for j, metric in enumerate(("accuracy", "loss")):
        ax = axes[j]
        for k, rule in enumerate(rules):
            h = results.get((dataset, arch, rule))
            if h is None:
                continue
            ep = np.asarray(h["epoch"])[:, 0]
            for split, style in (("test", "-"), ("val", "--")):
                v = np.asarray(h[f"{split}_{metric}"], np.float64)
                mu, sd = v.mean(1), v.std(1)
                label = f"{RULE_LABELS.get(rule, rule)} ({'validation' if split == 'val' else 'test'})"
                ax.plot(ep, mu, style, color=f"C{k}", label=label)
                if v.shape[1] > 1:
                    ax.fill_between(ep, mu - sd, mu + sd, color=f"C{k}", alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (E/I: open loop)" if metric == "accuracy" else "cross-entropy (soft targets)")
        ax.set_title(f"{dataset} {arch}: {metric}")
    axes[0].legend(fontsize=8)
    return axes


# ----------------------------------------------------------------------------- command line
def main(argv=None) -> int:
    """``python -m dgnlib.vision.training --dataset mnist --rule exact --epochs 50``: one run per
    (data set, rule), printing one :func:`format_epoch_line` per epoch and seed, then a summary."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m dgnlib.vision.training", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", nargs="+", default=["mnist"], help=f"any of {DATASETS}")
    p.add_argument("--rule", nargs="+", default=list(RULES), help=f"any of {RULES}")
    p.add_argument("--hidden", nargs="+", type=int, default=[256])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--solver", default="algebraic", help=f"any of {SOLVERS}")
    p.add_argument("--soft-target", type=float, default=0.99)
    p.add_argument("--n-train", type=int, default=None, help="first N of the 54k training examples")
    p.add_argument("--average-jacobian", action="store_true")
    p.add_argument("--compilation-cache", action="store_true")
    p.add_argument("--checkpoint-dir", default=None,
                   help="save every run's state after each epoch here; a re-run resumes from it")
    args = p.parse_args(argv)
    for ds in args.dataset:
        _choice("dataset", ds, DATASETS)
    if args.compilation_cache:
        from ..runtime import enable_compilation_cache

        enable_compilation_cache()
    from ..sharding import place_run

    for ds in args.dataset:
        data = load_arrays(ds, n_train=args.n_train)
        for rule in args.rule:
            cfg = make_config(hidden=tuple(args.hidden), rule=rule, solver=args.solver,
                              batch_size=args.batch_size, epochs=args.epochs, seeds=tuple(args.seeds),
                              soft_target=args.soft_target, average_jacobian=args.average_jacobian)
            name = run_name(ds, cfg)
            t0 = time.perf_counter()
            m = None
            ckpt = None if args.checkpoint_dir is None else checkpoint_path(args.checkpoint_dir, ds, cfg)
            state0, run_data = place_run(init_run(cfg, data.x_train.shape[1]), data)  # seeds over devices
            for _, m, sec in fit(state0, run_data, cfg, progress=False, checkpoint=ckpt, desc=name):
                took = "restored" if sec is None else f"{sec:.1f} s"
                for i, s in enumerate(cfg.seeds):
                    print(format_epoch_line(name, s, m, i) + f" | {took}", flush=True)
            wall = time.perf_counter() - t0
            if m is not None:
                for i, s in enumerate(cfg.seeds):
                    print(f"FINAL {name} seed {s}: epochs {int(m.epoch[i])} val acc {float(m.val.accuracy[i]):.4f} "
                          f"test acc {float(m.test.accuracy[i]):.4f} wall {wall:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
