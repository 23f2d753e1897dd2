"""Continuous-time student-teacher task of Rossbroich & Zenke (2023), Fig. 4.

A teacher and two students share one architecture: ``n_in`` inputs -> ``n_hidden``
E/I neurons -> ``n_out`` E/I output neurons; the network output is the output layer's
excitatory **rate** ``phi_E(u_E2)``. Everything (membrane potentials, controller
integral, weights, biases, feedback weights) evolves in one ODE, solved by diffrax
(Tsit5 with a PID step-size controller) on windows of 5 s of a continuous signal:

    tau_E du_El/dt = -u_El + pre_l @ W_l + b_l - phi_I(u_Il)
    tau_I du_Il/dt = -u_Il + phi_E(u_El) - c @ Q_l                    (Q_l: (n_out, n_l))
    c = k_p e + k_i c_int,  e = y - phi_E(u_E2),  tau_c dc_int/dt = e - lam c_int
    tau_W dW_l/dt = outer(pre_l, err_l),  tau_W db_l/dt = err_l      (W_l input-major)
    tau_Q dQ_l/dt = -Q_l + q_norm * J_l / ||J_l||_F

with ``pre_1 = x``, ``pre_2 = phi_E(u_E1)``, ``J_2 = D_E2 D_I2`` and
``J_1 = D_E2 W_2^T D_E1 D_I1`` (``D`` = diagonal matrices of slopes at the potentials).

Modes (which parts move; the state always holds every part):

=============  =======  =========  ====  ====
mode           control  u          W, b  Q
=============  =======  =========  ====  ====
``burn_in``    off      evolves    -     evolves
``evaluate``   off      evolves    -     -
``train``      on       evolves    yes   evolves
``control``    on       evolves    -     -
=============  =======  =========  ====  ====

Plasticity errors (``err_l``) for the two students:

* ``error_form="published"`` (default; what the paper's code computes, needed to
  reproduce its printout): exact ``(r_E - u_I) * phi_E'(r_E)``; linear threshold
  ``(r_E - (theta + delta u_I)) * phi_E'(r_E)`` with ``(theta, delta)`` the Taylor model
  of **phi_E**'s inverse at ``y0`` (``-0.3030, 2.1017`` for the default phi_E).
* ``error_form="paper"``: exact ``(r_E - phi_I^-1(r_I)) * phi_E'(u_E)`` (``= r_E - u_I``);
  linear threshold ``(r_E - (theta_I + delta_I r_I)) * phi_E'(u_E)`` with the Taylor model
  of **phi_I**'s inverse at ``y0`` applied to the inhibitory rate ``r_I = phi_I(u_I)``.

Everything is float32. :func:`run_experiment` runs the published schedule (burn-in,
then per epoch: teacher, open-loop evaluation of both students, closed-loop training).
"""
from __future__ import annotations

import contextlib
import time
from functools import partial
from typing import Callable, NamedTuple, Optional

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .activations import SoftRectifier, linearised_inverse
from .controller import LeakyPI

__all__ = [
    "Network", "Feedback", "Potentials", "State", "Mode", "Rule", "Params", "Trace",
    "SineInputs", "EpochRecord", "ExperimentResult", "SolverError",
    "MODES", "ERROR_FORMS", "RULES", "STUDENTS",
    "init_network", "init_state", "feedback_target", "sine_inputs", "input_window",
    "make_rule", "vector_field", "solve", "mse_per_time", "run_experiment", "format_epoch",
]

ERROR_FORMS = ("published", "paper")
RULES = ("exact", "linear")


# ----------------------------------------------------------------------------- pytrees
class Network(NamedTuple):
    """Weights (input-major) and biases: W1 (n_in, n_h), b1 (n_h,), W2 (n_h, n_out), b2 (n_out,)."""

    W1: jax.Array
    b1: jax.Array
    W2: jax.Array
    b2: jax.Array


class Feedback(NamedTuple):
    """Feedback weights: Q1 (n_out, n_h), Q2 (n_out, n_out)."""

    Q1: jax.Array
    Q2: jax.Array


class Potentials(NamedTuple):
    """Membrane potentials: uE1, uI1 (n_h,), uE2, uI2 (n_out,)."""

    uE1: jax.Array
    uI1: jax.Array
    uE2: jax.Array
    uI2: jax.Array


class State(NamedTuple):
    """Full ODE state: potentials, controller integral c_int (n_out,), network, feedback."""

    u: Potentials
    c_int: jax.Array
    net: Network
    Q: Feedback


class Mode(NamedTuple):
    """Switches (0.0 or 1.0) of the ODE: control on, W/b plastic, Q plastic."""

    control: jax.Array
    learn_W: jax.Array
    learn_Q: jax.Array


MODES = {
    "burn_in": Mode(0.0, 0.0, 1.0),
    "evaluate": Mode(0.0, 0.0, 0.0),
    "train": Mode(1.0, 1.0, 1.0),
    "control": Mode(1.0, 0.0, 0.0),
}


class Rule(NamedTuple):
    """Model of the inverse inhibitory transfer: ``m = theta + delta * v`` where ``v`` is
    ``u_I`` (``on_rate = 0``) or ``phi_I(u_I)`` (``on_rate = 1``); ``err = (r_E - m) * slope``."""

    theta: jax.Array
    delta: jax.Array
    on_rate: jax.Array


