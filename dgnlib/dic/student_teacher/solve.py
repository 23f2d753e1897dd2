"""One ODE solve of the student-teacher model (a window of the signal), and the diagnosis of a
failed solve.

:func:`solve` integrates one window from a state with diffrax (Tsit5, the PID step control of
the paper's code) and returns the final state and a :class:`~.model.Trace` sampled every 1 ms.
A solve that does not finish raises :class:`~dgnlib.dic.solve_stats.SteadyStateError`, whose
message and ``cause`` say why (:func:`diagnose`): a vector field that is NaN at a finite state
("increasing max_steps cannot help"), a diverged state, or a step limit that is merely too small
(with an estimate of the steps needed). :func:`integrate` is the unchecked solve that
:class:`BatchRunner` compiles once per window length, batched, for :func:`solve` and the
experiment (:mod:`.experiment`).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple, Optional

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ...checks import choice, positive_int
from ..network import ODESettings
from ..ode import pid_controller
from ..solve_stats import SteadyStateError
from .model import (ERROR_FORMS, MODES, State, StudentTeacherConfig, as_float32, make_rule, observe,
                    vector_field)

__all__ = ["STEP_CONTROL", "ODEStats", "integrate", "raise_if_failed", "diagnose", "BatchRunner", "stack_trees",
           "solve"]

#: Step control of the paper's code: rtol 1e-3, atol 1e-6, 1e-4 s <= dt <= 1e-2 s, first step 1 ms
#: (only these fields of :class:`~dgnlib.dic.network.ODESettings` are used here).
STEP_CONTROL = ODESettings(dt0=1e-3, rtol=1e-3, atol=1e-6, pcoeff=0.1, icoeff=0.3, dcoeff=0.1, dtmin=1e-4,
                           dtmax=1e-2, factormin=0.1, factormax=2.0)


class ODEStats(NamedTuple):
    """Solver statistics of one solve: all steps, rejected steps, time reached."""

    steps: jax.Array
    rejected: jax.Array
    t_end: jax.Array


def _problem(state, ts, x, y, mode, rule, config, error_form):
    """(term, flat initial state, unravel, args, step-size controller) of one solve.

    The solver integrates the state flattened into one vector (the RMS error norm is the
    same as over the pytree); this keeps the per-step overhead of the solver small."""
    flat0, unravel = ravel_pytree(state)
    x_interp = diffrax.LinearInterpolation(ts=ts, ys=x)
    y_interp = diffrax.LinearInterpolation(ts=ts, ys=y)
    controller = pid_controller(STEP_CONTROL)

    def field(t, flat, args):
        return ravel_pytree(vector_field(t, unravel(flat), args, error_form=error_form))[0]

    return diffrax.ODETerm(field), flat0, unravel, (config, mode, rule, x_interp, y_interp), controller


def integrate(state, ts, x, y, mode, rule, config, t1, error_form, max_steps):
    """Unchecked solve on ``[0, t1]`` (jittable, vmappable; the body of the compiled programs).

    Arguments: ``state`` (:class:`~.model.State`), ``ts`` (T,) local times, ``x`` (T, n_in) inputs,
    ``y`` (T, n_out) targets, ``mode`` (:class:`~.model.Mode`, float32), ``rule``
    (:class:`~.model.Rule`), ``config`` (float32 :class:`~.model.StudentTeacherConfig`), ``t1``;
    static: ``error_form``, ``max_steps``.
    Returns: ``(final state, Trace at ts, diffrax result code (0 = success), ODEStats)``. On
    failure the final state is the one the solver stopped at, reached at ``ODEStats.t_end``."""
    term, flat0, unravel, args, controller = _problem(state, ts, x, y, mode, rule, config, error_form)

    def sample(t, flat, args):
        return observe(t, unravel(flat), args)

    saveat = diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts, fn=sample), diffrax.SubSaveAt(t1=True)])
    sol = diffrax.diffeqsolve(
        term, diffrax.Tsit5(), t0=0.0, t1=t1, dt0=STEP_CONTROL.dt0, y0=flat0, args=args,
        saveat=saveat, stepsize_controller=controller, max_steps=max_steps, throw=False,
    )
    trace, final = sol.ys
    # a solve that "succeeds" with non-finite values is reported as a failure too
    finite = jnp.all(jnp.isfinite(final[-1])) & jnp.all(jnp.isfinite(trace.r)) & jnp.all(jnp.isfinite(trace.lcl))
    code = jnp.where((sol.result._value == 0) & ~finite, _NONFINITE_CODE, sol.result._value)
    stats = ODEStats(sol.stats["num_steps"], sol.stats["num_rejected_steps"], sol.ts[1][-1])
    return unravel(final[-1]), trace, code, stats


def _result_messages():
    """diffrax's result messages by code (a private table; fall back to a generic text)."""
    return list(getattr(diffrax.RESULTS, "_index_to_message", []))


