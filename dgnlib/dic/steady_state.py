"""Steady states of the E/I network: one interface, two solvers.

* ``solver="ode"``: integrate the network dynamics with diffrax (Tsit5, PID step control,
  steady-state event) from the initial state until the steady-state event fires. The event
  is checked per sample, as in the paper's code (which solves every sample on its own): it
  fires once every sample's own ``rms(du/dt)`` is below ``event_atol + event_rtol *
  rms(its state)`` (:func:`per_sample_steady_state_event`), so a large or slow sample
  neither loosens nor ends the solve of the others. The batch shares one step size.
* ``solver="algebraic"``: solve the fixed-point equations directly (spec section 3).
  Every unit solves ``u_E + phi_I(phi_E(u_E) - q) = ff`` (strictly increasing and convex
  in ``u_E``, slope >= 1) by Newton, which converges from any start to the unique root;
  open loop starts at ``u_E = ff`` (right of the root: monotone decrease), closed loop
  is warm-started from the previous sweep. ``u_I = phi_E(u_E) - q``. In closed loop the
  K-dim equation ``c = G (y - softmax(u_out(c)))`` with ``G = k_p + k_i / lam`` is solved
  by Newton on ``c`` (per-sample K x K Jacobian by hand-written forward mode through the
  implicit derivatives of the unit roots, checked against ``jax.jacfwd`` in the tests),
  and ``u_out = W_out h^L + c``, ``c_int = e / lam``. ``W_1 x + b_1`` is computed once.
  The unit roots carry implicit-function derivatives, so ``jax.grad`` through the
  algebraic solver works (used in the tests to compare the rules with true gradients).

Both return ``(state, stats)``: an :class:`~dgnlib.dic.network.EIState` and a
:class:`SolveStats`. A solve that does not reach a steady state is never returned
silently: with ``on_failure="raise"`` (default) it raises :class:`SteadyStateError`
(eagerly) or an Equinox runtime error (under ``jit``/``vmap``, via ``eqx.error_if``);
with ``on_failure="flag"`` the state is returned and ``stats.success`` is False, which the
caller must check.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .network import (
    EIConfig,
    EIParams,
    EIState,
    _rhs,
    _scale,
    apply_feedback,
    check_inputs,
    dynamic_part,
    input_drive,
    zero_state,
    steady_state_residual,
)

__all__ = [
    "SOLVERS",
    "SolveStats",
    "SteadyStateError",
    "solve_open_loop",
    "solve_closed_loop",
    "simulate",
    "unit_root",
    "closed_loop_residual",
    "closed_loop_jacobian",
    "per_sample_steady_state_event",
]

SOLVERS = ("algebraic", "ode")
_ON_FAILURE = ("raise", "flag")


class SteadyStateError(RuntimeError):
    """A steady-state solve did not converge."""


class SolveStats(NamedTuple):
    """Statistics of one solve (scalars, or arrays under ``vmap``).

    ``steps``: ODE solver steps (accepted + rejected), or Newton
    iterations on ``c`` (0 in open loop) for the algebraic solver. ``unit_iterations``: the largest number
    of scalar Newton iterations of one layer in any sweep (algebraic; 0 for ODE).
    ``residual``: ``max |tau du/dt|`` at the returned state. ``success``: steady state
    reached (ODE: every sample's steady-state event fired; algebraic: residual within tolerance).
    """

    steps: jax.Array
    unit_iterations: jax.Array
    residual: jax.Array
    success: jax.Array


def _check_option(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


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


# ----------------------------------------------------------------------------- unit root
def _value_and_slope(phi, u):
    """``(phi(u), phi'(u))`` of a SoftRectifier sharing one ``exp`` (cheaper inside Newton)."""
    z = phi.beta * (u - phi.s)
    e = jnp.exp(-jnp.abs(z))
    # log(1 + e) rather than log1p(e): faster on XLA:CPU; absolute error < 1e-7 (e <= 1)
    value = phi.a * (jnp.maximum(z, 0.0) + jnp.log(1.0 + e))
    sig = jnp.where(z >= 0, 1.0, e) / (1.0 + e)
    return value, phi.a * phi.beta * sig


def _newton_units(ff, q, u0, cfg: EIConfig):
    """Newton on ``f(u) = u + phi_I(phi_E(u) - q) - ff`` from ``u0``; no gradients.

    ``f`` is convex with ``f' >= 1``, so Newton converges from any start (after the first
    step the iterates lie right of the root and decrease monotonically).
    """
    pE, pI = cfg.phi_E, cfg.phi_I
    s = cfg.algebraic
    # Error bound of a Newton step: e_new <= C e^2 with C = max f'' / (2 min f'), and
    # e <= max f' * |step|. Stop once the bound on the error left after this step,
    # C (max f')^2 step^2, is below unit_tol * (1 + |u|): saves the confirming iteration.
    gE, gI = pE.a * pE.beta, pI.a * pI.beta
    C = 0.5 * (0.25 * gI * pI.beta * gE * gE + 0.25 * gI * gE * pE.beta)
    bound = C * (1.0 + gI * gE) ** 2

    def body(carry):
        u, i, _ = carry
        rE, sE = _value_and_slope(pE, u)
        rI, sI = _value_and_slope(pI, rE - q)
        step = (u + rI - ff) / (1.0 + sI * sE)
        u = u - step
        done = jnp.all(bound * step * step <= s.unit_tol * (1.0 + jnp.abs(u)))
        return u, i + 1, done

    def cond(carry):
        _, i, done = carry
        return (i < s.unit_max_iter) & jnp.logical_not(done)

    u0 = jnp.broadcast_to(u0, jnp.broadcast_shapes(ff.shape, q.shape)).astype(ff.dtype)
    u, n, _ = jax.lax.while_loop(cond, body, (u0, jnp.asarray(0, jnp.int32), jnp.asarray(False)))
    return u, n


def _attach_implicit_fn(u, ff, q, cfg):
    return u


_attach_implicit = jax.custom_jvp(_attach_implicit_fn, nondiff_argnums=(3,))


@_attach_implicit.defjvp
def _attach_implicit_jvp(cfg, primals, tangents):
    # implicit function theorem: du = (dff + phi_I'(a) dq) / (1 + phi_I'(a) phi_E'(u))
    u, ff, q = primals
    _, dff, dq = tangents
    pE, pI = cfg.phi_E, cfg.phi_I
    a = pE(u) - q
    sI = pI.slope(a)
    du = (dff + sI * dq) / (1.0 + sI * pE.slope(u))
    return u, du


def unit_root(ff, q, cfg: EIConfig, u0=None):
    """Root ``u_E`` of ``u_E + phi_I(phi_E(u_E) - q) = ff`` elementwise, and the iterations used.

    ``ff`` and ``q`` broadcast to a common shape; ``u0``: start of Newton (default ``ff``,
    which lies right of the root). Differentiable (forward and reverse mode) through the
    implicit function theorem, not through the iterations.
    """
    ff = jnp.asarray(ff)
    q = jnp.asarray(q, ff.dtype)
    u0 = ff if u0 is None else u0
    u, n = _newton_units(jax.lax.stop_gradient(ff), jax.lax.stop_gradient(q),
                         jax.lax.stop_gradient(u0), cfg)
    return _attach_implicit(u, ff, q, cfg), n


def _sweep(params: EIParams, ff0, qs, cfg: EIConfig, u_init=None):
    """Feed-forward sweep of unit roots. ``qs``: tuple of ``(B, n_l)`` or None (open loop);
    ``u_init``: optional warm start (tuple of ``(B, n_l)``).

    Returns ``(u_E, u_I, drive_out, max_iterations)``.
    """
    u_Es, u_Is = [], []
    h = None
    n_max = jnp.asarray(0, jnp.int32)
    for l, layer in enumerate(params.layers):
        ff = ff0 if l == 0 else h @ layer.W + layer.b
        q = jnp.zeros((), ff.dtype) if qs is None else qs[l]
        u, n = unit_root(ff, q, cfg, None if u_init is None else u_init[l])
        h = cfg.phi_E(u)
        u_Es.append(u)
        u_Is.append(h - q)
        n_max = jnp.maximum(n_max, n)
    return tuple(u_Es), tuple(u_Is), h @ params.W_out, n_max


def _algebraic_success(residual, state, cfg: EIConfig):
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in jax.tree_util.tree_leaves(state)]))
    return jnp.isfinite(residual) & (residual <= cfg.algebraic.success_rtol * (1.0 + scale))


