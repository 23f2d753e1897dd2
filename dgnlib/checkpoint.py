"""Checkpoints of pytrees: one file, written atomically, verified when read.

A checkpoint is an uncompressed zip archive (``.ckpt``)::

    arrays/0000.npy ...   one ``.npy`` per leaf, in ``jax.tree_util`` order
    manifest.json         format and version, every leaf's path (``keystr``), shape, dtype and
                          SHA-256, the tree structure, and the caller's ``metadata`` (JSON)

written to a temporary file in the target's folder, flushed to disk and renamed over the
previous checkpoint (:func:`dgnlib.atomic.atomic_path`), so a process killed at any point leaves
either the old or the new checkpoint, never a partial one. Reading checks the archive (zip CRCs),
the manifest, every leaf's SHA-256, and that the stored tree has exactly the paths, shapes and
dtypes of a template (``like``) and the metadata the caller expects. A damaged file raises
:class:`CheckpointCorruptError`, a checkpoint of something else :class:`CheckpointMismatchError`;
neither is ever turned into a silent restart.

Why not orbax: the states here are small single-host pytrees (a few MB per seed); one verified
file per run is simpler to move, inspect (``unzip -l``) and delete, and needs no extra dependency.

    save_pytree(path, {"state": state, "history": history}, metadata={"epoch": 3})
    tree, meta = load_pytree(path, like={"state": state0, "history": h0}, expect={"config": {...}})
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple

import jax
import numpy as np

from .atomic import atomic_path

__all__ = [
    "FORMAT",
    "VERSION",
    "CheckpointError",
    "CheckpointCorruptError",
    "CheckpointMismatchError",
    "save_pytree",
    "load_pytree",
    "read_manifest",
    "describe_differences",
]

FORMAT = "dgnlib-checkpoint"
VERSION = 1
_MANIFEST = "manifest.json"
_ADVICE = "delete it (or the run's checkpoint folder) to start this run from scratch"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used."""


class CheckpointCorruptError(CheckpointError):
    """The file is not a complete, intact dgnlib checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint is intact but belongs to another configuration, data set or state layout."""


def _leaves(tree) -> list:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(p), leaf) for p, leaf in flat]


def _host(leaf, name: str) -> np.ndarray:
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        raise TypeError(f"leaf {name} is a typed PRNG key; store jax.random.key_data(key) instead")
    arr = np.asarray(jax.device_get(leaf))
    if arr.dtype == object:
        raise TypeError(f"leaf {name} is not an array (got {type(leaf).__name__})")
    return arr