class Params(NamedTuple):
    """Constants of the task (times in seconds). A pytree of floats."""

    phi_E: SoftRectifier = SoftRectifier(5.0, 1.0, 3.0)
    phi_I: SoftRectifier = SoftRectifier(1.0, 1.0, 3.0)
    tau_E: float = 0.02
    tau_I: float = 0.005
    tau_W: float = 60.0
    tau_Q: float = 30.0
    controller: LeakyPI = LeakyPI(k_p=30.0, k_i=15.0, lam=0.5, tau_c=0.1)
    q_norm: float = 7.5
    fit_y0: float = 0.5


class Trace(NamedTuple):
    """Saved every 1 ms: output rates r (T, n_out), least-control term ||Q^T c||^2 (T,),
    controller output c (T, n_out)."""

    r: jax.Array
    lcl: jax.Array
    c: jax.Array


class SineInputs(NamedTuple):
    """Amplitudes, frequencies (Hz) and phases of the input sines, each (n_in,)."""

    amplitude: jax.Array
    frequency: jax.Array
    phase: jax.Array


class SolverError(RuntimeError):
    """An ODE solve did not finish successfully. The message says why; ``cause`` names it:

    * ``"nonfinite_field"``: the vector field is NaN or infinite at a finite state, so every
      step is rejected whatever its size (more ``max_steps`` cannot help);
    * ``"nonfinite_state"``: the state or its trace became NaN or infinite (diverged);
    * ``"max_steps"``: the field is finite but the window needs more than ``max_steps``
      steps (the message estimates how many, and gives the local Jacobian's eigenvalues);
    * ``"other"``: another diffrax failure (its message is quoted); ``None`` if unknown.

    ``t`` is the time (s, local to the window) the solve reached, where known."""

    def __init__(self, message: str, cause: Optional[str] = None, t: Optional[float] = None):
        super().__init__(message)
        self.cause = cause
        self.t = t


class _SolveStats(NamedTuple):
    """Solver statistics of one solve: all steps, rejected steps, time reached."""

    steps: jax.Array
    rejected: jax.Array
    t_end: jax.Array


# ----------------------------------------------------------------------------- checks
def _check_error_form(error_form):
    if error_form not in ERROR_FORMS:
        raise ValueError(f"error_form must be one of {ERROR_FORMS}, got {error_form!r}")


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {tuple(MODES)}, got {mode!r}")


def _check_rule(rule):
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def _f32(tree):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), tree)


# ----------------------------------------------------------------------------- init
def init_network(key, n_in: int = 30, n_hidden: int = 20, n_out: int = 2, scale: float = 2.0) -> Network:
    """Gaussian init as in the paper's code: the key splits into 4, used in order for
    W1 (n_in, n_hidden) * scale/sqrt(n_in), W2 (n_hidden, n_out) * scale/sqrt(n_hidden),
    b1 (n_hidden,) * scale/sqrt(n_hidden), b2 (n_out,) * scale/sqrt(n_out)."""
    for name, n in (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out)):
        if int(n) < 1:
            raise ValueError(f"{name} must be a positive integer, got {n}")
    k1, k2, k3, k4 = jax.random.split(key, 4)
    W1 = jax.random.normal(k1, (n_in, n_hidden)) * scale / np.sqrt(n_in)
    W2 = jax.random.normal(k2, (n_hidden, n_out)) * scale / np.sqrt(n_hidden)
    b1 = jax.random.normal(k3, (n_hidden,)) * scale / np.sqrt(n_hidden)
    b2 = jax.random.normal(k4, (n_out,)) * scale / np.sqrt(n_out)
    return _f32(Network(W1, b1, W2, b2))


# Below this Frobenius norm a Jacobian is normalised from the logarithms of its entries (see
# feedback_target); above it the plain quotient is exact to float32 rounding and is used as is.
_NORM_FLOOR = 1e-15


def _log_slope(phi: SoftRectifier, u):
    """``log phi'(u) = log(a beta) + log_sigmoid(beta (u - s))``: finite where ``phi'(u)`` underflows."""
    return jnp.log(phi.a * phi.beta) + jax.nn.log_sigmoid(phi.beta * (u - phi.s))


def _normalise(J, log_abs, sign, q_norm):
    """``q_norm * J / ||J||_F``. Where ``||J||_F`` is tiny (entries underflow in float32, e.g.
    for a strongly dis-inhibited unit with ``u_I`` far below the shift) the same quotient is
    computed as ``sign * exp(log_abs - max log_abs)``, normalised: the exact limit instead of 0/0."""
    norm = jnp.sqrt(jnp.sum(J**2))
    direct = q_norm * J / jnp.sqrt(jnp.sum(J**2))  # the plain form (NaN at 0/0, then not selected)
    scaled = sign * jnp.exp(log_abs - jnp.max(log_abs))
    scaled = q_norm * scaled / jnp.sqrt(jnp.sum(scaled**2))
    return jnp.where(norm > _NORM_FLOOR, direct, scaled)