def _algebraic_open_loop(params, ff0, cfg):
    u_E, u_I, drive, n = _sweep(params, ff0, None, cfg)
    z = jnp.zeros_like(drive)
    state = EIState(u_E, u_I, drive, z, z)
    res = steady_state_residual(params, ff0, state, cfg)
    stats = SolveStats(jnp.asarray(0, jnp.int32), n, res, _algebraic_success(res, state, cfg))
    return state, stats


def closed_loop_residual(params: EIParams, ff0, y, Q, c, cfg: EIConfig, u_init=None):
    """``R(c) = c - G (y - softmax(u_out(c)))`` ``(B, K)`` and the sweep ``(u_E, u_I, u_out, iters)``.

    ``u_out(c) = W_out h^L(c) + c`` where ``h^L(c)`` is the feed-forward sweep of unit roots
    with top-down input ``q_l = Q_l^T c``; ``G = k_p + k_i / lam``. Zero at the CL steady state.
    """
    G = cfg.controller.steady_state_gain
    qs = tuple(apply_feedback(Q_l, c) for Q_l in Q)
    u_E, u_I, drive, n = _sweep(params, ff0, qs, cfg, u_init)
    u_out = drive + c
    r = c - G * (y - jax.nn.softmax(u_out, axis=-1))
    return r, (u_E, u_I, u_out, n)