_NONFINITE_CODE = next((i for i, m in enumerate(_result_messages()) if m.startswith("Nonfinite")), 9)


_MAX_STEPS_CODE = next((i for i, m in enumerate(_result_messages()) if m.startswith("The maximum number")), 1)


def raise_if_failed(codes, steps, what, names=None, diagnose=None):
    """Raise :class:`SteadyStateError` for the first failed element. ``diagnose(i, code)``, where
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
            raise SteadyStateError(f"ODE solve failed ({what}{who}, after {int(steps[i])} steps): {msg}", cause, t)


def _diffrax_message(code):
    messages = _result_messages()
    return messages[code] if code < len(messages) else f"diffrax result code {code}"


_PART_NAMES = ("uE1", "uI1", "uE2", "uI2", "c_int", "W1", "b1", "W2", "b2", "Q1", "Q2")


def _nonfinite_parts(state: State):
    """Names (``_PART_NAMES``) of the parts of ``state`` that hold a NaN or infinity."""
    leaves = list(state.u) + [state.c_int] + list(state.net) + list(state.Q)
    return [n for n, a in zip(_PART_NAMES, leaves) if not np.all(np.isfinite(np.asarray(a)))]


@partial(jax.jit, static_argnames=("error_form", "max_steps"))
def _replay(state, ts, x, y, mode, rule, config, t1, error_form, max_steps):
    """A failed solve again, keeping every accepted step: times (max_steps,) and flat states
    (max_steps, D), padded with inf after the last step."""
    term, flat0, _, args, controller = _problem(state, ts, x, y, mode, rule, config, error_form)
    sol = diffrax.diffeqsolve(
        term, diffrax.Tsit5(), t0=0.0, t1=t1, dt0=STEP_CONTROL.dt0, y0=flat0, args=args,
        saveat=diffrax.SaveAt(steps=True), stepsize_controller=controller, max_steps=max_steps, throw=False,
    )
    return sol.ts, sol.ys


@partial(jax.jit, static_argnames=("error_form",))
def _probe(flat, t, dt, state, ts, x, y, mode, rule, config, error_form):
    """One Tsit5 step of size ``dt`` from the flat state ``flat`` at ``t``: returns its stage
    derivatives (7, D), and the Jacobian of the potentials' and controller's derivatives with
    respect to the potentials and controller at ``(t, flat)`` (weights and Q held)."""
    term, _, unravel, args, _ = _problem(state, ts, x, y, mode, rule, config, error_form)
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


def diagnose(code, state0, state_end, stats, t1, ts, x, y, mode, rule, config, error_form, max_steps):
    """``(cause, explanation, t)`` of a failed solve from ``state0`` that stopped at ``state_end``
    (see :class:`~dgnlib.dic.solve_stats.SteadyStateError`).

    Arguments: the diffrax result ``code``, the two states, the solve's :class:`ODEStats`, ``t1``,
    and the arguments of :func:`integrate` (``ts`` .. ``max_steps``).

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
    args = (ts, x, y, mode, rule, config)
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
        dt = min(STEP_CONTROL.dtmin, max(t1 - t_prev, 1e-9))
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
        limits = f"{STEP_CONTROL.dtmin:g}..{STEP_CONTROL.dtmax:g}"
        text += (f"; the mean accepted step is {t_end / accepted:.2g} s (limits {limits} s), at which "
                 f"the window needs about {needed} steps: raise max_steps to that if the run should go on")
    else:
        text += "; no step was accepted, so increasing max_steps cannot help"
    return "max_steps", text, t_end


# Every solve uses ONE compiled program per window length: a vmapped solve of a batch of 3
# networks, each with its own state, inputs, targets, mode and rule (modes and rules are data, so
# burn-in, evaluation, training and controlled runs, and single solves, share the compiled code).
# vmap keeps every element's adaptive step sequence its own, so batching does not change results.
_BATCH = 3