def save_pytree(path: str | os.PathLike, tree: Any, metadata: Optional[Mapping[str, Any]] = None) -> Path:
    """Write ``tree`` (a pytree of arrays) and JSON-serialisable ``metadata`` to ``path``
    atomically. Returns ``path``."""
    leaves = [(name, _host(leaf, name)) for name, leaf in _leaves(tree)]
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "treedef": str(jax.tree_util.tree_structure(tree)),
        "leaves": [],
        "metadata": dict(metadata or {}),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for i, (name, arr) in enumerate(leaves):
                buf = io.BytesIO()
                np.save(buf, arr, allow_pickle=False)
                data = buf.getvalue()
                member = f"arrays/{i:04d}.npy"
                zf.writestr(member, data)
                manifest["leaves"].append({"path": name, "file": member, "shape": list(arr.shape),
                                           "dtype": arr.dtype.str, "sha256": hashlib.sha256(data).hexdigest()})
            zf.writestr(_MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return path


def _corrupt(path: Path, why: str) -> CheckpointCorruptError:
    return CheckpointCorruptError(f"checkpoint {path} is damaged: {why}; {_ADVICE}")


def _open(path: Path) -> Tuple[zipfile.ZipFile, dict]:
    try:
        zf = zipfile.ZipFile(path, "r")
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise _corrupt(path, f"not a readable checkpoint archive ({e})") from e
    try:
        manifest = json.loads(zf.read(_MANIFEST).decode("utf-8"))
    except KeyError:
        zf.close()
        raise _corrupt(path, f"no {_MANIFEST} in the archive (incomplete write?)") from None
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, ValueError) as e:
        zf.close()
        raise _corrupt(path, f"unreadable {_MANIFEST} ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        zf.close()
        raise _corrupt(path, f"not a {FORMAT} file")
    if manifest.get("version") != VERSION:
        zf.close()
        raise CheckpointMismatchError(f"checkpoint {path} has format version {manifest.get('version')!r}; "
                                      f"this dgnlib reads version {VERSION}")
    if not isinstance(manifest.get("leaves"), list) or not isinstance(manifest.get("metadata"), dict):
        zf.close()
        raise _corrupt(path, f"{_MANIFEST} lacks 'leaves' or 'metadata'")
    return zf, manifest


def read_manifest(path: str | os.PathLike) -> dict:
    """The checked manifest of the checkpoint at ``path`` (``metadata``, ``leaves``, ...), without
    reading the arrays. ``FileNotFoundError`` if there is none."""
    path = Path(path)
    zf, manifest = _open(path)
    zf.close()
    return manifest


def describe_differences(stored: Mapping[str, Any], expected: Mapping[str, Any], prefix: str = "") -> list:
    """``["config.rule: checkpoint 'exact', this run 'bp'", ...]`` for every key of ``expected``
    whose JSON value differs from ``stored`` (nested mappings are compared key by key)."""
    out = []
    for key, want in expected.items():
        name = f"{prefix}{key}"
        have = stored.get(key, "<missing>") if isinstance(stored, Mapping) else "<missing>"
        if isinstance(want, Mapping) and isinstance(have, Mapping):
            out += describe_differences(have, want, name + ".")
        elif json.dumps(have, sort_keys=True) != json.dumps(want, sort_keys=True):
            out.append(f"{name}: checkpoint {have!r}, this run {want!r}")
    return out


def _restore_leaf(arr: np.ndarray, like):
    if isinstance(like, jax.Array):
        return jax.device_put(arr, like.sharding)
    return arr


def load_pytree(path: str | os.PathLike, like: Any, *, expect: Optional[Mapping[str, Any]] = None) -> Tuple[Any, dict]:
    """Read the checkpoint at ``path`` into the structure of ``like``; returns ``(tree, metadata)``.

    ``like``: a template pytree (arrays or ``jax.ShapeDtypeStruct``); the stored leaves must have
    exactly its paths, shapes and dtypes. Restored leaves take the placement (sharding) of jax-array
    template leaves, NumPy arrays otherwise. ``expect``: metadata items that must be equal.
    Raises ``FileNotFoundError`` (no checkpoint), :class:`CheckpointCorruptError`,
    :class:`CheckpointMismatchError`.
    """
    path = Path(path)
    zf, manifest = _open(path)
    with zf:
        meta = manifest["metadata"]
        if expect:
            diff = describe_differences(meta, expect)
            if diff:
                raise CheckpointMismatchError(
                    f"checkpoint {path} was written by a different run: " + "; ".join(diff[:8])
                    + (f" (and {len(diff) - 8} more)" if len(diff) > 8 else "")
                    + f". Use another checkpoint folder, or {_ADVICE}")
        template = _leaves(like)
        stored = manifest["leaves"]
        names = [n for n, _ in template]
        if [s.get("path") for s in stored] != names:
            missing = sorted(set(names) - {s.get("path") for s in stored})
            extra = sorted({s.get("path") for s in stored} - set(names))
            raise CheckpointMismatchError(
                f"checkpoint {path} holds a different state layout (missing {missing[:5]}, unexpected "
                f"{extra[:5]}); {_ADVICE}")
        arrays = []
        for s, (name, leaf) in zip(stored, template):
            want_shape, want_dtype = tuple(np.shape(leaf)), np.dtype(leaf.dtype).str
            if tuple(s["shape"]) != want_shape or s["dtype"] != want_dtype:
                raise CheckpointMismatchError(
                    f"checkpoint {path}: leaf {name} has shape {tuple(s['shape'])} dtype {s['dtype']}, this run "
                    f"expects shape {want_shape} dtype {want_dtype} (other architecture or seeds?); {_ADVICE}")
            try:
                data = zf.read(s["file"])
            except (KeyError, zipfile.BadZipFile, OSError, EOFError) as e:
                raise _corrupt(path, f"leaf {name} cannot be read ({e})") from e
            if hashlib.sha256(data).hexdigest() != s.get("sha256"):
                raise _corrupt(path, f"leaf {name} fails its SHA-256 check")
            arr = np.load(io.BytesIO(data), allow_pickle=False)
            if arr.shape != want_shape or arr.dtype.str != want_dtype:
                raise _corrupt(path, f"leaf {name} does not match its manifest entry")
            arrays.append(_restore_leaf(arr, leaf))
    treedef = jax.tree_util.tree_structure(like)
    return jax.tree_util.tree_unflatten(treedef, arrays), meta
