"""Checkpoints: the generic verified file format (dgnlib.checkpoint) and resuming vision runs
(dgnlib.vision.iterate_epochs with ``checkpoint=``): exact resume, damaged and mismatched files."""
import json
import zipfile

import jax
import numpy as np
import pytest

from dgnlib import checkpoint as ckpt
from dgnlib import vision

from vision_helpers import config, synthetic


# ----------------------------------------------------------------------------- file format
def tree():
    return {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": (np.int32(3), np.array([True, False]))}


def test_save_load_roundtrip_and_metadata(tmp_path):
    p = ckpt.save_pytree(tmp_path / "a.ckpt", tree(), {"epoch": 2, "config": {"rule": "exact"}})
    out, meta = ckpt.load_pytree(p, tree(), expect={"config": {"rule": "exact"}})
    assert meta["epoch"] == 2
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(tree())):
        assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype
    assert ckpt.read_manifest(p)["leaves"][0]["path"] == "['n'][0]"
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_restored_leaves_take_the_template_placement(tmp_path):
    like = {"w": jax.numpy.zeros((2, 3))}
    p = ckpt.save_pytree(tmp_path / "a.ckpt", {"w": np.ones((2, 3), np.float32)})
    out, _ = ckpt.load_pytree(p, like)
    assert isinstance(out["w"], jax.Array) and out["w"].sharding == like["w"].sharding


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        ckpt.load_pytree(tmp_path / "none.ckpt", tree())


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncate", "flip_array_byte", "garbage", "empty", "no_manifest"])
def test_damaged_checkpoints_raise_corrupt_error(tmp_path, damage):
    p = ckpt.save_pytree(tmp_path / "a.ckpt", tree(), {"epoch": 1})
    if damage == "truncate":
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif damage == "flip_array_byte":
        with zipfile.ZipFile(p) as zf:
            info = zf.getinfo("arrays/0000.npy")
        flip_byte(p, info.header_offset + 30 + len(info.filename) + info.file_size - 1)  # last data byte
    elif damage == "garbage":
        p.write_bytes(b"not a checkpoint at all" * 10)
    elif damage == "empty":
        p.write_bytes(b"")
    elif damage == "no_manifest":
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("arrays/0000.npy", b"")
    with pytest.raises(ckpt.CheckpointCorruptError, match="is damaged.*delete it"):
        ckpt.load_pytree(p, tree())


