"""The DGN model (Sezener et al. 2021) as pure JAX functions: options, gates, forward pass, step.

A DGN layer k has ``N_k`` neurons, each with ``B`` dendritic branches. Branch ``b`` of neuron
``n`` holds a weight vector ``w[n, b]`` over the layer's ``I_k`` inputs (the previous layer's
outputs plus one bias input) and a fixed gating hyperplane ``h[n, b]`` over the side
information ``s = [1, x_1 .. x_d]``. A branch is open when ``h[n, b] . s > 0``; the neuron's
effective weights are the sum of its open branches' weights. Every neuron of every layer
predicts the same target and learns locally from its own error (no backpropagation).

Shapes: ``weights[k]``: ``(N_k, B, I_k)`` with ``I_0 = d + 1`` and ``I_k = N_{k-1} + 1``;
``hyperplanes[k]``: ``(N_k, B, d + 1)``; a sample ``x``: ``(d,)``; a target ``y``: scalar.
The last layer has exactly one neuron, whose output is the network's prediction. The parameters
and their initialisation live in :mod:`dgnlib.dgn.params`.

Options (fields of :class:`DGNConfig`, all static):

* ``loss``: ``"bernoulli"`` (binary classification, log loss, rates in logit space, outputs
  clipped to ``[eps, 1 - eps]``) or ``"square"`` (regression, linear neurons).
* ``weight_form``: how the open branches make a neuron's effective weights.
  ``"colab"``: ``eff[n] = sum_b g[n, b] * sum_m w[m, b]``, what DeepMind's colab computes (its
  ``np.dot`` of the (N, B) gates with the (N, B, I) weights contracts the branch axis for every
  pair of neurons); the published logs need it. ``"per_neuron"``: ``eff[n] = sum_b g[n, b] *
  w[n, b]``, the paper's model. The update of ``w[n, b]`` is the same in both forms.
* ``saturation_rule`` (Bernoulli only): when a neuron near saturation learns.
  ``"error_above_eps"``: only while ``|y - unclipped output| > eps`` (the colab; reproduction
  default). ``"in_range"``: only while the unclipped output lies in ``[eps, 1 - eps]``
  (DeepMind's JAX GLN library). ``"always"``: always (the GLN papers, pygln).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import choice
from .params import DGNParams

__all__ = [
    "LOSSES", "WEIGHT_FORMS", "SATURATION_RULES", "DGNConfig", "validate_config",
    "gates", "drive", "learn_mask", "forward", "predict", "predict_batch", "step", "sample_loss",
]

LOSSES = ("bernoulli", "square")
WEIGHT_FORMS = ("colab", "per_neuron")
SATURATION_RULES = ("error_above_eps", "in_range", "always")


class _DGNConfigFields(NamedTuple):
    loss: str = "bernoulli"
    weight_form: str = "colab"
    saturation_rule: str = "error_above_eps"
    eps: float = 0.01


class DGNConfig(_DGNConfigFields):
    """Static options of a DGN (hashable, so it can be a static jit argument).

    Every way of building one checks its options: the constructor, ``cfg._replace(...)``,
    ``DGNConfig._make(...)`` and unpickling all raise ``ValueError`` naming the bad field, so no
    entry point can run with an unknown option.

    Arguments:
        loss: ``"bernoulli"`` or ``"square"``.
        weight_form: ``"colab"`` or ``"per_neuron"``.
        saturation_rule: ``"error_above_eps"``, ``"in_range"`` or ``"always"``.
        eps: output clipping and saturation threshold, a number in ``(0, 0.5)``.
    """

    __slots__ = ()

    def __new__(cls, loss: str = "bernoulli", weight_form: str = "colab",
                saturation_rule: str = "error_above_eps", eps: float = 0.01):
        return _checked(super().__new__(cls, loss, weight_form, saturation_rule, eps))

    @classmethod
    def _make(cls, iterable):  # used by _replace: route it through the checks of __new__
        return cls(*iterable)

    def validate(self) -> "DGNConfig":
        """Check the options again (they were checked at construction); returns ``self``."""
        return _checked(self)


def _checked(cfg):
    choice("loss", cfg.loss, LOSSES)
    choice("weight_form", cfg.weight_form, WEIGHT_FORMS)
    choice("saturation_rule", cfg.saturation_rule, SATURATION_RULES)
    eps = cfg.eps  # a number strictly inside (0, 0.5): no string or bool passes as one
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be a number in (0, 0.5), got {eps!r}")
    return cfg


def validate_config(cfg) -> DGNConfig:
    """Check that ``cfg`` is a :class:`DGNConfig` with valid options.

    Arguments:
        cfg: the object to check.

    Returns:
        ``cfg``; raises ``TypeError`` for any other object (a plain tuple, a dict) and
        ``ValueError`` naming a bad option (one that skipped the constructor's checks)."""
    if not isinstance(cfg, DGNConfig):
        raise TypeError(f"cfg must be a dgnlib.dgn.DGNConfig, got {type(cfg).__name__}: {cfg!r}")
    return _checked(cfg)


def gates(hyperplanes, x):
    """Open branches: a tuple with one 0/1 array per layer, in ``x``'s dtype.

    Arguments:
        hyperplanes: the layers' gating hyperplanes ``(N_k, B, d + 1)`` (``DGNParams.hyperplanes``).
        x: one sample ``(d,)`` or a batch ``(n, d)``.

    Returns:
        ``(N_k, B)`` arrays for one sample, ``(n, N_k, B)`` for a batch. The side information is
        ``s = [1, x_1 .. x_d]``; a branch is open when ``h . s > 0``.
    """
    side = jnp.concatenate([jnp.ones(x.shape[:-1] + (1,), x.dtype), x], axis=-1)
    return tuple((jnp.einsum("...j,nbj->...nb", side, h) > 0).astype(x.dtype) for h in hyperplanes)


def drive(w, g, layer_input, weight_form: str):
    """A layer's total input ``eff @ layer_input`` ``(N,)``, without forming the effective weights.

    Arguments:
        w: the layer's branch weights ``(N, B, I)``; for ``weight_form="summed"`` the colab form's
            weights already summed over neurons, ``(B, I)``.
        g: the layer's open branches ``(N, B)`` (:func:`gates`).
        layer_input: ``(I,)``.
        weight_form: ``"colab"`` (``eff[n] = sum_b g[n, b] sum_m w[m, b]``), ``"per_neuron"``
            (``eff[n] = sum_b g[n, b] w[n, b]``) or ``"summed"`` (the colab form on summed weights).

    Returns:
        ``(N,)``.
    """
    # Written as contractions (einsum), not as multiply-and-reduce (jnp.sum(g * jnp.sum(w * x, -1), -1)):
    # jax/jaxlib 0.10.2 on x86 CPUs miscompiles the latter when it is jitted and vmapped over more
    # than 16 rows (tests/dgn/test_jax_canary.py), which made per-neuron float32 test metrics wrong.
    choice("weight_form", weight_form, WEIGHT_FORMS + ("summed",))
    if weight_form == "per_neuron":
        return jnp.einsum("nb,nb->n", g, jnp.einsum("nbi,i->nb", w, layer_input))
    if weight_form == "colab":
        w = w.sum(axis=0)
    return jnp.einsum("nb,b->n", g, jnp.einsum("bi,i->b", w, layer_input))


def learn_mask(y, r_unclipped, cfg: DGNConfig):
    """Which neurons of a Bernoulli layer learn from this sample (``cfg.saturation_rule``).

    Arguments:
        y: the target (0 or 1).
        r_unclipped: the layer's outputs before clipping to ``[eps, 1 - eps]``, ``(N,)``.
        cfg: the options; ``saturation_rule`` and ``eps`` are read.

    Returns:
        A boolean ``(N,)``: ``|y - r| > eps`` (``"error_above_eps"``), ``eps <= r <= 1 - eps``
        (``"in_range"``) or all true (``"always"``).
    """
    rule = choice("saturation_rule", cfg.saturation_rule, SATURATION_RULES)
    if rule == "error_above_eps":
        return jnp.abs(y - r_unclipped) > cfg.eps
    if rule == "in_range":
        return (r_unclipped >= cfg.eps) & (r_unclipped <= 1 - cfg.eps)
    return jnp.ones_like(r_unclipped, dtype=bool)


def _is_bernoulli(cfg) -> bool:
    return choice("loss", cfg.loss, LOSSES) == "bernoulli"


def forward(weights, layer_gates, x, y, cfg: DGNConfig, summed: bool = False):
    """Run one sample through all layers and return what the local updates need.

    Arguments:
        weights: per layer ``(N_k, B, I_k)`` (``DGNParams.weights``); with ``summed=True`` the colab
            form's neuron-summed branch weights ``(B, I_k)``.
        layer_gates: per layer the open branches ``(N_k, B)`` of this sample (:func:`gates`).
        x: the sample ``(d,)``.
        y: its target (any number when only the prediction is wanted).
        cfg: the options (trusted here: the public entry points validate them).
        summed: whether ``weights`` are neuron-summed (the colab form).

    Returns:
        ``(prediction, local)``: the output neuron's prediction (scalar) and, per layer,
        ``(err (N_k,), layer_input (I_k,))``, so that
        ``w -= learning_rate * g[:, :, None] * outer(err, layer_input)[:, None, :]`` is the update.
    """
    eps = cfg.eps
    bernoulli = _is_bernoulli(cfg)
    r = jnp.clip(jax.nn.sigmoid(x), eps, 1 - eps) if bernoulli else x
    local = []
    for w, g in zip(weights, layer_gates):
        form = "summed" if summed else cfg.weight_form
        if bernoulli:
            r_with_bias = jnp.concatenate([jnp.full((1,), jax.nn.sigmoid(1.0), r.dtype), r])
            layer_input = jnp.log(r_with_bias / (1 - r_with_bias))  # logit
            r_unclipped = jax.nn.sigmoid(drive(w, g, layer_input, form))
            r_out = jnp.clip(r_unclipped, eps, 1 - eps)
            err = (r_out - y) * learn_mask(y, r_unclipped, cfg)
        else:
            layer_input = jnp.concatenate([jnp.ones((1,), r.dtype), r])
            r_out = drive(w, g, layer_input, form)
            err = r_out - y
        local.append((err, layer_input))
        r = r_out
    return r[0], local


def predict(params: DGNParams, x, cfg: DGNConfig = DGNConfig(), layer_gates=None):
    """Prediction for one sample without learning.

    Arguments:
        params: one network.
        x: the sample ``(d,)``.
        cfg: the options.
        layer_gates: ``gates(params.hyperplanes, x)`` when already computed.

    Returns:
        The probability of class 1 (Bernoulli loss) or the regression output, a scalar.
    """
    cfg = validate_config(cfg)
    if layer_gates is None:
        layer_gates = gates(params.hyperplanes, x)
    pred, _ = forward(params.weights, layer_gates, x, 0.0, cfg)
    return pred


@partial(jax.jit, static_argnames=("cfg",))
def predict_batch(params: DGNParams, x, cfg: DGNConfig = DGNConfig(), layer_gates=None):
    """:func:`predict` for every row of a batch, vmapped and jitted.

    Arguments:
        params: one network.
        x: ``(n, d)``.
        cfg: the options (static).
        layer_gates: ``gates(params.hyperplanes, x)`` (``(n, N_k, B)`` per layer) when already computed.

    Returns:
        Predictions ``(n,)``.
    """
    cfg = validate_config(cfg)
    if layer_gates is None:
        layer_gates = gates(params.hyperplanes, x)
    return jax.vmap(predict, in_axes=(None, 0, None, 0))(params, x, cfg, layer_gates)


def step(params: DGNParams, x, y, learning_rate, cfg: DGNConfig = DGNConfig(), layer_gates=None):
    """One online step: predict ``x``, then update every neuron towards ``y``.

    Arguments:
        params: one network.
        x: the sample ``(d,)``.
        y: its target.
        learning_rate: the step size ``eta`` of the local rule.
        cfg: the options.
        layer_gates: ``gates(params.hyperplanes, x)`` when already computed.

    Returns:
        ``(new_params, prediction)``; the prediction is made before the update.
    """
    cfg = validate_config(cfg)
    if layer_gates is None:
        layer_gates = gates(params.hyperplanes, x)
    pred, local = forward(params.weights, layer_gates, x, y, cfg)
    weights = tuple(
        w - learning_rate * g[:, :, None] * (err[:, None] * inp[None, :])[:, None, :]
        for w, g, (err, inp) in zip(params.weights, layer_gates, local)
    )
    return DGNParams(weights, params.hyperplanes), pred


def sample_loss(y, pred, cfg: DGNConfig = DGNConfig()):
    """Per-sample loss.

    Arguments:
        y: targets.
        pred: predictions of the same shape.
        cfg: the options; ``loss`` is read.

    Returns:
        The log loss of the (clipped) probability (Bernoulli) or ``(y - pred)^2 / 2`` (square), elementwise.
    """
    if _is_bernoulli(validate_config(cfg)):
        return -(y * jnp.log(pred) + (1 - y) * jnp.log(1 - pred))
    return 0.5 * (y - pred) ** 2
