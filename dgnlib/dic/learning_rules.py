"""Local learning rules of the dis-inhibitory E/I network, and the BP baseline.

Every rule's update is written once, here: :func:`local_error` (the plasticity error of all
the local rules, ``(m - r_E) phi_E'``, where ``m`` models ``phi_I^-1(r_I)``: exactly ``u_I``, or
the line :func:`linear_threshold_model`) and :func:`bp_gradients`. The multi-layer network's
rules below map them over the layers; the microcircuit (:mod:`dgnlib.dic.microcircuit`, Fig. 3)
and the continuous-time student-teacher model (:mod:`dgnlib.dic.student_teacher`, Fig. 4, whose
weights follow ``tau_W dW/dt = -pre (x) local_error``) use the same two functions.

All rules of the E/I network return batch-averaged *gradients* in the :class:`~dgnlib.dic.network.EIParams`
structure, with the sign convention of autodiff gradients: an optimizer that
*subtracts* them (``optax.adam``, ``optax.sgd``) lowers the loss. Quantities are taken
at the closed-loop (CL) steady state.

* Exact inverse: hidden error ``delta_l = (u_I - phi_E(u_E)) * phi_E'(u_E)`` (B, n_l);
  ``grad W_l = mean_b h^{l-1} (x) delta_l``, ``grad b_l = mean_b delta_l``. At the CL fixed
  point ``u_I = phi_E(u_E) - Q_l^T c``, so ``-delta_l = (Q_l^T c) phi_E'(u_E)``: the applied
  weight change (minus the gradient) is potentiation under dis-inhibition.
* Linear threshold: ``u_I`` replaced by ``theta_l + delta_l * phi_I(u_I)``, the Taylor model
  of ``phi_I^-1`` around each neuron's mean open-loop inhibitory rate over the minibatch
  (``point="batch_mean"``, the paper's); ``point="sample"`` linearises around each sample's own
  open-loop rate instead (an ablation: the model is then exact at the open-loop state, so the
  rule has no plasticity without top-down control, as the exact rule).
  Guard: the rate used for the fit is clamped to at least ``min_rate`` (default 1e-3),
  so the slope ``1/phi_I'(phi_I^-1(rate))`` (~1/rate for softplus) stays finite when a
  unit's inhibitory rate goes to 0.
* Readout: ``delta_out = h^L @ W_out - u_out`` (B, K) (= ``-c`` at the fixed point);
  ``grad W_out = mean_b h^L (x) delta_out``.
* BP baseline: softplus MLP with the same parameters (``h^l = softplus(h^{l-1} W_l + b_l)``,
  logits ``h^L W_out``), softmax cross-entropy, autodiff gradients.

Batch means: every rule takes optional ``sample_weights`` ``(B,)`` (e.g. the 0/1 mask of the
valid rows of a padded batch). ``None`` is the plain mean over the ``B`` rows; otherwise each
mean is ``sum_b w_b a_b / max(sum_b w_b, 1)``, so rows of weight 0 do not count and a batch of
``m`` valid rows gives the update of the unpadded batch of ``m`` (within float32 rounding).
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

import jax
import jax.numpy as jnp

from .activations import linearised_inverse
from .network import EIConfig, EIParams, EIState, Layer
from .losses import softmax_cross_entropy

__all__ = [
    "LT_POINTS",
    "RuleState",
    "init_rule_state",
    "local_error",
    "linear_threshold_model",
    "exact_inverse_errors",
    "linear_threshold_fit",
    "linear_threshold_errors",
    "readout_error",
    "batch_weights",
    "local_gradients",
    "exact_inverse_gradients",
    "linear_threshold_gradients",
    "mlp_forward",
    "mean_cross_entropy",
    "bp_gradients",
]


LT_POINTS = ("batch_mean", "sample")  # linearisation point of the linear-threshold rule


class RuleState(NamedTuple):
    """State of the learning rules: per-layer running mean OL inhibitory rate ``(n_l,)``.

    Only the linear-threshold rule uses it; the other rules carry it unchanged.
    """

    mean_inh_rate: Tuple[jax.Array, ...]


def init_rule_state(params: EIParams, init_rate: float = 0.8) -> RuleState:
    """Running mean inhibitory rates initialised to ``init_rate`` (0.8 as in the paper's code)."""
    return RuleState(tuple(jnp.full((l.W.shape[1],), init_rate, jnp.float32) for l in params.layers))


def batch_weights(sample_weights, batch: int, dtype=jnp.float32):
    """``(w, n)`` of the batch means: ``(None, batch)`` for ``sample_weights=None`` (plain mean),
    else ``w`` = the weights ``(batch,)`` as ``dtype`` and ``n = max(sum w, 1)``.

    Raises ``ValueError`` naming ``sample_weights`` if its shape is not ``(batch,)``.
    """
    if sample_weights is None:
        return None, batch
    if jnp.shape(sample_weights) != (batch,):
        raise ValueError(f"sample_weights must have shape ({batch},) (one weight per sample), "
                         f"got {jnp.shape(sample_weights)}")
    w = jnp.asarray(sample_weights).astype(dtype)
    return w, jnp.maximum(jnp.sum(w), 1.0)


def _mean_rows(a, w, n):
    """Batch mean of ``a`` over its leading axis (``w``, ``n`` from :func:`batch_weights`)."""
    if w is None:
        return jnp.mean(a, axis=0)
    return jnp.tensordot(w, a, axes=(0, 0)) / n


def local_error(r_E, inverse_model, slope):
    """The plasticity error of the local rules, in gradient sign: ``(m - r_E) * slope``.

    Arguments (broadcasting arrays): ``r_E`` the excitatory rate ``phi_E(u_E)``;
    ``inverse_model`` ``m``, the rule's model of ``phi_I^-1(r_I)`` (exact inverse: ``u_I``;
    linear threshold: :func:`linear_threshold_model`); ``slope`` normally ``phi_E'(u_E)``.
    Returns: the error; the weight change of a synapse is minus it times the presynaptic rate,
    ``r_pre (r_E - m) slope`` (potentiation under dis-inhibition, where ``m < r_E``).
    """
    return (inverse_model - r_E) * slope


def linear_threshold_model(theta, delta, r_I):
    """``theta + delta * r_I``: the linear model of ``phi_I^-1(r_I)`` of the linear-threshold rule.

    Arguments: the fit ``theta``, ``delta`` (e.g. from
    :func:`~dgnlib.dic.activations.linearised_inverse`) and the inhibitory rate ``r_I`` (broadcasting).
    Returns: the model's value, the rule's sliding threshold on ``r_E``.
    """
    return theta + delta * r_I


def exact_inverse_errors(state: EIState, cfg: EIConfig):
    """Hidden errors ``(u_I - phi_E(u_E)) * phi_E'(u_E)``: tuple of ``(B, n_l)``."""
    return tuple(
        local_error(cfg.phi_E(u_E), u_I, cfg.phi_E.slope(u_E)) for u_E, u_I in zip(state.u_E, state.u_I)
    )


def linear_threshold_fit(ol_state: EIState, rule_state: RuleState, cfg: EIConfig, *,
                         min_rate: float = 1e-3, momentum: float = 0.0, sample_weights=None,
                         point: str = "batch_mean"):
    """Taylor fit ``phi_I^-1(r) ~ theta + delta r`` per neuron.

    The running rate is updated to ``momentum * old + (1 - momentum) * mean_b phi_I(u_I^OL)``
    (``momentum = 0``: the current minibatch mean, as in the paper); ``sample_weights``: optional
    ``(B,)`` weights of that batch mean (see the module docstring). ``point``: "batch_mean" fits
    at the running rate (the paper), ``(n_l,)`` per layer; "sample" fits at each sample's own
    open-loop rate ``phi_I(u_I^OL)``, ``(B, n_l)`` (the running rate is still updated). The rate
    of the fit is clamped to ``>= min_rate``. Returns ``(thetas, deltas, new_rule_state)``.
    """
    if not min_rate > 0.0:
        raise ValueError(f"min_rate must be > 0, got {min_rate}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
    if point not in LT_POINTS:
        raise ValueError(f"point must be one of {LT_POINTS}, got {point!r}")
    w, n = batch_weights(sample_weights, ol_state.u_out.shape[0], ol_state.u_out.dtype)
    new_rates, thetas, deltas = [], [], []
    for u_I, old in zip(ol_state.u_I, rule_state.mean_inh_rate):
        r_I = cfg.phi_I(u_I)
        rate = momentum * old + (1.0 - momentum) * _mean_rows(r_I, w, n)
        theta, delta = linearised_inverse(cfg.phi_I, jnp.maximum(rate if point == "batch_mean" else r_I, min_rate))
        new_rates.append(rate)
        thetas.append(theta)
        deltas.append(delta)
    return tuple(thetas), tuple(deltas), RuleState(tuple(new_rates))


def linear_threshold_errors(state: EIState, thetas, deltas, cfg: EIConfig):
    """Hidden errors ``(theta + delta phi_I(u_I) - phi_E(u_E)) * phi_E'(u_E)``: tuple of ``(B, n_l)``.

    Minus this, times the presynaptic rate, is the BCM-like form
    ``r_pre (r_E - (theta + delta r_I)) phi_E'(u_E)``.
    """
    return tuple(
        local_error(cfg.phi_E(u_E), linear_threshold_model(th, de, cfg.phi_I(u_I)), cfg.phi_E.slope(u_E))
        for u_E, u_I, th, de in zip(state.u_E, state.u_I, thetas, deltas)
    )


def readout_error(params: EIParams, state: EIState, cfg: EIConfig):
    """``delta_out = h^L @ W_out - u_out``, shape ``(B, K)`` (``= -c`` at the closed-loop fixed point)."""
    return cfg.phi_E(state.u_E[-1]) @ params.W_out - state.u_out


def local_gradients(params: EIParams, x, state: EIState, hidden_errors, cfg: EIConfig, *,
                    sample_weights=None) -> EIParams:
    """Batch-averaged outer products ``h^{l-1} (x) delta_l`` (and readout) as an ``EIParams``;
    ``sample_weights``: optional ``(B,)`` weights of the batch mean (module docstring)."""
    w, n = batch_weights(sample_weights, x.shape[0], x.dtype)
    pre = (x,) + tuple(cfg.phi_E(u) for u in state.u_E)
    d_out = readout_error(params, state, cfg)
    if w is None:
        layers = tuple(
            Layer(pre[l].T @ d / n, jnp.mean(d, axis=0)) for l, d in enumerate(hidden_errors)
        )
        return EIParams(layers, pre[-1].T @ d_out / n)
    wc = w[:, None]
    layers = tuple(
        Layer(pre[l].T @ (d * wc) / n, jnp.sum(d * wc, axis=0) / n) for l, d in enumerate(hidden_errors)
    )
    return EIParams(layers, pre[-1].T @ (d_out * wc) / n)


def exact_inverse_gradients(params: EIParams, x, cl_state: EIState, cfg: EIConfig, *,
                            sample_weights=None) -> EIParams:
    """Exact-inverse rule "gradients" from the CL state (``x`` is ``(B, n_in)``)."""
    return local_gradients(params, x, cl_state, exact_inverse_errors(cl_state, cfg), cfg,
                           sample_weights=sample_weights)


def linear_threshold_gradients(params: EIParams, x, cl_state: EIState, ol_state: EIState,
                               rule_state: RuleState, cfg: EIConfig, *, min_rate: float = 1e-3,
                               momentum: float = 0.0, sample_weights=None, point: str = "batch_mean"):
    """Linear-threshold rule "gradients"; returns ``(grads, new_rule_state)``. ``sample_weights``
    weighs both the rate fit's batch mean and the gradients' (module docstring); ``point``: the
    linearisation point (:func:`linear_threshold_fit`)."""
    thetas, deltas, new_rs = linear_threshold_fit(ol_state, rule_state, cfg, min_rate=min_rate,
                                                  momentum=momentum, sample_weights=sample_weights,
                                                  point=point)
    errs = linear_threshold_errors(cl_state, thetas, deltas, cfg)
    return local_gradients(params, x, cl_state, errs, cfg, sample_weights=sample_weights), new_rs


# ----------------------------------------------------------------------------- BP baseline
def mlp_forward(params: EIParams, x, cfg: EIConfig = EIConfig()):
    """Logits ``(B, K)`` of the plain MLP ``h^l = phi_E(h^{l-1} W_l + b_l)``, ``h^L W_out``."""
    h = x
    for layer in params.layers:
        h = cfg.phi_E(h @ layer.W + layer.b)
    return h @ params.W_out


def mean_cross_entropy(targets, logits, sample_weights=None):
    """Batch mean of the softmax cross-entropy ``(B, K) -> ()``, weighted by ``sample_weights``
    (module docstring)."""
    ce = softmax_cross_entropy(targets, logits)
    w, n = batch_weights(sample_weights, ce.shape[0], ce.dtype)
    return jnp.mean(ce) if w is None else jnp.sum(w * ce) / n


def bp_gradients(params: EIParams, x, targets, cfg: EIConfig = EIConfig(), *, sample_weights=None):
    """``(loss, grads, logits)`` of the MLP baseline by autodiff; ``sample_weights``: optional
    ``(B,)`` weights of the batch mean of the loss (module docstring)."""
    def f(p):
        logits = mlp_forward(p, x, cfg)
        return mean_cross_entropy(targets, logits, sample_weights), logits

    (loss, logits), grads = jax.value_and_grad(f, has_aux=True)(params)
    return loss, grads, logits