def closed_loop_jacobian(params: EIParams, Q, c, sweep, cfg: EIConfig):
    """Per-sample Jacobian ``dR/dc`` ``(B, K, K)`` of :func:`closed_loop_residual` at ``c``.

    Forward-mode by hand from the sweep at ``c`` (implicit derivative of every unit root,
    ``du = (dff + phi_I'(a) dq) / (1 + phi_I'(a) phi_E'(u))`` with ``a = phi_E(u) - q``),
    propagating the K basis directions at once (matrix products of ``(K B, n)`` rows).
    """
    G = cfg.controller.steady_state_gain
    pE, pI = cfg.phi_E, cfg.phi_I
    u_E, u_I, u_out, _ = sweep
    K = u_out.shape[-1]
    dff = None
    dh = None
    for l, layer in enumerate(params.layers):
        dq = Q[l][:, None, :] if Q[l].ndim == 2 else jnp.swapaxes(Q[l], 0, 1)  # (K, B|1, n)
        sE = pE.slope(u_E[l])
        sI = pI.slope(u_I[l])  # a = phi_E(u) - q = u_I at the solution
        num = sI * dq if dff is None else dff + sI * dq
        du = num / (1.0 + sI * sE)
        dh = sE * du  # (K, B, n)
        if l + 1 < len(params.layers):
            dff = dh @ params.layers[l + 1].W
    eye = jnp.eye(K, dtype=u_out.dtype)[:, None, :]  # (K, 1, K)
    d_out = dh @ params.W_out + eye  # (K, B, K): d u_out / d c_k
    p = jax.nn.softmax(u_out, axis=-1)
    dR = eye + G * (p * d_out - p * jnp.sum(p * d_out, axis=-1, keepdims=True))
    return jnp.transpose(dR, (1, 2, 0))  # (B, K, K): [b, i, k] = dR_i / dc_k


