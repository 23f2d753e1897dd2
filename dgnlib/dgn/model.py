"""Dendritic Gated Networks (Sezener et al. 2021), pure JAX.

A DGN layer k has ``N_k`` neurons, each with ``B`` dendritic branches. Branch ``b`` of neuron
``n`` holds a weight vector ``w[n, b]`` over the layer's ``I_k`` inputs (the previous layer's
outputs plus one bias input) and a fixed gating hyperplane ``h[n, b]`` over the side
information ``s = [1, x_1 .. x_d]``. A branch is open when ``h[n, b] . s > 0``; the neuron's
effective weights are the sum of its open branches' weights. Every neuron of every layer
predicts the same target and learns locally from its own error (no backpropagation).

Shapes: ``weights[k]``: ``(N_k, B, I_k)`` with ``I_0 = d + 1`` and ``I_k = N_{k-1} + 1``;
``hyperplanes[k]``: ``(N_k, B, d + 1)``; a sample ``x``: ``(d,)``; a target ``y``: scalar.
The last layer has exactly one neuron, whose output is the network's prediction.

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
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "LOSSES", "WEIGHT_FORMS", "SATURATION_RULES", "DGNConfig", "DGNParams", "validate_config",
    "validate_architecture", "init", "init_colab", "init_many", "stack_params",
    "gates", "predict", "step", "sample_loss",
]

LOSSES = ("bernoulli", "square")
WEIGHT_FORMS = ("colab", "per_neuron")
SATURATION_RULES = ("error_above_eps", "in_range", "always")


def _check_option(name: str, value, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


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
    _check_option("loss", cfg.loss, LOSSES)
    _check_option("weight_form", cfg.weight_form, WEIGHT_FORMS)
    _check_option("saturation_rule", cfg.saturation_rule, SATURATION_RULES)
    eps = cfg.eps
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be a number in (0, 0.5), got {eps!r}")
    return cfg


def validate_config(cfg) -> DGNConfig:
    """``cfg`` if it is a :class:`DGNConfig` with valid options; raises ``TypeError`` for any other
    object (a plain tuple, a dict) and ``ValueError`` naming a bad option."""
    if not isinstance(cfg, DGNConfig):
        raise TypeError(f"cfg must be a dgnlib.dgn.model.DGNConfig, got {type(cfg).__name__}: {cfg!r}")
    return _checked(cfg)


class DGNParams(NamedTuple):
    """Per-layer weights ``(N_k, B, I_k)`` and gating hyperplanes ``(N_k, B, d + 1)``.

    With a leading batch axis on every array (see :func:`init_many`), one ``DGNParams``
    holds many independent networks.
    """

    weights: tuple
    hyperplanes: tuple


def validate_architecture(n_features, n_neurons: Sequence[int], n_branches) -> tuple:
    """Check sizes; returns ``n_neurons`` as a tuple of ints."""
    def positive_int(name, v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")

    positive_int("n_features", n_features)
    positive_int("n_branches", n_branches)
    n_neurons = tuple(n_neurons)
    if len(n_neurons) == 0:
        raise ValueError("n_neurons must list at least one layer, got ()")
    for k, n in enumerate(n_neurons):
        positive_int(f"n_neurons[{k}]", n)
    if n_neurons[-1] != 1:
        raise ValueError(
            f"n_neurons must end with a single output neuron (last layer 1), got {n_neurons}"
        )
    return tuple(int(n) for n in n_neurons)


def _zero_weights(n_features, n_neurons, n_branches, dtype, xp=jnp):
    n_inputs = [n_features + 1] + [n + 1 for n in n_neurons[:-1]]
    return tuple(xp.zeros((n, n_branches, i), dtype) for n, i in zip(n_neurons, n_inputs))


def _normalise(h):
    # Each neuron's hyperplanes divided by the Frobenius norm of their first d entries,
    # as in the colab. A positive scale changes no gate.
    return h / jnp.linalg.norm(h[:, :, :-1], axis=(1, 2))[:, None, None]


def init_colab(n_features: int, n_neurons=(100, 10, 1), n_branches: int = 20,
               seed: int = 12345) -> DGNParams:
    """Zero weights and the colab's hyperplanes: NumPy's legacy RNG seeded with ``seed``, one
    ``normal(0, 1, (N_k, B, d + 1))`` draw per layer in order (bit-identical to the colab's draws;
    a private ``RandomState`` is used, so NumPy's global RNG is left alone).

    The leaves are NumPy float64 arrays, so that a float64 run sees the colab's exact hyperplanes;
    the training functions cast them to the run's precision."""
    n_neurons = validate_architecture(n_features, n_neurons, n_branches)
    rng = np.random.RandomState(seed)  # same stream as np.random.seed(seed) + np.random.normal
    planes = []
    for n in n_neurons:
        h = rng.normal(0, 1, size=(n, n_branches, n_features + 1))
        planes.append(h / np.linalg.norm(h[:, :, :-1], axis=(1, 2))[:, None, None])
    weights = _zero_weights(n_features, n_neurons, n_branches, np.float64, xp=np)
    return DGNParams(weights, tuple(planes))


def init(key, n_features: int, n_neurons=(100, 10, 1), n_branches: int = 20,
         dtype=jnp.float32) -> DGNParams:
    """Zero weights and standard-normal hyperplanes drawn from a JAX key (for new work)."""
    n_neurons = validate_architecture(n_features, n_neurons, n_branches)
    keys = jax.random.split(key, len(n_neurons))
    planes = tuple(
        _normalise(jax.random.normal(k, (n, n_branches, n_features + 1), dtype))
        for k, n in zip(keys, n_neurons)
    )
    return DGNParams(_zero_weights(n_features, n_neurons, n_branches, dtype), planes)


def init_many(keys, n_features: int, n_neurons=(100, 10, 1), n_branches: int = 20,
              dtype=jnp.float32) -> DGNParams:
    """:func:`init` for each key of ``keys`` (shape ``(S, 2)`` or ``(S,)`` typed keys),
    stacked along a leading axis of size ``S``."""
    n_neurons = validate_architecture(n_features, n_neurons, n_branches)
    return _init_many(keys, n_features, n_neurons, n_branches, jnp.dtype(dtype))


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _init_many(keys, n_features, n_neurons, n_branches, dtype):
    return jax.vmap(lambda k: init(k, n_features, n_neurons, n_branches, dtype))(keys)


def stack_params(params: Sequence[DGNParams]) -> DGNParams:
    """Stack networks of the same architecture along a new leading axis."""
    if len(params) == 0:
        raise ValueError("params must hold at least one network")
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *params)


