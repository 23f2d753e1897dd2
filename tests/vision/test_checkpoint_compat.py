"""A checkpoint written by an earlier dgnlib (commit 938084a, before the package was split into
folders) still resumes: same kind string, same identity, same pytree layout.

``tests/data/checkpoint_938084a/`` holds the file that ``make.py`` (run with that commit's code)
wrote after 2 of 3 epochs of a tiny 2-seed linear-threshold run on random uint8 data, the data
itself, and the metrics of the uninterrupted 3-epoch run. Resuming with today's code must restore
epochs 1-2 exactly and compute epoch 3 as the uninterrupted run did.
"""
import shutil
from pathlib import Path

import numpy as np
import pytest

from dgnlib import vision
from dgnlib.checkpoint import CheckpointMismatchError

DATA = Path(__file__).resolve().parent.parent / "data" / "checkpoint_938084a"


def test_checkpoint_of_commit_938084a_resumes(tmp_path):
    ref = np.load(DATA / "expected.npz")
    data = vision.make_arrays(*[ref[f"x{i}"] for i in range(6)], n_classes=3)
    # soft targets 0.99: the default of that commit (today's default, hard labels, is another run)
    cfg = vision.make_config(hidden=(5,), rule="linear_threshold", epochs=3, seeds=(0, 1), batch_size=16,
                             n_classes=3, eval_batch_size=8, learning_rate=2e-3, soft_target=0.99)
    ckpt = tmp_path / "run.ckpt"
    shutil.copy(DATA / "mnist_1x5_linear_threshold.ckpt", ckpt)
    hard = cfg._replace(soft_target=1.0, ei=cfg.ei._replace(target_value=1.0))
    with pytest.raises(CheckpointMismatchError, match="config.soft_target: checkpoint 0.99, this run 1.0"):
        next(iter(vision.iterate_epochs(vision.init_run(hard, n_in=12), data, hard, progress=False, checkpoint=ckpt)))
    lines = []
    out = [(m, sec) for _, m, sec in vision.iterate_epochs(vision.init_run(cfg, n_in=12), data, cfg, progress=False,
                                                           checkpoint=ckpt, log=lines.append)]
    # a checkpoint from before the epochs' times were saved: its epochs' times are unknown (None)
    assert [(t.restored, t.wall_s is None, t.cpu_s is None) for _, t in out] == [(True, True, True)] * 2 + [
        (False, False, False)]
    assert "resumed" in lines[0] and "after epoch 2 of 3" in lines[0]
    got = vision.history_arrays([m for m, _ in out])
    for key in ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
                "test_accuracy"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-6, atol=1e-7, err_msg=key)
