"""Atomic file writes (readers see the old file or the complete new one, never a partial one) and the
JSON helpers of dgnlib's result and status files.

``atomic_path`` (a temporary path moved into place), ``atomic_write_text``, ``write_json`` /
``read_json`` (JSON files, NumPy/JAX values converted by ``json_default``) and ``canonical_json``
(the one text of a JSON value, to compare parameters and table keys).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_path", "atomic_write_text", "write_json", "read_json", "json_default", "canonical_json"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder to write to; on success it is flushed to disk,
    made world-readable (0644) and moved onto ``path`` with ``os.replace`` (the folder is then
    synced, so the rename survives a crash); on error it is removed.

        with atomic_path("out/table.csv") as tmp:
            tmp.write_text(text)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def json_default(obj):
    """JSON fallback: NumPy/JAX arrays and scalars (``tolist``/``item``), tuples, paths."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`dgnlib.atomic.atomic_path`): readers see the old
    or the new file, never a partial one."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically.

    Arguments:
      path: the file (its folder is created).
      data: anything JSON can hold; NumPy/JAX arrays and scalars, sets and paths are converted
        (:func:`json_default`); anything else raises ``TypeError`` and leaves ``path`` unchanged.

    Returns:
      ``Path(path)``.
    """
    return atomic_write_text(path, json.dumps(data, indent=1, default=json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value stored in ``path`` (``OSError`` if it cannot be read, ``ValueError`` if it is
    not JSON)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def canonical_json(value: Any) -> str:
    """One text per JSON value (keys sorted, NumPy/JAX values converted): two values are the same
    parameter or table key if and only if their texts are equal (``1`` and ``1.0`` differ)."""
    return json.dumps(value, sort_keys=True, default=json_default)
