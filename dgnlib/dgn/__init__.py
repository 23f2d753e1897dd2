"""Dendritic Gated Networks (Sezener et al. 2021) in JAX: the model, online training of one or many
networks, the colab's two problems, its printed log, the notebooks' experiments and figures.

One flat namespace::

    from dgnlib import dgn

    data = dgn.load_problem("classification")
    cfg = dgn.DGNConfig(loss="bernoulli", weight_form="colab")
    params, history = dgn.fit(dgn.init_colab(data.n_features), data, learning_rate=1e-4, epochs=3,
                              cfg=cfg, dtype="float64")              # prints the colab's log
    many = dgn.run_seeds(data, 32, 1e-4, 3, cfg)                     # 32 hyperplane seeds, one call
    dgn.plot_learning_curves(history)

=====================  ==========================  ==================================================
concept                module                      names
=====================  ==========================  ==================================================
options, computation   ``dgn.model``               DGNConfig, gates, forward, predict, predict_batch,
                                                   step, sample_loss
parameters, init       ``dgn.params``              DGNParams, init_colab, init, init_many, stack_params
a run's inputs         ``dgn.inputs``              precision, validate_data, prepare_inputs, as_dtype
compiled training      ``dgn.training``            train_epoch, epoch_metrics, run, run_many, RunResult
divergence             ``dgn.divergence``          DivergenceWarning, diverged_epoch
epoch-by-epoch, log    ``dgn.epoch_log``           iterate_epochs, fit, format_epoch_line, header_lines
notebook experiments   ``dgn.experiments``         compare_weight_forms, format_weight_forms, run_seeds,
                                                   seeds_summary, format_seeds_summary
data                   ``dgn.data``                load_problem, TabularData
figures                ``dgn.plotting``            plot_learning_curves, plot_weight_forms, plot_seeds
NumPy reference        ``dgn.reference``           run_numpy, numpy_step (tests and benchmarks only;
                                                   not re-exported)
=====================  ==========================  ==================================================

Every name listed in a module's ``__all__`` is available here (``dgn.run_many``); ``reference`` is a
plain-NumPy oracle that stays a submodule.
"""
from . import reference  # noqa: F401  (the NumPy oracle, a submodule: dgn.reference.run_numpy)
from .model import (
    LOSSES, WEIGHT_FORMS, SATURATION_RULES, DGNConfig, validate_config, gates, drive, learn_mask,
    forward, predict, predict_batch, step, sample_loss,
)
from .params import DGNParams, validate_architecture, init, init_colab, init_many, stack_params
from .inputs import PRECISIONS, precision, float_dtype, validate_data, prepare_inputs, as_dtype
from .training import train_epoch, epoch_metrics, RunResult, run, run_many
from .divergence import DivergenceWarning, diverged_epoch, divergence_message, warn_diverged, warn_if_diverged
from .epoch_log import iterate_epochs, fit, format_epoch_line, header_lines
from .experiments import (
    FORM_LABELS, WeightFormComparison, compare_weight_forms, format_weight_forms, run_seeds,
    seeds_summary, format_seeds_summary,
)
from .data import TabularData, load_problem, PROBLEMS
from .plotting import plot_learning_curves, plot_weight_forms, plot_runs_spread, plot_seeds

__all__ = [
    "LOSSES", "WEIGHT_FORMS", "SATURATION_RULES", "DGNConfig", "validate_config", "gates", "drive",
    "learn_mask", "forward", "predict", "predict_batch", "step", "sample_loss", "DGNParams",
    "validate_architecture", "init", "init_colab", "init_many", "stack_params", "PRECISIONS",
    "precision", "float_dtype", "validate_data", "prepare_inputs", "as_dtype", "train_epoch", "epoch_metrics",
    "RunResult", "run", "run_many", "DivergenceWarning", "diverged_epoch", "divergence_message",
    "warn_diverged", "warn_if_diverged", "iterate_epochs", "fit", "format_epoch_line",
    "header_lines", "FORM_LABELS", "WeightFormComparison", "compare_weight_forms",
    "format_weight_forms", "run_seeds", "seeds_summary", "format_seeds_summary", "TabularData",
    "load_problem", "PROBLEMS", "plot_learning_curves", "plot_weight_forms", "plot_runs_spread",
    "plot_seeds",
]
