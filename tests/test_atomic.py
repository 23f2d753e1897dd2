"""dgnlib.atomic: a failed write leaves the old file and no temporary file behind."""
import pytest

from dgnlib.atomic import atomic_path


def test_success_replaces_and_is_readable(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_error_keeps_old_file(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_interrupted_write_keeps_old_file(tmp_path, monkeypatch):
    """A write killed between the temporary file and the rename (KeyboardInterrupt) leaves the old file."""
    import dgnlib.atomic as atomic

    target = tmp_path / "status.json"
    atomic.atomic_write_text(target, "old")

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write_text(target, '{"status": "finished"}')
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_json_helpers(tmp_path):
    import numpy as np

    from dgnlib.atomic import canonical_json, read_json, write_json

    path = write_json(tmp_path / "a.json", {"x": np.array([1.5, 2.0]), "n": np.int64(3), "p": tmp_path, "s": {2, 1}})
    assert read_json(path) == {"x": [1.5, 2.0], "n": 3, "p": str(tmp_path), "s": [1, 2]}
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_json(path, {"bad": object()})
    assert read_json(path)["n"] == 3  # unchanged
    assert canonical_json({"b": [1, 2], "a": None}) == canonical_json({"a": None, "b": [1, 2]}) == \
        '{"a": null, "b": [1, 2]}'
    assert canonical_json(1) != canonical_json(1.0)