def test_checksum_catches_a_rewritten_leaf(tmp_path):
    """A leaf replaced with valid .npy bytes (zip CRC correct) still fails its SHA-256."""
    p = ckpt.save_pytree(tmp_path / "a.ckpt", tree())
    with zipfile.ZipFile(p) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 3), np.float32))
    name = next(e["file"] for e in json.loads(members["manifest.json"])["leaves"] if e["path"] == "['w']")
    members[name] = buf.getvalue()
    with zipfile.ZipFile(p, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    with pytest.raises(ckpt.CheckpointCorruptError, match=r"\['w'\] fails its SHA-256"):
        ckpt.load_pytree(p, tree())


def test_mismatched_layout_and_metadata(tmp_path):
    p = ckpt.save_pytree(tmp_path / "a.ckpt", tree(), {"config": {"rule": "exact", "hidden": [16]}})
    with pytest.raises(ckpt.CheckpointMismatchError, match=r"config.rule: checkpoint 'exact', this run 'bp'"):
        ckpt.load_pytree(p, tree(), expect={"config": {"rule": "bp", "hidden": [16]}})
    other = tree()
    other["w"] = np.zeros((3, 3), np.float32)
    with pytest.raises(ckpt.CheckpointMismatchError, match=r"leaf \['w'\] has shape \(2, 3\)"):
        ckpt.load_pytree(p, other)
    other = dict(tree(), extra=np.zeros(1))
    with pytest.raises(ckpt.CheckpointMismatchError, match="different state layout"):
        ckpt.load_pytree(p, other)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    p = ckpt.save_pytree(tmp_path / "a.ckpt", tree(), {"epoch": 1})
    before = p.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(ckpt.np, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_pytree(p, tree(), {"epoch": 2})
    assert p.read_bytes() == before and [f.name for f in tmp_path.iterdir()] == ["a.ckpt"]


def test_typed_keys_are_rejected_with_advice(tmp_path):
    with pytest.raises(TypeError, match="key_data"):
        ckpt.save_pytree(tmp_path / "a.ckpt", {"k": jax.random.key(0)})


# ----------------------------------------------------------------------------- vision resume
def history_equal(h1, h2):
    assert len(h1) == len(h2)
    for a, b in zip(h1, h2):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            assert np.array_equal(np.asarray(x), np.asarray(y))


def run(cfg, data, **kw):
    out = list(vision.iterate_epochs(vision.init_run(cfg, data.x_train.shape[1]), data, cfg, progress=False, **kw))
    return out[-1][0], [m for _, m, _ in out], [s for _, _, s in out]


@pytest.mark.parametrize("rule,momentum", [("bp", 0.0), ("exact", 0.0), ("linear_threshold", 0.5)])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, rule, momentum):
    cfg = config(rule=rule, epochs=3, seeds=(0, 1), lt_momentum=momentum)
    data = synthetic()
    ref_state, ref_hist, _ = run(cfg, data)
    path = vision.checkpoint_path(tmp_path, "toy", cfg)
    assert path.name == "toy_1x12_" + rule + ".ckpt"
    # "interrupted": the generator is abandoned after the first epoch
    gen = vision.iterate_epochs(vision.init_run(cfg, data.x_train.shape[1]), data, cfg, progress=False, checkpoint=path)
    next(gen)
    gen.close()
    assert ckpt.read_manifest(path)["metadata"]["epoch"] == 1
    saved = ckpt.read_manifest(path)["metadata"]
    lines = []
    state, hist, secs = run(cfg, data, checkpoint=path, log=lines.append)
    assert [t.restored for t in secs] == [True, False, False]  # epoch 1 restored, not recomputed
    # the restored epoch keeps the times it was saved with; the trained ones are measured now
    assert (secs[0].wall_s, secs[0].cpu_s) == (saved["epoch_wall_s"][0], saved["epoch_cpu_s"][0])
    assert all(t.wall_s > 0 and t.cpu_s > 0 for t in secs)
    assert "resumed from" in lines[0] and "after epoch 1 of 3" in lines[0]
    history_equal(hist, ref_hist)
    for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(ref_state)):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    # a finished checkpoint: everything restored, nothing trained, the times of both sessions kept
    _, hist2, secs2 = run(cfg, data, checkpoint=path, log=None)
    assert secs2 == [t._replace(restored=True) for t in secs]
    history_equal(hist2, ref_hist)
    # extending the run continues from epoch 3
    _, hist4, secs4 = run(cfg._replace(epochs=4), data, checkpoint=path, log=None)
    assert [t.restored for t in secs4] == [True] * 3 + [False] and len(hist4) == 4
    assert secs4[:3] == secs2


def test_resume_refuses_other_config_data_or_fewer_epochs(tmp_path):
    cfg = config(epochs=2, seeds=(0, 1))
    data = synthetic()
    path = tmp_path / "run.ckpt"
    run(cfg, data, checkpoint=path)
    with pytest.raises(ckpt.CheckpointMismatchError, match="config.lr: checkpoint 0.01, this run 0.02"):
        run(cfg._replace(learning_rate=0.02), data, checkpoint=path)
    with pytest.raises(ckpt.CheckpointMismatchError, match=r"config.seeds"):
        run(cfg._replace(seeds=(0, 2)), data, checkpoint=path)
    with pytest.raises(ckpt.CheckpointMismatchError, match=r"data.x_train.sha256"):
        run(cfg, synthetic(seed=5), checkpoint=path)
    with pytest.raises(ckpt.CheckpointMismatchError, match="2 epochs done, more than the 1 asked for"):
        run(cfg._replace(epochs=1), data, checkpoint=path)


def test_checkpointed_iterate_epochs_needs_the_initial_state(tmp_path):
    cfg = config(epochs=2)
    data = synthetic()
    trained, _, _ = run(cfg._replace(epochs=1), data)
    with pytest.raises(ValueError, match=r"initial state.*done \[1\] epochs"):
        next(vision.iterate_epochs(trained, data, cfg, progress=False, checkpoint=tmp_path / "run.ckpt"))


def test_resume_of_a_damaged_run_checkpoint_raises(tmp_path):
    cfg = config(epochs=1)
    data = synthetic()
    path = tmp_path / "run.ckpt"
    run(cfg, data, checkpoint=path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ckpt.CheckpointCorruptError, match="damaged"):
        run(cfg, data, checkpoint=path)
