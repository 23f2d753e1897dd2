"""The ODE path of the E/I network: its dynamics integrated to a steady state with diffrax.

Tsit5 with PID step control (:class:`~dgnlib.dic.network.ODESettings`) from the initial state
until the steady-state event fires. The event is checked per sample, as in the paper's code
(which solves every sample on its own): it fires once every sample's own ``rms(du/dt)`` is below
``event_atol + event_rtol * rms(its state)`` (:func:`per_sample_steady_state_event`), so a large
or slow sample neither loosens nor ends the solve of the others. The batch shares one step size.

:func:`ode_steady_state` returns ``(state, SolveStats)`` without checking success (public entry
points: :mod:`dgnlib.dic.steady_state`, ``solver="ode"``); :func:`trajectory` integrates a whole
interval and saves the states (behind :func:`dgnlib.dic.steady_state.simulate`).
"""
from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp

from .network import (EIConfig, EIParams, EIState, ODESettings, control_signal, dynamic_part, input_drive,
                      steady_state_residual, vector_field)
from .solve_stats import SolveStats

__all__ = ["pid_controller", "per_sample_steady_state_event", "ode_steady_state", "trajectory"]


def pid_controller(o: ODESettings) -> diffrax.PIDController:
    """diffrax's PID step-size controller with the settings ``o``."""
    return diffrax.PIDController(
        rtol=o.rtol, atol=o.atol, pcoeff=o.pcoeff, icoeff=o.icoeff, dcoeff=o.dcoeff,
        dtmin=o.dtmin, dtmax=o.dtmax, factormin=o.factormin, factormax=o.factormax,
    )


def _ode_pieces(cfg: EIConfig):
    def f(t, dyn, args):
        params, ff0, Q, y = args
        return vector_field(params, ff0, dyn, cfg, Q, y)

    return diffrax.ODETerm(f), diffrax.Tsit5(), pid_controller(cfg.ode)


def _per_sample_rms(tree):
    """Root mean square over everything of each sample (leading axis) of a pytree: ``(B,)``."""
    leaves = jax.tree_util.tree_leaves(tree)
    sq = sum(jnp.sum(jnp.reshape(a * a, (a.shape[0], -1)), axis=1) for a in leaves)
    return jnp.sqrt(sq / sum(a[0].size for a in leaves))


def per_sample_steady_state_event(rtol: float, atol: float):
    """Steady-state condition of a batched solve, checked sample by sample.

    A ``cond_fn`` for ``diffrax.Event``: true once EVERY sample ``b`` satisfies
    ``rms(du_b/dt) < atol + rtol * rms(u_b)`` (rms over that sample's whole state, as
    ``diffrax.steady_state_event`` computes it for one sample). This is the criterion of the
    paper's code, which solves each sample on its own; ``diffrax.steady_state_event`` on the
    whole batch would instead compare rms norms over the batch, so one sample with a large
    state loosens (and one fast sample can end) the solve of every other sample.
    """

    def cond_fn(t, y, args, *, terms, solver, **kwargs):
        del kwargs
        vf = solver.func(terms, t, y, args)
        return jnp.all(_per_sample_rms(vf) < atol + rtol * _per_sample_rms(y))

    return cond_fn


def ode_steady_state(params: EIParams, ff0, dyn0, cfg: EIConfig, Q=None, y=None):
    """Integrate from the dynamic state ``dyn0`` until every sample's steady-state event fires
    (open loop when ``Q is None``, else closed loop with targets ``y``): ``(EIState, SolveStats)``,
    success not checked."""
    term, solver, ctrl = _ode_pieces(cfg)
    o = cfg.ode
    event = diffrax.Event(per_sample_steady_state_event(rtol=o.event_rtol, atol=o.event_atol))
    sol = diffrax.diffeqsolve(
        term, solver, 0.0, o.t1, o.dt0, dyn0, args=(params, ff0, Q, y),
        stepsize_controller=ctrl, event=event, max_steps=o.max_steps, throw=False,
        saveat=diffrax.SaveAt(t1=True),
    )
    dyn = jax.tree_util.tree_map(lambda a: a[-1], sol.ys)
    c = jnp.zeros_like(dyn.u_out) if Q is None else control_signal(dyn.u_out, dyn.c_int, y, cfg)
    state = EIState(dyn.u_E, dyn.u_I, dyn.u_out, dyn.c_int, c)
    res = steady_state_residual(params, ff0, state, cfg, Q, y)
    fired = jnp.asarray(sol.event_mask)
    success = fired & (sol.result == diffrax.RESULTS.event_occurred) & jnp.isfinite(res)
    steps = jnp.asarray(sol.stats["num_steps"], jnp.int32)
    return state, SolveStats(steps, jnp.asarray(0, jnp.int32), res, success)


def trajectory(params: EIParams, x, ts, y, Q, state0: EIState, cfg: EIConfig):
    """States at the times ``ts`` of the dynamics from ``state0`` on ``[0, ts[-1]]`` (no event):
    ``(EIState with a leading time axis, solver succeeded)``."""
    term, solver, ctrl = _ode_pieces(cfg)
    ff0 = input_drive(params, x)
    sol = diffrax.diffeqsolve(
        term, solver, 0.0, ts[-1], cfg.ode.dt0, dynamic_part(state0), args=(params, ff0, Q, y),
        stepsize_controller=ctrl, max_steps=cfg.ode.max_steps, throw=False,
        saveat=diffrax.SaveAt(ts=ts),
    )
    d = sol.ys
    c = jnp.zeros_like(d.u_out) if Q is None else control_signal(d.u_out, d.c_int, y[None], cfg)
    return EIState(d.u_E, d.u_I, d.u_out, d.c_int, c), sol.result == diffrax.RESULTS.successful
