"""The jitted vision epoch: all seeds of a run trained at once, one compiled program per epoch.

Each training step is :func:`dgnlib.dic.training.train_step` (the one training step of the E/I
network and the BP baseline) with ``sample_weights = mask``; nothing here re-implements a rule.

* the data sets live on the device (uint8 pixels are turned into ``pixel / 255`` float32 per
  batch, the paper's scaling, identical to :func:`dgnlib.vision.as_float`);
* every epoch draws a permutation from ``fold_in(run_key, epoch)``, pads the index vector to a
  whole number of batches (:func:`batch_indices`) and ``lax.scan`` s over the batches; padded
  slots carry a zero mask and are left out of every mean (gradients, linear-threshold rate fit,
  batch-averaged Jacobian, metrics), so each training sample is used exactly once per epoch and a
  batch of ``m`` valid samples gives exactly the update of an unpadded batch of ``m`` (the
  paper's code crashed when the batch size did not divide the data);
* soft targets (default 0.99 on the true class, ``(1 - v) / 9`` elsewhere) drive the loss, the
  BP gradient and the controller (``EIConfig.target_value``);
* after the training scan the same program evaluates the validation and test sets open loop
  (chunked, padded and masked the same way) and summarises the solver statistics of every solve
  of the epoch;
* every seed of the :class:`RunState` (its leading *seed* axis) is trained in the same program:
  one after another on one CPU device (``lax.map``), all at once (``jax.vmap``) on accelerators
  and over several devices.

::

    state = init_run(cfg, n_in=784)                       # leading axis: seeds
    state, m = train_epoch(state, data, cfg)              # one epoch, all seeds, one program
    state, sums = train_batch(state, x, y, mask, cfg)     # one step (per-batch loops, tests)
    ev, solver = evaluate_seeds(state.params, x, y, cfg)  # open-loop (E/I) or MLP (bp) metrics
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..checks import check_finite, check_labels, positive_int
from ..dic.learning_rules import RuleState, init_rule_state, mlp_forward
from ..dic.losses import soft_targets, softmax_cross_entropy
from ..dic.network import EIParams, init_params
from ..dic.steady_state import solve_open_loop
from ..dic.training import train_step
from .arrays import VisionArrays, check_split
from .config import TrainConfig, check_config, ei_config
from .metrics import (EpochMetrics, SplitMetrics, StepSums, merge_summaries, reduce_summary,
                      solver_summary)

__all__ = ["RunState", "init_run", "batch_indices", "train_batch", "train_epoch", "evaluate_seeds",
           "check_state", "check_data"]

_F32 = jnp.float32


class RunState(NamedTuple):
    """State of the runs (every leaf has a leading seed axis ``S``).

    ``params``: :class:`~dgnlib.dic.network.EIParams`; ``opt_state``: Adam's; ``rule_state``:
    linear-threshold running rates; ``key``: per-run data key ``(S, 2)`` uint32 (shuffling);
    ``epoch``: ``(S,)`` int32, epochs done.
    """

    params: EIParams
    opt_state: tuple
    rule_state: RuleState
    key: jax.Array
    epoch: jax.Array


def _over_seeds(fn):
    """``fn(per_seed, *shared)`` over the leading seed axis of ``per_seed``.

    On one CPU device the seeds run one after another inside the compiled program (``lax.map``):
    XLA runs one network's operations faster than a vmapped batch of them (batched matrix products,
    batched ``while_loop`` s of the steady-state solves); measured on 2 cores, one seed of a
    3 x 256 training step ran about 2x faster unbatched. Accelerators, and several CPU devices
    (the seeds sharded over them, :func:`dgnlib.sharding.place_run`, which ``lax.map`` would
    gather onto one), get them all at once (``vmap``).
    """
    def over(per_seed, *shared):
        if jax.default_backend() == "cpu" and jax.local_device_count() == 1:
            return jax.lax.map(lambda a: fn(a, *shared), per_seed)
        return jax.vmap(fn, in_axes=(0,) + (None,) * len(shared))(per_seed, *shared)
    return over


def _program_cfg(cfg: TrainConfig) -> TrainConfig:
    """Only what the compiled programs depend on (seed values and epoch count dropped)."""
    return cfg._replace(seeds=(), epochs=0)


def _optimizer(cfg: TrainConfig):
    return optax.adam(cfg.learning_rate)


def _as_input(x):
    """uint8 pixels -> float32 ``pixel / 255``; floats -> float32."""
    if x.dtype == jnp.uint8:
        return x.astype(_F32) / _F32(255.0)
    return x.astype(_F32)


# ----------------------------------------------------------------------------- initial state
def _init_one(key, n_in, cfg):
    k_init, k_data = jax.random.split(key)
    params = init_params(k_init, (n_in,) + cfg.hidden + (cfg.n_classes,))
    return RunState(params, _optimizer(cfg).init(params), init_rule_state(params), k_data,
                    jnp.asarray(0, jnp.int32))


_init_jit = jax.jit(jax.vmap(_init_one, in_axes=(0, None, None)), static_argnums=(1, 2))


def init_run(cfg: TrainConfig, n_in: int = 784, keys=None) -> RunState:
    """Initial :class:`RunState` of all seeds.

    Arguments:
      cfg: the run's :class:`~dgnlib.vision.TrainConfig`.
      n_in: inputs per sample (784 for 28 x 28 images).
      keys: optional ``(S, 2)`` uint32 keys replacing ``PRNGKey(seed)`` for ``cfg.seeds``.

    Returns:
      the state of the ``S = len(cfg.seeds)`` runs: each key split into (init key, data key);
      LeCun-normal kernels, zero biases (:func:`~dgnlib.dic.network.init_params`), 0 epochs done.
    """
    cfg = check_config(cfg)
    n_in = positive_int("n_in", n_in)
    if keys is None:
        keys = jnp.stack([jax.random.PRNGKey(s) for s in cfg.seeds])
    keys = jnp.asarray(keys)
    if keys.ndim != 2 or keys.shape != (len(cfg.seeds), 2) or keys.dtype != jnp.uint32:
        raise ValueError(f"keys must be uint32 of shape ({len(cfg.seeds)}, 2), got {keys.dtype} {keys.shape}")
    # the initial state depends on the widths only (Adam's state does not depend on its rate): one
    # compiled program for every rule, solver and soft target
    shape_cfg = TrainConfig(hidden=cfg.hidden, n_classes=cfg.n_classes, learning_rate=cfg.learning_rate)
    return _init_jit(keys, n_in, shape_cfg)


# ----------------------------------------------------------------------------- batches
def _step_sums(params, opt_state, rule_state, x, labels, mask, cfg: TrainConfig):
    """:func:`~dgnlib.dic.training.train_step` on the valid samples (``mask`` 1) of a padded batch,
    with the settings of ``cfg``; its metrics (weighted means) turned back into sums for the epoch.
    Does not check its data (the callers do, on the host)."""
    w = mask.astype(_F32)
    params, opt_state, rule_state, m = train_step(
        params, opt_state, rule_state, x, labels, rule=cfg.rule, solver=cfg.solver,
        average_jacobian=cfg.average_jacobian, cfg=ei_config(cfg), optimizer=_optimizer(cfg),
        on_failure="flag", lt_min_rate=cfg.lt_min_rate, lt_momentum=cfg.lt_momentum, lt_point=cfg.lt_point,
        sample_weights=w, check_data=False)
    n = jnp.maximum(jnp.sum(w), 1.0)  # the weighted means' denominator: back to sums
    solver = solver_summary() if cfg.rule == "bp" else solver_summary(m.ol_stats, m.cl_stats)
    sums = StepSums(jnp.sum(w), m.loss * n, m.accuracy * n, m.ol_loss * n, m.ol_accuracy * n, solver)
    return params, opt_state, rule_state, sums


def batch_indices(key, n: int, batch_size: int):
    """Shuffled sample indices of one epoch, in whole batches.

    Arguments:
      key: a PRNG key.
      n: the number of samples.
      batch_size: samples per batch.

    Returns:
      ``(idx, mask)``, both ``(ceil(n / batch_size), batch_size)``:
      ``jax.random.permutation(key, n)``, padded at the end with (repeated) valid indices whose
      mask is 0; each sample appears exactly once with mask 1.
    """
    nb = -(-n // batch_size)
    pad = nb * batch_size - n
    perm = jax.random.permutation(key, n)
    idx = jnp.concatenate([perm, perm[jnp.arange(pad) % n]])
    mask = jnp.concatenate([jnp.ones((n,), jnp.bool_), jnp.zeros((pad,), jnp.bool_)])
    return idx.reshape(nb, batch_size), mask.reshape(nb, batch_size)


def _batch_one(state: RunState, x, y, mask, cfg):
    params, opt_state, rule_state, sums = _step_sums(
        state.params, state.opt_state, state.rule_state, _as_input(x), y, mask, cfg)
    return state._replace(params=params, opt_state=opt_state, rule_state=rule_state), sums


_batch_jit = jax.jit(_over_seeds(_batch_one), static_argnums=(4,))


def train_batch(state: RunState, x, y, mask, cfg: TrainConfig):
    """One training step of every seed on the same (padded) batch, jitted.

    Arguments:
      state: the runs' :class:`RunState`.
      x: ``(B, n_in)`` uint8 pixels or finite floats.
      y: ``(B,)`` int labels in ``0 .. n_classes - 1``.
      mask: ``(B,)`` bool, True for the valid samples (at least one): the step equals the step on
        the unpadded batch of the valid samples.
      cfg: the run's :class:`~dgnlib.vision.TrainConfig`.

    Returns:
      ``(state, StepSums)`` (sums over the valid samples, arrays ``(S,)``); ``state.epoch``
      unchanged. Labels and finiteness are checked on the host; shapes are not. For per-batch
      Python loops (benchmark, debugging, tests); :func:`train_epoch` runs the same step.
    """
    cfg = check_config(cfg)
    check_labels(y, cfg.n_classes, "y")
    if jnp.result_type(x) != jnp.uint8:
        check_finite(x, "x")
    return _batch_jit(state, x, y, mask, _program_cfg(cfg))


# ----------------------------------------------------------------------------- evaluation
def _evaluate_one(params, x, y, cfg: TrainConfig):
    """Open-loop (E/I) / MLP (bp) loss and accuracy over all of ``x``, chunked; + solver summary."""
    ei = ei_config(cfg)
    n = x.shape[0]
    B = min(cfg.eval_batch_size, n)
    nb = -(-n // B)
    pad = nb * B - n
    idx = jnp.concatenate([jnp.arange(n), jnp.arange(pad) % n]).reshape(nb, B)
    mask = jnp.concatenate([jnp.ones((n,), _F32), jnp.zeros((pad,), _F32)]).reshape(nb, B)
    n_classes = params.W_out.shape[1]

    def chunk(args):
        i, w = args
        xb, yb = _as_input(x[i]), y[i]
        if cfg.rule == "bp":
            logits, summ = mlp_forward(params, xb, ei), solver_summary()
        else:
            ol, stats = solve_open_loop(params, xb, ei, cfg.solver, on_failure="flag")
            logits, summ = ol.u_out, solver_summary(stats, None)
        ce = softmax_cross_entropy(soft_targets(yb, n_classes, cfg.soft_target), logits)
        correct = (jnp.argmax(logits, axis=-1) == yb).astype(_F32)
        return jnp.sum(w * ce), jnp.sum(w * correct), summ

    loss_s, corr_s, summ = jax.lax.map(chunk, (idx, mask))
    return SplitMetrics(jnp.sum(loss_s) / n, jnp.sum(corr_s) / n), reduce_summary(summ)


_evaluate_jit = jax.jit(_over_seeds(_evaluate_one), static_argnums=(3,))


def evaluate_seeds(params: EIParams, x, y, cfg: TrainConfig):
    """Open-loop (E/I rules) or MLP (bp) evaluation of every seed's parameters, jitted.

    Arguments:
      params: :class:`~dgnlib.dic.network.EIParams` with a leading seed axis (as in
        :class:`RunState`).
      x: uint8 pixels or floats ``(n, n_in)`` (or ``(n, 28, 28)``).
      y: int labels ``(n,)``.
      cfg: the run's :class:`~dgnlib.vision.TrainConfig` (rule, solver, soft target, chunk size).

    Returns:
      ``(SplitMetrics, SolverSummary)`` with arrays of shape ``(S,)``. (One network's metrics:
      :func:`dgnlib.dic.training.evaluate`.)
    """
    cfg = check_config(cfg)
    if not isinstance(params, EIParams):
        raise ValueError(f"params must be an EIParams, got {type(params).__name__}")
    if params.W_out.ndim != 3:
        raise ValueError(f"params must carry a leading seed axis (W_out of shape (S, n_L, n_classes)), "
                         f"got W_out of shape {params.W_out.shape}")
    x, y = check_split("eval", x, y, params.W_out.shape[-1], params.layers[0].W.shape[1])
    return _evaluate_jit(params, x, y, _program_cfg(cfg))


# ----------------------------------------------------------------------------- one epoch
def _epoch_one(state: RunState, data: VisionArrays, cfg: TrainConfig):
    n = data.x_train.shape[0]
    key = jax.random.fold_in(state.key, state.epoch)
    idx, mask = batch_indices(key, n, cfg.batch_size)

    def body(carry, batch):
        params, opt_state, rule_state = carry
        i, m = batch
        xb, yb = _as_input(data.x_train[i]), data.y_train[i]
        params, opt_state, rule_state, sums = _step_sums(params, opt_state, rule_state, xb, yb, m, cfg)
        return (params, opt_state, rule_state), sums

    (params, opt_state, rule_state), sums = jax.lax.scan(
        body, (state.params, state.opt_state, state.rule_state), (idx, mask))
    train = SplitMetrics(jnp.sum(sums.loss) / n, jnp.sum(sums.correct) / n)
    train_ol = SplitMetrics(jnp.sum(sums.ol_loss) / n, jnp.sum(sums.ol_correct) / n)
    val, s_val = _evaluate_one(params, data.x_val, data.y_val, cfg)
    test, s_test = _evaluate_one(params, data.x_test, data.y_test, cfg)
    solver = merge_summaries(merge_summaries(reduce_summary(sums.solver), s_val), s_test)
    epoch = state.epoch + 1
    new_state = RunState(params, opt_state, rule_state, state.key, epoch)
    return new_state, EpochMetrics(epoch, train, train_ol, val, test, solver)


_epoch_jit = jax.jit(_over_seeds(_epoch_one), static_argnums=(2,))


def check_state(state: RunState, cfg: TrainConfig) -> None:
    """Check a run's state against its config.

    Arguments:
      state: the state to check.
      cfg: the run's config.

    Returns:
      None; raises ``ValueError`` unless ``state`` is a :class:`RunState` with a seed axis whose
      widths and class count are those of ``cfg``.
    """
    if not isinstance(state, RunState):
        raise ValueError(f"state must be a RunState (from init_run), got {type(state).__name__}")
    if state.key.ndim != 2:
        raise ValueError(f"state must carry a leading seed axis (key of shape (S, 2)), got {state.key.shape}")
    widths = tuple(layer.W.shape[-1] for layer in state.params.layers)
    if widths != cfg.hidden or state.params.W_out.shape[-1] != cfg.n_classes:
        raise ValueError(f"state has hidden widths {widths} and {state.params.W_out.shape[-1]} outputs but "
                         f"cfg has hidden={cfg.hidden}, n_classes={cfg.n_classes}")


def check_data(data: VisionArrays, state: RunState) -> None:
    """Check a run's data against its state (the jitted epoch does not check its data: a bad
    label would give a silent loss).

    Arguments:
      data: the arrays to check.
      state: the run's state (input width and class count).

    Returns:
      None; raises ``ValueError`` unless ``data`` is a :class:`~dgnlib.vision.VisionArrays` that
      fits ``state``, with labels in range and finite float inputs.
    """
    if not isinstance(data, VisionArrays):
        raise ValueError(f"data must be a VisionArrays (make_arrays / arrays_from_vision_data), got "
                         f"{type(data).__name__}")
    n_in = state.params.layers[0].W.shape[1]
    for split in ("train", "val", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if x.ndim != 2 or x.shape[1] != n_in or y.shape != (x.shape[0],):
            raise ValueError(f"data.x_{split}/y_{split} must have shapes (n, {n_in}) and (n,), got "
                             f"{x.shape} and {y.shape}")
        check_labels(y, state.params.W_out.shape[-1], f"data.y_{split}")
        if x.dtype != jnp.uint8:
            check_finite(x, f"data.x_{split}")


def train_epoch(state: RunState, data: VisionArrays, cfg: TrainConfig):
    """One epoch of every seed, as one jitted program.

    Arguments:
      state: the runs' :class:`RunState` (``state.epoch`` epochs done).
      data: the data set's :class:`~dgnlib.vision.VisionArrays` (shared by all seeds).
      cfg: the run's :class:`~dgnlib.vision.TrainConfig`.

    Returns:
      ``(state, EpochMetrics)`` after shuffling, a scan over the (padded) batches and the
      evaluation of the validation and test sets.
    """
    cfg = check_config(cfg)
    check_state(state, cfg)
    check_data(data, state)
    return _epoch_jit(state, data, _program_cfg(cfg))