def feedback_target(u: Potentials, net: Network, params: Params) -> Feedback:
    """Normalised output-rate Jacobians: J2 = D_E2 D_I2 (n_out, n_out),
    J1 = D_E2 W2^T D_E1 D_I1 (n_out, n_h), each scaled to Frobenius norm ``q_norm``.

    The direction ``J / ||J||_F`` is defined for every finite state, also where the slopes
    underflow (a dis-inhibited inhibitory unit has ``phi_I'(u_I) ~ exp(u_I - s)``, zero in
    float32 below ``u_I ~ -100`` and its square already below ``u_I ~ -45``): there it is
    computed from the logarithms of the entries instead of as 0/0."""
    dE1 = params.phi_E.slope(u.uE1)
    dI1 = params.phi_I.slope(u.uI1)
    dE2 = params.phi_E.slope(u.uE2)
    dI2 = params.phi_I.slope(u.uI2)
    J2 = jnp.diag(dE2 * dI2)
    J1 = dE2[:, None] * net.W2.T * (dE1 * dI1)[None, :]

    lE2 = _log_slope(params.phi_E, u.uE2)
    l1 = _log_slope(params.phi_E, u.uE1) + _log_slope(params.phi_I, u.uI1)
    n_out = u.uE2.shape[0]
    eye = jnp.eye(n_out, dtype=J2.dtype)
    log2 = jnp.where(eye > 0, jnp.diag(lE2 + _log_slope(params.phi_I, u.uI2)), -jnp.inf)
    log1 = lE2[:, None] + jnp.log(jnp.abs(net.W2.T)) + l1[None, :]
    return Feedback(_normalise(J1, log1, jnp.sign(net.W2.T), params.q_norm),
                    _normalise(J2, log2, eye, params.q_norm))


def init_state(net: Network, params: Params = Params()) -> State:
    """Zero potentials and controller, given network, Q = normalised Jacobian at u = 0."""
    n_h, n_out = net.W2.shape
    z_h = jnp.zeros((n_h,), jnp.float32)
    z_o = jnp.zeros((n_out,), jnp.float32)
    u = Potentials(z_h, z_h, z_o, z_o)
    return State(u, z_o, _f32(net), feedback_target(u, net, params))


def sine_inputs(key, n_in: int = 30, amplitude=(0.1, 1.0), frequency=(0.1, 2.0), phase=(0.0, np.pi)) -> SineInputs:
    """Random sine parameters; the key splits into 3 for amplitudes, frequencies, phases,
    each drawn ``uniform(key, (n_in,), lo, hi)``."""
    ka, kf, kp = jax.random.split(key, 3)
    return SineInputs(
        jax.random.uniform(ka, (n_in,), minval=amplitude[0], maxval=amplitude[1]),
        jax.random.uniform(kf, (n_in,), minval=frequency[0], maxval=frequency[1]),
        jax.random.uniform(kp, (n_in,), minval=phase[0], maxval=phase[1]),
    )


def input_window(sines: SineInputs, start: float, duration: float = 5.0, dt: float = 1e-3):
    """Inputs on one window: returns ``(ts, x)`` with local times ``ts`` (T,) = 0, dt, ...
    and ``x[t, i] = A_i sin(2 pi f_i t_abs + p_i)`` (T, n_in) at the absolute times
    ``t_abs = arange(start, start + duration, dt)`` (float32), T = round(duration / dt)."""
    n = int(round(duration / dt))
    if n < 2:
        raise ValueError(f"duration / dt must give at least 2 samples, got duration={duration}, dt={dt}")
    t_abs = jnp.arange(start, start + duration, dt, dtype=jnp.float32)[:n]
    ts = jnp.arange(0.0, duration, dt, dtype=jnp.float32)[:n]
    x = sines.amplitude * jnp.sin(2 * jnp.pi * sines.frequency * t_abs[:, None] + sines.phase)
    return ts, x


def make_rule(rule: str, error_form: str = "published", params: Params = Params()) -> Rule:
    """The :class:`Rule` of student ``rule`` ("exact" or "linear") under ``error_form``."""
    _check_rule(rule)
    _check_error_form(error_form)
    if rule == "exact":
        return _f32(Rule(0.0, 1.0, 0.0))
    if error_form == "published":
        theta, delta = linearised_inverse(params.phi_E, params.fit_y0)
        return _f32(Rule(theta, delta, 0.0))
    theta, delta = linearised_inverse(params.phi_I, params.fit_y0)
    return _f32(Rule(theta, delta, 1.0))


# ----------------------------------------------------------------------------- dynamics
def _control(state: State, y, mode: Mode, params: Params):
    r_out = params.phi_E(state.u.uE2)
    e = y - r_out
    c = mode.control * params.controller.output(e, state.c_int)
    return r_out, e, c


def vector_field(t, state: State, args, error_form: str = "published") -> State:
    """d state / dt. ``args = (params, mode, rule, x_interp, y_interp)`` where the two
    interpolations give the input (n_in,) and target (n_out,) at time ``t``."""
    params, mode, rule, x_interp, y_interp = args
    phi_E, phi_I = params.phi_E, params.phi_I
    u, net, Q = state.u, state.net, state.Q
    x = x_interp.evaluate(t)
    y = y_interp.evaluate(t)
    r_out, e, c = _control(state, y, mode, params)

    rE1 = phi_E(u.uE1)
    rE2 = r_out
    duE1 = (-u.uE1 + x @ net.W1 + net.b1 - phi_I(u.uI1)) / params.tau_E
    duI1 = (-u.uI1 + rE1 - c @ Q.Q1) / params.tau_I
    duE2 = (-u.uE2 + rE1 @ net.W2 + net.b2 - phi_I(u.uI2)) / params.tau_E
    duI2 = (-u.uI2 + rE2 - c @ Q.Q2) / params.tau_I
    dc_int = mode.control * params.controller.d_integral(e, state.c_int)

    def err(uE, rE, uI):
        v = jnp.where(rule.on_rate > 0, phi_I(uI), uI)
        m = rule.theta + rule.delta * v
        if error_form == "published":
            slope = phi_E.slope(rE)
        else:
            slope = phi_E.slope(uE)
        return (rE - m) * slope

    # A switched-off part gets exactly zero (``where``, not a product with 0, so that a value
    # that is not finite in a part that does not move cannot make the whole field NaN).
    def gated(switch, value):
        return jnp.where(switch > 0, value, jnp.zeros_like(value))

    k_w = mode.learn_W / params.tau_W
    err1 = err(u.uE1, rE1, u.uI1)
    err2 = err(u.uE2, rE2, u.uI2)
    dnet = Network(*(gated(mode.learn_W, k_w * d)
                     for d in (jnp.outer(x, err1), err1, jnp.outer(rE1, err2), err2)))

    J = feedback_target(u, net, params)
    k_q = mode.learn_Q / params.tau_Q
    dQ = Feedback(gated(mode.learn_Q, k_q * (J.Q1 - Q.Q1)), gated(mode.learn_Q, k_q * (J.Q2 - Q.Q2)))
    return State(Potentials(duE1, duI1, duE2, duI2), dc_int, dnet, dQ)


