"""The per-sample computation of ``n_classes`` binary gated linear networks: gates, forward, update.

Every neuron predicts its class's binary target. Neuron ``n`` of layer ``k`` of class ``c`` reads
the previous layer's clipped logits ``z = [1, h_1 .. h_N]`` (layer 0: ``[1, logit(clip(p, eps,
1 - eps))]`` of the input probabilities ``p``), picks its effective weights ``w`` from its gate
bits (``"gln"``: the table row ``sum_g bit_g 2^g``; ``"dgn"``: the sum of the open branches) and
outputs ``h = clip(w . z, -L, L)`` with ``L = logit(1 - eps)``, i.e. the probability
``sigmoid(h)`` clipped to ``[eps, 1 - eps]``. Its log-loss gradient moves the weights that were
used: ``w_row -= learning_rate * (sigmoid(h) - y) * z`` (``"gln"``: one row, a gather and a
scatter; ``"dgn"``: every open branch), followed by clipping to ``+-weight_clip``.
Which neurons learn is ``cfg.saturation_rule`` (:func:`dgnlib.dgn.learn_mask`).

Shapes: ``weights[k]`` ``(C, N_k, R, I_k)``; a sample's gate bits per layer ``(C', N_k, G)`` with
``C' = 1`` for shared gates (broadcast over the classes).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..dgn.model import learn_mask
from .config import GLNConfig
from .params import GLNParams

__all__ = ["logit_bound", "input_logits", "context_index", "neuron_drive", "forward", "step"]


def logit_bound(eps: float) -> float:
    """``L = logit(1 - eps)``: clipping a logit to ``[-L, L]`` clips its probability to ``[eps, 1 - eps]``.

    Arguments:
        eps: the clipping level in ``(0, 0.5)``.

    Returns:
        ``log((1 - eps) / eps)``.
    """
    return math.log((1.0 - eps) / eps)


def input_logits(p, eps: float):
    """Layer 0's inputs: ``[1, logit(clip(p, eps, 1 - eps))]`` (the bias logit 1 is ``logit(sigmoid(1))``).

    Arguments:
        p: input probabilities ``(..., d)``.
        eps: the clipping level.

    Returns:
        ``(..., d + 1)``.
    """
    p = jnp.clip(p, eps, 1 - eps)
    z = jnp.log(p) - jnp.log1p(-p)
    return jnp.concatenate([jnp.ones(z.shape[:-1] + (1,), z.dtype), z], axis=-1)


def context_index(bits):
    """GLN table rows selected by gate bits: ``sum_g bits[..., g] * 2 ** g``.

    Arguments:
        bits: boolean ``(..., G)``.

    Returns:
        int32 ``(...)``.
    """
    powers = 2 ** jnp.arange(bits.shape[-1], dtype=jnp.int32)
    return jnp.sum(bits.astype(jnp.int32) * powers, axis=-1)


def neuron_drive(w, bits, z, gating: str):
    """A layer's drives ``w_eff . z`` ``(C, N)`` and what its update needs.

    Arguments:
        w: the layer's weights ``(C, N, R, I)``.
        bits: its gate bits ``(C', N, G)``.
        z: its inputs ``(I,)`` (shared by the classes) or ``(C, I)``.
        gating: ``"gln"`` or ``"dgn"``.

    Returns:
        ``(drive (C, N), used)``: ``used`` is the flat table index ``(C, N)`` of each neuron's row
        (``"gln"``) or the open branches as 0/1 ``(C, N, R)`` (``"dgn"``).
    """
    c, n, r, i = w.shape
    zs = "i" if z.ndim == 1 else "ci"  # layer 0's inputs are shared by the classes: no broadcast copy
    if gating == "gln":
        row = jnp.broadcast_to(context_index(bits), (c, n))
        flat = (jnp.arange(c)[:, None] * n + jnp.arange(n)[None, :]) * r + row
        rows = w.reshape(c * n * r, i)[flat]                      # gather (C, N, I)
        return jnp.einsum(f"cni,{zs}->cn", rows, z), flat
    g = jnp.broadcast_to(bits, (c, n, r)).astype(w.dtype)
    return jnp.einsum("cnb,cnb->cn", g, jnp.einsum(f"cnbi,{zs}->cnb", w, z)), g


def forward(params: GLNParams, layer_bits, z0, cfg: GLNConfig):
    """One sample through every class's network, without learning.

    Arguments:
        params: the weights.
        layer_bits: per layer the sample's gate bits ``(C', N_k, G)``.
        z0: layer 0's inputs ``(d + 1,)`` (:func:`input_logits`).
        cfg: the options (trusted: the public entry points check them).

    Returns:
        ``(output, local)``: the output neurons' unclipped logits ``(C,)`` (the class scores) and per
        layer ``(drive (C, N_k), used, z)`` with ``z`` the layer's inputs.
    """
    bound = logit_bound(cfg.eps)
    z, local = z0, []
    for w, bits in zip(params.weights, layer_bits):
        h, used = neuron_drive(w, bits, z, cfg.gating)
        local.append((h, used, z))
        hc = jnp.clip(h, -bound, bound)
        z = jnp.concatenate([jnp.ones((hc.shape[0], 1), hc.dtype), hc], axis=1)
    return local[-1][0][:, 0], local


def step(params: GLNParams, layer_bits, z0, label, learning_rate, cfg: GLNConfig):
    """One online step for all classes: predict, then every neuron learns its class's target.

    Arguments:
        params: the weights.
        layer_bits: per layer the sample's gate bits ``(C', N_k, G)``.
        z0: layer 0's inputs ``(d + 1,)``.
        label: the sample's class (an int); class ``c``'s target is ``label == c``.
        learning_rate: this step's rate (a scalar).
        cfg: the options.

    Returns:
        ``(new_params, output)``: ``output`` the class scores ``(C,)`` before the update.
    """
    output, local = forward(params, layer_bits, z0, cfg)
    bound = logit_bound(cfg.eps)
    y = (jnp.arange(cfg.n_classes) == label).astype(z0.dtype)[:, None]
    new = []
    for w, (h, used, z) in zip(params.weights, local):
        c, n, r, i = w.shape
        err = (jax.nn.sigmoid(jnp.clip(h, -bound, bound)) - y) * learn_mask(y, jax.nn.sigmoid(h), cfg)
        delta = learning_rate * err[:, :, None] * (z if z.ndim == 1 else z[:, None, :])  # (C, N, I)
        if cfg.gating == "gln":
            flat_w = w.reshape(c * n * r, i)
            rows = jnp.clip(flat_w[used] - delta, -cfg.weight_clip, cfg.weight_clip)
            new.append(flat_w.at[used].set(rows, unique_indices=True).reshape(w.shape))  # scatter
        else:
            new.append(jnp.clip(w - used[..., None] * delta[:, :, None, :], -cfg.weight_clip, cfg.weight_clip))
    return GLNParams(tuple(new)), output
