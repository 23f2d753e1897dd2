"""The single E/I microcircuit of Rossbroich & Zenke (2023), Fig. 3 and Fig. S2.

One excitatory (E) and one inhibitory (I) unit, time in units of tau:

    du_E/dt = -u_E - phi_I(u_I) + x
    du_I/dt = -u_I + phi_E(u_E) - alpha (r_tar - phi_E(u_E))     (last term only with a target)

integrated by forward Euler (dt = 1/50, 600 steps) from u_E = u_I = 0, elementwise over
any array of inputs ``x`` (and targets). The weight change of the input synapse is

    dw = x (r_E - (theta + delta r_I)) phi_E'(u_E)          (linear fit of phi_I^-1)
    dw = x (r_E - phi_I^-1(r_I)) phi_E'(u_E)                 (exact)

with ``r_E = phi_E(u_E)``, ``r_I = phi_I(u_I)``: the local rules of
:mod:`dgnlib.dic.learning_rules` (:func:`~dgnlib.dic.learning_rules.local_error`,
:func:`~dgnlib.dic.learning_rules.linear_threshold_model`) applied to one synapse.
:func:`crossings` finds where a dw curve changes sign, reporting the interpolated r_E.
The protocols of the figures (:func:`topdown_curves`, :func:`ablated_curves`,
:func:`isolated_curves`) return :class:`Curve` records; :func:`crossing_line` prints one.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import positive_int
from .activations import SoftRectifier
from .learning_rules import linear_threshold_model, local_error

__all__ = [
    "CircuitConfig", "CircuitState", "Crossings",
    "simulate", "steady_state", "isolated_neuron", "dw_linear_threshold", "dw_exact", "crossings",
    "FIG3_FITS", "FIGS2_FITS", "ISOLATED_RATES", "Curve",
    "topdown_curves", "ablated_curves", "isolated_curves", "crossing_line",
]

#: The two linear fits of Fig. 3 (theta, delta).
FIG3_FITS = ((1.5, 1.5), (0.9, 1.8))
#: The five fits of Fig. S2 (theta, delta).
FIGS2_FITS = ((1.5, 0.5), (-0.5, 1.5), (1.5, 2.0), (4.0, 1.0), (1.75, 1.25))
#: The fixed inhibitory rates of the isolated-neuron protocol (Fig. 3c).
ISOLATED_RATES = (0.01, 0.673, 1.337, 2.0)


class CircuitConfig(NamedTuple):
    """Constants of the microcircuit (a pytree of floats; ``n_steps`` must stay static)."""

    phi_E: SoftRectifier = SoftRectifier(1.0, 1.0, 3.0)
    phi_I: SoftRectifier = SoftRectifier(1.0, 1.0, 3.0)
    alpha: float = 5.0
    dt: float = 1.0 / 50.0


class CircuitState(NamedTuple):
    """Potentials and rates, each with the shape of the input grid."""

    u_E: jax.Array
    u_I: jax.Array
    r_E: jax.Array
    r_I: jax.Array


class Crossings(NamedTuple):
    """r_E where dw changes sign: potentiation -> depression and depression -> potentiation
    (as the input grows), each a 1-D numpy array in grid order."""

    pot_to_dep: np.ndarray
    dep_to_pot: np.ndarray


def _f32(x):
    return jnp.asarray(x, jnp.float32)


def _euler(x, target, has_target, config: CircuitConfig, n_steps: int):
    phi_E, phi_I = config.phi_E, config.phi_I

    def step(carry, _):
        u_E, u_I = carry
        r_E = phi_E(u_E)
        top_down = jnp.where(has_target, -config.alpha * (target - r_E), 0.0)
        du_E = -u_E - phi_I(u_I) + x
        du_I = -u_I + r_E + top_down
        return (u_E + config.dt * du_E, u_I + config.dt * du_I), None

    zero = jnp.zeros_like(x)
    (u_E, u_I), _ = jax.lax.scan(step, (zero, zero), None, length=n_steps)
    return CircuitState(u_E, u_I, phi_E(u_E), phi_I(u_I))


_euler_jit = jax.jit(_euler, static_argnames=("n_steps",))


def simulate(x, target=None, config: CircuitConfig = CircuitConfig(), n_steps: int = 600) -> CircuitState:
    """State after ``n_steps`` Euler steps from zero, for every input in ``x`` (any shape).

    ``target``: None (top-down feedback ablated) or the target rate r_tar, a scalar or an
    array broadcastable to ``x``.
    """
    x = _f32(x)
    n_steps = positive_int("n_steps", n_steps)
    has_target = target is not None
    t = _f32(0.0 if target is None else target)
    try:
        x, t = jnp.broadcast_arrays(x, t)
    except ValueError as exc:
        raise ValueError(f"target of shape {jnp.shape(target)} does not broadcast with x of shape {x.shape}") from exc
    return _euler_jit(x, t, jnp.asarray(has_target), jax.tree_util.tree_map(_f32, config), n_steps)


def steady_state(x, target=None, config: CircuitConfig = CircuitConfig(), iters: int = 60) -> CircuitState:
    """Fixed point of the circuit by Newton's method on u_E (independent of the Euler path).

    With ``u_I = (1 + a) phi_E(u_E) - a r_tar`` (a = alpha with a target, 0 without),
    solves ``u_E + phi_I(u_I) - x = 0``, whose left side increases strictly in u_E.
    """
    x = _f32(x)
    a = 0.0 if target is None else config.alpha
    t = _f32(0.0 if target is None else target)
    phi_E, phi_I = config.phi_E, config.phi_I

    def g(u_E):
        return u_E + phi_I((1 + a) * phi_E(u_E) - a * t) - x

    def dg(u_E):
        return 1.0 + phi_I.slope((1 + a) * phi_E(u_E) - a * t) * (1 + a) * phi_E.slope(u_E)

    u_E = jnp.zeros_like(x + t)
    for _ in range(iters):
        u_E = u_E - g(u_E) / dg(u_E)
    u_I = (1 + a) * phi_E(u_E) - a * t
    return CircuitState(u_E, u_I, phi_E(u_E), phi_I(u_I))


def isolated_neuron(u_E, r_I, config: CircuitConfig = CircuitConfig()) -> CircuitState:
    """Isolated-neuron protocol: u_E clamped (any shape), inhibitory rate fixed at ``r_I > 0``
    (scalar or broadcastable); ``u_I = phi_I^-1(r_I)``."""
    u_E = _f32(u_E)
    r_I = _f32(r_I)
    if np.any(np.asarray(r_I) <= 0):
        raise ValueError(f"r_I must be positive (phi_I^-1 is undefined otherwise), got {np.asarray(r_I)}")
    u_E, r_I = jnp.broadcast_arrays(u_E, r_I)
    return CircuitState(u_E, config.phi_I.inverse(r_I), config.phi_E(u_E), r_I)


def dw_linear_threshold(x, state: CircuitState, theta, delta, config: CircuitConfig = CircuitConfig()):
    """``x (r_E - (theta + delta r_I)) phi_E'(u_E)``; shapes broadcast."""
    m = linear_threshold_model(theta, delta, state.r_I)
    return -_f32(x) * local_error(state.r_E, m, config.phi_E.slope(state.u_E))