def gates(hyperplanes, x):
    """Open branches: a tuple with one 0/1 array per layer, in ``x``'s dtype.

    ``x`` ``(d,)`` gives ``(N_k, B)`` arrays; a batch ``x`` ``(n, d)`` gives ``(n, N_k, B)``.
    The side information is ``s = [1, x_1 .. x_d]``; a branch is open when ``h . s > 0``.
    """
    side = jnp.concatenate([jnp.ones(x.shape[:-1] + (1,), x.dtype), x], axis=-1)
    return tuple((jnp.einsum("...j,nbj->...nb", side, h) > 0).astype(x.dtype) for h in hyperplanes)


def _drive(w, g, layer_input, weight_form):
    """A layer's total input ``eff @ layer_input`` ``(N,)``, without forming ``eff``.

    ``"colab"``: ``eff[n] = sum_b g[n, b] sum_m w[m, b]``; ``"summed"``: the same with ``w``
    already summed over neurons, ``(B, I)``; ``"per_neuron"``: ``eff[n] = sum_b g[n, b] w[n, b]``.
    """
    # Written as contractions (einsum), not as multiply-and-reduce (jnp.sum(g * jnp.sum(w * x, -1), -1)):
    # jax/jaxlib 0.10.2 on x86 CPUs miscompiles the latter when it is jitted and vmapped over more
    # than 16 rows (tests/test_jax_canary.py), which made per-neuron float32 test metrics wrong.
    if weight_form == "per_neuron":
        return jnp.einsum("nb,nb->n", g, jnp.einsum("nbi,i->nb", w, layer_input))
    if weight_form == "colab":
        w = w.sum(axis=0)
    elif weight_form != "summed":
        raise ValueError(f"weight_form must be one of {WEIGHT_FORMS}, got {weight_form!r}")
    return jnp.einsum("nb,b->n", g, jnp.einsum("bi,i->b", w, layer_input))


