"""A plain per-sample NumPy loop of the one-vs-all classifiers (the oracle of the tests and the
baseline of ``benchmarks/bench_gln.py``).

Written independently of the JAX code, sample by sample as the model is defined: Welford's
recursion for the moments, the gates of one sample, each layer vectorised over classes and
neurons, the GLN update as a gather and a scatter of one row per neuron.
"""
from __future__ import annotations

import numpy as np

__all__ = ["numpy_state", "numpy_step", "run_numpy"]


def numpy_state(params, gating, dtype=np.float64):
    """NumPy copies of the weights and gating, and zero moments.

    Arguments:
        params: a :class:`dgnlib.gln.GLNParams`.
        gating: a :class:`dgnlib.gln.Gating`.
        dtype: NumPy dtype of the copies.

    Returns:
        ``(weights list, hyperplanes list, offsets list, moments dict)``.
    """
    w = [np.array(a, dtype) for a in params.weights]
    h = [np.array(a, dtype) for a in gating.hyperplanes]
    o = [np.array(a, dtype) for a in gating.offsets]
    d = h[0].shape[-1]
    return w, h, o, {"count": 0, "mean": np.zeros(d, dtype), "m2": np.zeros(d, dtype)}


def numpy_step(weights, hyperplanes, offsets, moments, x, label, learning_rate, cfg):
    """One online sample, in place: moments, gates, forward, update.

    Arguments:
        weights, hyperplanes, offsets, moments: from :func:`numpy_state` (updated in place).
        x: one sample ``(d,)`` of floats (already scaled as :func:`dgnlib.gln.prepare_inputs` does).
        label: its class.
        learning_rate: this step's rate.
        cfg: a :class:`dgnlib.gln.GLNConfig`.

    Returns:
        The class scores ``(n_classes,)`` before the update.
    """
    dt = x.dtype
    if cfg.standardise:
        moments["count"] += 1
        delta = x - moments["mean"]
        moments["mean"] = moments["mean"] + delta / dt.type(moments["count"])
        moments["m2"] = moments["m2"] + delta * (x - moments["mean"])
        std = np.sqrt(moments["m2"] / dt.type(moments["count"]))
        side = (x - moments["mean"]) / (std + 1)
        prob = 1 / (1 + np.exp(-side))
    else:
        side, prob = x, x
    eps = cfg.eps
    bound = np.log((1 - eps) / eps)
    p = np.clip(prob, eps, 1 - eps)
    z = np.concatenate([[1.0], np.log(p) - np.log1p(-p)]).astype(dt)
    n_classes = cfg.n_classes
    y = (np.arange(n_classes) == label).astype(dt)[:, None]
    z = np.broadcast_to(z, (n_classes, z.size))
    for k in range(len(weights)):
        w = weights[k]
        c, n, r, i = w.shape
        bits = np.einsum("knfd,d->knf", hyperplanes[k], side) > offsets[k]   # (C', N, G)
        bits = np.broadcast_to(bits, (c,) + bits.shape[1:])
        if cfg.gating == "gln":
            row = (bits * (2 ** np.arange(bits.shape[-1]))).sum(-1)        # (C, N)
            ci, ni = np.meshgrid(np.arange(c), np.arange(n), indexing="ij")
            used = w[ci, ni, row]                                           # (C, N, I)
            h = (used * z[:, None, :]).sum(-1)
        else:
            g = bits.astype(dt)
            h = np.einsum("cnb,cnbi,ci->cn", g, w, z)
        hc = np.clip(h, -bound, bound)
        r_clip = np.exp(-np.logaddexp(0, -hc))
        r_raw = np.exp(-np.logaddexp(0, -h))  # sigmoid without overflow
        if cfg.saturation_rule == "always":
            mask = np.ones_like(h)
        elif cfg.saturation_rule == "in_range":
            mask = ((r_raw >= eps) & (r_raw <= 1 - eps)).astype(dt)
        else:
            mask = (np.abs(y - r_raw) > eps).astype(dt)
        err = (r_clip - y) * mask
        delta = learning_rate * err[:, :, None] * z[:, None, :]
        if cfg.gating == "gln":
            w[ci, ni, row] = np.clip(used - delta, -cfg.weight_clip, cfg.weight_clip)
        else:
            weights[k] = np.clip(w - g[..., None] * delta[:, :, None, :], -cfg.weight_clip, cfg.weight_clip)
        z = np.concatenate([np.ones((c, 1), dt), hc], axis=1)
    return h[:, 0]


def run_numpy(params, gating, x, labels, learning_rate, cfg, dtype=np.float64):
    """One online pass, sample by sample.

    Arguments:
        params, gating: the starting weights and the gating (JAX or NumPy arrays).
        x: samples ``(n, d)``, scaled as :func:`dgnlib.gln.prepare_inputs` does.
        labels: ``(n,)``.
        learning_rate: a :class:`dgnlib.gln.Schedule` of scalars (or a number: constant).
        cfg: a :class:`dgnlib.gln.GLNConfig`.
        dtype: the NumPy dtype of the computation.

    Returns:
        ``(weights list, outputs (n, n_classes), moments dict)``.
    """
    w, h, o, m = numpy_state(params, gating, dtype)
    x = np.asarray(x, dtype)
    if np.ndim(learning_rate) == 0 and not isinstance(learning_rate, tuple):
        maximum = scale = float(learning_rate)
        decay = 0.0
    else:
        maximum, scale, decay = (float(v) for v in learning_rate)
    outs = np.empty((len(x), cfg.n_classes), dtype)
    for t in range(len(x)):
        rate = dtype(min(maximum, scale / (1 + decay * (t + 1))))
        outs[t] = numpy_step(w, h, o, m, x[t], int(labels[t]), rate, cfg)
    return w, outs, m
