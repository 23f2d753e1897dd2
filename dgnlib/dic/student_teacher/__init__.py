"""Continuous-time student-teacher task of Rossbroich & Zenke (2023), Fig. 4.

``from dgnlib.dic import student_teacher as st``: every name below is re-exported here.

=====================  ===========================================================
concept                module
=====================  ===========================================================
state, constants,      :mod:`.model` (``State``, ``StudentTeacherConfig``, ``MODES``,
vector field           ``STUDENTS``, ``make_rule``, ``vector_field``, inputs, init)
one window's solve     :mod:`.solve` (``solve``, failure diagnosis into
and its failures       :class:`~dgnlib.dic.solve_stats.SteadyStateError`)
the experiment         :mod:`.experiment` (``run_experiment``, ``EpochRecord``,
and its log            ``format_epoch``)
=====================  ===========================================================

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

Plasticity errors (``err_l``) of the two students, ``STUDENTS = ("linear_threshold", "exact")``
(the local rules of :data:`dgnlib.dic.training.RULES`; in weight-change sign, i.e. minus
:func:`dgnlib.dic.learning_rules.local_error` of the rule's model ``m`` of the inverse
inhibitory transfer, ``m`` from :func:`dgnlib.dic.learning_rules.linear_threshold_model`):

* ``error_form="published"`` (default; what the paper's code computes, needed to
  reproduce its printout): exact ``(r_E - u_I) * phi_E'(r_E)``; linear threshold
  ``(r_E - (theta + delta u_I)) * phi_E'(r_E)`` with ``(theta, delta)`` the Taylor model
  of **phi_E**'s inverse at ``y0`` (``-0.3030, 2.1017`` for the default phi_E).
* ``error_form="paper"``: exact ``(r_E - phi_I^-1(r_I)) * phi_E'(u_E)`` (``= r_E - u_I``);
  linear threshold ``(r_E - (theta_I + delta_I r_I)) * phi_E'(u_E)`` with the Taylor model
  of **phi_I**'s inverse at ``y0`` applied to the inhibitory rate ``r_I = phi_I(u_I)``.

Relation to the discrete rules of :mod:`dgnlib.dic.learning_rules`: with ``error_form="paper"``
the errors are exactly those of ``exact_inverse_errors`` / ``linear_threshold_errors`` with the
opposite sign (here the weights follow ``tau_W dW/dt = pre (x) err`` in continuous time instead of
an optimizer step on batch-averaged gradients, and the linear fit is taken once at ``fit_y0``
instead of at each minibatch's mean rate). ``"published"`` keeps the paper's code's variant
(slope at the rate, phi_E's inverse applied to ``u_I``) through the same two functions.

Everything is float32. :func:`run_experiment` runs the published schedule (burn-in,
then per epoch: teacher, open-loop evaluation of both students, closed-loop training).
"""
from ..solve_stats import SteadyStateError
from .experiment import EpochRecord, ExperimentResult, format_epoch, run_experiment
from .model import (ERROR_FORMS, MODES, STUDENTS, Feedback, Mode, Network, Potentials, Rule, SineInputs, State,
                    StudentTeacherConfig, Trace, as_float32, feedback_target, init_network, init_state, input_window,
                    make_rule, mse_per_time, observe, sine_inputs, vector_field)
from .solve import STEP_CONTROL, ODEStats, diagnose, integrate, raise_if_failed, solve

__all__ = [
    "Network", "Feedback", "Potentials", "State", "Mode", "Rule", "StudentTeacherConfig", "Trace", "SineInputs",
    "EpochRecord", "ExperimentResult", "ODEStats", "SteadyStateError",
    "MODES", "ERROR_FORMS", "STUDENTS", "STEP_CONTROL",
    "as_float32", "init_network", "init_state", "feedback_target", "sine_inputs", "input_window", "make_rule",
    "vector_field", "observe", "integrate", "raise_if_failed", "diagnose", "solve", "mse_per_time",
    "run_experiment", "format_epoch",
]