def _observe(t, state: State, args) -> Trace:
    params, mode, _, _, y_interp = args
    r_out, _, c = _control(state, y_interp.evaluate(t), mode, params)
    lcl = jnp.sum((c @ state.Q.Q1) ** 2) + jnp.sum((c @ state.Q.Q2) ** 2)
    return Trace(r_out, lcl, c)


_DTMIN, _DTMAX = 1e-4, 1e-2  # the step-size limits of the paper's code (s)


def _problem(state, ts, x, y, mode, rule, params, error_form):
    """(term, flat initial state, unravel, args, step-size controller) of one solve.

    The solver integrates the state flattened into one vector (the RMS error norm is the
    same as over the pytree); this keeps the per-step overhead of the solver small."""
    flat0, unravel = ravel_pytree(state)
    x_interp = diffrax.LinearInterpolation(ts=ts, ys=x)
    y_interp = diffrax.LinearInterpolation(ts=ts, ys=y)
    controller = diffrax.PIDController(
        rtol=1e-3, atol=1e-6, pcoeff=0.1, icoeff=0.3, dcoeff=0.1,
        dtmin=_DTMIN, dtmax=_DTMAX, factormin=0.1, factormax=2.0,
    )

    def field(t, flat, args):
        return ravel_pytree(vector_field(t, unravel(flat), args, error_form=error_form))[0]

    return diffrax.ODETerm(field), flat0, unravel, (params, mode, rule, x_interp, y_interp), controller


def _solve(state, ts, x, y, mode, rule, params, t1, error_form, max_steps):
    """Unchecked solve on [0, t1]; returns (final state, Trace at ts, result code, _SolveStats).
    On failure the final state is the one the solver stopped at, reached at ``_SolveStats.t_end``."""
    term, flat0, unravel, args, controller = _problem(state, ts, x, y, mode, rule, params, error_form)

    def observe(t, flat, args):
        return _observe(t, unravel(flat), args)

    saveat = diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts, fn=observe), diffrax.SubSaveAt(t1=True)])
    sol = diffrax.diffeqsolve(
        term, diffrax.Tsit5(), t0=0.0, t1=t1, dt0=1e-3, y0=flat0, args=args,
        saveat=saveat, stepsize_controller=controller, max_steps=max_steps, throw=False,
    )
    trace, final = sol.ys
    # a solve that "succeeds" with non-finite values is reported as a failure too
    finite = jnp.all(jnp.isfinite(final[-1])) & jnp.all(jnp.isfinite(trace.r)) & jnp.all(jnp.isfinite(trace.lcl))
    code = jnp.where((sol.result._value == 0) & ~finite, _NONFINITE_CODE, sol.result._value)
    stats = _SolveStats(sol.stats["num_steps"], sol.stats["num_rejected_steps"], sol.ts[1][-1])
    return unravel(final[-1]), trace, code, stats


def _result_messages():
    """diffrax's result messages by code (a private table; fall back to a generic text)."""
    return list(getattr(diffrax.RESULTS, "_index_to_message", []))


_NONFINITE_CODE = next((i for i, m in enumerate(_result_messages()) if m.startswith("Nonfinite")), 9)


_MAX_STEPS_CODE = next((i for i, m in enumerate(_result_messages()) if m.startswith("The maximum number")), 1)


def _raise_if_failed(codes, steps, what, names=None, diagnose=None):
    """Raise :class:`SolverError` for the first failed element. ``diagnose(i, code)``, where
    given, returns ``(cause, explanation, t)`` for element ``i``; without it the message
    quotes diffrax."""
    codes = np.atleast_1d(np.asarray(codes))
    steps = np.atleast_1d(np.asarray(steps))
    for i, code in enumerate(codes):
        if int(code) != 0:
            who = f", {names[i]}" if names is not None else (f", batch element {i}" if len(codes) > 1 else "")
            if diagnose is not None:
                cause, msg, t = diagnose(i, int(code))
            else:
                cause, msg, t = None, _diffrax_message(int(code)), None
            raise SolverError(f"ODE solve failed ({what}{who}, after {int(steps[i])} steps): {msg}", cause, t)


def _diffrax_message(code):
    messages = _result_messages()
    return messages[code] if code < len(messages) else f"diffrax result code {code}"