def dw_exact(x, state: CircuitState, config: CircuitConfig = CircuitConfig()):
    """``x (r_E - phi_I^-1(r_I)) phi_E'(u_E)``; shapes broadcast."""
    return -_f32(x) * local_error(state.r_E, config.phi_I.inverse(state.r_I), config.phi_E.slope(state.u_E))


def crossings(r_E, dw, tol: float = 0.0) -> Crossings:
    """Sign changes of ``dw`` along a 1-D grid, located by linear interpolation of r_E.

    ``r_E``, ``dw``: 1-D arrays of equal length (one point per grid input, in grid order).
    Points with ``|dw| <= tol`` carry no sign and are skipped (so ``dw = 0`` at x = 0 and
    numerical residuals below ``tol`` make no crossings); the crossing is interpolated
    between the last signed point before and the first signed point after the change.
    """
    r_E = np.asarray(r_E, np.float64)
    dw = np.asarray(dw, np.float64)
    if r_E.ndim != 1 or dw.shape != r_E.shape:
        raise ValueError(f"r_E and dw must be 1-D of equal length, got shapes {r_E.shape} and {dw.shape}")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    idx = np.nonzero(np.abs(dw) > tol)[0]
    pot, dep = [], []
    for i, j in zip(idx[:-1], idx[1:]):
        if np.sign(dw[i]) == np.sign(dw[j]):
            continue
        frac = dw[i] / (dw[i] - dw[j])
        r = r_E[i] + frac * (r_E[j] - r_E[i])
        (pot if dw[i] > 0 else dep).append(r)
    return Crossings(np.asarray(pot), np.asarray(dep))


