"""The host loop over epochs of one run, with checkpoints: :func:`iterate_epochs`.

``for state, metrics, took in iterate_epochs(state, data, cfg, checkpoint=path): ...`` runs
:func:`~dgnlib.vision.train_epoch` ``cfg.epochs`` times, with a progress bar, solver-failure
warnings, and (with ``checkpoint=``) the state and metric history saved atomically after every
epoch, with each epoch's wall and CPU seconds (:class:`EpochTime`), so that the cost of a run
interrupted and resumed over several sessions is still known. A run that finds its checkpoint resumes after the last saved epoch and ends with exactly
the numbers of an uninterrupted run. A checkpoint file (:mod:`dgnlib.checkpoint`) carries the
run's identity (:func:`checkpoint_identity`: config and data fingerprints) and is refused by any
other run; its kind string :data:`CHECKPOINT_KIND` and the identity's keys are those of the
files earlier versions of dgnlib wrote, so their checkpoints still resume.
"""
from __future__ import annotations

import hashlib
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import jax
import numpy as np

from .. import checkpoint as ckpt
from ..checks import positive_int
from ..dic.steady_state import SteadyStateError
from .arrays import VisionArrays
from .config import TrainConfig, check_config, run_label
from .epoch import RunState, check_data, check_state, train_epoch
from .metrics import EpochMetrics, empty_history, stack_history

__all__ = ["CHECKPOINT_KIND", "EpochTime", "checkpoint_path", "checkpoint_identity", "save_checkpoint",
           "load_checkpoint", "iterate_epochs"]

# The kind string of vision checkpoints since dgnlib's first checkpoints (module vision_training):
# kept as it was, so that files written then still resume.
CHECKPOINT_KIND = "dgnlib.vision_training.fit"


class EpochTime(NamedTuple):
    """What one epoch of :func:`iterate_epochs` cost: ``wall_s`` (seconds of wall time) and ``cpu_s``
    (seconds of this process's CPU time, all threads: unlike the wall time, it does not count time
    the process waited for cores it shared or was paused), both measured around the epoch's training
    and metric transfer. ``restored``: the epoch was read from the checkpoint, not trained now; its
    times are those saved with it, None when the file predates them."""

    wall_s: Optional[float]
    cpu_s: Optional[float]
    restored: bool = False


def _saved_times(meta: dict, n: int) -> List[EpochTime]:
    """The first ``n`` epochs' times in a checkpoint's metadata (None where it has none)."""
    wall, cpu = (list(meta.get(k) or [])[:n] for k in ("epoch_wall_s", "epoch_cpu_s"))
    wall, cpu = (v + [None] * (n - len(v)) for v in (wall, cpu))
    return [EpochTime(w, c, True) for w, c in zip(wall, cpu)]


def checkpoint_path(directory: str | os.PathLike, dataset: str, cfg: TrainConfig) -> Path:
    """The checkpoint file of one run.

    Arguments:
      directory: the checkpoint folder.
      dataset: the data set's name.
      cfg: the run's config.

    Returns:
      ``<directory>/<dataset>_<depth>x<width>_<rule>.ckpt`` (:func:`~dgnlib.vision.run_label`
      with ``_`` for spaces).
    """
    return Path(directory) / (run_label(dataset, cfg).replace(" ", "_") + ".ckpt")


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


# TrainConfig fields added after checkpoints were first written -> their default (the behaviour before)
ADDED_FIELDS = {"lt_point": "batch_mean"}


def checkpoint_identity(cfg: TrainConfig, data: VisionArrays) -> dict:
    """What a checkpoint must match to be resumed.

    Arguments:
      cfg: the run's config.
      data: the run's arrays.

    Returns:
      ``{"kind", "config", "data"}``: every config field except ``epochs`` (a run may be
      extended; the learning rate under its stored key ``"lr"``, as checkpoints have always
      recorded it; a field of :data:`ADDED_FIELDS` left out at its default, so that older
      checkpoints still resume), and each data array's shape, dtype and SHA-256.
    """
    cfg = check_config(cfg)
    config = {("lr" if k == "learning_rate" else k): v for k, v in _jsonable(cfg).items()}
    del config["epochs"]
    for k, default in ADDED_FIELDS.items():  # fields added later: absent from older checkpoints at their default
        if config.get(k) == default:
            del config[k]
    arrays = {}
    for name, arr in zip(VisionArrays._fields, data):
        host = np.ascontiguousarray(jax.device_get(arr))
        arrays[name] = {"shape": list(host.shape), "dtype": host.dtype.str,
                        "sha256": hashlib.sha256(host.tobytes()).hexdigest()}
    return {"kind": CHECKPOINT_KIND, "config": config, "data": arrays}


def save_checkpoint(path: str | os.PathLike, state: RunState, history: Sequence[EpochMetrics],
                    identity: dict, times: Optional[Sequence[EpochTime]] = None) -> Path:
    """Atomically save a run after an epoch.

    Arguments:
      path: the checkpoint file (:func:`checkpoint_path`).
      state: the runs' state after ``len(history)`` epochs.
      history: one :class:`~dgnlib.vision.EpochMetrics` per epoch done (arrays ``(S,)``).
      identity: :func:`checkpoint_identity` of the run.
      times: one :class:`EpochTime` per epoch done (stored in the metadata as ``epoch_wall_s`` and
        ``epoch_cpu_s``), or None.

    Returns:
      the path written.
    """
    done = {int(e) for e in np.asarray(jax.device_get(state.epoch))}
    if done != {len(history)}:
        raise ValueError(f"state has done epochs {sorted(done)} but history holds {len(history)} epochs")
    if times is not None and len(times) != len(history):
        raise ValueError(f"times holds {len(times)} epochs but history holds {len(history)}")
    from .. import __version__

    meta = {**identity, "epoch": len(history), "jax": jax.__version__, "dgnlib": __version__,
            "platform": jax.devices()[0].platform}
    if times is not None:
        meta.update(epoch_wall_s=[t.wall_s for t in times], epoch_cpu_s=[t.cpu_s for t in times])
    return ckpt.save_pytree(path, {"state": state, "history": stack_history(history)}, meta)


