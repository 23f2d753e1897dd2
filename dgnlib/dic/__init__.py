"""Dis-inhibitory control (Rossbroich & Zenke, NeurIPS 2023): E/I networks whose top-down control
reaches each neuron through its inhibitory partner, and the local plasticity rules it drives.

``from dgnlib import dic`` gives the core API of the multi-layer E/I network in one flat
namespace (``dic.init_params``, ``dic.solve_open_loop``, ``dic.train_step``, ...). The two
figure models stay submodules: ``from dgnlib.dic import microcircuit`` (Fig. 3) and
``from dgnlib.dic import student_teacher`` (Fig. 4).

=====================================  =============================================
concept                                module
=====================================  =============================================
soft rectifiers, linearised inverse    :mod:`dgnlib.dic.activations`
leaky PI controller                    :mod:`dgnlib.dic.controller`
cross-entropy loss, soft targets       :mod:`dgnlib.dic.losses`
the E/I network: parameters, state,    :mod:`dgnlib.dic.network`
vector fields, feedback weights Q
steady states (one interface)          :mod:`dgnlib.dic.steady_state`
  algebraic solver (Newton)            :mod:`dgnlib.dic.algebraic`
  ODE solver (diffrax)                 :mod:`dgnlib.dic.ode`
  solve statistics, SteadyStateError   :mod:`dgnlib.dic.solve_stats`
learning rules (each update once):     :mod:`dgnlib.dic.learning_rules`
exact inverse, linear threshold, BP
the training step and evaluation       :mod:`dgnlib.dic.training`
the rules' update alignment, the       :mod:`dgnlib.dic.alignment`
linear-threshold control-free update
single microcircuit (Fig. 3)           :mod:`dgnlib.dic.microcircuit`
continuous-time student-teacher        :mod:`dgnlib.dic.student_teacher`
(Fig. 4)                               (``model``, ``solve``, ``experiment``)
=====================================  =============================================

Rule names everywhere: :data:`RULES` = ``("bp", "exact", "linear_threshold")``; solver names:
:data:`SOLVERS` = ``("algebraic", "ode")``. The vision benchmarks (:mod:`dgnlib.vision`) train
with :func:`train_step`, the only training step of the E/I network.
"""
from .activations import SoftRectifier, linearised_inverse, softplus
from .controller import LeakyPI
from .learning_rules import (
    LT_POINTS,
    RuleState,
    batch_weights,
    bp_gradients,
    exact_inverse_errors,
    exact_inverse_gradients,
    init_rule_state,
    linear_threshold_errors,
    linear_threshold_fit,
    linear_threshold_gradients,
    linear_threshold_model,
    local_error,
    local_gradients,
    mean_cross_entropy,
    mlp_forward,
    readout_error,
)
from .losses import soft_targets, softmax_cross_entropy
from .network import (
    AlgebraicSettings,
    DynamicState,
    EIConfig,
    EIParams,
    EIState,
    Layer,
    ODESettings,
    apply_feedback,
    check_config,
    check_inputs,
    check_params,
    closed_loop_vector_field,
    control_signal,
    dynamic_part,
    feedback_weights,
    init_params,
    input_drive,
    layer_sizes,
    open_loop_vector_field,
    rates,
    readout_jacobians,
    steady_state_residual,
    vector_field,
    zero_state,
)
from .alignment import RuleAlignment, rule_alignment
from .solve_stats import SolveStats, SteadyStateError
from .steady_state import ON_FAILURE, SOLVERS, simulate, solve_closed_loop, solve_open_loop
from .training import (
    MODELS,
    RULES,
    STATIC_ARGNAMES,
    EvalMetrics,
    TrainMetrics,
    evaluate,
    init_train_state,
    make_targets,
    train_step,
)

__all__ = [
    # activations, controller, losses
    "SoftRectifier", "softplus", "linearised_inverse", "LeakyPI", "softmax_cross_entropy", "soft_targets",
    # network
    "Layer", "EIParams", "EIState", "DynamicState", "ODESettings", "AlgebraicSettings", "EIConfig",
    "init_params", "layer_sizes", "check_params", "check_config", "check_inputs", "input_drive", "zero_state",
    "dynamic_part", "rates", "control_signal", "apply_feedback", "vector_field", "open_loop_vector_field",
    "closed_loop_vector_field", "steady_state_residual", "readout_jacobians", "feedback_weights",
    # steady states
    "SOLVERS", "ON_FAILURE", "SolveStats", "SteadyStateError", "solve_open_loop", "solve_closed_loop", "simulate",
    # learning rules
    "LT_POINTS", "RuleState", "init_rule_state", "local_error", "linear_threshold_model", "exact_inverse_errors",
    "linear_threshold_fit", "linear_threshold_errors", "readout_error", "batch_weights", "local_gradients",
    "exact_inverse_gradients", "linear_threshold_gradients", "mlp_forward", "mean_cross_entropy", "bp_gradients",
    # training
    "RULES", "MODELS", "STATIC_ARGNAMES", "TrainMetrics", "EvalMetrics", "init_train_state", "make_targets",
    "train_step", "evaluate",
    # diagnostics
    "RuleAlignment", "rule_alignment",
]
