"""Settings of a vision-benchmark run: :class:`TrainConfig`, its checks, and its labels.

``make_config(hidden=(256,), rule="exact", epochs=50, seeds=(0, 1, 2))`` gives a checked,
hashable :class:`TrainConfig` (a static argument of the jitted epoch). :func:`arch_label` and
:func:`run_label` name a configuration in logs, records and checkpoint files
(``"1x256"``, ``"mnist 1x256 exact"``); :func:`as_choices` turns a name or a list of names (a
notebook or sweep parameter) into a checked tuple.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence, Tuple

import numpy as np

from ..checks import choice, finite_number, positive_int, positive_number
from ..textvalues import list_parameter
from ..dic.network import EIConfig
from ..dic.steady_state import SOLVERS
from ..dic.learning_rules import LT_POINTS
from ..dic.training import RULES

__all__ = ["RULES", "SOLVERS", "ON_FAILURE", "TrainConfig", "make_config", "check_config", "ei_config",
           "as_choices", "arch_label", "protocol_label", "run_label"]

ON_FAILURE = ("flag", "raise")


class TrainConfig(NamedTuple):
    """Data-set-independent settings (hashable: a static argument of the jitted epoch).

    ``hidden``: widths of the hidden layers; ``rule``: "bp" | "exact" | "linear_threshold";
    ``solver``: "algebraic" (default) | "ode"; ``batch_size``; ``learning_rate`` (Adam);
    ``epochs``; ``soft_target``: value of the true class in the targets (default 1.0, hard labels:
    the protocol that produced the paper's published numbers; 0.99: the soft targets the paper
    describes);
    ``average_jacobian``: batch-averaged feedback weights; ``seeds``: one run per seed;
    ``eval_batch_size``: chunk size of the open-loop evaluation; ``n_classes``;
    ``lt_min_rate``/``lt_momentum``/``lt_point``: guard, running-average factor and
    linearisation point ("batch_mean", the paper's, or "sample") of the linear-threshold fit; ``on_failure``: "flag" (solver failures are recorded in the metrics,
    :func:`~dgnlib.vision.iterate_epochs` warns) or "raise" (it raises
    :class:`~dgnlib.dic.steady_state.SteadyStateError` after the epoch); ``ei``: network constants
    (its ``target_value`` is replaced by ``soft_target``).
    Build it with :func:`make_config` (checks and normalises the fields).
    """

    hidden: Tuple[int, ...] = (256,)
    rule: str = "exact"
    solver: str = "algebraic"
    batch_size: int = 100
    learning_rate: float = 1e-3
    epochs: int = 50
    soft_target: float = 1.0
    average_jacobian: bool = False
    seeds: Tuple[int, ...] = (0,)
    eval_batch_size: int = 1000
    n_classes: int = 10
    lt_min_rate: float = 1e-3
    lt_momentum: float = 0.0
    lt_point: str = "batch_mean"
    on_failure: str = "flag"
    ei: EIConfig = EIConfig()


def make_config(**fields) -> TrainConfig:
    """A checked :class:`TrainConfig`.

    Arguments:
      **fields: any of :class:`TrainConfig`'s fields; lists become tuples, an int ``hidden`` a
        one-layer tuple, a ``range`` of seeds a tuple.

    Returns:
      the config, checked by :func:`check_config`. Bad values raise ``ValueError`` naming the
      field (unknown field names too).
    """
    unknown = set(fields) - set(TrainConfig._fields)
    if unknown:
        raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}; known: {TrainConfig._fields}")
    return check_config(TrainConfig(**fields))


def check_config(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` checked and normalised (tuples, Python numbers, ``ei.target_value = soft_target``).

    Arguments:
      cfg: a :class:`TrainConfig`.

    Returns:
      the normalised config; a bad field raises ``ValueError`` naming it and its value.
    """
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    hidden = cfg.hidden
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if not isinstance(hidden, (tuple, list)) or len(hidden) < 1:
        raise ValueError(f"hidden must be a non-empty sequence of widths, got {cfg.hidden!r}")
    hidden = tuple(positive_int(f"hidden[{i}]", h) for i, h in enumerate(hidden))
    seeds = tuple(cfg.seeds) if isinstance(cfg.seeds, range) else cfg.seeds
    if not isinstance(seeds, (tuple, list)) or len(seeds) < 1:
        raise ValueError(f"seeds must be a non-empty sequence of seed values, e.g. (0,) or range(3); "
                         f"got {cfg.seeds!r}")
    seeds = tuple(positive_int(f"seeds[{i}]", s, 0) for i, s in enumerate(seeds))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    choice("rule", cfg.rule, RULES)
    choice("solver", cfg.solver, SOLVERS)
    choice("on_failure", cfg.on_failure, ON_FAILURE)
    choice("lt_point", cfg.lt_point, LT_POINTS)
    n_classes = positive_int("n_classes", cfg.n_classes, 2)
    if not isinstance(cfg.average_jacobian, (bool, np.bool_)):
        raise ValueError(f"average_jacobian must be a bool, got {cfg.average_jacobian!r}")
    soft = finite_number("soft_target", cfg.soft_target)
    if not 1.0 / n_classes < soft <= 1.0:
        raise ValueError(f"soft_target must lie in (1/n_classes, 1], got {cfg.soft_target!r}")
    momentum = finite_number("lt_momentum", cfg.lt_momentum)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"lt_momentum must lie in [0, 1), got {cfg.lt_momentum!r}")
    if not isinstance(cfg.ei, EIConfig):
        raise ValueError(f"ei must be an EIConfig, got {type(cfg.ei).__name__}")
    return cfg._replace(
        hidden=hidden, seeds=seeds, batch_size=positive_int("batch_size", cfg.batch_size),
        eval_batch_size=positive_int("eval_batch_size", cfg.eval_batch_size),
        epochs=positive_int("epochs", cfg.epochs, 0), n_classes=n_classes,
        average_jacobian=bool(cfg.average_jacobian),
        learning_rate=positive_number("learning_rate", cfg.learning_rate), soft_target=soft,
        lt_min_rate=positive_number("lt_min_rate", cfg.lt_min_rate), lt_momentum=momentum,
        ei=cfg.ei._replace(target_value=soft),
    )


