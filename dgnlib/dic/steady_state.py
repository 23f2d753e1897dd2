"""Steady states of the E/I network: one interface, two solvers.

* ``solver="algebraic"`` (default; :mod:`dgnlib.dic.algebraic`): the fixed-point equations
  solved directly, a monotone Newton root per unit and Newton on the K-dim control signal in
  closed loop. Differentiable (implicit derivatives of the unit roots).
* ``solver="ode"`` (:mod:`dgnlib.dic.ode`): the network dynamics integrated with diffrax
  (Tsit5, PID step control) until every sample's own steady-state event fires, as in the
  paper's code. :func:`simulate` returns a trajectory of the same dynamics (for plots).

``W_1 x + b_1`` is computed once per solve. Both solvers return ``(state, stats)``: an
:class:`~dgnlib.dic.network.EIState` and a :class:`~dgnlib.dic.solve_stats.SolveStats`. A
solve that does not reach a steady state is never returned silently: with
``on_failure="raise"`` (default) it raises :class:`~dgnlib.dic.solve_stats.SteadyStateError`
(eagerly) or an Equinox runtime error (under ``jit``/``vmap``, via ``eqx.error_if``); with
``on_failure="flag"`` the state is returned and ``stats.success`` is False, which the caller
must check.
"""
from __future__ import annotations

from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..checks import choice
from .algebraic import algebraic_closed_loop, algebraic_open_loop
from .network import EIConfig, EIParams, EIState, check_config, check_inputs, dynamic_part, input_drive, zero_state
from .ode import ode_steady_state, trajectory
from .solve_stats import SolveStats, SteadyStateError

__all__ = [
    "SOLVERS",
    "ON_FAILURE",
    "SolveStats",
    "SteadyStateError",
    "solve_open_loop",
    "solve_closed_loop",
    "simulate",
]

SOLVERS = ("algebraic", "ode")
ON_FAILURE = ("raise", "flag")


def _check_state(params: EIParams, state0, B: int, name: str = "state0"):
    if not isinstance(state0, EIState):
        raise ValueError(f"{name} must be an EIState (e.g. the open-loop solution), got {type(state0).__name__}")
    ref = zero_state(params, B)
    for field in EIState._fields:
        a, b = getattr(state0, field), getattr(ref, field)
        sa = jax.tree_util.tree_map(jnp.shape, a)
        sb = jax.tree_util.tree_map(jnp.shape, b)
        if sa != sb:
            raise ValueError(f"{name}.{field} must have shapes {sb}, got {sa}")


def _ol_core(params, x, cfg, solver):
    ff0 = input_drive(params, x)
    if solver == "algebraic":
        return algebraic_open_loop(params, ff0, cfg)
    dyn0 = dynamic_part(zero_state(params, x.shape[0], ff0.dtype))
    return ode_steady_state(params, ff0, dyn0, cfg)


def _cl_core(params, x, y, Q, state0, cfg, solver, state0_is_open_loop):
    ff0 = input_drive(params, x)
    if solver == "algebraic":
        return algebraic_closed_loop(params, ff0, y, Q, state0, cfg, state0_is_open_loop)
    return ode_steady_state(params, ff0, dynamic_part(state0), cfg, Q, y)


_ol_jit = jax.jit(_ol_core, static_argnames=("cfg", "solver"))
_cl_jit = jax.jit(_cl_core, static_argnames=("cfg", "solver", "state0_is_open_loop"))
_simulate_jit = jax.jit(trajectory, static_argnames=("cfg",))


def _handle_failure(state, stats, what, solver, cfg, on_failure):
    if on_failure == "flag":
        return state
    hint = (
        f"increase cfg.ode.max_steps (={cfg.ode.max_steps}) or cfg.ode.t1 (={cfg.ode.t1})"
        if solver == "ode"
        else f"increase cfg.algebraic.c_max_iter (={cfg.algebraic.c_max_iter}) / unit_max_iter "
        f"(={cfg.algebraic.unit_max_iter}) or check the inputs for non-finite values"
    )
    if isinstance(stats.success, jax.core.Tracer):
        msg = f"{what} solve with solver={solver!r} did not reach a steady state; {hint}"
        return eqx.error_if(state, jnp.logical_not(stats.success), msg)
    if not bool(np.all(np.asarray(stats.success))):
        raise SteadyStateError(
            f"{what} solve with solver={solver!r} did not reach a steady state: "
            f"steps={np.asarray(stats.steps).max()}, unit_iterations="
            f"{np.asarray(stats.unit_iterations).max()}, residual max|tau du/dt|="
            f"{np.asarray(stats.residual).max():.3g}; {hint}"
        )
    return state


