"""How the local rules' updates point, measured on one batch: the linear-threshold rule against the
exact rule and BP, and the part of the linear-threshold update that needs no top-down control.

The linear-threshold rule replaces the exact inverse ``phi_I^-1(r_I)`` by a line fitted at a
linearisation point. Away from that point the line is off, so the rule changes weights even when
the controller is silent: evaluated at the open-loop state (``c = 0``) its update is not zero,
while the exact rule's is (its error ``phi_I^-1(phi_I(u_I)) - ...`` vanishes in open loop). That
control-free update is a bias: it does not depend on the target. :func:`rule_alignment` measures,
per hidden layer, its size relative to the full update and how all three rules' updates align.
All updates are in gradient convention (the optimiser steps along minus them), on the weights
``W`` of each hidden layer.
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

import jax.numpy as jnp

from .learning_rules import (
    LT_POINTS,
    bp_gradients,
    exact_inverse_gradients,
    init_rule_state,
    linear_threshold_gradients,
)
from .network import EIConfig, EIParams, check_inputs, feedback_weights
from .steady_state import solve_closed_loop, solve_open_loop
from .training import make_targets
from ..checks import check_finite, choice

__all__ = ["RuleAlignment", "rule_alignment"]


class RuleAlignment(NamedTuple):
    """Per hidden layer (tuples of floats, first layer first), on one batch.

    ``cos_lt_exact``, ``cos_lt_bp``, ``cos_exact_bp``: cosine similarity of the rules' weight
    updates. ``control_free``: norm of the linear-threshold update evaluated at the open-loop
    state (no top-down control), relative to the norm of the full update. ``cos_lt_control_free``:
    cosine of the full linear-threshold update with that control-free part. ``cos_controlled_exact``
    and ``controlled_to_exact``: the rest of the linear-threshold update (full minus control-free,
    the part the control drives) against the exact rule's update: its cosine and its relative norm
    (both near 1 when the fitted line's slope matches the inverse's). ``exact_control_free``: the
    control-free relative norm for the exact rule (zero up to the solver's tolerance: a check).
    """

    cos_lt_exact: Tuple[float, ...]
    cos_lt_bp: Tuple[float, ...]
    cos_exact_bp: Tuple[float, ...]
    control_free: Tuple[float, ...]
    cos_lt_control_free: Tuple[float, ...]
    cos_controlled_exact: Tuple[float, ...]
    controlled_to_exact: Tuple[float, ...]
    exact_control_free: Tuple[float, ...]


def _cos(a, b) -> float:
    a, b = jnp.ravel(a), jnp.ravel(b)
    den = jnp.linalg.norm(a) * jnp.linalg.norm(b)
    return float(jnp.where(den > 0, jnp.dot(a, b) / jnp.where(den > 0, den, 1.0), 0.0))


def _ratio(a, b) -> float:
    nb = float(jnp.linalg.norm(b))
    return float(jnp.linalg.norm(a)) / nb if nb > 0 else 0.0


def rule_alignment(params: EIParams, x, y, *, cfg: EIConfig = EIConfig(), solver: str = "algebraic",
                   lt_point: str = "batch_mean", lt_min_rate: float = 1e-3,
                   on_failure: str = "raise") -> RuleAlignment:
    """Align the exact, linear-threshold and BP updates of ``params`` on the batch ``(x, y)``.

    Arguments:
      params: the network (e.g. one seed's parameters of a trained run).
      x: inputs ``(B, n_in)``; y: integer labels ``(B,)`` or targets ``(B, K)`` (integer labels
        become targets with ``cfg.target_value`` on the true class).
      cfg: the network constants; solver: "algebraic" | "ode".
      lt_point: the linear-threshold rule's linearisation point, "batch_mean" (the paper's: the
        batch's mean open-loop inhibitory rate, as with momentum 0) or "sample".
      lt_min_rate: the rate fit's lower clamp.
      on_failure: "raise" (default) or "flag", as in :func:`~dgnlib.dic.train_step`.

    Returns:
      a :class:`RuleAlignment`: one value per hidden layer for each measure.

    Raises:
      ValueError naming the argument for an unknown ``lt_point``, shapes that do not fit
      ``params``, non-finite ``x`` or labels outside ``0..K-1``;
      :class:`~dgnlib.dic.SteadyStateError` if a steady state is not reached (``on_failure="raise"``).
    """
    choice("lt_point", lt_point, LT_POINTS)
    check_inputs(params, x)
    x = check_finite(x, "x")
    targets, _ = make_targets(y, params.W_out.shape[1], cfg, name="y")
    if targets.shape[0] != x.shape[0]:
        raise ValueError(f"y has {targets.shape[0]} samples but x has {x.shape[0]}")
    ol, _ = solve_open_loop(params, x, cfg, solver, on_failure=on_failure)
    Q = feedback_weights(params, ol, cfg)
    cl, _ = solve_closed_loop(params, x, targets, Q, ol, cfg, solver, on_failure=on_failure,
                              state0_is_open_loop=True)
    rs = init_rule_state(params)
    lt = dict(min_rate=lt_min_rate, momentum=0.0, point=lt_point)
    g_lt, _ = linear_threshold_gradients(params, x, cl, ol, rs, cfg, **lt)
    g_lt0, _ = linear_threshold_gradients(params, x, ol, ol, rs, cfg, **lt)  # no top-down control
    g_ex = exact_inverse_gradients(params, x, cl, cfg)
    g_ex0 = exact_inverse_gradients(params, x, ol, cfg)
    _, g_bp, _ = bp_gradients(params, x, targets, cfg)
    Ws = [tuple(layer.W for layer in g.layers) for g in (g_lt, g_lt0, g_ex, g_ex0, g_bp)]
    lt_W, lt0_W, ex_W, ex0_W, bp_W = Ws
    n = len(params.layers)
    return RuleAlignment(
        cos_lt_exact=tuple(_cos(lt_W[i], ex_W[i]) for i in range(n)),
        cos_lt_bp=tuple(_cos(lt_W[i], bp_W[i]) for i in range(n)),
        cos_exact_bp=tuple(_cos(ex_W[i], bp_W[i]) for i in range(n)),
        control_free=tuple(_ratio(lt0_W[i], lt_W[i]) for i in range(n)),
        cos_lt_control_free=tuple(_cos(lt_W[i], lt0_W[i]) for i in range(n)),
        cos_controlled_exact=tuple(_cos(lt_W[i] - lt0_W[i], ex_W[i]) for i in range(n)),
        controlled_to_exact=tuple(_ratio(lt_W[i] - lt0_W[i], ex_W[i]) for i in range(n)),
        exact_control_free=tuple(_ratio(ex0_W[i], ex_W[i]) for i in range(n)),
    )
