"""One-vs-all gated linear classifiers trained online: GLN (context tables, Veness et al.) and DGN
(summed dendritic branches, Sezener et al.) gating, in one compiled ``lax.scan`` per pass.

    from dgnlib import gln

    cfg = gln.GLNConfig(gating="gln", n_neurons=(16, 16, 1), context_dim=4)
    params, gating = gln.init(jax.random.PRNGKey(0), 784, cfg)
    out = gln.train(params, gating, x_train, y_train, gln.decaying(0.003, 1.0, 0.1), cfg)
    gln.accuracy(out.params, gating, out.moments, x_val, y_val, cfg)

=====================  ====================  =====================================================
concept                module                names
=====================  ====================  =====================================================
options                ``gln.config``        GLNConfig, validate_config, GATINGS, INITIAL_WEIGHTS
learning rates         ``gln.schedule``      Schedule, constant, decaying, as_schedule, rate_at
weights, gating        ``gln.params``        GLNParams, Gating, layer_inputs, init_weights,
                                             init_gating, init
preprocessing          ``gln.preprocess``    Moments, init_moments, chunk_moments, standardised,
                                             network_inputs, deskew
per-sample model       ``gln.model``         logit_bound, input_logits, context_index,
                                             neuron_drive, forward, step
compiled passes        ``gln.training``      TrainResult, Stream, prepare_inputs, gate_bits, train,
                                             train_many, make_stream, check_segment,
                                             train_segment, scores,
                                             accuracy
the online MLP         ``gln.mlp``           MLPConfig, MLPParams, init_mlp, mlp_logits, mlp_step,
  baseline                                   train_mlp_segment, mlp_accuracy, count_weights,
                                             mlp_hidden_for
splits of the          ``gln.data``          OnePassData, load_one_pass_data
  experiments
experiments            ``gln.experiments``   Learner, CurveResult, ForgettingResult,
  (dgn_mnist notebook)                       checkpoint_chunks, learning_curves, best_rate,
                                             with_best_rate, permute_pixels, permuted_tasks
log lines              ``gln.reports``       format_curve_line, format_task_line, format_search,
                                             format_one_pass, format_forgetting
figures                ``gln.plotting``      plot_one_pass_curves, plot_forgetting
NumPy oracle           ``gln.reference``     numpy_state, numpy_step, run_numpy (tests and
                                             benchmarks only; not re-exported)
=====================  ====================  =====================================================
"""
from . import reference  # noqa: F401  (the NumPy oracle, a submodule)
from .config import GATINGS, INITIAL_WEIGHTS, GLNConfig, validate_config
from .schedule import Schedule, constant, decaying, as_schedule, rate_at
from .params import GLNParams, Gating, layer_inputs, init_weights, init_gating, init
from .preprocess import Moments, init_moments, chunk_moments, standardised, network_inputs, deskew
from .model import logit_bound, input_logits, context_index, neuron_drive, forward, step
from .training import (TrainResult, Stream, prepare_inputs, gate_bits, train, train_many, make_stream,
                       check_segment, train_segment, scores, accuracy)
from .mlp import (MLPConfig, MLPParams, init_mlp, mlp_logits, mlp_step, train_mlp_segment, mlp_accuracy,
                  count_weights, mlp_hidden_for)
from .data import OnePassData, load_one_pass_data
from .reports import format_curve_line, format_task_line, format_search, format_one_pass, format_forgetting
from .experiments import (Learner, CurveResult, ForgettingResult, checkpoint_chunks, learning_curves,
                          permute_pixels, permuted_tasks, best_rate, with_best_rate)
from .plotting import plot_one_pass_curves, plot_forgetting

__all__ = [
    "GATINGS", "INITIAL_WEIGHTS", "GLNConfig", "validate_config", "Schedule", "constant", "decaying",
    "as_schedule", "rate_at", "GLNParams", "Gating", "layer_inputs", "init_weights", "init_gating",
    "init", "Moments", "init_moments", "chunk_moments", "standardised", "network_inputs", "deskew",
    "logit_bound", "input_logits", "context_index", "neuron_drive", "forward", "step", "TrainResult",
    "Stream", "prepare_inputs", "gate_bits", "train", "train_many", "make_stream", "check_segment", "train_segment", "scores",
    "accuracy", "MLPConfig", "MLPParams", "init_mlp", "mlp_logits", "mlp_step", "train_mlp_segment",
    "mlp_accuracy", "count_weights", "mlp_hidden_for", "Learner", "CurveResult", "ForgettingResult",
    "checkpoint_chunks", "learning_curves", "permute_pixels", "permuted_tasks", "format_curve_line",
    "format_task_line", "best_rate", "with_best_rate", "OnePassData", "load_one_pass_data", "format_search",
    "format_one_pass", "format_forgetting", "plot_one_pass_curves", "plot_forgetting",
]