_PART_NAMES = ("uE1", "uI1", "uE2", "uI2", "c_int", "W1", "b1", "W2", "b2", "Q1", "Q2")


def _nonfinite_parts(state: State):
    """Names (``_PART_NAMES``) of the parts of ``state`` that hold a NaN or infinity."""
    leaves = list(state.u) + [state.c_int] + list(state.net) + list(state.Q)
    return [n for n, a in zip(_PART_NAMES, leaves) if not np.all(np.isfinite(np.asarray(a)))]


@partial(jax.jit, static_argnames=("error_form", "max_steps"))
def _replay(state, ts, x, y, mode, rule, params, t1, error_form, max_steps):
    """A failed solve again, keeping every accepted step: times (max_steps,) and flat states
    (max_steps, D), padded with inf after the last step."""
    term, flat0, _, args, controller = _problem(state, ts, x, y, mode, rule, params, error_form)
    sol = diffrax.diffeqsolve(
        term, diffrax.Tsit5(), t0=0.0, t1=t1, dt0=1e-3, y0=flat0, args=args, saveat=diffrax.SaveAt(steps=True),
        stepsize_controller=controller, max_steps=max_steps, throw=False,
    )
    return sol.ts, sol.ys


@partial(jax.jit, static_argnames=("error_form",))
def _probe(flat, t, dt, state, ts, x, y, mode, rule, params, error_form):
    """One Tsit5 step of size ``dt`` from the flat state ``flat`` at ``t``: returns its stage
    derivatives (7, D), and the Jacobian of the potentials' and controller's derivatives with
    respect to the potentials and controller at ``(t, flat)`` (weights and Q held)."""
    term, _, unravel, args, _ = _problem(state, ts, x, y, mode, rule, params, error_form)
    solver = diffrax.Tsit5()
    solver_state = solver.init(term, t, t + dt, flat, args)
    _, _, dense, _, _ = solver.step(term, t, t + dt, flat, args, solver_state, made_jump=False)
    s = unravel(flat)
    fast0, unravel_fast = ravel_pytree((s.u, s.c_int))

    def fast_field(z):
        u, c_int = unravel_fast(z)
        d = vector_field(t, s._replace(u=u, c_int=c_int), args, error_form=error_form)
        return ravel_pytree((d.u, d.c_int))[0]

    return dense["k"], jax.jacfwd(fast_field)(fast0)


def _diagnose(code, state0, state_end, stats, t1, ts, x, y, mode, rule, params, error_form, max_steps):
    """``(cause, explanation, t)`` of a failed solve from ``state0`` that stopped at ``state_end``
    (see :class:`SolverError`).

    Finds the last finite state (replaying the solve, keeping every accepted step, if the
    state it stopped at is not finite) and takes one step from there: a NaN or infinite stage
    derivative at a finite state means the field itself is not defined there (no step size
    helps); otherwise the state overflowed (diverged), or the field was finite all along and
    only ``max_steps`` was too small."""
    steps, rejected = int(stats.steps), int(stats.rejected)
    t1 = float(t1)
    bad0 = _nonfinite_parts(state0)
    if bad0:
        return ("nonfinite_state", f"the initial state is NaN or infinite (in {', '.join(bad0)})", 0.0)
    args = (ts, x, y, mode, rule, params)
    flat0, unravel = ravel_pytree(state0)
    if _nonfinite_parts(state_end):
        times, flats = (np.asarray(a) for a in _replay(state0, *args, jnp.float32(t1), error_form, max_steps))
    else:  # the state it stopped at is finite: that is the last one
        times, flats = np.array([float(stats.t_end)]), np.asarray(ravel_pytree(state_end)[0])[None]
    valid = np.isfinite(times)
    finite_rows = np.all(np.isfinite(flats), axis=1)
    blown = np.flatnonzero(valid & ~finite_rows)
    if blown.size:  # the first accepted step that left the finite states
        k = int(blown[0])
        prev, t_prev = (flats[k - 1], float(times[k - 1])) if k > 0 else (np.asarray(flat0), 0.0)
        dt = float(times[k]) - t_prev
    else:  # all accepted states finite: probe a minimal step from the last one
        last = np.flatnonzero(valid)
        prev, t_prev = (flats[last[-1]], float(times[last[-1]])) if last.size else (np.asarray(flat0), 0.0)
        dt = min(_DTMIN, max(t1 - t_prev, 1e-9))
    stages, jac = _probe(jnp.asarray(prev), jnp.float32(t_prev), jnp.float32(dt), state0, *args, error_form)
    stages = np.asarray(stages)
    bad_stage = [i for i in range(stages.shape[0]) if not np.all(np.isfinite(stages[i]))]
    if bad_stage:
        parts = ", ".join(f"d{n}/dt" for n in _nonfinite_parts(unravel(jnp.asarray(stages[bad_stage[0]]))))
        return ("nonfinite_field",
                f"the vector field is NaN or infinite at t = {t_prev:.4g} s of {t1:.4g} s (in {parts}) although the "
                f"state there is finite, so no step size can pass this point ({rejected} of {steps} steps "
                "rejected); increasing max_steps cannot help: the model is not defined at this state", t_prev)
    if blown.size or code == _NONFINITE_CODE:
        return ("nonfinite_state", f"the solution became NaN or infinite after t = {t_prev:.4g} s of {t1:.4g} s "
                "although the vector field was finite there: it diverged (overflow)", t_prev)
    if code != _MAX_STEPS_CODE:
        return "other", _diffrax_message(code), t_prev
    eig = np.linalg.eigvals(np.asarray(jac, np.float64)) + 0.0  # + 0.0: no "-0" in the text
    t_end = float(stats.t_end)
    accepted = steps - rejected
    text = (f"max_steps = {max_steps} was reached at t = {t_end:.4g} s of {t1:.4g} s ({rejected} of {steps} steps "
            f"rejected). There the potentials and controller have Jacobian eigenvalues with largest real part "
            f"{eig.real.max():.3g}/s and largest modulus {np.abs(eig).max():.3g}/s")
    if eig.real.max() > 0:
        text += f" (locally unstable: perturbations grow e-fold in {1 / eig.real.max():.2g} s)"
    if accepted > 0 and t_end > 0:
        needed = int(np.ceil(steps * t1 / t_end))
        text += (f"; the mean accepted step is {t_end / accepted:.2g} s (limits {_DTMIN:g}..{_DTMAX:g} s), at which "
                 f"the window needs about {needed} steps: raise max_steps to that if the run should go on")
    else:
        text += "; no step was accepted, so increasing max_steps cannot help"
    return "max_steps", text, t_end


