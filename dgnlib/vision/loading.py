"""Loading a data set: the verified cache first, else a source converted once into the cache.

``load_dataset("mnist")`` / ``load_dataset("fashion_mnist")`` return a verified
:class:`~dgnlib.vision.VisionData`. Tried in this order:

1. the cache ``<cache_dir>/data/<name>.npz`` (``cache_dir`` defaults to
   :func:`dgnlib.runtime.default_cache_dir`: ``$DGNLIB_CACHE_DIR`` or ``~/.cache/dgnlib``), read with
   ``allow_pickle=False``;
2. local files (:func:`dgnlib.vision.find_source`: the ``source`` argument, the environment, the
   well-known places);
3. ``tensorflow_datasets`` when installed (Colab) and ``use_tfds=True``: its download manager
   fetches the original IDX files (:func:`dgnlib.vision.read_tfds`).

The first source found is verified (:func:`dgnlib.vision.verify`) and written atomically into the
cache. :func:`prepare_datasets` and :func:`dataset_status` back ``python -m dgnlib.vision data
prepare|info``.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Sequence, Union

import numpy as np

from ..atomic import atomic_path
from . import sources
from .data import DATASETS, LABEL_DTYPE, DatasetIntegrityError, DatasetNotFoundError, VisionData, check_dataset, verify

__all__ = ["cache_path", "write_cache", "read_cache", "load_dataset", "prepare_datasets", "DatasetStatus",
           "dataset_status"]

PathLike = Union[str, "os.PathLike[str]"]
_CACHE_FORMAT = 1


def cache_path(name: str, cache_dir: Optional[PathLike] = None) -> Path:
    """The cache file of a data set.

    Arguments:
      name: "mnist" or "fashion_mnist".
      cache_dir: the cache root (default ``$DGNLIB_CACHE_DIR`` or ``~/.cache/dgnlib``).

    Returns:
      ``<cache_dir>/data/<name>.npz``.
    """
    return sources.cache_root(cache_dir) / "data" / f"{check_dataset(name)}.npz"


def write_cache(path: PathLike, data: VisionData, source: str) -> None:
    """Write a data set into a cache file, atomically (temporary file in the same folder +
    ``os.replace``).

    Arguments:
      path: the cache file (:func:`cache_path`).
      data: the data set (labels are stored as uint8).
      source: where it came from (text kept in the file).

    Returns:
      None.
    """
    with atomic_path(Path(path), suffix=".npz.tmp") as tmp, open(tmp, "wb") as f:
        np.savez(
            f, x_train=data.x_train, y_train=data.y_train.astype(np.uint8),
            x_test=data.x_test, y_test=data.y_test.astype(np.uint8),
            source=np.array(source), format=np.array(_CACHE_FORMAT),
        )


def read_cache(path: PathLike, name: str) -> VisionData:
    """Read a cache file.

    Arguments:
      path: the cache file.
      name: the data set it must hold.

    Returns:
      the verified :class:`~dgnlib.vision.VisionData`; a damaged or stale file raises
      :class:`~dgnlib.vision.DatasetIntegrityError` saying to delete it.
    """
    path = Path(path)
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


def load_dataset(
    name: str,
    *,
    cache_dir: Optional[PathLike] = None,
    source: Optional[PathLike] = None,
    use_tfds: bool = True,
) -> VisionData:
    """Data set ``name`` as a verified :class:`~dgnlib.vision.VisionData`.

    Arguments:
      name: "mnist" or "fashion_mnist" (:data:`~dgnlib.vision.DATASETS`).
      cache_dir: the cache root (default ``$DGNLIB_CACHE_DIR`` or ``~/.cache/dgnlib``).
      source: a local file or directory to read when the cache is missing.
      use_tfds: fall back to ``tensorflow_datasets`` (downloads) when installed and nothing local
        was found.

    Returns:
      uint8 images ``(n, 28, 28)``, int32 labels, 60000 train / 10000 test in the original order;
      a source is converted once into the cache. Raises
      :class:`~dgnlib.vision.DatasetNotFoundError` (with the commands to get the data) when nothing
      is found and :class:`~dgnlib.vision.DatasetIntegrityError` when what was found is not the
      expected data.
    """
    check_dataset(name)
    cached = cache_path(name, cache_dir)
    if cached.is_file():
        return read_cache(cached, name)
    found, looked = sources.find_source(name, source, cache_dir)
    if found is not None:
        kind, path = found
        origin = f"{kind} source {path}"
        data = verify(sources.read_source(name, kind, path), origin)
    elif use_tfds and sources.tfds_available():
        origin = "tensorflow_datasets"
        try:
            data = sources.read_tfds(name, cache_dir)
        except Exception as err:  # typically no internet
            raise DatasetNotFoundError(
                f"{name} not found locally and tensorflow_datasets could not fetch it ({err!r}).\n"
                + sources.how_to_get(name, cache_dir)
            ) from err
        data = verify(data, origin)
    else:
        tfds_note = ("tensorflow_datasets: not installed" if not sources.tfds_available()
                     else "tensorflow_datasets: use_tfds=False")
        raise DatasetNotFoundError(
            f"{name} not found. Looked in:\n  cache: {cached}\n"
            + "".join(f"  {p}\n" for p in looked)
            + f"  {tfds_note}\n"
            + sources.how_to_get(name, cache_dir)
        )
    try:
        write_cache(cached, data, origin)
    except OSError as err:  # e.g. read-only cache folder: the data are still good
        warnings.warn(f"could not write the {name} cache {cached}: {err}", RuntimeWarning, stacklevel=2)
    return data


def prepare_datasets(
    names: Sequence[str] = DATASETS,
    *,
    sources: Optional[Dict[str, PathLike]] = None,
    cache_dir: Optional[PathLike] = None,
    use_tfds: bool = False,
) -> Dict[str, str]:
    """Make sure each data set is cached and verified.

    Arguments:
      names: the data sets (default: all of :data:`~dgnlib.vision.DATASETS`).
      sources: ``{name: file or directory}`` to read from when the cache is missing.
      cache_dir, use_tfds: as in :func:`load_dataset`.

    Returns:
      ``{name: what was done}``. A cache already there is only verified (a damaged one raises;
      delete it and run again).
    """
    given = dict(sources or {})
    for key in given:
        check_dataset(key)
    done = {}
    for name in names:
        was_cached = cache_path(name, cache_dir).is_file()
        load_dataset(name, cache_dir=cache_dir, source=given.get(name), use_tfds=use_tfds)
        done[name] = "cached already, verified" if was_cached else "converted into the cache, verified"
    return done


class DatasetStatus(NamedTuple):
    """What :func:`dataset_status` found: ``cache`` (the cache file), ``verified`` (it is there and
    verified), ``cache_state`` (text), ``found_source`` (local files found), ``source`` (text)."""

    name: str
    cache: Path
    verified: bool
    cache_state: str
    found_source: bool
    source: str


def dataset_status(name: str, cache_dir: Optional[PathLike] = None) -> DatasetStatus:
    """What is there of a data set (reads, never writes).

    Arguments:
      name: "mnist" or "fashion_mnist".
      cache_dir: the cache root.

    Returns:
      a :class:`DatasetStatus`: the cache (missing, verified, damaged) and the local sources
      (:func:`~dgnlib.vision.find_source` without a ``source`` argument).
    """
    path = cache_path(name, cache_dir)
    state = "missing"
    if path.is_file():
        try:
            read_cache(path, name)
            state = "cached, verified"
        except DatasetIntegrityError as err:
            state = f"DAMAGED ({str(err).splitlines()[0]}; delete the file)"
    try:
        found, _ = sources.find_source(name, None, cache_dir)
        text = f"{found[0]} {found[1]}" if found else "none found"
    except DatasetNotFoundError as err:
        found, text = None, f"error: {str(err).splitlines()[0]}"
    return DatasetStatus(name, path, state == "cached, verified", state, found is not None, text)
