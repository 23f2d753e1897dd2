"""Static options of a one-vs-all gated linear classifier (GLN or DGN gating).

A :class:`GLNConfig` is hashable (a static ``jit`` argument) and checked whenever it is built, so
no entry point runs with an unknown option or an impossible architecture.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..checks import choice, positive_int
from ..dgn.model import SATURATION_RULES

__all__ = ["GATINGS", "INITIAL_WEIGHTS", "SATURATION_RULES", "GLNConfig", "validate_config"]

GATINGS = ("gln", "dgn")
INITIAL_WEIGHTS = ("zero", "average")


class _GLNConfigFields(NamedTuple):
    n_classes: int = 10
    n_neurons: tuple = (16, 16, 1)
    gating: str = "gln"
    context_dim: int = 4
    n_branches: int = 4
    shared_gates: bool = False
    eps: float = 0.01
    weight_clip: float = 200.0
    saturation_rule: str = "always"
    initial_weight: str = "zero"
    hyperplane_offset: float = 0.0
    standardise: bool = True


class GLNConfig(_GLNConfigFields):
    """Static options of ``n_classes`` binary gated linear networks trained one-vs-all.

    Arguments:
        n_classes: number of classes, one binary network per class (an int >= 2).
        n_neurons: neurons per layer of each binary network, ints >= 1 ending with 1 (the output).
        gating: ``"gln"``: a context table, ``context_dim`` hyperplane bits select one of
            ``2 ** context_dim`` weight vectors per neuron (Veness et al.); ``"dgn"``: summed branches,
            each of ``n_branches`` hyperplanes opens one branch and the effective weights are the sum
            of the open branches' weights (Sezener et al.).
        context_dim: hyperplane bits per neuron for ``"gln"`` (an int in 1..16; ignored by ``"dgn"``).
        n_branches: branches per neuron for ``"dgn"`` (an int >= 1; ignored by ``"gln"``).
        shared_gates: whether the 10 classes' networks share their hyperplanes (the same gates for
            every class; computed once per sample) or each draws its own.
        eps: Bernoulli clipping: every neuron's probability is clipped to ``[eps, 1 - eps]``
            (a number in ``(0, 0.5)``).
        weight_clip: weights are clipped to ``[-weight_clip, weight_clip]`` after each update
            (a positive number; ``math.inf`` turns clipping off).
        saturation_rule: which neurons learn from a sample: ``"always"`` (GLN papers, pygln),
            ``"in_range"`` (only while the unclipped probability lies in ``[eps, 1 - eps]``: the
            gradient of the clipped log loss, DeepMind's GLN library) or ``"error_above_eps"``
            (only while ``|y - p| > eps``: the DGN colab).
        initial_weight: ``"zero"`` (DeepMind) or ``"average"``: each weight vector starts at
            ``1 / I`` (the neuron averages its inputs' logits; pygln), for ``"dgn"`` each branch
            at ``2 / (I * n_branches)`` (about half the branches are open).
        hyperplane_offset: standard deviation of the hyperplanes' random offsets (a bit is
            ``h . s > offset``; 0 puts every hyperplane through the origin).
        standardise: DeepMind's preprocessing: an online mean/std estimate of the inputs (updated
            with each training sample before it is used), side information
            ``s = (x - mean) / (std + 1)`` and network inputs ``sigmoid(s)``. Without it the inputs
            must lie in ``[0, 1]`` and serve both as probabilities and as side information.
    """

    __slots__ = ()

    def __new__(cls, n_classes=10, n_neurons=(16, 16, 1), gating="gln", context_dim=4, n_branches=4,
                shared_gates=False, eps=0.01, weight_clip=200.0, saturation_rule="always",
                initial_weight="zero", hyperplane_offset=0.0, standardise=True):
        try:
            n_neurons = tuple(n_neurons)
        except TypeError:
            raise ValueError(f"n_neurons must be a sequence of ints ending with 1, got {n_neurons!r}") from None
        return _checked(super().__new__(cls, n_classes, n_neurons, gating, context_dim, n_branches,
                                        shared_gates, eps, weight_clip, saturation_rule,
                                        initial_weight, hyperplane_offset, standardise))

    @classmethod
    def _make(cls, iterable):  # used by _replace: route it through the checks of __new__
        return cls(*iterable)

    @property
    def n_gates(self) -> int:
        """Hyperplanes per neuron: ``context_dim`` (``"gln"``) or ``n_branches`` (``"dgn"``)."""
        return self.context_dim if self.gating == "gln" else self.n_branches

    @property
    def n_rows(self) -> int:
        """Weight vectors per neuron: ``2 ** context_dim`` (``"gln"``) or ``n_branches`` (``"dgn"``)."""
        return 2 ** self.context_dim if self.gating == "gln" else self.n_branches


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _number(name, value, low, high, closed_high=False):
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.floating, np.integer))
    if ok:
        ok = low < value < high or (closed_high and value == high)
    if not ok:
        raise ValueError(f"{name} must be a number in ({low}, {high}{']' if closed_high else ')'}, got {value!r}")


def _checked(cfg):
    positive_int("n_classes", cfg.n_classes, minimum=2)
    if len(cfg.n_neurons) == 0:
        raise ValueError("n_neurons must list at least one layer, got ()")
    for k, n in enumerate(cfg.n_neurons):
        positive_int(f"n_neurons[{k}]", n)
    if cfg.n_neurons[-1] != 1:
        raise ValueError(f"n_neurons must end with a single output neuron (last layer 1), got {cfg.n_neurons}")
    choice("gating", cfg.gating, GATINGS)
    positive_int("context_dim", cfg.context_dim)
    if cfg.context_dim > 16:
        raise ValueError(f"context_dim must be at most 16 (a table of 2**context_dim rows per neuron), "
                         f"got {cfg.context_dim}")
    positive_int("n_branches", cfg.n_branches)
    _flag("shared_gates", cfg.shared_gates)
    _number("eps", cfg.eps, 0.0, 0.5)
    _number("weight_clip", cfg.weight_clip, 0.0, math.inf, closed_high=True)
    choice("saturation_rule", cfg.saturation_rule, SATURATION_RULES)
    choice("initial_weight", cfg.initial_weight, INITIAL_WEIGHTS)
    offset = cfg.hyperplane_offset
    if (isinstance(offset, (bool, np.bool_)) or not isinstance(offset, (int, float, np.floating, np.integer))
            or not 0 <= offset < math.inf):
        raise ValueError(f"hyperplane_offset must be a finite number >= 0 (a standard deviation), got {offset!r}")
    _flag("standardise", cfg.standardise)
    return cfg


def validate_config(cfg) -> GLNConfig:
    """Check that ``cfg`` is a :class:`GLNConfig` with valid options.

    Arguments:
        cfg: the object to check.

    Returns:
        ``cfg``; ``TypeError`` for any other object, ``ValueError`` naming a bad option.
    """
    if not isinstance(cfg, GLNConfig):
        raise TypeError(f"cfg must be a dgnlib.gln.GLNConfig, got {type(cfg).__name__}: {cfg!r}")
    return _checked(cfg)