def solve_open_loop(params: EIParams, x, cfg: EIConfig = EIConfig(), solver: str = "algebraic",
                    *, on_failure: str = "raise"):
    """Open-loop steady state (no control) for inputs ``x`` ``(B, n_in)``.

    Returns ``(state, stats)``; ``state.c_int`` and ``state.c`` are zero. ``cfg`` must be
    hashable (it is a static argument). See the module docstring for ``on_failure``.
    """
    choice("solver", solver, SOLVERS)
    choice("on_failure", on_failure, ON_FAILURE)
    check_config(cfg)
    check_inputs(params, x)
    state, stats = _ol_jit(params, x, cfg=cfg, solver=solver)
    state = _handle_failure(state, stats, "open-loop", solver, cfg, on_failure)
    return state, stats


def solve_closed_loop(params: EIParams, x, y, Q, state0: Optional[EIState] = None,
                      cfg: EIConfig = EIConfig(), solver: str = "algebraic", *,
                      on_failure: str = "raise", state0_is_open_loop: bool = False):
    """Closed-loop steady state with targets ``y`` ``(B, K)`` and feedback ``Q``.

    ``Q``: tuple of ``(B, K, n_l)`` or ``(K, n_l)`` (see :func:`~dgnlib.dic.network.feedback_weights`).
    ``state0``: initial state of the ODE (normally the open-loop solution; zeros if None);
    the algebraic solver starts Newton on ``c`` at ``state0.c``. ``state0_is_open_loop=True``
    (static): the caller guarantees that ``state0`` is the open-loop solution of ``params`` and
    ``x`` (e.g. from :func:`solve_open_loop`); the algebraic solver then starts at ``c = 0``
    without re-solving the network there (the ODE solver ignores it). Returns ``(state, stats)``.
    """
    choice("solver", solver, SOLVERS)
    choice("on_failure", on_failure, ON_FAILURE)
    if not isinstance(state0_is_open_loop, bool):
        raise ValueError(f"state0_is_open_loop must be a bool, got {state0_is_open_loop!r}")
    if state0_is_open_loop and state0 is None:
        raise ValueError("state0_is_open_loop=True needs state0 (the open-loop solution), got None")
    check_config(cfg)
    check_inputs(params, x, y=y, Q=Q)
    if state0 is None:
        state0 = zero_state(params, x.shape[0], jnp.result_type(x))
    _check_state(params, state0, x.shape[0])
    state, stats = _cl_jit(params, x, y, tuple(Q), state0, cfg=cfg, solver=solver,
                           state0_is_open_loop=state0_is_open_loop)
    state = _handle_failure(state, stats, "closed-loop", solver, cfg, on_failure)
    return state, stats


def simulate(params: EIParams, x, ts, cfg: EIConfig = EIConfig(), *, y=None, Q=None,
             state0: Optional[EIState] = None):
    """Trajectory of the network dynamics saved at times ``ts`` ``(T,)`` (for plots).

    Open loop if ``Q is None``, else closed loop with targets ``y``. Integrates the whole
    interval ``[0, ts[-1]]`` (no steady-state event). Returns an ``EIState`` whose leaves
    have a leading time axis ``T`` (``c`` included). Raises :class:`SteadyStateError` (a
    ``RuntimeError``) if the ODE solver fails (e.g. the step budget ``cfg.ode.max_steps`` runs out).
    """
    if (Q is None) != (y is None):
        raise ValueError("give both y and Q (closed loop) or neither (open loop)")
    check_config(cfg)
    check_inputs(params, x, y=y, Q=Q)
    ts = jnp.asarray(ts, jnp.float32)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"ts must be a non-empty 1-D array of times, got shape {ts.shape}")
    if state0 is None:
        state0 = zero_state(params, x.shape[0], jnp.result_type(x))
    _check_state(params, state0, x.shape[0])
    traj, ok = _simulate_jit(params, x, ts, y, None if Q is None else tuple(Q), state0, cfg=cfg)
    if not isinstance(ok, jax.core.Tracer) and not bool(ok):
        raise SteadyStateError(
            f"simulate: the ODE solver failed before t={float(ts[-1])} "
            f"(cfg.ode.max_steps={cfg.ode.max_steps} may be too small)"
        )
    return traj
