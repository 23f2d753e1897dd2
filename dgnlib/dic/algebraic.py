"""Algebraic steady states of the E/I network: the fixed-point equations solved directly.

Every unit solves ``u_E + phi_I(phi_E(u_E) - q) = ff`` (strictly increasing and convex in
``u_E``, slope >= 1) by Newton, which converges from any start to the unique root
(:func:`unit_root`); open loop starts at ``u_E = ff`` (right of the root: monotone decrease),
closed loop is warm-started from the previous sweep. ``u_I = phi_E(u_E) - q``. In closed loop
the K-dim equation ``c = G (y - softmax(u_out(c)))`` with ``G = k_p + k_i / lam`` is solved by
Newton on ``c`` (:func:`closed_loop_residual`; per-sample K x K Jacobian
:func:`closed_loop_jacobian` by hand-written forward mode through the implicit derivatives of the
unit roots, checked against ``jax.jacfwd`` in the tests), and ``u_out = W_out h^L + c``,
``c_int = e / lam``. The solve computes the network's part of that Jacobian, ``d u_out / d c``
(K directions through the layers, the expensive part), once at its start and updates the softmax
part every iteration (a modified Newton: on the vision networks as many iterations as full
Newton at a fraction of its cost); it stops on the true residual ``max |R(c)| <= c_tol``, so
the result is the same within that tolerance. The final residual check reuses the drives and
rates of the last sweep. Started from the open-loop solution (``state0_is_open_loop``, as in the
training step), the sweep at ``c = 0`` is that solution and is not solved again. The unit roots carry implicit-function derivatives, so ``jax.grad`` through
the algebraic solver works (used in the tests to compare the rules with true gradients).

:func:`algebraic_open_loop` and :func:`algebraic_closed_loop` return ``(state, SolveStats)``
without checking success; the public entry points are
:func:`dgnlib.dic.steady_state.solve_open_loop` / ``solve_closed_loop`` with ``solver="algebraic"``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .network import EIConfig, EIParams, EIState, apply_feedback, steady_state_residual
from .solve_stats import SolveStats

__all__ = ["unit_root", "closed_loop_residual", "closed_loop_jacobian", "algebraic_open_loop",
           "algebraic_closed_loop"]


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

    Returns ``(u_E, u_I, drive_out, max_iterations, rates, drives)`` (``rates[l] = phi_E(u_E^l)``,
    ``drives[l]`` the feed-forward drive ``ff^l`` of layer ``l``, ``drives[0] = ff0``).
    """
    u_Es, u_Is, hs, ffs = [], [], [], []
    h = None
    n_max = jnp.asarray(0, jnp.int32)
    for l, layer in enumerate(params.layers):
        ff = ff0 if l == 0 else h @ layer.W + layer.b
        q = jnp.zeros((), ff.dtype) if qs is None else qs[l]
        u, n = unit_root(ff, q, cfg, None if u_init is None else u_init[l])
        h = cfg.phi_E(u)
        u_Es.append(u)
        u_Is.append(h - q)
        hs.append(h)
        ffs.append(ff)
        n_max = jnp.maximum(n_max, n)
    return tuple(u_Es), tuple(u_Is), h @ params.W_out, n_max, tuple(hs), tuple(ffs)


def _algebraic_success(residual, state, cfg: EIConfig):
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in jax.tree_util.tree_leaves(state)]))
    return jnp.isfinite(residual) & (residual <= cfg.algebraic.success_rtol * (1.0 + scale))


def algebraic_open_loop(params: EIParams, ff0, cfg: EIConfig):
    """Open-loop fixed point from the input drive ``ff0`` (one feed-forward sweep of unit
    roots): ``(EIState, SolveStats)``, success not checked."""
    u_E, u_I, drive, n, hs, ffs = _sweep(params, ff0, None, cfg)
    z = jnp.zeros_like(drive)
    state = EIState(u_E, u_I, drive, z, z)
    res = steady_state_residual(params, ff0, state, cfg, forward=(hs, ffs, drive))
    stats = SolveStats(jnp.asarray(0, jnp.int32), n, res, _algebraic_success(res, state, cfg))
    return state, stats


def closed_loop_residual(params: EIParams, ff0, y, Q, c, cfg: EIConfig, u_init=None):
    """``R(c) = c - G (y - softmax(u_out(c)))`` ``(B, K)`` and the sweep
    ``(u_E, u_I, u_out, iters, forward)``; ``forward = (rates, drives, drive_out)``: ``phi_E(u_E)``,
    the feed-forward drives ``ff^l`` and ``h^L @ W_out`` (for the residual check).

    ``u_out(c) = W_out h^L(c) + c`` where ``h^L(c)`` is the feed-forward sweep of unit roots
    with top-down input ``q_l = Q_l^T c``; ``G = k_p + k_i / lam``. Zero at the CL steady state.
    """
    G = cfg.controller.steady_state_gain
    qs = tuple(apply_feedback(Q_l, c) for Q_l in Q)
    u_E, u_I, drive, n, hs, ffs = _sweep(params, ff0, qs, cfg, u_init)
    u_out = drive + c
    r = c - G * (y - jax.nn.softmax(u_out, axis=-1))
    return r, (u_E, u_I, u_out, n, (hs, ffs, drive))


