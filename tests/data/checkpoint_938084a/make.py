"""Writes this folder's fixture with commit 938084a's dgnlib (the API of that commit), from the repository root:
    git worktree add ../dgnlib-938084a 938084a
    PYTHONPATH=../dgnlib-938084a python3 tests/data/checkpoint_938084a/make.py
"""
from pathlib import Path

import numpy as np, jax
from dgnlib import vision_training as vt

HERE = Path(__file__).resolve().parent
rng = np.random.default_rng(0)
def split(n):
    return rng.integers(0, 256, (n, 12), dtype=np.uint8), rng.integers(0, 3, n).astype(np.int32)
data = vt.make_arrays(*split(50), *split(20), *split(20), n_classes=3)
cfg = vt.make_config(hidden=(5,), rule="linear_threshold", epochs=3, seeds=(0, 1), batch_size=16,
                     n_classes=3, eval_batch_size=8, lr=2e-3)
state = vt.init_run(cfg, n_in=12)
hist = []
for st, m, _ in vt.fit(state, data, cfg, epochs=2, progress=False, checkpoint=HERE / "mnist_1x5_linear_threshold.ckpt"):
    hist.append(m)
# the uninterrupted third epoch, for the test to compare against
full = [m for _, m, _ in vt.fit(vt.init_run(cfg, n_in=12), data, cfg, epochs=3, progress=False)]
np.savez(HERE / "expected.npz", **{k: v for k, v in vt.history_arrays(full).items()},
         **{f"x{i}": np.asarray(a) for i, a in enumerate(data)})
print(vt.history_arrays(full)["test_accuracy"])
