"""The run loop of the vision benchmarks: data sets x rules, all seeds of a run at once.

:func:`run_benchmarks` is the one loop behind the vision notebook (which the sweep runs) and the
command line (``python -m dgnlib.vision train``)::

    results = run_benchmarks(["mnist", "fashion_mnist"], ["bp", "exact", "linear_threshold"],
                             hidden=(256,), epochs=50, seeds=(0, 1, 2))
    results.records      # one result record per data set x rule x seed (dgnlib.vision.reports)
    results.wall_s       # {"mnist 1x256 bp": seconds, ...}
    results.epoch_s      # {"mnist 1x256 bp": {"wall": [per epoch], "cpu": [per epoch]}, ...}

For every data set and rule it builds the config, spreads the seeds over the local devices
(:func:`dgnlib.sharding.place_run`), trains with :func:`~dgnlib.vision.iterate_epochs` (resuming
from ``checkpoint_dir`` when a checkpoint is there) and logs one
:func:`~dgnlib.vision.format_epoch_line` per epoch and seed.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

from ..sharding import place_run
from .arrays import VisionArrays, load_arrays
from .config import RULES, as_choices, make_config, run_label
from .data import DATASETS
from .epoch import init_run
from .loop import checkpoint_path, iterate_epochs
from .reports import format_epoch_line, records_from_history

__all__ = ["BenchmarkResults", "run_benchmarks"]


class BenchmarkResults(NamedTuple):
    """What :func:`run_benchmarks` returns.

    Fields:
      records: the result records, data set x rule x seed, in run order.
      wall_s: ``{run label: seconds}``, the wall time of each run in this call (set-up and
        compilation included; epochs restored from a checkpoint cost nothing here).
      epoch_s: ``{run label: {"wall": [...], "cpu": [...]}}``, each epoch's wall and CPU seconds
        (:class:`~dgnlib.vision.EpochTime`) over all the calls that trained it: a run resumed from a
        checkpoint keeps the times of its earlier epochs (None where the checkpoint predates them).
        JSON-ready, as the sweep's ``result.json`` stores it.
    """

    records: List[dict]
    wall_s: Dict[str, float]
    epoch_s: Dict[str, Dict[str, List[Optional[float]]]]


def run_benchmarks(datasets: Union[str, Sequence[str]], rules: Union[str, Sequence[str]], *,
                   data: Optional[Mapping[str, VisionArrays]] = None, n_train: Optional[int] = None,
                   checkpoint_dir: Optional[Union[str, os.PathLike]] = None,
                   log: Optional[Callable[[str], None]] = print, progress: bool = True,
                   epoch_times: bool = False, **config) -> BenchmarkResults:
    """Train every rule on every data set, all seeds of a run at once; return the results as data.

    Arguments:
      datasets: a data set name or a list of them (:data:`~dgnlib.vision.DATASETS`).
      rules: a rule name or a list of them (:data:`~dgnlib.vision.RULES`).
      data: ``{data set: VisionArrays}`` already loaded; the others are loaded with
        :func:`~dgnlib.vision.load_arrays` (``n_train``), one data set at a time.
      n_train: training-subset size for the data sets loaded here (None: all 54k).
      checkpoint_dir: a folder: each run is saved after every epoch
        (:func:`~dgnlib.vision.checkpoint_path`) and resumes from its file when run again.
      log: receives the epoch lines and resume lines (None: silent).
      progress: a progress bar over each run's epochs.
      epoch_times: end every epoch line with ``| <wall seconds> s`` (or ``| restored``).
      **config: the other :class:`~dgnlib.vision.TrainConfig` fields (``hidden``, ``epochs``,
        ``seeds``, ``learning_rate``, ``soft_target``, ``solver``, ``batch_size``,
        ``average_jacobian``, ...), checked by :func:`~dgnlib.vision.make_config`.

    Returns:
      :class:`BenchmarkResults`: the records (:func:`~dgnlib.vision.records_from_history`), the
      wall time of each run and the wall and CPU time of each of its epochs. Before anything trains: ``ValueError`` for a bad setting (naming
      it), ``epochs`` < 1, or a ``checkpoint_dir`` that is a file.
    """
    datasets = as_choices("datasets", datasets, DATASETS)
    rules = as_choices("rules", rules, RULES)
    if "rule" in config:
        raise ValueError("pass the rules as the argument rules, not rule=")
    cfgs = [make_config(rule=rule, **config) for rule in rules]  # every config checked before training
    if cfgs[0].epochs < 1:
        raise ValueError(f"epochs must be an int >= 1 (the number of epochs to train), got {cfgs[0].epochs}")
    if checkpoint_dir is not None and Path(checkpoint_dir).exists() and not Path(checkpoint_dir).is_dir():
        raise ValueError(f"checkpoint_dir {str(checkpoint_dir)!r} is a file; give a folder (created if missing)")
    data = dict(data or {})
    unknown = sorted(set(data) - set(datasets))
    if unknown:
        raise ValueError(f"data holds data sets {unknown} that are not in datasets={list(datasets)}")
    records, wall, epoch_s = [], {}, {}
    for ds in datasets:
        arrays = data[ds] if ds in data else load_arrays(ds, n_train=n_train)
        for cfg in cfgs:
            label = run_label(ds, cfg)
            t0 = time.perf_counter()
            # seeds spread over all local devices (GPUs / TPU cores); one device: unchanged
            state, run_data = place_run(init_run(cfg, arrays.x_train.shape[1]), arrays)
            ckpt = None if checkpoint_dir is None else checkpoint_path(checkpoint_dir, ds, cfg)
            history, times = [], []
            for state, metrics, took in iterate_epochs(state, run_data, cfg, progress=progress, desc=label,
                                                       checkpoint=ckpt, log=log):
                history.append(metrics)
                times.append(took)
                if log is not None:
                    end = "" if not epoch_times else (" | restored" if took.restored else f" | {took.wall_s:.1f} s")
                    for i, s in enumerate(cfg.seeds):
                        log(format_epoch_line(label, s, metrics, i) + end)
            wall[label] = time.perf_counter() - t0
            epoch_s[label] = {"wall": [t.wall_s for t in times], "cpu": [t.cpu_s for t in times]}
            records += records_from_history(ds, cfg, history)
    return BenchmarkResults(records, wall, epoch_s)