# ----------------------------------------------------------------------------- protocols
class Curve(NamedTuple):
    """One plasticity curve: ``protocol`` ("topdown", "ablated", "isolated"), ``rule``
    ("exact" or the fit ``(theta, delta)``), ``target`` / ``r_I`` (None where unused), and
    1-D numpy arrays over the grid: ``grid`` (x, or the clamped u_E), ``r_E``, ``dw``."""

    protocol: str
    rule: object
    target: Optional[float]
    r_I: Optional[float]
    grid: np.ndarray
    r_E: np.ndarray
    dw: np.ndarray


def _check_grid(grid, name):
    grid = np.asarray(grid, np.float32)
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError(f"{name} must be a 1-D grid with at least 2 points, got shape {grid.shape}")
    return grid


def _curves(protocol, grid, state, x, fits, target, r_I, exact, config):
    out = [Curve(protocol, tuple(float(v) for v in fit), target, r_I, grid, np.asarray(state.r_E),
                 np.asarray(dw_linear_threshold(x, state, fit[0], fit[1], config))) for fit in fits]
    if exact:
        out.append(Curve(protocol, "exact", target, r_I, grid, np.asarray(state.r_E),
                         np.asarray(dw_exact(x, state, config))))
    return out


def topdown_curves(x, target, fits=FIG3_FITS, exact=True, config: CircuitConfig = CircuitConfig()):
    """Fig. 3a: circuit with top-down target ``target``; one :class:`Curve` per fit (+ exact)."""
    x = _check_grid(x, "x")
    return _curves("topdown", x, simulate(x, target, config), x, fits, float(target), None, exact, config)


def ablated_curves(x, fits=FIG3_FITS, exact=True, config: CircuitConfig = CircuitConfig()):
    """Fig. 3b: top-down feedback ablated; one :class:`Curve` per fit (+ exact)."""
    x = _check_grid(x, "x")
    return _curves("ablated", x, simulate(x, None, config), x, fits, None, None, exact, config)


def isolated_curves(u_E, r_I_values=ISOLATED_RATES, fits=FIG3_FITS, x_pre: float = 1.0, exact=False,
                    config: CircuitConfig = CircuitConfig()):
    """Fig. 3c: u_E clamped on the grid ``u_E``, r_I fixed; presynaptic rate ``x_pre``.
    One :class:`Curve` per (r_I, fit)."""
    u_E = _check_grid(u_E, "u_E")
    out = []
    for r_I in r_I_values:
        out += _curves("isolated", u_E, isolated_neuron(u_E, r_I, config), x_pre, fits, None, float(r_I),
                       exact, config)
    return out


def _fmt(values):
    return ",".join(f"{v:.2f}" for v in values) if len(values) else "none"


def crossing_line(curve: Curve, tol: float = 2e-3, prefix: str = "") -> str:
    """One table line, e.g. ``crossing: protocol=topdown target=4 fit=(1.5,1.5) pot->dep
    r_E=4.09 dep->pot r_E=1.50`` (``none`` where there is no such crossing; several
    crossings of one kind are comma-separated). ``tol`` as in :func:`crossings`."""
    c = crossings(curve.r_E, curve.dw, tol)
    parts = ["crossing:"]
    if prefix:
        parts.append(prefix)
    parts.append(f"protocol={curve.protocol}")
    if curve.target is not None:
        parts.append(f"target={curve.target:g}")
    if curve.r_I is not None:
        parts.append(f"r_I={curve.r_I:g}")
    rule = "exact" if curve.rule == "exact" else "({:g},{:g})".format(*curve.rule)
    parts.append(f"fit={rule}")
    parts.append(f"pot->dep r_E={_fmt(c.pot_to_dep)}")
    parts.append(f"dep->pot r_E={_fmt(c.dep_to_pot)}")
    return " ".join(parts)