@partial(jax.jit, static_argnames=("error_form", "max_steps"))
def _solve_jit(state, ts, x, y, mode, rule, params, t1, error_form, max_steps):
    return _solve(state, ts, x, y, mode, rule, params, t1, error_form, max_steps)


def solve(state: State, ts, x, y=None, *, mode: str = "evaluate", rule: str = "exact",
          error_form: str = "published", params: Params = Params(), t1: Optional[float] = None,
          max_steps: int = 4096):
    """Solve one window from ``state``.

    ``ts`` (T,) local sample times starting at 0; ``x`` (T, n_in) inputs; ``y`` (T, n_out)
    targets (needed when the mode uses control; zeros otherwise). Integrates on
    ``[0, t1]`` (default: ``ts[-1] + (ts[1] - ts[0])``, i.e. the full window).
    Returns ``(final_state, trace)`` with :class:`Trace` sampled at ``ts``.
    Raises :class:`SolverError` if the solve fails; its message and ``cause`` say why (a field
    that is NaN at a finite state, a diverged state, or too small a ``max_steps``).
    """
    _check_mode(mode)
    _check_error_form(error_form)
    ts = jnp.asarray(ts, jnp.float32)
    x = jnp.asarray(x, jnp.float32)
    n_in = state.net.W1.shape[0]
    n_out = state.net.W2.shape[1]
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ValueError(f"ts must be 1-D with at least 2 times, got shape {ts.shape}")
    if x.shape != (ts.shape[0], n_in):
        raise ValueError(f"x must have shape (len(ts), n_in) = {(ts.shape[0], n_in)}, got {x.shape}")
    if y is None:
        if MODES[mode].control:
            raise ValueError(f"y (targets) is required in mode {mode!r}")
        y = jnp.zeros((ts.shape[0], n_out), jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    if y.shape != (ts.shape[0], n_out):
        raise ValueError(f"y must have shape (len(ts), n_out) = {(ts.shape[0], n_out)}, got {y.shape}")
    if t1 is None:
        t1 = float(ts[-1] + (ts[1] - ts[0]))
    args = (ts, x, y, _f32(MODES[mode]), make_rule(rule, error_form, params), _f32(params))
    final, trace, code, stats = _solve_jit(state, *args, jnp.float32(t1), error_form, int(max_steps))

    def diagnose(i, code):
        return _diagnose(code, state, final, stats, t1, *args, error_form, int(max_steps))

    _raise_if_failed(code, stats.steps, f"mode={mode}, rule={rule}", diagnose=diagnose)
    return final, trace


def _np_mse(y, r):
    """Host-side (numpy, float32) version of :func:`mse_per_time`."""
    return np.mean(np.sum((np.asarray(y) - np.asarray(r)) ** 2, axis=-1), axis=-1)


def mse_per_time(y, r):
    """Time-mean of the summed squared error: ``mean_t sum_k (y - r)^2``; (..., T, K) -> (...)."""
    return jnp.mean(jnp.sum((y - r) ** 2, axis=-1), axis=-1)


# ----------------------------------------------------------------------------- experiment
# The whole experiment uses ONE compiled solver: a vmapped solve of a batch of 3 networks,
# each with its own state, inputs, targets, mode and rule (modes and rules are data, so
# burn-in, evaluation, training and controlled runs share the compiled code). vmap keeps
# every element's adaptive step sequence its own, so batching does not change results.
_BATCH = 3


@partial(jax.jit, static_argnames=("error_form", "max_steps"))
def _solve_batch(states, ts, xs, ys, modes, rules, params, t1, error_form, max_steps):
    """``states``, ``xs``, ``ys``, ``modes``, ``rules``: tuples of 3 (stacked here, so the
    host dispatches a single call). Returns (tuple of (final, Trace), codes (3,), _SolveStats of (3,))."""
    solve_one = jax.vmap(_solve, in_axes=(0, None, 0, 0, 0, 0, None, None, None, None))
    final, trace, code, stats = solve_one(_stack(*states), ts, jnp.stack(xs), jnp.stack(ys), _stack(*modes),
                                          _stack(*rules), params, t1, error_form, max_steps)
    return tuple((_index(final, i), _index(trace, i)) for i in range(len(states))), code, stats


def _stack(*trees):
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)


def _index(tree, i):
    return jax.tree_util.tree_map(lambda a: a[i], tree)


