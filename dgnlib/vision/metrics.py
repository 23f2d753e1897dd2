"""What a vision epoch reports: metric pytrees (NamedTuples of arrays) and their histories.

:class:`EpochMetrics` holds one epoch of every seed (arrays ``(S,)``): training metrics (closed
loop for the E/I rules), the open-loop metrics of the same training batches, validation and test
metrics (open loop) and a :class:`SolverSummary` of every steady-state solve of the epoch.
:class:`StepSums` are the per-batch sums the epoch adds up. A run's history is a list of
:class:`EpochMetrics`; :func:`history_arrays` stacks it into NumPy curves ``(epochs, S)``, the
source of the result records (:func:`dgnlib.vision.records_from_history`).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..dic.steady_state import SolveStats

__all__ = ["SolverSummary", "StepSums", "SplitMetrics", "EpochMetrics", "solver_summary", "merge_summaries",
           "reduce_summary", "stack_history", "empty_history", "history_arrays"]


class SolverSummary(NamedTuple):
    """Solver statistics over a set of solves: ``ol_steps``/``cl_steps`` (max ODE steps, or
    Newton iterations on ``c`` for the algebraic closed loop), ``unit_iterations`` (max scalar
    Newton iterations), ``residual`` (max ``|tau du/dt|``), ``success`` (all solves succeeded)."""

    ol_steps: jax.Array
    cl_steps: jax.Array
    unit_iterations: jax.Array
    residual: jax.Array
    success: jax.Array


class StepSums(NamedTuple):
    """Sums over the valid samples of one batch: ``n``, ``loss``/``correct`` (CL for the E/I
    rules, the MLP for bp), ``ol_loss``/``ol_correct``, and the solver summary."""

    n: jax.Array
    loss: jax.Array
    correct: jax.Array
    ol_loss: jax.Array
    ol_correct: jax.Array
    solver: SolverSummary


class SplitMetrics(NamedTuple):
    """Mean ``loss`` (cross-entropy vs the soft targets) and ``accuracy`` over a split."""

    loss: jax.Array
    accuracy: jax.Array


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


def solver_summary(ol: Optional[SolveStats] = None, cl: Optional[SolveStats] = None) -> SolverSummary:
    """The summary of one step's solves (jittable).

    Arguments:
      ol, cl: the :class:`~dgnlib.dic.steady_state.SolveStats` of the open-loop and closed-loop
        solves, or None.

    Returns:
      their :class:`SolverSummary`; neither (the bp rule, which solves nothing): zero steps, success.
    """
    z, zf, t = jnp.asarray(0, jnp.int32), jnp.asarray(0.0, jnp.float32), jnp.asarray(True)
    if ol is None and cl is None:
        return SolverSummary(z, z, z, zf, t)
    ol_steps = z if ol is None else ol.steps.astype(jnp.int32)
    cl_steps = z if cl is None else cl.steps.astype(jnp.int32)
    its = [s.unit_iterations.astype(jnp.int32) for s in (ol, cl) if s is not None]
    res = [s.residual.astype(jnp.float32) for s in (ol, cl) if s is not None]
    ok = [s.success for s in (ol, cl) if s is not None]
    return SolverSummary(ol_steps, cl_steps, jnp.max(jnp.stack(its)), jnp.max(jnp.stack(res)),
                         jnp.all(jnp.stack(ok)))


def merge_summaries(a: SolverSummary, b: SolverSummary) -> SolverSummary:
    """Combine two summaries (jittable).

    Arguments:
      a, b: summaries of two sets of solves.

    Returns:
      the summary of both sets together (maxima, all successes).
    """
    return SolverSummary(jnp.maximum(a.ol_steps, b.ol_steps), jnp.maximum(a.cl_steps, b.cl_steps),
                         jnp.maximum(a.unit_iterations, b.unit_iterations),
                         jnp.maximum(a.residual, b.residual), a.success & b.success)


def reduce_summary(s: SolverSummary) -> SolverSummary:
    """Reduce a stacked summary (jittable).

    Arguments:
      s: summaries with a leading axis (e.g. over the batches of a scan).

    Returns:
      one summary of all of them.
    """
    return SolverSummary(jnp.max(s.ol_steps), jnp.max(s.cl_steps), jnp.max(s.unit_iterations),
                         jnp.max(s.residual), jnp.all(s.success))


def stack_history(history: Sequence[EpochMetrics]) -> EpochMetrics:
    """Stack a run's history on the host.

    Arguments:
      history: one :class:`EpochMetrics` per epoch (arrays ``(S,)``).

    Returns:
      one :class:`EpochMetrics` of NumPy arrays ``(epochs, S)`` (the form checkpoints store).
    """
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *history)


def empty_history(n_epochs: int, n_seeds: int) -> EpochMetrics:
    """The template a checkpoint's history is read into.

    Arguments:
      n_epochs, n_seeds: its size.

    Returns:
      zeros shaped and typed like :func:`stack_history` of ``n_epochs`` epochs of ``n_seeds`` seeds.
    """
    z = lambda dt: np.zeros((n_epochs, n_seeds), dt)  # noqa: E731
    split = lambda: SplitMetrics(z(np.float32), z(np.float32))  # noqa: E731
    solver = SolverSummary(z(np.int32), z(np.int32), z(np.int32), z(np.float32), z(np.bool_))
    return EpochMetrics(z(np.int32), split(), split(), split(), split(), solver)


def history_arrays(history: Sequence[EpochMetrics]) -> dict:
    """The curves of a run.

    Arguments:
      history: one :class:`EpochMetrics` per epoch (arrays ``(S,)``).

    Returns:
      NumPy arrays of shape ``(epochs, S)``: keys ``epoch``,
      ``{train,train_ol,val,test}_{loss,accuracy}`` and ``solver_success``.
    """
    out = {"epoch": np.stack([np.asarray(m.epoch) for m in history])}
    for split in ("train", "train_ol", "val", "test"):
        for metric in ("loss", "accuracy"):
            out[f"{split}_{metric}"] = np.stack([np.asarray(getattr(getattr(m, split), metric)) for m in history])
    out["solver_success"] = np.stack([np.asarray(m.solver.success) for m in history])
    return out