def _learn_mask(y, r_unclipped, cfg):
    if cfg.saturation_rule == "error_above_eps":
        return jnp.abs(y - r_unclipped) > cfg.eps
    if cfg.saturation_rule == "in_range":
        return (r_unclipped >= cfg.eps) & (r_unclipped <= 1 - cfg.eps)
    if cfg.saturation_rule == "always":
        return jnp.ones_like(r_unclipped, dtype=bool)
    raise ValueError(f"saturation_rule must be one of {SATURATION_RULES}, got {cfg.saturation_rule!r}")


def _is_bernoulli(cfg) -> bool:
    if cfg.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {cfg.loss!r}")
    return cfg.loss == "bernoulli"


def _forward(weights, layer_gates, x, y, cfg, summed=False):
    """Run one sample through all layers (``summed``: ``weights`` hold the colab form's
    neuron-summed branch weights ``(B, I_k)``).

    Returns the prediction (scalar) and, per layer, ``(err (N,), layer_input (I,))`` so that
    ``w -= lr * g[:, :, None] * outer(err, layer_input)[:, None, :]`` is the local update.
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
            r_unclipped = jax.nn.sigmoid(_drive(w, g, layer_input, form))
            r_out = jnp.clip(r_unclipped, eps, 1 - eps)
            err = (r_out - y) * _learn_mask(y, r_unclipped, cfg)
        else:
            layer_input = jnp.concatenate([jnp.ones((1,), r.dtype), r])
            r_out = _drive(w, g, layer_input, form)
            err = r_out - y
        local.append((err, layer_input))
        r = r_out
    return r[0], local


def predict(params: DGNParams, x, cfg: DGNConfig = DGNConfig(), layer_gates=None):
    """Prediction for one sample ``x`` ``(d,)`` (probability of class 1, or regression output)."""
    cfg = validate_config(cfg)
    if layer_gates is None:
        layer_gates = gates(params.hyperplanes, x)
    pred, _ = _forward(params.weights, layer_gates, x, 0.0, cfg)
    return pred


def step(params: DGNParams, x, y, lr, cfg: DGNConfig = DGNConfig(), layer_gates=None):
    """One online step: predict ``x`` ``(d,)``, then update every neuron towards ``y``.

    Returns ``(new_params, prediction)``; the prediction is made before the update.
    ``layer_gates`` may be passed when precomputed with :func:`gates`.
    """
    cfg = validate_config(cfg)
    if layer_gates is None:
        layer_gates = gates(params.hyperplanes, x)
    pred, local = _forward(params.weights, layer_gates, x, y, cfg)
    weights = tuple(
        w - lr * g[:, :, None] * (err[:, None] * inp[None, :])[:, None, :]
        for w, g, (err, inp) in zip(params.weights, layer_gates, local)
    )
    return DGNParams(weights, params.hyperplanes), pred


def sample_loss(y, pred, cfg: DGNConfig = DGNConfig()):
    """Per-sample loss: log loss of the (clipped) probability, or ``(y - pred)^2 / 2``."""
    if _is_bernoulli(validate_config(cfg)):
        return -(y * jnp.log(pred) + (1 - y) * jnp.log(1 - pred))
    return 0.5 * (y - pred) ** 2