class _Runner:
    """Host-side helper that fills batches of 3 for :func:`_solve_batch`."""

    def __init__(self, ts, params, t1, error_form, max_steps, n_out):
        self.ts, self.params, self.t1 = ts, params, t1
        self.error_form, self.max_steps = error_form, max_steps
        self.zeros = jnp.zeros((ts.shape[0], n_out), jnp.float32)
        self.modes = {k: _f32(v) for k, v in MODES.items()}

    def __call__(self, jobs, what, names=None):
        """``jobs``: up to 3 tuples (state, x, y or None, mode name, Rule); ``names`` name them
        in error messages. Returns a list of (final state, Trace) per job; raises
        SolverError if any solve failed."""
        n = len(jobs)
        jobs = list(jobs) + [jobs[-1]] * (_BATCH - n)  # pad with a copy (result unused)
        ys = tuple(self.zeros if j[2] is None else j[2] for j in jobs)
        out, code, stats = _solve_batch(
            tuple(j[0] for j in jobs), self.ts, tuple(j[1] for j in jobs), ys, tuple(self.modes[j[3]] for j in jobs),
            tuple(j[4] for j in jobs), self.params, self.t1, self.error_form, self.max_steps)
        code, stats = jax.device_get((code, stats))

        def diagnose(i, code_i):
            return _diagnose(code_i, jobs[i][0], out[i][0], _index(stats, i), self.t1, self.ts, jobs[i][1], ys[i],
                             self.modes[jobs[i][3]], jobs[i][4], self.params, self.error_form, self.max_steps)

        _raise_if_failed(code[:n], stats.steps[:n], what, names, diagnose)
        self.last_steps = np.asarray(stats.steps[:n])
        return list(out[:n])


class EpochRecord(NamedTuple):
    """Metrics of one training epoch; arrays are (2,) in the order of ``STUDENTS``."""

    epoch: int
    ol_mse: np.ndarray
    cl_mse: np.ndarray
    lcl: np.ndarray
    steps: np.ndarray  # ODE steps of (teacher, OL linear, OL exact, CL linear, CL exact)
    seconds: float


class ExperimentResult(NamedTuple):
    """Outcome of :func:`run_experiment`.

    ``history``: dict of arrays (epochs, 2) for "ol_mse", "cl_mse", "lcl" (students in the
    order ``students``); ``epoch_end_minutes`` (epochs,): simulated time at each epoch's end;
    ``inputs_ts``, ``inputs`` (T, n_in): the first burn-in window; ``demo_before`` /
    ``demo_after``: dict(t (2T,), target (2T, n_out), outputs (2, 2T, n_out), control_on
    (start, end) in s) for an open-loop window followed by a controlled one, before and
    after learning (None with ``demo=False``); ``teacher``: the teacher's final state;
    ``final_students``: the students' final states stacked on a leading axis of 2;
    ``timings``: seconds spent in burn-in and training."""

    students: tuple
    history: dict
    epoch_end_minutes: np.ndarray
    inputs_ts: np.ndarray
    inputs: np.ndarray
    demo_before: Optional[dict]
    demo_after: Optional[dict]
    teacher: State
    final_students: State
    timings: dict


STUDENTS = ("linear", "exact")
_LOG_NAMES = {"linear": "Approx", "exact": "Exact"}


def format_epoch(record: EpochRecord, students=STUDENTS) -> str:
    """The published printout for one epoch (7 lines, no trailing newline)."""
    lines = [f"Training epoch {record.epoch}"]
    for i, s in enumerate(students):
        name = _LOG_NAMES[s]
        lines.append(f"{name} - MSE Loss (OL):  {str(np.float32(record.ol_mse[i]))}")
        lines.append(f"{name} - MSE Loss (CL):  {str(np.float32(record.cl_mse[i]))}")
        lines.append(f"{name} - LCL:  {str(np.float32(record.lcl[i]))}")
    return "\n".join(lines)


