"""The continuous-time student-teacher model of Fig. 4: state, parameters and vector field.

A teacher and two students share one architecture: ``n_in`` inputs -> ``n_hidden`` E/I neurons
-> ``n_out`` E/I output neurons; the output is the output layer's excitatory rate
``phi_E(u_E2)``. Potentials, controller integral, weights, biases and feedback weights evolve in
one ODE (:func:`vector_field`; the equations are in :mod:`dgnlib.dic.student_teacher`). The
plasticity error of each layer is :func:`dgnlib.dic.learning_rules.local_error` of the rule's
model of the inverse inhibitory transfer (:class:`Rule`, :func:`make_rule`), in weight-change
sign. Everything is float32.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ...checks import choice, positive_int
from ..activations import SoftRectifier, linearised_inverse
from ..controller import LeakyPI
from ..learning_rules import linear_threshold_model, local_error

__all__ = [
    "Network", "Feedback", "Potentials", "State", "Mode", "Rule", "StudentTeacherConfig", "Trace", "SineInputs",
    "MODES", "ERROR_FORMS", "STUDENTS",
    "as_float32", "init_network", "init_state", "feedback_target", "sine_inputs", "input_window", "make_rule",
    "vector_field", "observe", "mse_per_time",
]

ERROR_FORMS = ("published", "paper")
#: The two students, in the order of every result and of the log ("Approx", then "Exact"): the
#: local rules of :data:`dgnlib.dic.training.RULES`.
STUDENTS = ("linear_threshold", "exact")


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


class StudentTeacherConfig(NamedTuple):
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


def as_float32(tree):
    """Every leaf of ``tree`` as a float32 array."""
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), tree)


# ----------------------------------------------------------------------------- init
def init_network(key, n_in: int = 30, n_hidden: int = 20, n_out: int = 2, scale: float = 2.0) -> Network:
    """Gaussian init as in the paper's code: the key splits into 4, used in order for
    W1 (n_in, n_hidden) * scale/sqrt(n_in), W2 (n_hidden, n_out) * scale/sqrt(n_hidden),
    b1 (n_hidden,) * scale/sqrt(n_hidden), b2 (n_out,) * scale/sqrt(n_out)."""
    n_in, n_hidden, n_out = (positive_int(name, n) for name, n in (("n_in", n_in), ("n_hidden", n_hidden),
                                                                      ("n_out", n_out)))
    k1, k2, k3, k4 = jax.random.split(key, 4)
    W1 = jax.random.normal(k1, (n_in, n_hidden)) * scale / np.sqrt(n_in)
    W2 = jax.random.normal(k2, (n_hidden, n_out)) * scale / np.sqrt(n_hidden)
    b1 = jax.random.normal(k3, (n_hidden,)) * scale / np.sqrt(n_hidden)
    b2 = jax.random.normal(k4, (n_out,)) * scale / np.sqrt(n_out)
    return as_float32(Network(W1, b1, W2, b2))


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


def feedback_target(u: Potentials, net: Network, config: StudentTeacherConfig) -> Feedback:
    """Normalised output-rate Jacobians: J2 = D_E2 D_I2 (n_out, n_out),
    J1 = D_E2 W2^T D_E1 D_I1 (n_out, n_h), each scaled to Frobenius norm ``q_norm``.

    The direction ``J / ||J||_F`` is defined for every finite state, also where the slopes
    underflow (a dis-inhibited inhibitory unit has ``phi_I'(u_I) ~ exp(u_I - s)``, zero in
    float32 below ``u_I ~ -100`` and its square already below ``u_I ~ -45``): there it is
    computed from the logarithms of the entries instead of as 0/0."""
    dE1 = config.phi_E.slope(u.uE1)
    dI1 = config.phi_I.slope(u.uI1)
    dE2 = config.phi_E.slope(u.uE2)
    dI2 = config.phi_I.slope(u.uI2)
    J2 = jnp.diag(dE2 * dI2)
    J1 = dE2[:, None] * net.W2.T * (dE1 * dI1)[None, :]

    lE2 = _log_slope(config.phi_E, u.uE2)
    l1 = _log_slope(config.phi_E, u.uE1) + _log_slope(config.phi_I, u.uI1)
    n_out = u.uE2.shape[0]
    eye = jnp.eye(n_out, dtype=J2.dtype)
    log2 = jnp.where(eye > 0, jnp.diag(lE2 + _log_slope(config.phi_I, u.uI2)), -jnp.inf)
    log1 = lE2[:, None] + jnp.log(jnp.abs(net.W2.T)) + l1[None, :]
    return Feedback(_normalise(J1, log1, jnp.sign(net.W2.T), config.q_norm),
                    _normalise(J2, log2, eye, config.q_norm))


def init_state(net: Network, config: StudentTeacherConfig = StudentTeacherConfig()) -> State:
    """Zero potentials and controller, given network, Q = normalised Jacobian at u = 0."""
    n_h, n_out = net.W2.shape
    z_h = jnp.zeros((n_h,), jnp.float32)
    z_o = jnp.zeros((n_out,), jnp.float32)
    u = Potentials(z_h, z_h, z_o, z_o)
    return State(u, z_o, as_float32(net), feedback_target(u, net, config))


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


def make_rule(rule: str, error_form: str = "published", config: StudentTeacherConfig = StudentTeacherConfig()) -> Rule:
    """The :class:`Rule` of student ``rule`` (one of :data:`STUDENTS`) under ``error_form``
    (one of :data:`ERROR_FORMS`)."""
    choice("rule", rule, STUDENTS)
    choice("error_form", error_form, ERROR_FORMS)
    if rule == "exact":
        return as_float32(Rule(0.0, 1.0, 0.0))
    if error_form == "published":
        theta, delta = linearised_inverse(config.phi_E, config.fit_y0)
        return as_float32(Rule(theta, delta, 0.0))
    theta, delta = linearised_inverse(config.phi_I, config.fit_y0)
    return as_float32(Rule(theta, delta, 1.0))


# ----------------------------------------------------------------------------- dynamics
def _control(state: State, y, mode: Mode, config: StudentTeacherConfig):
    r_out = config.phi_E(state.u.uE2)
    e = y - r_out
    c = mode.control * config.controller.output(e, state.c_int)
    return r_out, e, c


def vector_field(t, state: State, args, error_form: str = "published") -> State:
    """d state / dt. ``args = (config, mode, rule, x_interp, y_interp)`` where the two
    interpolations give the input (n_in,) and target (n_out,) at time ``t``."""
    config, mode, rule, x_interp, y_interp = args
    phi_E, phi_I = config.phi_E, config.phi_I
    u, net, Q = state.u, state.net, state.Q
    x = x_interp.evaluate(t)
    y = y_interp.evaluate(t)
    r_out, e, c = _control(state, y, mode, config)

    rE1 = phi_E(u.uE1)
    rE2 = r_out
    duE1 = (-u.uE1 + x @ net.W1 + net.b1 - phi_I(u.uI1)) / config.tau_E
    duI1 = (-u.uI1 + rE1 - c @ Q.Q1) / config.tau_I
    duE2 = (-u.uE2 + rE1 @ net.W2 + net.b2 - phi_I(u.uI2)) / config.tau_E
    duI2 = (-u.uI2 + rE2 - c @ Q.Q2) / config.tau_I
    dc_int = mode.control * config.controller.d_integral(e, state.c_int)

    def err(uE, rE, uI):  # weight-change sign: (r_E - m) * slope
        v = jnp.where(rule.on_rate > 0, phi_I(uI), uI)
        m = linear_threshold_model(rule.theta, rule.delta, v)  # exact: theta = 0, delta = 1, m = u_I
        slope = phi_E.slope(rE) if error_form == "published" else phi_E.slope(uE)
        return -local_error(rE, m, slope)

    # A switched-off part gets exactly zero (``where``, not a product with 0, so that a value
    # that is not finite in a part that does not move cannot make the whole field NaN).
    def gated(switch, value):
        return jnp.where(switch > 0, value, jnp.zeros_like(value))

    k_w = mode.learn_W / config.tau_W
    err1 = err(u.uE1, rE1, u.uI1)
    err2 = err(u.uE2, rE2, u.uI2)
    dnet = Network(*(gated(mode.learn_W, k_w * d)
                     for d in (jnp.outer(x, err1), err1, jnp.outer(rE1, err2), err2)))

    J = feedback_target(u, net, config)
    k_q = mode.learn_Q / config.tau_Q
    dQ = Feedback(gated(mode.learn_Q, k_q * (J.Q1 - Q.Q1)), gated(mode.learn_Q, k_q * (J.Q2 - Q.Q2)))
    return State(Potentials(duE1, duI1, duE2, duI2), dc_int, dnet, dQ)


def observe(t, state: State, args) -> Trace:
    """The :class:`Trace` sample of ``state`` at time ``t`` (``args`` as in :func:`vector_field`)."""
    config, mode, _, _, y_interp = args
    r_out, _, c = _control(state, y_interp.evaluate(t), mode, config)
    lcl = jnp.sum((c @ state.Q.Q1) ** 2) + jnp.sum((c @ state.Q.Q2) ** 2)
    return Trace(r_out, lcl, c)


def mse_per_time(y, r):
    """Time-mean of the summed squared error: ``mean_t sum_k (y - r)^2``; (..., T, K) -> (...)."""
    return jnp.mean(jnp.sum((y - r) ** 2, axis=-1), axis=-1)
