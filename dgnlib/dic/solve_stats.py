"""What a steady-state or ODE solve reports: :class:`SolveStats`, and :class:`SteadyStateError`
when it fails.

Shared by the E/I network's two solvers (:mod:`dgnlib.dic.algebraic`, :mod:`dgnlib.dic.ode`,
called through :mod:`dgnlib.dic.steady_state`) and the continuous-time student-teacher ODE
(:mod:`dgnlib.dic.student_teacher`): one exception for every solve that did not finish.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax

__all__ = ["SolveStats", "SteadyStateError"]


class SolveStats(NamedTuple):
    """Statistics of one steady-state solve (scalars, or arrays under ``vmap``).

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


class SteadyStateError(RuntimeError):
    """A solve did not converge or did not finish; the message says why.

    ``cause`` names the reason where the solver diagnosed it (the student-teacher ODE,
    :func:`dgnlib.dic.student_teacher.solve`), else ``None``:

    * ``"nonfinite_field"``: the vector field is NaN or infinite at a finite state, so every
      step is rejected whatever its size (more ``max_steps`` cannot help);
    * ``"nonfinite_state"``: the state or its trace became NaN or infinite (diverged);
    * ``"max_steps"``: the field is finite but the window needs more than ``max_steps``
      steps (the message estimates how many, and gives the local Jacobian's eigenvalues);
    * ``"other"``: another diffrax failure (its message is quoted).

    ``t`` is the time (s, local to the solved window) the solve reached, where known, else ``None``.
    """

    def __init__(self, message: str, cause: Optional[str] = None, t: Optional[float] = None):
        super().__init__(message)
        self.cause = cause
        self.t = t
