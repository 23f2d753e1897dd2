"""Input preprocessing: the online mean/std standardisation of DeepMind's GLN example, and
moment-based deskewing of images.

Standardisation keeps running moments (count, mean, sum of squared deviations ``m2``) of the
training inputs. Each training sample first enters the moments, then is standardised with them:
``s = (x - mean) / (sqrt(m2 / count) + 1)`` (the side information) and ``p = sigmoid(s)`` (the
network inputs, as probabilities). Evaluation uses the moments reached at the end of training.
:func:`chunk_moments` gives the moments after each sample of a chunk at once (prefix sums of the
deviations from the chunk's starting mean), equal to Welford's per-sample recursion up to round-off.

Deskewing (:func:`deskew`): for each image, the intensity-weighted centre ``(m0, m1)`` and the
second moments ``var0 = E[(r - m0)^2]``, ``cov = E[(r - m0)(c - m1)]`` of its row/column
coordinates give the shear ``alpha = cov / var0``; the image is resampled with the affine map that
sends output pixel ``o`` to input position ``[[1, 0], [alpha, 1]] @ o + offset``, with the offset
chosen so that the image centre lands on the centre of mass (``scipy.ndimage.affine_transform``,
cubic spline, zero outside). This removes the slant of a digit and centres it (the preprocessing of
DeepMind's GLN example and of pygln).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Moments", "init_moments", "chunk_moments", "standardised", "network_inputs", "deskew"]


class Moments(NamedTuple):
    """Running moments of the training inputs: ``count`` (scalar), ``mean`` and ``m2`` ``(d,)``."""

    count: jax.Array
    mean: jax.Array
    m2: jax.Array


def init_moments(n_features: int, dtype=jnp.float32) -> Moments:
    """No sample seen yet.

    Arguments:
        n_features: the input dimension ``d``.
        dtype: the arrays' dtype.

    Returns:
        A :class:`Moments` of zeros.
    """
    return Moments(jnp.zeros((), dtype), jnp.zeros((n_features,), dtype), jnp.zeros((n_features,), dtype))


def chunk_moments(moments: Moments, x):
    """The moments after each sample of a chunk entered them, in one vectorised computation.

    With ``y = x - mean_0`` (deviations from the starting mean), ``S1_j``, ``S2_j`` the prefix sums
    of ``y`` and ``y^2`` over the chunk's first ``j`` samples and ``n_j = count_0 + j``:
    ``mean_j = mean_0 + S1_j / n_j`` and ``m2_j = m2_0 + S2_j - S1_j^2 / n_j``.

    Arguments:
        moments: the moments before the chunk.
        x: the chunk ``(T, d)``.

    Returns:
        ``(means (T, d), stds (T, d), moments after the chunk)``.
    """
    y = x - moments.mean
    s1 = jnp.cumsum(y, axis=0)
    s2 = jnp.cumsum(y * y, axis=0)
    count = moments.count + jnp.arange(1, x.shape[0] + 1, dtype=x.dtype)[:, None]
    mean = moments.mean + s1 / count
    m2 = jnp.maximum(moments.m2 + s2 - s1 * s1 / count, 0.0)
    std = jnp.sqrt(m2 / count)
    return mean, std, Moments(count[-1, 0], mean[-1], m2[-1])


def standardised(x, mean, std):
    """DeepMind's standardisation ``(x - mean) / (std + 1)`` (the side information).

    Arguments:
        x: inputs ``(..., d)``.
        mean, std: broadcastable to ``x``.

    Returns:
        ``(..., d)``.
    """
    return (x - mean) / (std + 1.0)


def network_inputs(x, mean, std, standardise: bool):
    """Side information and input probabilities of samples.

    Arguments:
        x: inputs ``(..., d)``.
        mean, std: the moments to standardise with (ignored unless ``standardise``).
        standardise: ``True``: side ``s = standardised(x)`` and probabilities ``sigmoid(s)``;
            ``False``: ``x`` (in ``[0, 1]``) is both.

    Returns:
        ``(side, probabilities)``, each ``(..., d)``.
    """
    if not standardise:
        return x, x
    s = standardised(x, mean, std)
    return s, jax.nn.sigmoid(s)


def deskew(images) -> np.ndarray:
    """Moment-based deskewing of square images (see the module docstring).

    Arguments:
        images: ``(n, h, w)`` or flattened ``(n, h * w)`` with ``h == w``, any real dtype (uint8
            pixels are resampled as floats and rounded back to uint8).

    Returns:
        The deskewed images, same shape and dtype. Blank images are returned unchanged.
    """
    from scipy.ndimage import affine_transform

    a = np.asarray(images)
    if a.ndim not in (2, 3):
        raise ValueError(f"images must be (n, h, w) or (n, h * w), got shape {a.shape}")
    flat = a.ndim == 2
    side = int(round(np.sqrt(a.shape[1]))) if flat else a.shape[1]
    if (flat and side * side != a.shape[1]) or (not flat and a.shape[2] != side):
        raise ValueError(f"images must be square, got shape {a.shape}")
    imgs = a.reshape(len(a), side, side).astype(np.float64)
    c0, c1 = np.mgrid[:side, :side]
    out = np.empty_like(imgs)
    centre = np.array([side, side]) / 2.0
    for k, img in enumerate(imgs):
        total = img.sum()
        if total <= 0:
            out[k] = img
            continue
        m0, m1 = (c0 * img).sum() / total, (c1 * img).sum() / total
        var0 = ((c0 - m0) ** 2 * img).sum() / total
        cov = ((c0 - m0) * (c1 - m1) * img).sum() / total
        alpha = cov / var0 if var0 > 0 else 0.0
        affine = np.array([[1.0, 0.0], [alpha, 1.0]])
        out[k] = affine_transform(img, affine, offset=np.array([m0, m1]) - affine @ centre)
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(a.dtype).reshape(a.shape)