def load_checkpoint(path: str | os.PathLike, like: RunState, identity: dict):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Arguments:
      path: the checkpoint file.
      like: the run's initial state (:func:`~dgnlib.vision.init_run`): the restored state takes
        its layout, devices and sharding.
      identity: :func:`checkpoint_identity` of this run; the file's must match.

    Returns:
      ``(state, history)``. Raises ``FileNotFoundError``,
      :class:`~dgnlib.checkpoint.CheckpointCorruptError` or
      :class:`~dgnlib.checkpoint.CheckpointMismatchError` (other config / data / layout).
    """
    path = Path(path)
    n = ckpt.read_manifest(path)["metadata"].get("epoch")
    if not isinstance(n, int) or n < 1:
        raise ckpt.CheckpointCorruptError(f"checkpoint {path} is damaged: bad epoch count {n!r}")
    template = {"state": like, "history": empty_history(n, like.key.shape[0])}
    tree, _ = ckpt.load_pytree(path, template, expect=identity)
    state, stacked = tree["state"], tree["history"]
    epochs_done = np.asarray(jax.device_get(state.epoch))
    if not (np.all(epochs_done == n) and np.array_equal(stacked.epoch[:, 0], np.arange(1, n + 1))):
        raise ckpt.CheckpointCorruptError(
            f"checkpoint {path} is damaged: state epochs {epochs_done.tolist()} and history epochs "
            f"{stacked.epoch[:, 0].tolist()} disagree with its manifest ({n} epochs)")
    return state, [jax.tree.map(lambda a: a[e], stacked) for e in range(n)]


def iterate_epochs(state: RunState, data: VisionArrays, cfg: TrainConfig, *, epochs: Optional[int] = None,
                   progress: bool = True, desc: str = "", checkpoint: Optional[str | os.PathLike] = None,
                   log: Optional[Callable[[str], None]] = print,
                   ) -> Iterator[Tuple[RunState, EpochMetrics, Optional[float]]]:
    """Generator over the epochs of one run: yields ``(state, metrics, took)`` after each.

    Arguments:
      state: the runs' state (:func:`~dgnlib.vision.init_run`; with ``checkpoint``, the initial one).
      data: the data set's arrays.
      cfg: the run's config.
      epochs: defaults to ``cfg.epochs``; with a checkpoint, the total count since the start of the
        run, not the count still to do.
      progress: a ``tqdm.auto`` bar over epochs (on stderr / a widget), labelled ``desc``.
      checkpoint: a file (:func:`checkpoint_path`) where the state and metric history are saved
        atomically after every epoch. If it exists when the loop starts, it must belong to this
        config and data (else :class:`~dgnlib.checkpoint.CheckpointMismatchError` /
        :class:`~dgnlib.checkpoint.CheckpointCorruptError`); its state replaces ``state``, its
        epochs are yielded first (with the restored state and ``took.restored`` True: their
        times are those saved with them) and training continues from there, with the numbers of
        an uninterrupted run.
      log: receives the resume line (None: silent).

    Returns:
      a generator of ``(state, metrics, took)``, ``took`` an :class:`EpochTime`. Solver failures: a ``RuntimeWarning`` (``cfg.on_failure="flag"``) or
      :class:`~dgnlib.dic.steady_state.SteadyStateError` (``"raise"``) after the epoch.
    """
    cfg = check_config(cfg)
    epochs = cfg.epochs if epochs is None else positive_int("epochs", epochs, 0)
    history, times, identity = [], [], None
    if checkpoint is not None:
        check_state(state, cfg)
        check_data(data, state)
        identity = checkpoint_identity(cfg, data)
        done = sorted({int(e) for e in np.asarray(jax.device_get(state.epoch))})
        if done != [0]:
            raise ValueError(f"with checkpoint=, pass the run's initial state (init_run: 0 epochs done); "
                             f"state has done {done} epochs")
        if Path(checkpoint).exists():
            state, history = load_checkpoint(checkpoint, state, identity)
            times = _saved_times(ckpt.read_manifest(checkpoint)["metadata"], len(history))
            if len(history) > epochs:
                raise ckpt.CheckpointMismatchError(
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
        for metrics, took in zip(list(history), list(times)):
            yield state, metrics, took
        for _ in range(todo):
            t0, c0 = time.perf_counter(), time.process_time()
            state, metrics = train_epoch(state, data, cfg)
            metrics = jax.device_get(metrics)
            took = EpochTime(time.perf_counter() - t0, time.process_time() - c0)
            if not bool(np.all(metrics.solver.success)):
                msg = (f"{cfg.rule}: a steady-state solve failed in epoch {int(np.max(metrics.epoch))} "
                       f"(seeds {[s for s, ok in zip(cfg.seeds, metrics.solver.success) if not ok]})")
                if cfg.on_failure == "raise":
                    raise SteadyStateError(msg)
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
            if checkpoint is not None:
                history.append(metrics)
                times.append(took)
                save_checkpoint(checkpoint, state, history, identity, times)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(val_acc=f"{float(np.mean(metrics.val.accuracy)):.4f}")
            yield state, metrics, took
    finally:
        if bar is not None:
            bar.close()
