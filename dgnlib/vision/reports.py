"""Reports of vision runs, all formatted from data: log lines, result records, Table 1, curves.

* :func:`format_epoch_line`: the log line of one seed after one epoch, from its
  :class:`~dgnlib.vision.EpochMetrics` (the format the CI compares; stable);
* :func:`records_from_history`: a run's result records, one per seed (the contract between the
  training loop, the notebook's ``result.json``, the sweep and Table 1)::

      {"dataset": "mnist", "arch": "1x256", "rule": "exact", "protocol": "hard labels", "seed": 0,
       "metrics": {"epoch": [1, 2, ...], "test_accuracy": [...], ...}}

Table 1 and the curves are made from the records by the shared :mod:`dgnlib.records`:
``format_table(summarize(records), labels=RULE_LABELS)`` (rows = rule, columns = data set x
architecture, mean ± std over seeds) and ``plot_curves(summarize(records, "test_accuracy"))``.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .config import TrainConfig, arch_label, protocol_label
from .metrics import EpochMetrics, history_arrays

__all__ = ["RULE_LABELS", "format_epoch_line", "format_final_line", "records_from_history"]

RULE_LABELS = {"bp": "BP", "exact": "Exact inverse", "linear_threshold": "Linear threshold"}


def format_epoch_line(label: str, seed: int, m: EpochMetrics, i: int = 0) -> str:
    """The log line of seed index ``i`` after one epoch.

    Arguments:
      label: the run's label (:func:`~dgnlib.vision.run_label`), e.g. ``"mnist 1x256 exact"``.
      seed: the seed value printed.
      m: the epoch's metrics (arrays ``(S,)``).
      i: the seed's index in ``m``.

    Returns:
      one stable line (the CI compares it with ``expected_outputs/``)::

        mnist 1x256 exact seed 0 epoch 3: train loss 0.1234 acc 0.9612 | val loss 0.1300 acc 0.9600 |
        test loss 0.1290 acc 0.9610 | solver ok, max steps 7, unit iters 6
    """
    s = m.solver
    ok = "ok" if bool(np.asarray(s.success)[i]) else "FAILED"
    steps = max(int(np.asarray(s.ol_steps)[i]), int(np.asarray(s.cl_steps)[i]))
    g = lambda a: float(np.asarray(a)[i])  # noqa: E731
    return (f"{label} seed {seed} epoch {int(np.asarray(m.epoch)[i])}: "
            f"train loss {g(m.train.loss):.4f} acc {g(m.train.accuracy):.4f} | "
            f"val loss {g(m.val.loss):.4f} acc {g(m.val.accuracy):.4f} | "
            f"test loss {g(m.test.loss):.4f} acc {g(m.test.accuracy):.4f} | "
            f"solver {ok}, max steps {steps}, unit iters {int(np.asarray(s.unit_iterations)[i])}")


def format_final_line(record: Mapping[str, Any], wall_s: Optional[float] = None) -> str:
    """The summary line of one result record (the command line prints it after the runs).

    Arguments:
      record: a result record (:func:`records_from_history`).
      wall_s: the run's wall time (all its seeds); left out when None.

    Returns:
      ``"FINAL mnist 1x256 exact seed 0: epochs 50 val acc 0.9842 test acc 0.9844 wall 177 s"``
      (the last epoch's values).
    """
    m = record["metrics"]
    wall = "" if wall_s is None else f" wall {wall_s:.0f} s"
    return (f"FINAL {record['dataset']} {record['arch']} {record['rule']} seed {record['seed']}: "
            f"epochs {int(m['epoch'][-1])} val acc {float(m['val_accuracy'][-1]):.4f} "
            f"test acc {float(m['test_accuracy'][-1]):.4f}{wall}")


def records_from_history(dataset: str, cfg: TrainConfig, history: Sequence[EpochMetrics]) -> list:
    """The result records of one run.

    Arguments:
      dataset: the data set's name.
      cfg: the run's config (its rule, hidden widths and seeds).
      history: one :class:`~dgnlib.vision.EpochMetrics` per epoch.

    Returns:
      one dict per seed: ``{"dataset", "arch", "rule", "protocol", "seed", "metrics"}``
      (``protocol``: :func:`~dgnlib.vision.protocol_label`), ``metrics`` the per-epoch curves of
      :func:`~dgnlib.vision.history_arrays` as lists (JSON-ready).
    """
    if not history:
        return []
    h = history_arrays(history)
    arch = arch_label(cfg)
    protocol = protocol_label(cfg)
    return [{"dataset": dataset, "arch": arch, "rule": cfg.rule, "protocol": protocol, "seed": int(s),
             "metrics": {k: v[:, i].tolist() for k, v in h.items()}}
            for i, s in enumerate(cfg.seeds)]