def _algebraic_closed_loop(params, ff0, y, Q, state0, cfg):
    s = cfg.algebraic

    def body(carry):
        c, r, sweep, i, n_max = carry
        J = closed_loop_jacobian(params, Q, c, sweep, cfg)
        c_new = c - jnp.linalg.solve(J, r[..., None])[..., 0]
        r_new, sweep_new = closed_loop_residual(params, ff0, y, Q, c_new, cfg, sweep[0])
        return c_new, r_new, sweep_new, i + 1, jnp.maximum(n_max, sweep_new[3])

    def cond(carry):
        _, r, _, i, _ = carry
        return (i < s.c_max_iter) & jnp.logical_not(jnp.max(jnp.abs(r)) <= s.c_tol)

    c0 = state0.c
    r0, sweep0 = closed_loop_residual(params, ff0, y, Q, c0, cfg, tuple(state0.u_E))
    init = (c0, r0, sweep0, jnp.asarray(0, jnp.int32), sweep0[3])
    c, r, (u_E, u_I, u_out, _), it, n_max = jax.lax.while_loop(cond, body, init)
    e = y - jax.nn.softmax(u_out, axis=-1)
    state = EIState(u_E, u_I, u_out, e / cfg.controller.lam, c)
    res = steady_state_residual(params, ff0, state, cfg, Q, y)
    stats = SolveStats(it, n_max, res, _algebraic_success(res, state, cfg))
    return state, stats


# ----------------------------------------------------------------------------- ODE
def _ode_pieces(cfg: EIConfig):
    o = cfg.ode
    ctrl = diffrax.PIDController(
        rtol=o.rtol, atol=o.atol, pcoeff=o.pcoeff, icoeff=o.icoeff, dcoeff=o.dcoeff,
        dtmin=o.dtmin, dtmax=o.dtmax, factormin=o.factormin, factormax=o.factormax,
    )

    def f(t, dyn, args):
        params, ff0, Q, y = args
        return _scale(_rhs(params, ff0, dyn, cfg, Q, y), cfg)

    return diffrax.ODETerm(f), diffrax.Tsit5(), ctrl


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


def _ode_solve(params, ff0, dyn0, cfg, Q, y):
    term, solver, ctrl = _ode_pieces(cfg)
    o = cfg.ode
    event = diffrax.Event(per_sample_steady_state_event(rtol=o.event_rtol, atol=o.event_atol))
    sol = diffrax.diffeqsolve(
        term, solver, 0.0, o.t1, o.dt0, dyn0, args=(params, ff0, Q, y),
        stepsize_controller=ctrl, event=event, max_steps=o.max_steps, throw=False,
        saveat=diffrax.SaveAt(t1=True),
    )
    dyn = jax.tree_util.tree_map(lambda a: a[-1], sol.ys)
    if Q is None:
        c = jnp.zeros_like(dyn.u_out)
    else:
        e = y - jax.nn.softmax(dyn.u_out, axis=-1)
        c = cfg.controller.output(e, dyn.c_int)
    state = EIState(dyn.u_E, dyn.u_I, dyn.u_out, dyn.c_int, c)
    res = steady_state_residual(params, ff0, state, cfg, Q, y)
    fired = jnp.asarray(sol.event_mask)
    success = fired & (sol.result == diffrax.RESULTS.event_occurred) & jnp.isfinite(res)
    steps = jnp.asarray(sol.stats["num_steps"], jnp.int32)
    return state, SolveStats(steps, jnp.asarray(0, jnp.int32), res, success)


# ----------------------------------------------------------------------------- public
def _ol_core(params, x, cfg, solver):
    ff0 = input_drive(params, x)
    if solver == "algebraic":
        return _algebraic_open_loop(params, ff0, cfg)
    dyn0 = dynamic_part(zero_state(params, x.shape[0], ff0.dtype))
    return _ode_solve(params, ff0, dyn0, cfg, None, None)


def _cl_core(params, x, y, Q, state0, cfg, solver):
    ff0 = input_drive(params, x)
    if solver == "algebraic":
        return _algebraic_closed_loop(params, ff0, y, Q, state0, cfg)
    return _ode_solve(params, ff0, dynamic_part(state0), cfg, Q, y)


_ol_jit = jax.jit(_ol_core, static_argnames=("cfg", "solver"))
_cl_jit = jax.jit(_cl_core, static_argnames=("cfg", "solver"))


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
    _check_option("solver", solver, SOLVERS)
    _check_option("on_failure", on_failure, _ON_FAILURE)
    if not isinstance(cfg, EIConfig):
        raise ValueError(f"cfg must be an EIConfig, got {type(cfg).__name__}")
    check_inputs(params, x)
    state, stats = _ol_jit(params, x, cfg=cfg, solver=solver)
    state = _handle_failure(state, stats, "open-loop", solver, cfg, on_failure)
    return state, stats


