"""The experiments of ``notebooks/dgn_mnist.ipynb``: one online pass with a learning curve, and
forgetting on permuted tasks, for one-vs-all GLN / DGN classifiers and the online MLP.

A :class:`Learner` names a classifier (a :class:`dgnlib.gln.GLNConfig` or a
:class:`dgnlib.gln.MLPConfig`) and its learning rates. Every learning rate and seed of a learner
advances in one compiled program (``S = rates x seeds`` sets); results come back as arrays
(:class:`CurveResult`, :class:`ForgettingResult`), and each checkpoint prints one log line in a
fixed format (:func:`dgnlib.gln.format_curve_line`, :func:`dgnlib.gln.format_task_line`) that CI compares.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import positive_int
from .config import GLNConfig
from .mlp import MLPConfig, init_mlp, mlp_logits, train_mlp_segment
from .params import init
from .schedule import Schedule, as_schedule
from .reports import format_curve_line, format_task_line
from .training import make_stream, prepare_inputs, scores, train_segment

__all__ = ["Learner", "CurveResult", "ForgettingResult", "checkpoint_chunks", "learning_curves",
           "permute_pixels", "permuted_tasks", "best_rate", "with_best_rate"]


class Learner(NamedTuple):
    """A classifier of the experiments.

    Arguments:
        name: its label in logs and plots ("DGN", "GLN", "MLP", ...).
        cfg: a :class:`dgnlib.gln.GLNConfig` (GLN or DGN gating) or a :class:`dgnlib.gln.MLPConfig`.
        learning_rate: a :class:`dgnlib.gln.Schedule` whose fields are numbers or arrays ``(R,)``
            (``R`` rates searched at once), or a number / list of numbers (constant rates).
    """

    name: str
    cfg: object
    learning_rate: object


class CurveResult(NamedTuple):
    """Accuracy on the evaluation split after each checkpoint of one online pass.

    ``samples``: ``(K,)`` samples seen at each checkpoint; ``accuracy``: learner name ->
    ``(R, S, K)`` (rates x seeds x checkpoints); ``rates``: learner name -> the ``(R,)`` maxima of
    its schedules; ``seeds``: ``(S,)``."""

    samples: np.ndarray
    accuracy: dict
    rates: dict
    seeds: np.ndarray


class ForgettingResult(NamedTuple):
    """``matrix``: learner name -> ``(S, T, T)``, entry ``[s, i, j]`` the test accuracy on task ``j``
    after the pass over task ``i`` (every task is evaluated, seen or not); ``seeds``: ``(S,)``."""

    matrix: dict
    seeds: np.ndarray

    def average_final(self, name):
        """``(S,)``: the mean accuracy over all tasks after the last one."""
        return self.matrix[name][:, -1, :].mean(axis=1)

    def drop_first(self, name):
        """``(S,)``: task 1's accuracy after its own pass minus after the last task's."""
        m = self.matrix[name]
        return m[:, 0, 0] - m[:, -1, 0]


def _rates(learning_rate):
    sched = as_schedule(learning_rate)
    arrays = [np.atleast_1d(np.asarray(a, np.float64)) for a in sched]
    n = max(a.shape[0] for a in arrays)
    if any(a.ndim != 1 or a.shape[0] not in (1, n) for a in arrays):
        shapes = ", ".join(f"{f} {np.shape(a)}" for f, a in zip(Schedule._fields, sched))
        raise ValueError(f"learning_rate's maximum, scale and decay must be numbers or arrays of one length "
                         f"(one entry per searched rate), got shapes {shapes}")
    return Schedule(*(np.broadcast_to(a, (n,)) for a in arrays))


def _check_learners(learners):
    if not learners:
        raise ValueError("learners must list at least one Learner, got none")
    names = [getattr(le, "name", None) for le in learners]
    for le in learners:
        if not isinstance(le, Learner):
            raise TypeError(f"learners must hold dgnlib.gln.Learner items, got {type(le).__name__}")
        if not isinstance(le.cfg, (GLNConfig, MLPConfig)):
            raise TypeError(f"learner {le.name!r}: cfg must be a GLNConfig or an MLPConfig, got {type(le.cfg).__name__}")
    if len(set(names)) != len(names):
        raise ValueError(f"learners must have distinct names, got {names}")


def checkpoint_chunks(n_chunks: int) -> np.ndarray:
    """Log-spaced checkpoints of a stream: 1, 2, 4, ... chunks, and the whole stream.

    Arguments:
        n_chunks: chunks in the stream.

    Returns:
        Increasing chunk counts ending with ``n_chunks``.
    """
    positive_int("n_chunks", n_chunks)
    out, k = [], 1
    while k < n_chunks:
        out.append(k)
        k *= 2
    return np.array(out + [n_chunks])


class _Sets(NamedTuple):
    params: object
    gating: object
    moments: object
    n_seen: object


def _init_sets(learner, seeds, n_features, n_rates, dtype):
    keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])
    if isinstance(learner.cfg, MLPConfig):
        one = jax.vmap(lambda k: init_mlp(k, n_features, learner.cfg, dtype))(keys)
        gating = None
    else:
        one, gating = jax.vmap(lambda k: init(k, n_features, learner.cfg, dtype))(keys)
        gating = jax.tree_util.tree_map(lambda a: jnp.tile(a, (n_rates,) + (1,) * (a.ndim - 1)), gating)
    params = jax.tree_util.tree_map(lambda a: jnp.tile(a, (n_rates,) + (1,) * (a.ndim - 1)), one)
    return _Sets(params, gating, None, None)


def _advance(learner, sets, stream, start, stop, schedule):
    if isinstance(learner.cfg, MLPConfig):
        params, n_seen = train_mlp_segment(sets.params, stream, start, stop, schedule, n_seen=sets.n_seen)
        return sets._replace(params=params, n_seen=n_seen)
    params, moments, n_seen = train_segment(sets.params, sets.gating, stream, start, stop, schedule, learner.cfg,
                                            moments=sets.moments, n_seen=sets.n_seen)
    return _Sets(params, sets.gating, moments, n_seen)


_mlp_predict = jax.jit(jax.vmap(lambda p, x: jnp.argmax(mlp_logits(p, x), axis=-1), in_axes=(0, None)))


def _accuracies(learner, sets, x_eval, y_eval):
    """(S,) accuracy of every set on the evaluation samples."""
    if isinstance(learner.cfg, MLPConfig):
        pred = np.asarray(_mlp_predict(sets.params, x_eval))
    else:
        n_sets = sets.params.weights[0].shape[0]
        pick = lambda tree, s: jax.tree_util.tree_map(lambda a: a[s], tree)  # noqa: E731
        pred = np.stack([np.asarray(jnp.argmax(scores(pick(sets.params, s), pick(sets.gating, s),
                                                        pick(sets.moments, s), x_eval, learner.cfg), axis=1))
                         for s in range(n_sets)])
    return (pred == np.asarray(y_eval)[None, :]).mean(axis=1)


def _streams(learners, x, y, chunk_size):
    """One stream per preprocessing: inputs in [0, 1] (MLP, no standardisation) or raw (standardised)."""
    out = {}
    for le in learners:
        std = isinstance(le.cfg, GLNConfig) and le.cfg.standardise
        if std not in out:
            n_classes = le.cfg.n_classes
            out[std] = make_stream(x, y, chunk_size, GLNConfig(n_classes=n_classes, standardise=std))
    return out


def _eval_inputs(learner, x):
    std = isinstance(learner.cfg, GLNConfig) and learner.cfg.standardise
    return x if std else prepare_inputs(x, GLNConfig(standardise=False), name="x_eval")


def learning_curves(learners: Sequence[Learner], x_train, y_train, x_eval, y_eval, seeds: Sequence[int] = (0,),
                    chunk_size: int = 250, dataset: str = "data", log: Optional[Callable[[str], None]] = print,
                    progress: Optional[Callable] = None) -> CurveResult:
    """One online pass (batch 1) of every learner, rate and seed over the same stream, with the
    evaluation accuracy at log-spaced checkpoints (:func:`checkpoint_chunks`).

    Arguments:
        learners: the classifiers (:class:`Learner`; distinct names).
        x_train, y_train: the stream, in order: ``(n, d)`` uint8 pixels or floats in ``[0, 1]``,
            ``n`` a multiple of ``chunk_size``.
        x_eval, y_eval: the evaluation split (validation while searching, test for the final figures).
        seeds: the seeds (gating hyperplanes of GLN / DGN, initial weights of the MLP).
        chunk_size: samples per chunk; checkpoints fall on chunk boundaries.
        dataset: its name in the log lines.
        log: called with each checkpoint's :func:`format_curve_line` (None: silent).
        progress: optional wrapper of the checkpoint iterator (e.g. ``tqdm.auto.tqdm``).

    Returns:
        A :class:`CurveResult`.
    """
    _check_learners(learners)
    seeds = np.asarray([positive_int("seeds[]", s, minimum=0) for s in seeds])
    if seeds.size == 0:
        raise ValueError("seeds must list at least one seed, got none")
    streams = _streams(learners, x_train, y_train, chunk_size)
    n_chunks = next(iter(streams.values())).x.shape[0]
    marks = checkpoint_chunks(n_chunks)
    d = next(iter(streams.values())).x.shape[2]
    accuracy, rates = {}, {}
    for le in learners:
        sched = _rates(le.learning_rate)
        n_rates = sched.maximum.shape[0]
        sets = _init_sets(le, seeds, d, n_rates, jnp.float32)
        flat = Schedule(*(np.repeat(a, len(seeds)) for a in sched))
        x_ev = _eval_inputs(le, x_eval)
        stream = streams[isinstance(le.cfg, GLNConfig) and le.cfg.standardise]
        acc = np.zeros((n_rates, len(seeds), len(marks)))
        start = 0
        steps = progress(list(enumerate(marks)), desc=f"{dataset} {le.name}") if progress else enumerate(marks)
        for k, stop in steps:
            sets = _advance(le, sets, stream, start, int(stop), flat)
            acc[:, :, k] = _accuracies(le, sets, x_ev, y_eval).reshape(n_rates, len(seeds))
            start = int(stop)
            if log is not None:
                for r in range(n_rates):
                    for j, s in enumerate(seeds):
                        log(format_curve_line(dataset, le.name, float(sched.maximum[r]), int(s),
                                              int(stop) * chunk_size, acc[r, j, k]))
        accuracy[le.name] = acc
        rates[le.name] = np.asarray(sched.maximum)
    return CurveResult(marks * chunk_size, accuracy, rates, seeds)


def _best_index(result: CurveResult, name: str) -> int:
    return int(np.argmax(result.accuracy[name][:, :, -1].mean(axis=1)))


def best_rate(result: CurveResult, name: str) -> float:
    """The rate (schedule maximum) of ``name`` with the best mean final accuracy over seeds."""
    return float(result.rates[name][_best_index(result, name)])


def with_best_rate(learner: Learner, result: CurveResult) -> Learner:
    """``learner`` with the one rate of its search that reached the best mean final accuracy
    (:func:`best_rate`), the rest of its schedule kept."""
    k = _best_index(result, learner.name)
    return learner._replace(learning_rate=Schedule(*(float(a[k]) for a in _rates(learner.learning_rate))))


def permute_pixels(x, n_tasks: int, seed: int = 0):
    """Permuted tasks: task 0 is ``x`` itself, task ``k > 0`` a fixed random permutation of its pixels.

    Arguments:
        x: samples ``(n, d)``.
        n_tasks: tasks (an int >= 1).
        seed: seed of the permutations.

    Returns:
        ``(n_tasks, d)`` int permutations.
    """
    positive_int("n_tasks", n_tasks)
    d = np.shape(x)[1]
    rng = np.random.default_rng(seed)
    return np.stack([np.arange(d)] + [rng.permutation(d) for _ in range(n_tasks - 1)])


def permuted_tasks(learners: Sequence[Learner], x_train, y_train, x_test, y_test, n_tasks: int = 5,
                   seeds: Sequence[int] = (0,), permutation_seed: int = 0, chunk_size: int = 250,
                   log: Optional[Callable[[str], None]] = print, progress: Optional[Callable] = None) -> ForgettingResult:
    """Permuted tasks learnt one after another, one online pass each, no task boundary given to the
    learners (weights, moments and the learning-rate schedule's ``t`` simply continue); after each
    task, the test accuracy on every task.

    Arguments:
        learners: the classifiers, one learning rate each.
        x_train, y_train, x_test, y_test: the base task (``n_train`` a multiple of ``chunk_size``).
        n_tasks: tasks (task 1 is the unpermuted data).
        seeds: seeds of the learners.
        permutation_seed: seed of the permutations (:func:`permute_pixels`).
        chunk_size: samples per chunk.
        log: called with :func:`format_task_line` per learner, seed and task (None: silent).
        progress: optional wrapper of the task iterator (e.g. ``tqdm.auto.tqdm``).

    Returns:
        A :class:`ForgettingResult`.
    """
    _check_learners(learners)
    seeds = np.asarray([positive_int("seeds[]", s, minimum=0) for s in seeds])
    perms = permute_pixels(x_train, n_tasks, permutation_seed)
    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    matrix = {}
    for le in learners:
        sched = _rates(le.learning_rate)
        if sched.maximum.shape[0] != 1:
            raise ValueError(f"learner {le.name!r}: permuted_tasks takes one learning rate, got {sched.maximum.shape[0]}")
        tests = [_eval_inputs(le, x_test[:, p]) for p in perms]
        sets = None
        m = np.zeros((len(seeds), n_tasks, n_tasks))
        tasks = progress(range(n_tasks), desc=f"permuted {le.name}") if progress else range(n_tasks)
        for i in tasks:
            stream = next(iter(_streams([le], x_train[:, perms[i]], y_train, chunk_size).values()))
            if sets is None:
                sets = _init_sets(le, seeds, stream.x.shape[2], 1, jnp.float32)
            sets = _advance(le, sets, stream, 0, stream.x.shape[0], Schedule(*(np.repeat(a, len(seeds)) for a in sched)))
            for j in range(n_tasks):
                m[:, i, j] = _accuracies(le, sets, tests[j], y_test)
            if log is not None:
                for k, s in enumerate(seeds):
                    log(format_task_line(le.name, int(s), i + 1, m[k, i]))
        matrix[le.name] = m
    return ForgettingResult(matrix, seeds)
