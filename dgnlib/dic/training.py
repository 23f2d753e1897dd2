"""One training step and evaluation of the dis-inhibitory E/I network (and the BP baseline).

``train_step`` is pure and jittable; ``rule``, ``solver``, ``average_jacobian``, ``cfg``,
``optimizer``, ``on_failure``, ``lt_min_rate``, ``lt_momentum`` and ``check_data`` must be
static (they are checked in Python), e.g.::

    step = jax.jit(train_step, static_argnames=STATIC_ARGNAMES)
    params, opt_state, rule_state, metrics = step(params, opt_state, rule_state, x, labels,
        rule="exact", solver="algebraic", average_jacobian=False, cfg=cfg, optimizer=opt)

so it can be used inside ``lax.scan`` (over batches) and ``vmap`` (over seeds).

Step of the E/I rules (spec section 2): open-loop solve from zero; feedback weights
``Q`` from the OL state; targets from the labels; closed-loop solve from the OL state;
local updates from the CL state, averaged over the batch, passed to the optimizer as
gradients. Reported ``loss``/``accuracy`` are closed-loop for the E/I rules (as in the
paper), ``ol_loss``/``ol_accuracy`` are open-loop (free by-products).

``sample_weights`` ``(B,)`` (e.g. the 0/1 mask of a padded batch, as in the vision epoch of
:mod:`dgnlib.vision.epoch`) weighs every batch mean of the step: loss and accuracy, the BP
gradient, the local gradients, the linear-threshold rate fit and the batch-averaged Jacobian.
This is the only training step of the E/I network (the vision loop, the tests and the
benchmark all call it); the rules' updates are those of :mod:`dgnlib.dic.learning_rules`.
``RULES`` names the rules everywhere in dgnlib (the student-teacher experiment uses its two
local rules, :data:`dgnlib.dic.student_teacher.STUDENTS`).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..checks import check_finite, check_labels, choice
from .network import EIConfig, EIParams, check_config, check_inputs, check_params, feedback_weights
from .learning_rules import (
    LT_POINTS,
    RuleState,
    batch_weights,
    bp_gradients,
    exact_inverse_gradients,
    init_rule_state,
    linear_threshold_gradients,
    mean_cross_entropy,
    mlp_forward,
)
from .losses import soft_targets
from .steady_state import SOLVERS, SolveStats, solve_closed_loop, solve_open_loop

__all__ = [
    "RULES",
    "MODELS",
    "STATIC_ARGNAMES",
    "TrainMetrics",
    "EvalMetrics",
    "init_train_state",
    "make_targets",
    "train_step",
    "evaluate",
]

RULES = ("bp", "exact", "linear_threshold")
MODELS = ("ei", "mlp")
STATIC_ARGNAMES = ("rule", "solver", "average_jacobian", "cfg", "optimizer", "on_failure", "lt_min_rate",
                   "lt_momentum", "lt_point", "check_data")


class TrainMetrics(NamedTuple):
    """Scalars of one step. ``loss``/``accuracy``: CL (E/I rules) or MLP (bp)."""

    loss: jax.Array
    accuracy: jax.Array
    ol_loss: jax.Array
    ol_accuracy: jax.Array
    ol_stats: SolveStats
    cl_stats: SolveStats


class EvalMetrics(NamedTuple):
    """``logits`` ``(B, K)``, mean ``accuracy`` and mean cross-entropy ``loss``."""

    logits: jax.Array
    accuracy: jax.Array
    loss: jax.Array


def init_train_state(params: EIParams, optimizer: optax.GradientTransformation):
    """``(opt_state, rule_state)`` for :func:`train_step`."""
    check_params(params)
    return optimizer.init(params), init_rule_state(params)


def make_targets(y, n_classes: int, cfg: EIConfig = EIConfig(), *, name: str = "y", check: bool = True):
    """``(targets (B, n_classes), labels (B,))`` from integer labels ``(B,)`` or targets ``(B, n_classes)``.

    Integer labels must lie in ``0..n_classes-1`` and become (soft) one-hot targets with
    ``cfg.target_value`` on the true class (1.0 = hard labels, the paper's effective setting);
    float targets must be finite. Bad values raise an error naming ``name`` (host-side, or at
    run time under ``jit``: see :func:`dgnlib.checks.check_labels`). ``check=False`` skips
    these value checks (the caller has checked the data on the host); dtypes and shapes are
    still checked.
    """
    y = jnp.asarray(y) if not isinstance(y, jax.core.Tracer) else y
    if y.ndim == 1:
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise ValueError(f"1-D {name} must hold integer labels, got dtype {y.dtype}")
        if check:
            y = check_labels(y, n_classes, name)
        return soft_targets(y, n_classes, cfg.target_value), y
    if y.ndim == 2 and y.shape[1] == n_classes:
        if check:
            y = check_finite(y, name)
        return y.astype(jnp.float32), jnp.argmax(y, axis=-1)
    raise ValueError(f"{name} must be integer labels (B,) or targets (B, {n_classes}), got shape {y.shape}")


def _batch_metrics(logits, targets, labels, sample_weights=None):
    """(Weighted) batch means of the cross-entropy and of the accuracy."""
    loss = mean_cross_entropy(targets, logits, sample_weights)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    w, n = batch_weights(sample_weights, correct.shape[0], jnp.float32)
    acc = jnp.mean(correct) if w is None else jnp.sum(w * correct) / n
    return loss, acc


def _dummy_stats():
    z = jnp.asarray(0, jnp.int32)
    return SolveStats(z, z, jnp.asarray(0.0, jnp.float32), jnp.asarray(True))


def train_step(params: EIParams, opt_state, rule_state: RuleState, x_batch, y_batch, *,
               rule: str, solver: str = "algebraic", average_jacobian: bool = False,
               cfg: EIConfig = EIConfig(), optimizer: optax.GradientTransformation,
               on_failure: str = "raise", lt_min_rate: float = 1e-3, lt_momentum: float = 0.0,
               lt_point: str = "batch_mean", sample_weights=None, check_data: bool = True):
    """One optimisation step.

    ``x_batch``: ``(B, n_in)``; ``y_batch``: integer labels ``(B,)`` or targets ``(B, K)``
    (``K = n_classes``, the width of ``params.W_out``).
    ``rule``: "bp" | "exact" | "linear_threshold"; ``solver``: "algebraic" | "ode"
    (ignored by "bp"); ``average_jacobian``: batch-average ``Q``; ``on_failure``: "raise" |
    "flag" (see :mod:`dgnlib.dic.steady_state`); ``lt_min_rate``/``lt_momentum``/``lt_point``:
    guard, running-average factor and linearisation point ("batch_mean" | "sample") of the
    linear-threshold fit.
    ``sample_weights``: optional ``(B,)`` weights (bool or float, e.g. the 0/1 mask of the valid
    rows of a padded batch; ``None`` = all ones): every batch mean of the step is
    ``sum_b w_b a_b / max(sum_b w_b, 1)`` (loss, accuracy, BP and local gradients, the
    linear-threshold rate fit, the batch-averaged Jacobian), so rows of weight 0 have no effect
    and a batch with ``m`` valid rows gives the step of the unpadded batch of ``m`` (within
    float32 rounding; all-zero weights give zero gradients, which Adam still counts as a step).
    ``x_batch`` must be finite and integer labels must lie in ``0..K-1``: otherwise a
    ``ValueError`` naming the argument (or, under ``jit``, a runtime error from
    ``equinox.error_if``), never a silent NaN or zero loss. ``check_data=False`` skips these
    value checks, for callers that check their data on the host once (the jitted vision epoch).
    Returns ``(params, opt_state, rule_state, TrainMetrics)``; the metrics are the weighted
    batch means.
    """
    choice("rule", rule, RULES)
    choice("solver", solver, SOLVERS)
    choice("lt_point", lt_point, LT_POINTS)
    if not isinstance(average_jacobian, bool):
        raise ValueError(f"average_jacobian must be a bool, got {average_jacobian!r}")
    check_config(cfg)
    if not isinstance(check_data, bool):
        raise ValueError(f"check_data must be a bool, got {check_data!r}")
    check_inputs(params, x_batch)
    if check_data:
        x_batch = check_finite(x_batch, "x_batch")
    n_classes = params.W_out.shape[1]
    targets, labels = make_targets(y_batch, n_classes, cfg, name="y_batch", check=check_data)
    if targets.shape[0] != x_batch.shape[0]:
        raise ValueError(
            f"y_batch has {targets.shape[0]} samples but x_batch has {x_batch.shape[0]}"
        )
    sw = sample_weights
    if sw is not None:
        if jnp.shape(sw) != (x_batch.shape[0],):
            raise ValueError(f"sample_weights must have shape ({x_batch.shape[0]},) (one weight per "
                             f"sample of x_batch), got {jnp.shape(sw)}")
        dt = np.dtype(sw.dtype if hasattr(sw, "dtype") else np.asarray(sw).dtype)
        if not (dt == np.bool_ or np.issubdtype(dt, np.number)):
            raise ValueError(f"sample_weights must be bool or numeric, got dtype {dt}")
        sw = jnp.asarray(sw).astype(jnp.float32)

    if rule == "bp":
        loss, grads, logits = bp_gradients(params, x_batch, targets, cfg, sample_weights=sw)
        _, acc = _batch_metrics(logits, targets, labels, sw)
        metrics = TrainMetrics(loss, acc, loss, acc, _dummy_stats(), _dummy_stats())
        new_rule_state = rule_state
    else:
        ol, ol_stats = solve_open_loop(params, x_batch, cfg, solver, on_failure=on_failure)
        Q = feedback_weights(params, ol, cfg, average=average_jacobian,
                             sample_weights=sw if average_jacobian else None)
        cl, cl_stats = solve_closed_loop(params, x_batch, targets, Q, ol, cfg, solver,
                                         on_failure=on_failure, state0_is_open_loop=True)
        if rule == "exact":
            grads = exact_inverse_gradients(params, x_batch, cl, cfg, sample_weights=sw)
            new_rule_state = rule_state
        else:
            grads, new_rule_state = linear_threshold_gradients(
                params, x_batch, cl, ol, rule_state, cfg, min_rate=lt_min_rate, momentum=lt_momentum,
                sample_weights=sw, point=lt_point,
            )
        loss, acc = _batch_metrics(cl.u_out, targets, labels, sw)
        ol_loss, ol_acc = _batch_metrics(ol.u_out, targets, labels, sw)
        metrics = TrainMetrics(loss, acc, ol_loss, ol_acc, ol_stats, cl_stats)

    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, new_rule_state, metrics


def evaluate(params: EIParams, x, labels, *, model: str = "ei", cfg: EIConfig = EIConfig(),
             solver: str = "algebraic", on_failure: str = "raise") -> EvalMetrics:
    """Open-loop evaluation: logits, accuracy and cross-entropy (vs ``cfg`` targets).

    ``model="ei"``: logits are the OL ``u_out`` of the E/I network; ``model="mlp"``: the
    BP baseline's MLP. ``labels``: integer ``(B,)`` (or targets ``(B, K)``).
    """
    choice("model", model, MODELS)
    choice("solver", solver, SOLVERS)
    check_inputs(params, x)
    x = check_finite(x, "x")
    n_classes = params.W_out.shape[1]
    targets, lab = make_targets(labels, n_classes, cfg, name="labels")
    if targets.shape[0] != x.shape[0]:
        raise ValueError(f"labels has {targets.shape[0]} samples but x has {x.shape[0]}")
    if model == "ei":
        logits = solve_open_loop(params, x, cfg, solver, on_failure=on_failure)[0].u_out
    else:
        logits = mlp_forward(params, x, cfg)
    loss, acc = _batch_metrics(logits, targets, lab)
    return EvalMetrics(logits, acc, loss)
