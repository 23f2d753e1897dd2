"""Synthetic data and small configs shared by the vision tests (tests/vision/, test_checkpoint.py)."""
import numpy as np

from dgnlib import vision

N_IN, HIDDEN, K = 20, (12,), 10


def synthetic(n_train=23, n_val=9, n_test=7, seed=0, dtype="uint8"):
    """Random uint8 (or float32) inputs of width N_IN and labels of K classes, on the device."""
    rng = np.random.default_rng(seed)

    def split(n):
        if dtype == "uint8":
            x = rng.integers(0, 256, (n, N_IN), dtype=np.uint8)
        else:
            x = rng.random((n, N_IN), dtype=np.float32)
        return x, rng.integers(0, K, n).astype(np.int32)

    return vision.make_arrays(*split(n_train), *split(n_val), *split(n_test))


def config(**kw):
    """A small TrainConfig (one hidden layer of 12, batches of 10: 23 samples give a padded batch),
    with soft targets 0.99 (so that the tests see the targets differ from the labels; the default
    is hard labels, test_default_protocol_is_hard_labels)."""
    base = dict(hidden=HIDDEN, rule="exact", batch_size=10, epochs=1, seeds=(0,), eval_batch_size=4,
                learning_rate=1e-2, soft_target=0.99)
    base.update(kw)
    return vision.make_config(**base)


def mnist_cached() -> bool:
    """Whether MNIST loads offline (the cache ``make data`` prepares); tests that need it skip otherwise."""
    try:
        vision.load_dataset("mnist", use_tfds=False)
    except vision.DatasetNotFoundError:
        return False
    return True