def solve_closed_loop(params: EIParams, x, y, Q, state0: Optional[EIState] = None,
                      cfg: EIConfig = EIConfig(), solver: str = "algebraic", *,
                      on_failure: str = "raise"):
    """Closed-loop steady state with targets ``y`` ``(B, K)`` and feedback ``Q``.

    ``Q``: tuple of ``(B, K, n_l)`` or ``(K, n_l)`` (see :func:`~dgnlib.dic.network.feedback_weights`).
    ``state0``: initial state of the ODE (normally the open-loop solution; zeros if None);
    the algebraic solver starts Newton on ``c`` at ``state0.c``. Returns ``(state, stats)``.
    """
    _check_option("solver", solver, SOLVERS)
    _check_option("on_failure", on_failure, _ON_FAILURE)
    if not isinstance(cfg, EIConfig):
        raise ValueError(f"cfg must be an EIConfig, got {type(cfg).__name__}")
    check_inputs(params, x, y=y, Q=Q)
    if state0 is None:
        state0 = zero_state(params, x.shape[0], jnp.result_type(x))
    _check_state(params, state0, x.shape[0])
    state, stats = _cl_jit(params, x, y, tuple(Q), state0, cfg=cfg, solver=solver)
    state = _handle_failure(state, stats, "closed-loop", solver, cfg, on_failure)
    return state, stats


def simulate(params: EIParams, x, ts, cfg: EIConfig = EIConfig(), *, y=None, Q=None,
             state0: Optional[EIState] = None):
    """Trajectory of the network dynamics saved at times ``ts`` ``(T,)`` (for plots).

    Open loop if ``Q is None``, else closed loop with targets ``y``. Integrates the whole
    interval ``[0, ts[-1]]`` (no steady-state event). Returns an ``EIState`` whose leaves
    have a leading time axis ``T`` (``c`` included). Raises ``RuntimeError`` if the ODE
    solver fails (e.g. the step budget ``cfg.ode.max_steps`` runs out).
    """
    if (Q is None) != (y is None):
        raise ValueError("give both y and Q (closed loop) or neither (open loop)")
    if not isinstance(cfg, EIConfig):
        raise ValueError(f"cfg must be an EIConfig, got {type(cfg).__name__}")
    check_inputs(params, x, y=y, Q=Q)
    ts = jnp.asarray(ts, jnp.float32)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"ts must be a non-empty 1-D array of times, got shape {ts.shape}")
    if state0 is None:
        state0 = zero_state(params, x.shape[0], jnp.result_type(x))
    _check_state(params, state0, x.shape[0])
    traj, ok = _simulate_jit(params, x, ts, y, None if Q is None else tuple(Q), state0, cfg=cfg)
    if not isinstance(ok, jax.core.Tracer) and not bool(ok):
        raise RuntimeError(
            f"simulate: the ODE solver failed before t={float(ts[-1])} "
            f"(cfg.ode.max_steps={cfg.ode.max_steps} may be too small)"
        )
    return traj


def _simulate_core(params, x, ts, y, Q, state0, cfg):
    term, solver, ctrl = _ode_pieces(cfg)
    ff0 = input_drive(params, x)
    sol = diffrax.diffeqsolve(
        term, solver, 0.0, ts[-1], cfg.ode.dt0, dynamic_part(state0), args=(params, ff0, Q, y),
        stepsize_controller=ctrl, max_steps=cfg.ode.max_steps, throw=False,
        saveat=diffrax.SaveAt(ts=ts),
    )
    d = sol.ys
    if Q is None:
        c = jnp.zeros_like(d.u_out)
    else:
        c = _control_signal_t(d.u_out, d.c_int, y, cfg)
    return EIState(d.u_E, d.u_I, d.u_out, d.c_int, c), sol.result == diffrax.RESULTS.successful


def _control_signal_t(u_out, c_int, y, cfg):
    e = y[None] - jax.nn.softmax(u_out, axis=-1)
    return cfg.controller.output(e, c_int)


_simulate_jit = jax.jit(_simulate_core, static_argnames=("cfg",))
