"""The device arrays of one data set, as the jitted epoch reads them: :class:`VisionArrays`.

``load_arrays("mnist", n_train=...)`` loads a data set (:func:`~dgnlib.vision.load_dataset`),
holds out the first 6000 training examples for validation and puts the six arrays on the device;
``make_arrays(x_train, y_train, x_val, y_val, x_test, y_test)`` does the same for any arrays
(synthetic data in tests and benchmarks). Pixels stay uint8 on the device (4x less memory than
float32); the epoch turns them into ``pixel / 255`` per batch.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import check_finite, choice, positive_int
from .data import DATASETS, VisionData, train_validation_split
from .loading import load_dataset

__all__ = ["VisionArrays", "check_split", "make_arrays", "arrays_from_vision_data", "load_arrays"]


class VisionArrays(NamedTuple):
    """Device arrays of one data set. ``x_*``: uint8 pixels ``(n, n_in)`` (turned into
    ``pixel / 255`` per batch) or float32 inputs ``(n, n_in)``; ``y_*``: int32 labels ``(n,)``."""

    x_train: jax.Array
    y_train: jax.Array
    x_val: jax.Array
    y_val: jax.Array
    x_test: jax.Array
    y_test: jax.Array


def check_split(name: str, x, y, n_classes: Optional[int] = None, n_in: Optional[int] = None) -> Tuple[jax.Array, jax.Array]:
    """One split's inputs and labels, checked and on the device.

    Arguments:
      name: the split's name in error messages (``x_<name>``, ``y_<name>``).
      x: uint8 pixels or finite floats ``(n, n_in)`` or images ``(n, 28, 28)`` (flattened).
      y: integer labels ``(n,)``, in ``0 .. n_classes - 1`` when ``n_classes`` is given.
      n_classes, n_in: the expected class count and input width (None: not checked).

    Returns:
      ``(x, y)`` as device arrays: ``x`` uint8 or float32 ``(n, n_in)``, ``y`` int32.
    """
    x = np.asarray(x) if not isinstance(x, jax.Array) else x
    if x.ndim == 3:
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"x_{name} must have shape (n, n_in) or (n, 28, 28) with n >= 1, got {x.shape}")
    if n_in is not None and x.shape[1] != n_in:
        raise ValueError(f"x_{name} has {x.shape[1]} inputs per sample, expected {n_in}")
    if not (x.dtype == np.uint8 or jnp.issubdtype(x.dtype, jnp.floating)):
        raise ValueError(f"x_{name} must be uint8 pixels or floats, got dtype {x.dtype}")
    if x.dtype != np.uint8:
        x = x.astype(np.float32) if isinstance(x, np.ndarray) else x.astype(jnp.float32)
        check_finite(x, f"x_{name}")
    y = np.asarray(y) if not isinstance(y, jax.Array) else y
    if y.ndim != 1 or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"y_{name} must be 1-D integer labels, got dtype {y.dtype} shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y_{name} has {y.shape[0]} labels but x_{name} has {x.shape[0]} samples")
    if n_classes is not None:
        lo, hi = int(jnp.min(y)), int(jnp.max(y))
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"y_{name} must hold labels in 0..{n_classes - 1}, got range {lo}..{hi}")
    return jnp.asarray(x), jnp.asarray(y, jnp.int32)


def make_arrays(x_train, y_train, x_val, y_val, x_test, y_test, *, n_classes: int = 10) -> VisionArrays:
    """Check shapes, dtypes and labels of the three splits and put them on the device.

    Arguments:
      x_train, y_train, x_val, y_val, x_test, y_test: inputs (uint8 pixels or floats, images
        flattened) and integer labels of each split (see :func:`check_split`).
      n_classes: labels must lie in ``0 .. n_classes - 1``.

    Returns:
      a :class:`VisionArrays`.
    """
    xt, yt = check_split("train", x_train, y_train, n_classes)
    n_in = xt.shape[1]
    xv, yv = check_split("val", x_val, y_val, n_classes, n_in)
    xs, ys = check_split("test", x_test, y_test, n_classes, n_in)
    return VisionArrays(xt, yt, xv, yv, xs, ys)


def arrays_from_vision_data(data: VisionData, n_validation: int = 6000, n_train: Optional[int] = None) -> VisionArrays:
    """:class:`VisionArrays` from a :class:`~dgnlib.vision.VisionData`.

    Arguments:
      data: a loaded data set.
      n_validation: validation = the FIRST ``n_validation`` training examples (file order).
      n_train: training = the rest, or its first ``n_train`` when given (``None``: all 54k).

    Returns:
      the arrays on the device (test = the test split; pixels stay uint8).
    """
    split = train_validation_split(data, n_validation)
    x_tr, y_tr = split.x_train, split.y_train
    if n_train is not None:
        n_train = positive_int("n_train", n_train)
        if n_train > len(x_tr):
            raise ValueError(f"n_train must be at most {len(x_tr)}, got {n_train}")
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    return make_arrays(x_tr, y_tr, split.x_test, split.y_test, data.x_test, data.y_test)


def load_arrays(dataset: str, *, n_train: Optional[int] = None, n_validation: int = 6000,
                **load_kwargs) -> VisionArrays:
    """``arrays_from_vision_data(load_dataset(dataset, **load_kwargs), n_validation, n_train)``.

    Arguments:
      dataset: "mnist" | "fashion_mnist" (checked before anything is loaded).
      n_train, n_validation: as in :func:`arrays_from_vision_data`.
      **load_kwargs: passed to :func:`~dgnlib.vision.load_dataset` (``cache_dir``, ``source``,
        ``use_tfds``).

    Returns:
      a :class:`VisionArrays`.
    """
    choice("dataset", dataset, DATASETS)
    return arrays_from_vision_data(load_dataset(dataset, **load_kwargs), n_validation, n_train)