@partial(jax.jit, static_argnames=("error_form", "max_steps"))
def _solve_batch(states, ts, xs, ys, modes, rules, config, t1, error_form, max_steps):
    """``states``, ``xs``, ``ys``, ``modes``, ``rules``: tuples of 3 (stacked here, so the
    host dispatches a single call). Returns (tuple of (final, Trace), codes (3,), ODEStats of (3,))."""
    solve_one = jax.vmap(integrate, in_axes=(0, None, 0, 0, 0, 0, None, None, None, None))
    final, trace, code, stats = solve_one(stack_trees(*states), ts, jnp.stack(xs), jnp.stack(ys), stack_trees(*modes),
                                          stack_trees(*rules), config, t1, error_form, max_steps)
    return tuple((_index(final, i), _index(trace, i)) for i in range(len(states))), code, stats


def stack_trees(*trees):
    """The pytrees ``trees`` (of one structure) stacked leaf by leaf on a new leading axis."""
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)


def _index(tree, i):
    return jax.tree_util.tree_map(lambda a: a[i], tree)


class BatchRunner:
    """Solves up to 3 windows at once with the one compiled program (a batch of 3 of
    :func:`integrate`), and raises :class:`~dgnlib.dic.solve_stats.SteadyStateError` with the
    diagnosis of the first failed one.

    Arguments: ``ts`` (T,) the window's local times, ``config`` the task's constants (float32),
    ``t1`` the end of the integration, ``error_form``, ``max_steps``, ``n_out`` (for the zero
    targets of modes without control)."""

    def __init__(self, ts, config, t1, error_form, max_steps, n_out):
        self.ts, self.config, self.t1 = ts, config, t1
        self.error_form, self.max_steps = error_form, max_steps
        self.zeros = jnp.zeros((ts.shape[0], n_out), jnp.float32)
        self.modes = {k: as_float32(v) for k, v in MODES.items()}

    def __call__(self, jobs, what, names=None):
        """``jobs``: up to 3 tuples (state, x, y or None, mode name, Rule); ``names`` name them
        in error messages. Returns a list of (final state, Trace) per job; raises
        SteadyStateError if any solve failed."""
        n = len(jobs)
        if not 1 <= n <= _BATCH:
            raise ValueError(f"jobs must hold 1 to {_BATCH} solves, got {n}")
        jobs = list(jobs) + [jobs[-1]] * (_BATCH - n)  # pad with a copy (result unused)
        ys = tuple(self.zeros if j[2] is None else j[2] for j in jobs)
        out, code, stats = _solve_batch(
            tuple(j[0] for j in jobs), self.ts, tuple(j[1] for j in jobs), ys, tuple(self.modes[j[3]] for j in jobs),
            tuple(j[4] for j in jobs), self.config, self.t1, self.error_form, self.max_steps)
        code, stats = jax.device_get((code, stats))

        def explain(i, code_i):
            return diagnose(code_i, jobs[i][0], out[i][0], _index(stats, i), self.t1, self.ts, jobs[i][1], ys[i],
                            self.modes[jobs[i][3]], jobs[i][4], self.config, self.error_form, self.max_steps)

        raise_if_failed(code[:n], stats.steps[:n], what, names, explain)
        self.last_steps = np.asarray(stats.steps[:n])
        return list(out[:n])


def solve(state: State, ts, x, y=None, *, mode: str = "evaluate", rule: str = "exact",
          error_form: str = "published", config: StudentTeacherConfig = StudentTeacherConfig(),
          t1: Optional[float] = None, max_steps: int = 4096):
    """Solve one window from ``state``.

    ``ts`` (T,) local sample times starting at 0; ``x`` (T, n_in) inputs; ``y`` (T, n_out)
    targets (needed when the mode uses control; zeros otherwise). Integrates on
    ``[0, t1]`` (default: ``ts[-1] + (ts[1] - ts[0])``, i.e. the full window).
    Returns ``(final_state, trace)`` with :class:`Trace` sampled at ``ts``.
    ``mode``: one of :data:`~.model.MODES`; ``rule``: one of :data:`~.model.STUDENTS`;
    ``error_form``: one of :data:`~.model.ERROR_FORMS`; ``config``: the task's constants.
    Raises :class:`~dgnlib.dic.solve_stats.SteadyStateError` if the solve fails; its message and
    ``cause`` say why (a field that is NaN at a finite state, a diverged state, or too small a
    ``max_steps``). Runs the compiled program of :class:`BatchRunner` (shared with
    :func:`~.experiment.run_experiment`).
    """
    choice("mode", mode, tuple(MODES))
    choice("error_form", error_form, ERROR_FORMS)
    max_steps = positive_int("max_steps", max_steps)
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
    run = BatchRunner(ts, as_float32(config), jnp.float32(t1), error_form, max_steps, n_out)
    (final, trace), = run([(state, x, y, mode, make_rule(rule, error_form, config))], f"mode={mode}, rule={rule}")
    return final, trace