def _output_sensitivity(params: EIParams, Q, sweep, cfg: EIConfig):
    """``d u_out / d c`` ``(K, B, K)`` (``[k, b, :]``: the direction ``c_k``) at the sweep.

    Forward mode by hand (implicit derivative of every unit root,
    ``du = (dff + phi_I'(a) dq) / (1 + phi_I'(a) phi_E'(u))`` with ``a = phi_E(u) - q = u_I``),
    the K basis directions at once (matrix products of ``(K B, n)`` rows).
    """
    pE, pI = cfg.phi_E, cfg.phi_I
    u_E, u_I, u_out = sweep[:3]
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
    return dh @ params.W_out + eye


def _residual_jacobian(d_out, u_out, G):
    """``dR/dc`` ``(B, K, K)`` from ``d u_out / d c`` ``(K, B, K)`` and the softmax at ``u_out``."""
    K = u_out.shape[-1]
    eye = jnp.eye(K, dtype=u_out.dtype)[:, None, :]  # (K, 1, K)
    p = jax.nn.softmax(u_out, axis=-1)
    dR = eye + G * (p * d_out - p * jnp.sum(p * d_out, axis=-1, keepdims=True))
    return jnp.transpose(dR, (1, 2, 0))  # (B, K, K): [b, i, k] = dR_i / dc_k


def closed_loop_jacobian(params: EIParams, Q, c, sweep, cfg: EIConfig):
    """Per-sample Jacobian ``dR/dc`` ``(B, K, K)`` of :func:`closed_loop_residual` at ``c``.

    Forward-mode by hand from the sweep at ``c`` (implicit derivative of every unit root,
    ``du = (dff + phi_I'(a) dq) / (1 + phi_I'(a) phi_E'(u))`` with ``a = phi_E(u) - q``),
    propagating the K basis directions at once (matrix products of ``(K B, n)`` rows).
    """
    d_out = _output_sensitivity(params, Q, sweep, cfg)
    return _residual_jacobian(d_out, sweep[2], cfg.controller.steady_state_gain)


def _open_loop_sweep(params: EIParams, ff0, y, state0: EIState, cfg: EIConfig):
    """:func:`closed_loop_residual` at ``c = 0`` when ``state0`` is the open-loop solution of
    ``params`` and ``ff0``: the sweep at ``c = 0`` is that solution, so no unit roots are solved
    (the rates and drives recomputed here are those of the open-loop solve, which ``jit``
    shares)."""
    G = cfg.controller.steady_state_gain
    hs = tuple(cfg.phi_E(u) for u in state0.u_E)
    ffs = (ff0,) + tuple(h @ layer.W + layer.b for h, layer in zip(hs[:-1], params.layers[1:]))
    drive = hs[-1] @ params.W_out
    c0 = jnp.zeros_like(drive)
    r0 = c0 - G * (y - jax.nn.softmax(drive, axis=-1))
    return c0, r0, (tuple(state0.u_E), hs, drive, jnp.asarray(0, jnp.int32), (hs, ffs, drive))


def algebraic_closed_loop(params: EIParams, ff0, y, Q, state0: EIState, cfg: EIConfig,
                          state0_is_open_loop: bool = False):
    """Closed-loop fixed point by Newton on ``c`` from ``state0.c`` (unit roots warm-started
    at ``state0.u_E``): ``(EIState, SolveStats)``, success not checked.

    ``state0_is_open_loop=True``: ``state0`` is the open-loop solution of ``params`` and ``ff0``
    (as in the training step); Newton starts at ``c = 0`` from it without re-solving the unit
    roots there (``state0.c`` and ``state0.u_I`` are not read). The stopping test and the final
    residual check are the same.
    """
    s = cfg.algebraic

    G = cfg.controller.steady_state_gain
    if state0_is_open_loop:
        c0, r0, sweep0 = _open_loop_sweep(params, ff0, y, state0, cfg)
    else:
        c0 = state0.c
        r0, sweep0 = closed_loop_residual(params, ff0, y, Q, c0, cfg, tuple(state0.u_E))
    # the network's part of the Jacobian, d u_out / d c, once at the start (the expensive K
    # directions through the layers); the softmax part is updated every iteration
    d_out = _output_sensitivity(params, Q, sweep0, cfg)

    def body(carry):
        c, r, sweep, i, n_max = carry
        J = _residual_jacobian(d_out, sweep[2], G)
        c_new = c - jnp.linalg.solve(J, r[..., None])[..., 0]
        r_new, sweep_new = closed_loop_residual(params, ff0, y, Q, c_new, cfg, sweep[0])
        return c_new, r_new, sweep_new, i + 1, jnp.maximum(n_max, sweep_new[3])

    def cond(carry):
        _, r, _, i, _ = carry
        return (i < s.c_max_iter) & jnp.logical_not(jnp.max(jnp.abs(r)) <= s.c_tol)

    init = (c0, r0, sweep0, jnp.asarray(0, jnp.int32), sweep0[3])
    c, r, (u_E, u_I, u_out, _, forward), it, n_max = jax.lax.while_loop(cond, body, init)
    e = y - jax.nn.softmax(u_out, axis=-1)
    state = EIState(u_E, u_I, u_out, e / cfg.controller.lam, c)
    res = steady_state_residual(params, ff0, state, cfg, Q, y, forward=forward)
    stats = SolveStats(it, n_max, res, _algebraic_success(res, state, cfg))
    return state, stats