def run_experiment(epochs: int = 60, seed: int = 2, *, burn_in_epochs: int = 4, error_form: str = "published",
                   window: float = 5.0, dt: float = 1e-3, params: Params = Params(), n_in: int = 30,
                   n_hidden: int = 20, n_out: int = 2, init_scale: float = 2.0,
                   threefry_partitionable: Optional[bool] = None, max_steps: int = 4096,
                   callback: Optional[Callable[[EpochRecord], None]] = None, progress=None,
                   demo: bool = True) -> ExperimentResult:
    """Run the student-teacher experiment (Fig. 4).

    ``PRNGKey(seed)`` splits into (input, student, teacher) keys; both students (linear
    threshold "Approx" and exact "Exact") start from the same weights. ``burn_in_epochs``
    windows of ``window`` seconds (only u and Q evolve), then ``epochs`` training epochs,
    each an open-loop evaluation (OL MSE) and a closed-loop training solve (CL MSE,
    least-control objective LCL). ``callback(record)`` is called after every epoch;
    ``progress`` (e.g. a tqdm bar) gets ``update(1)`` per burn-in or training epoch.
    ``threefry_partitionable``: if not None, the random draws use that JAX RNG setting
    (``False`` reproduces the 2023 RNG that the published log used).
    Raises :class:`SolverError` if any solve fails, naming the epoch, the network and the cause.
    """
    _check_error_form(error_form)
    for name, v, lo in (("epochs", epochs, 0), ("burn_in_epochs", burn_in_epochs, 0), ("max_steps", max_steps, 1)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not window > 0 or not dt > 0 or window / dt < 2:
        raise ValueError(f"window and dt must be positive with window/dt >= 2, got window={window}, dt={dt}")

    ctx = (jax.threefry_partitionable(bool(threefry_partitionable)) if threefry_partitionable is not None
           else contextlib.nullcontext())
    with ctx:
        k_in, k_student, k_teacher = jax.random.split(jax.random.PRNGKey(seed), 3)
        sines = sine_inputs(k_in, n_in)
        student_net = init_network(k_student, n_in, n_hidden, n_out, init_scale)
        teacher_net = init_network(k_teacher, n_in, n_hidden, n_out, init_scale)
        sines, student_net, teacher_net = jax.device_get((sines, student_net, teacher_net))

    p = _f32(params)
    teacher = init_state(teacher_net, p)
    student = init_state(student_net, p)
    windows = {}

    def window_at(t_start):
        if t_start not in windows:
            windows.clear()
            windows[t_start] = input_window(sines, t_start, window, dt)
        return windows[t_start]

    ts0, _ = input_window(sines, 0.0, window, dt)
    run = _Runner(ts0, p, jnp.float32(window), error_form, int(max_steps), n_out)
    exact = make_rule("exact", error_form, p)
    rules = [make_rule(s, error_form, p) for s in STUDENTS]
    timings = {}

    def tick():
        if progress is not None:
            progress.update(1)

    start = 0.0
    first_ts, first_x = (np.asarray(a) for a in input_window(sines, 0.0, window, dt))
    t0 = time.perf_counter()
    for b in range(burn_in_epochs):
        _, x = window_at(start)
        (teacher, _), (student, _) = run([(teacher, x, None, "evaluate", exact),
                                             (student, x, None, "burn_in", exact)], f"burn-in epoch {b}")
        start += window
        tick()
    timings["burn_in"] = time.perf_counter() - t0
    students = [student, student]

    def run_demo(teacher, students, start):
        """Open loop on [start, start + window], then controlled (no plasticity) on the next window."""
        _, x_ol = window_at(start)
        out = run([(teacher, x_ol, None, "evaluate", exact)]
                  + [(s, x_ol, None, "evaluate", r) for s, r in zip(students, rules)], "demonstration, open loop",
                  ["teacher"] + [f"{name} student" for name in STUDENTS])
        teacher2, tr_t = out[0]
        _, x_cl = window_at(start + window)
        (_, tr_t2), = run([(teacher2, x_cl, None, "evaluate", exact)], "demonstration, targets", ["teacher"])[:1]
        ctl = run([(f, x_cl, tr_t2.r, "control", r) for (f, _), r in zip(out[1:], rules)],
                  "demonstration, controlled", [f"{name} student" for name in STUDENTS])
        t = np.concatenate([np.asarray(ts0), np.asarray(ts0) + window]) + start
        target = np.concatenate([np.asarray(tr_t.r), np.asarray(tr_t2.r)])
        outputs = np.stack([np.concatenate([np.asarray(out[1 + i][1].r), np.asarray(ctl[i][1].r)])
                            for i in range(len(STUDENTS))])
        return dict(t=t, target=target, outputs=outputs, control_on=(start + window, start + 2 * window),
                    students=STUDENTS)

    demo_before = run_demo(teacher, students, start) if demo else None

    hist = {k: [] for k in ("ol_mse", "cl_mse", "lcl")}
    ends = []
    t0 = time.perf_counter()
    for ep in range(epochs):
        te = time.perf_counter()
        _, x = window_at(start)
        what = f"training epoch {ep}"
        out = run([(teacher, x, None, "evaluate", exact)]
                  + [(s, x, None, "evaluate", r) for s, r in zip(students, rules)], what + " (open loop)",
                  ["teacher"] + [f"{name} student" for name in STUDENTS])
        steps_a = run.last_steps
        teacher, tr_t = out[0]
        target = tr_t.r
        target_np = np.asarray(target)
        ol = [_np_mse(target_np, out[1 + i][1].r) for i in range(len(STUDENTS))]
        trained = run([(s, x, target, "train", r) for s, r in zip(students, rules)], what + " (closed loop)",
                      [f"{name} student" for name in STUDENTS])
        steps_b = run.last_steps
        students = [trained[i][0] for i in range(len(STUDENTS))]
        cl = [_np_mse(target_np, trained[i][1].r) for i in range(len(STUDENTS))]
        lcl = [np.mean(np.asarray(trained[i][1].lcl)) for i in range(len(STUDENTS))]
        metrics = {k: np.asarray(v, np.float32) for k, v in (("ol_mse", ol), ("cl_mse", cl), ("lcl", lcl))}
        start += window
        ends.append(start / 60.0)
        for k in hist:
            hist[k].append(metrics[k])
        rec = EpochRecord(ep, metrics["ol_mse"], metrics["cl_mse"], metrics["lcl"],
                          np.concatenate([steps_a, steps_b[:len(STUDENTS)]]), time.perf_counter() - te)
        if callback is not None:
            callback(rec)
        tick()
    timings["training"] = time.perf_counter() - t0

    demo_after = run_demo(teacher, students, start) if demo else None
    students = _stack(*students)
    history = {k: np.stack(v) if v else np.zeros((0, len(STUDENTS)), np.float32) for k, v in hist.items()}
    return ExperimentResult(STUDENTS, history, np.asarray(ends), first_ts, first_x, demo_before, demo_after,
                            teacher, students, timings)
