"""Multi-layer excitatory/inhibitory (E/I) network of the dis-inhibitory control model.

Rossbroich & Zenke (NeurIPS 2023), vision-benchmark network. Per hidden layer ``l``
(width ``n_l``) every neuron is an E unit coupled one-to-one (weight 1) with an I unit::

    tau_E du_E/dt = -u_E + ff - phi_I(u_I),           ff^l = h^{l-1} @ W_l + b_l
    tau_I du_I/dt = -u_I + phi_E(u_E) - Q_l^T c       (Q term in closed loop only)
    tau_E du_out/dt = -u_out + h^L @ W_out + c         (readout, logits = u_out)

with ``h^0 = x`` and ``h^l = phi_E(u_E^l)``. In closed loop ``c = k_p e + k_i c_int``,
``tau_c dc_int/dt = e - lam c_int`` and ``e = y - softmax(u_out)``.

Conventions (all arrays float32):

* ``K`` is the number of classes (``n_classes``), ``B`` the batch size.
* Weights are stored input-major as in Flax ``Dense``: ``W_l`` has shape ``(n_{l-1}, n_l)``,
  ``W_out`` has shape ``(n_L, K)``; the drive of a batch ``h`` of shape ``(B, n)`` is ``h @ W + b``.
* Batched states: ``u_E[l]``, ``u_I[l]`` are ``(B, n_l)``; ``u_out``, ``c_int``, ``c`` are ``(B, K)``.
* Feedback weights ``Q_l`` are ``(B, K, n_l)`` (per sample) or ``(K, n_l)`` (batch-averaged).
* ``W_0 x + b_1`` (called ``ff0``) is computed once per solve by :func:`input_drive`.

Everything is a NamedTuple pytree; :class:`EIConfig` holds only Python numbers and is
meant to be a *static* (hashable) argument of jitted functions. The solvers of these equations
are in :mod:`dgnlib.dic.steady_state` (algebraic: :mod:`~dgnlib.dic.algebraic`, ODE:
:mod:`~dgnlib.dic.ode`); the feedback weights ``Q_l`` are computed here.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence, Tuple

import jax
import jax.numpy as jnp

from .activations import SoftRectifier, softplus
from .controller import LeakyPI
from ..checks import positive_int

__all__ = [
    "Layer",
    "EIParams",
    "EIState",
    "DynamicState",
    "ODESettings",
    "AlgebraicSettings",
    "EIConfig",
    "init_params",
    "layer_sizes",
    "check_params",
    "check_config",
    "check_inputs",
    "input_drive",
    "zero_state",
    "dynamic_part",
    "rates",
    "control_signal",
    "apply_feedback",
    "vector_field",
    "open_loop_vector_field",
    "closed_loop_vector_field",
    "steady_state_residual",
    "feedback_weights",
    "readout_jacobians",
]


# ----------------------------------------------------------------------------- pytrees
class Layer(NamedTuple):
    """One hidden layer: ``W`` of shape ``(n_in, n_out)``, bias ``b`` of shape ``(n_out,)``."""

    W: jax.Array
    b: jax.Array


class EIParams(NamedTuple):
    """Trainable parameters: ``layers`` (tuple of :class:`Layer`) and ``W_out`` ``(n_L, K)``."""

    layers: Tuple[Layer, ...]
    W_out: jax.Array


class EIState(NamedTuple):
    """Network state. ``u_E``/``u_I``: tuples of ``(B, n_l)``; ``u_out``, ``c_int``, ``c``: ``(B, K)``.

    ``c`` is the control signal ``k_p e + k_i c_int`` (zero in open loop); it is a derived
    quantity kept for convenience, the dynamic variables are the other four fields.
    """

    u_E: Tuple[jax.Array, ...]
    u_I: Tuple[jax.Array, ...]
    u_out: jax.Array
    c_int: jax.Array
    c: jax.Array


class DynamicState(NamedTuple):
    """Dynamic variables integrated by the ODE solver (:class:`EIState` without ``c``)."""

    u_E: Tuple[jax.Array, ...]
    u_I: Tuple[jax.Array, ...]
    u_out: jax.Array
    c_int: jax.Array


class ODESettings(NamedTuple):
    """diffrax settings of the ODE path (times in seconds)."""

    t1: float = 2.0
    dt0: float = 1e-3
    rtol: float = 1e-3
    atol: float = 1e-6
    pcoeff: float = 0.1
    icoeff: float = 0.3
    dcoeff: float = 0.1
    dtmin: float = 1e-4
    dtmax: float = 1e-2
    factormin: float = 0.1
    factormax: float = 2.0
    event_rtol: float = 1e-3
    event_atol: float = 1e-6
    max_steps: int = 4096


class AlgebraicSettings(NamedTuple):
    """Settings of the root-finding (algebraic) path.

    ``unit_max_iter``/``unit_tol``: scalar Newton on every unit; stop when the Newton
    error bound after the last step is ``<= unit_tol * (1 + |u|)`` for every unit.
    ``c_max_iter``/``c_tol``: Newton on the K-dim control signal; stop when
    ``max |c - G e(c)| <= c_tol``. ``success_rtol``: the solve succeeds when the
    steady-state residual (:func:`steady_state_residual`) is at most
    ``success_rtol * (1 + max|state|)``.
    """

    unit_max_iter: int = 30
    unit_tol: float = 1e-5
    c_max_iter: int = 20
    c_tol: float = 1e-5
    success_rtol: float = 1e-4


class EIConfig(NamedTuple):
    """Constants of the network (hashable: pass as a static argument under jit)."""

    tau_E: float = 0.02
    tau_I: float = 0.005
    phi_E: SoftRectifier = softplus
    phi_I: SoftRectifier = softplus
    controller: LeakyPI = LeakyPI(0.2, 0.4, 1.0, 0.1)
    target_value: float = 1.0  # 1.0: hard one-hot targets (as the paper's runs); <1: soft targets
    ode: ODESettings = ODESettings()
    algebraic: AlgebraicSettings = AlgebraicSettings()


# ----------------------------------------------------------------------------- init / checks
def init_params(key, sizes: Sequence[int], dtype=jnp.float32) -> EIParams:
    """LeCun-normal kernels (Flax ``Dense`` default, truncated normal), zero biases.

    ``sizes = (n_in, n_1, ..., n_L, K)`` with at least one hidden layer. Key split into
    ``L + 1`` keys used in order for ``W_1 .. W_L, W_out``.
    """
    sizes = tuple(sizes)
    if len(sizes) < 3:
        raise ValueError(
            f"sizes must be (n_in, n_1, ..., n_L, K) with at least one hidden layer, got {sizes}"
        )
    # ints and numpy integers, not floats or bools; K = n_classes >= 2
    sizes = tuple(positive_int(f"sizes[{i}]", n, minimum=2 if i == len(sizes) - 1 else 1)
                  for i, n in enumerate(sizes))
    init = jax.nn.initializers.lecun_normal()
    keys = jax.random.split(key, len(sizes) - 1)
    layers = tuple(
        Layer(init(keys[i], (sizes[i], sizes[i + 1]), dtype), jnp.zeros((sizes[i + 1],), dtype))
        for i in range(len(sizes) - 2)
    )
    W_out = init(keys[-1], (sizes[-2], sizes[-1]), dtype)
    return EIParams(layers, W_out)


def layer_sizes(params: EIParams) -> Tuple[int, ...]:
    """``(n_in, n_1, ..., n_L, K)`` of a parameter pytree (checks it first)."""
    check_params(params)
    return (params.layers[0].W.shape[0],) + tuple(l.W.shape[1] for l in params.layers) + (
        params.W_out.shape[1],
    )


def check_params(params) -> None:
    """Raise ``ValueError`` unless ``params`` is a consistent :class:`EIParams`."""
    if not isinstance(params, EIParams):
        raise ValueError(f"params must be an EIParams, got {type(params).__name__}")
    if len(params.layers) < 1:
        raise ValueError("params.layers must hold at least one hidden layer")
    n_prev = None
    for l, layer in enumerate(params.layers):
        W, b = layer
        if jnp.ndim(W) != 2:
            raise ValueError(f"params.layers[{l}].W must be 2-D (n_in, n_out), got shape {jnp.shape(W)}")
        if jnp.shape(b) != (W.shape[1],):
            raise ValueError(
                f"params.layers[{l}].b must have shape ({W.shape[1]},), got {jnp.shape(b)}"
            )
        if n_prev is not None and W.shape[0] != n_prev:
            raise ValueError(
                f"params.layers[{l}].W has {W.shape[0]} inputs but layer {l - 1} has {n_prev} units"
            )
        n_prev = W.shape[1]
    if jnp.ndim(params.W_out) != 2 or params.W_out.shape[0] != n_prev:
        raise ValueError(
            f"params.W_out must have shape ({n_prev}, K), got {jnp.shape(params.W_out)}"
        )


def check_config(cfg) -> EIConfig:
    """``cfg`` if it is an :class:`EIConfig`, else ``ValueError`` naming its type."""
    if not isinstance(cfg, EIConfig):
        raise ValueError(f"cfg must be an EIConfig, got {type(cfg).__name__}")
    return cfg


def check_inputs(params: EIParams, x, y=None, Q=None) -> None:
    """Validate ``x`` ``(B, n_in)``, optional targets ``y`` ``(B, K)`` and feedback ``Q``."""
    check_params(params)
    n_in = params.layers[0].W.shape[0]
    K = params.W_out.shape[1]
    if jnp.ndim(x) != 2 or jnp.shape(x)[1] != n_in:
        raise ValueError(f"x must have shape (B, {n_in}), got {jnp.shape(x)}")
    B = jnp.shape(x)[0]
    if y is not None and jnp.shape(y) != (B, K):
        raise ValueError(f"y must have shape ({B}, {K}) (targets per sample), got {jnp.shape(y)}")
    if Q is not None:
        if not isinstance(Q, (tuple, list)) or len(Q) != len(params.layers):
            raise ValueError(
                f"Q must be a tuple of {len(params.layers)} arrays (one per hidden layer), got "
                f"{type(Q).__name__} of length {len(Q) if isinstance(Q, (tuple, list)) else '?'}"
            )
        for l, (q, layer) in enumerate(zip(Q, params.layers)):
            n = layer.W.shape[1]
            if jnp.shape(q) not in ((B, K, n), (K, n)):
                raise ValueError(
                    f"Q[{l}] must have shape ({B}, {K}, {n}) or ({K}, {n}), got {jnp.shape(q)}"
                )


# ----------------------------------------------------------------------------- helpers
def input_drive(params: EIParams, x):
    """``ff0 = x @ W_1 + b_1``, shape ``(B, n_1)``: the constant drive of layer 1."""
    W, b = params.layers[0]
    return x @ W + b


def zero_state(params: EIParams, batch: int, dtype=jnp.float32) -> EIState:
    """All-zero state for a batch of ``batch`` samples."""
    zs = tuple(jnp.zeros((batch, l.W.shape[1]), dtype) for l in params.layers)
    zK = jnp.zeros((batch, params.W_out.shape[1]), dtype)
    return EIState(zs, zs, zK, zK, zK)


def dynamic_part(state: EIState) -> DynamicState:
    """The dynamic variables of ``state`` (all fields but ``c``)."""
    return DynamicState(tuple(state.u_E), tuple(state.u_I), state.u_out, state.c_int)


def rates(state, cfg: EIConfig):
    """Excitatory rates ``h^l = phi_E(u_E^l)`` per layer (tuple of ``(B, n_l)``)."""
    return tuple(cfg.phi_E(u) for u in state.u_E)


def control_signal(u_out, c_int, y, cfg: EIConfig):
    """``c = k_p e + k_i c_int`` with ``e = y - softmax(u_out)``; shapes ``(B, K)``."""
    e = y - jax.nn.softmax(u_out, axis=-1)
    return cfg.controller.output(e, c_int)


def apply_feedback(Q_l, c):
    """Top-down input ``q = Q_l^T c`` per sample: ``(B, n_l)`` from ``c`` ``(B, K)``.

    ``Q_l`` is ``(B, K, n_l)`` (per sample) or ``(K, n_l)`` (shared by the batch).
    """
    if Q_l.ndim == 2:
        return c @ Q_l
    return jnp.einsum("bk,bkn->bn", c, Q_l)


def _rhs(params: EIParams, ff0, dyn: DynamicState, cfg: EIConfig, Q, y, forward=None):
    """Right-hand sides *without* the time constants (``tau * du/dt``).

    ``forward``: optional ``(rates, drives, drive_out)`` already computed from ``dyn.u_E``
    (``phi_E(u_E^l)``, ``ff^l`` with ``ff^0 = ff0``, ``h^L @ W_out``), else computed here.
    """
    c = None if Q is None else control_signal(dyn.u_out, dyn.c_int, y, cfg)
    du_E, du_I = [], []
    h = None
    for l, layer in enumerate(params.layers):
        u_E, u_I = dyn.u_E[l], dyn.u_I[l]
        if forward is None:
            ff = ff0 if l == 0 else h @ layer.W + layer.b
            h = cfg.phi_E(u_E)
        else:
            ff, h = forward[1][l], forward[0][l]
        du_E.append(-u_E + ff - cfg.phi_I(u_I))
        drive_I = h if Q is None else h - apply_feedback(Q[l], c)
        du_I.append(-u_I + drive_I)
    drive_out = h @ params.W_out if forward is None else forward[2]
    if Q is None:
        d_out = -dyn.u_out + drive_out
        d_int = jnp.zeros_like(dyn.c_int)
    else:
        e = y - jax.nn.softmax(dyn.u_out, axis=-1)
        d_out = -dyn.u_out + drive_out + c
        d_int = e - cfg.controller.lam * dyn.c_int
    return DynamicState(tuple(du_E), tuple(du_I), d_out, d_int)


def vector_field(params: EIParams, ff0, dyn: DynamicState, cfg: EIConfig, Q=None, y=None) -> DynamicState:
    """``d/dt`` of the network: open loop when ``Q is None``, else closed loop with feedback
    ``Q`` and targets ``y`` ``(B, K)``; ``ff0`` from :func:`input_drive`. (The right-hand side
    the ODE solver integrates.)"""
    return _scale(_rhs(params, ff0, dyn, cfg, Q, y), cfg)


def open_loop_vector_field(params: EIParams, ff0, dyn: DynamicState, cfg: EIConfig) -> DynamicState:
    """``d/dt`` of the open-loop network (no control); ``ff0`` from :func:`input_drive`."""
    return vector_field(params, ff0, dyn, cfg)


def closed_loop_vector_field(params: EIParams, ff0, dyn: DynamicState, Q, y, cfg: EIConfig) -> DynamicState:
    """``d/dt`` of the closed-loop network with feedback ``Q`` and targets ``y`` ``(B, K)``."""
    return vector_field(params, ff0, dyn, cfg, Q, y)


def _scale(r: DynamicState, cfg: EIConfig) -> DynamicState:
    return DynamicState(
        tuple(d / cfg.tau_E for d in r.u_E),
        tuple(d / cfg.tau_I for d in r.u_I),
        r.u_out / cfg.tau_E,
        r.c_int / cfg.controller.tau_c,
    )


def steady_state_residual(params: EIParams, ff0, state, cfg: EIConfig, Q=None, y=None, *, forward=None):
    """``max |tau * du/dt|`` over all state components (scalar): 0 at an exact steady state.

    Open loop when ``Q is None``; otherwise closed loop with targets ``y``. ``forward``:
    optional ``(rates, drives, drive_out)`` of the state's feed-forward pass, if the caller
    has them (``rates[l] = phi_E(u_E^l)``, ``drives[l] = rates[l-1] @ W_l + b_l`` with
    ``drives[0] = ff0``, ``drive_out = rates[-1] @ W_out``): the matrix products are not redone.
    """
    dyn = state if isinstance(state, DynamicState) else dynamic_part(state)
    r = _rhs(params, ff0, dyn, cfg, Q, y, forward)
    return jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree_util.tree_leaves(r)]))


# ----------------------------------------------------------------------------- feedback weights
def readout_jacobians(params: EIParams, state, cfg: EIConfig):
    """Per-sample ``J_l = d(readout drive)/d u_E^l`` through the feed-forward chain.

    ``J_l = W_out^T D_L W_L^T ... W_{l+1}^T D_l`` (math orientation, ``K x n_l``) with
    ``D = diag(phi_E'(u_E))``; returns a tuple of ``(B, K, n_l)`` arrays.
    """
    L = len(params.layers)
    slopes = [cfg.phi_E.slope(u) for u in state.u_E]
    J = [None] * L
    # (B, K, n_L): W_out^T scaled column-wise by phi_E'(u_E^L)
    J[L - 1] = params.W_out.T[None, :, :] * slopes[L - 1][:, None, :]
    for l in range(L - 2, -1, -1):
        W_next = params.layers[l + 1].W  # (n_l, n_{l+1})
        J[l] = jnp.einsum("bkm,nm->bkn", J[l + 1], W_next) * slopes[l][:, None, :]
    return tuple(J)


def feedback_weights(params: EIParams, state, cfg: EIConfig, average: bool = False, eps: float = 1e-12,
                     sample_weights=None):
    """Feedback weights ``Q_l`` from an (open-loop) state.

    Each column of :func:`readout_jacobians` is multiplied by ``phi_I'(u_I)``, giving the raw
    per-sample matrices ``J_l`` ``(B, K, n_l)``. Default: each sample's ``K x n_l`` matrix
    scaled to Frobenius norm 1, ``(B, K, n_l)``. With ``average=True``: the batch mean of the
    RAW matrices, then scaled to Frobenius norm 1, ``(K, n_l)`` -- the order of the paper's
    code (average, then normalise; the mean of normalised matrices would have norm < 1).
    ``sample_weights``: optional ``(B,)`` weights of the batch mean (e.g. a 0/1 mask of the
    valid rows of a padded batch); only with ``average=True``. ``eps`` guards the division.
    """
    if sample_weights is not None and not average:
        raise ValueError("sample_weights is only used with average=True (the batch mean)")
    Js = readout_jacobians(params, state, cfg)
    Qs = []
    for J, u_I in zip(Js, state.u_I):
        Q = J * cfg.phi_I.slope(u_I)[:, None, :]
        if average:
            if sample_weights is None:
                Q = jnp.mean(Q, axis=0)
            else:
                w = jnp.asarray(sample_weights, Q.dtype)
                Q = jnp.tensordot(w, Q, axes=(0, 0)) / jnp.maximum(jnp.sum(w), 1.0)
            norm = jnp.sqrt(jnp.sum(Q * Q))
        else:
            norm = jnp.sqrt(jnp.sum(Q * Q, axis=(1, 2), keepdims=True))
        Qs.append(Q / jnp.maximum(norm, eps))
    return tuple(Qs)