def ei_config(cfg: TrainConfig) -> EIConfig:
    """The network constants of a run.

    Arguments:
      cfg: a :class:`TrainConfig`.

    Returns:
      ``cfg.ei`` with ``target_value = cfg.soft_target`` (the targets of loss and controller).
    """
    return cfg.ei._replace(target_value=float(cfg.soft_target))


def as_choices(name: str, value, allowed: Sequence[str]) -> Tuple[str, ...]:
    """A name or a sequence of names as a tuple, each one of ``allowed``.

    Arguments:
      name: the argument's name, for the error message.
      value: ``"mnist"`` or ``["mnist", "fashion_mnist"]`` (a notebook or sweep parameter; also the
        text of a list, ``"[mnist, fashion_mnist]"``, as papermill's ``-p`` passes it).
      allowed: the known names.

    Returns:
      ``("mnist",)`` / ``("mnist", "fashion_mnist")``; an unknown or repeated name, or an empty
      sequence, raises ``ValueError`` naming ``name``.
    """
    if isinstance(value, str) and value.strip().startswith("["):
        value = list_parameter(name, value)  # a list given as text (papermill's -p)
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, (tuple, list)) or not names:
        raise ValueError(f"{name} must be one of {tuple(allowed)} or a non-empty list of them, got {value!r}")
    names = tuple(choice(f"{name}[{i}]", v, allowed) for i, v in enumerate(names))
    if len(set(names)) != len(names):
        raise ValueError(f"{name} must not repeat a name, got {list(names)}")
    return names


def arch_label(cfg: TrainConfig) -> str:
    """The architecture's label.

    Arguments:
      cfg: a :class:`TrainConfig`.

    Returns:
      ``"<depth>x<width>"`` of the hidden layers, e.g. ``"1x256"``; mixed widths: ``"256-128"``.
    """
    h = cfg.hidden
    return f"{len(h)}x{h[0]}" if len(set(h)) == 1 else "-".join(map(str, h))


def protocol_label(cfg: TrainConfig) -> str:
    """The label of a run's training protocol (the rows of Table 1's ablations).

    Arguments:
      cfg: a :class:`TrainConfig`.

    Returns:
      ``"hard labels"`` (``soft_target`` 1.0, the paper's code as it ran) or ``"soft targets 0.99"``,
      followed by ``", averaged Jacobian"`` with ``average_jacobian`` and, for the linear-threshold
      rule, ``", lt momentum 0.9"`` / ``", lt point sample"`` when its running average or its
      linearisation point is not the paper's (momentum 0, the minibatch mean).
    """
    parts = ["hard labels" if cfg.soft_target == 1.0 else f"soft targets {cfg.soft_target:g}"]
    if cfg.average_jacobian:
        parts.append("averaged Jacobian")
    if cfg.rule == "linear_threshold" and cfg.lt_momentum != 0.0:
        parts.append(f"lt momentum {cfg.lt_momentum:g}")
    if cfg.rule == "linear_threshold" and cfg.lt_point != "batch_mean":
        parts.append(f"lt point {cfg.lt_point}")
    return ", ".join(parts)


def run_label(dataset: str, cfg: TrainConfig) -> str:
    """The label of a run in the logs, the wall times and the checkpoint file names.

    Arguments:
      dataset: the data set's name.
      cfg: the run's :class:`TrainConfig`.

    Returns:
      ``"<dataset> <arch> <rule>"``, e.g. ``"mnist 1x256 exact"`` (:func:`arch_label`).
    """
    return f"{dataset} {arch_label(cfg)} {cfg.rule}"
