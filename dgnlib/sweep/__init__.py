"""Parameter sweeps of papermill notebooks on Dask, and their aggregation (``python -m dgnlib.sweep``).

A sweep is a notebook, a grid of parameter values (every combination is one run) and fixed
parameters; each run executes the notebook with papermill into its own directory, on a Dask
cluster (a LocalCluster, or a running scheduler, TLS-only on shared machines), and a re-run skips
finished runs and resumes interrupted ones from their checkpoints. Results are data: a notebook
writes its records (:mod:`dgnlib.records`) with :func:`write_result`, and :func:`aggregate_dir`
turns the records of the finished runs into the paper's Table 1, CSV files and curves.

==========================================  ==================================================
concept                                     module (all names re-exported here)
==========================================  ==================================================
the spec: grid, runs, directory names       :mod:`dgnlib.sweep.spec` (``load_spec``,
                                            ``make_spec``, ``parse_cli_values``, ``expand_grid``,
                                            ``run_dir_name``, ``check_parameters``, ``plan_runs``)
one run on a worker (papermill, status)     :mod:`dgnlib.sweep.execute` (``RunTask``, ``execute_run``);
                                            :mod:`dgnlib.sweep.kernels` (kernels over IPC)
the sweep on Dask, TLS                      :mod:`dgnlib.sweep.runner` (``run_sweep``,
                                            ``SweepReport``, ``tls_security``)
workers on cores of their own (pin_cores)   :mod:`dgnlib.sweep.cores` (``core_sets``,
                                            ``pinning_environment``, ``pin_worker``)
run-directory files, records, aggregation   :mod:`dgnlib.sweep.results` (``write_result``,
                                            ``load_records``, ``aggregate_dir``,
                                            ``export_runs``)
command line                                :mod:`dgnlib.sweep.cli` (``main``)
==========================================  ==================================================

Example::

    from dgnlib import sweep
    report = sweep.run_sweep(sweep.load_spec("examples/sweeps/small.yaml"), "runs/small", n_workers=2)
    print(sweep.aggregate_dir("runs/small").text)
"""
from .cli import main
from .cores import CORE_SETS_ENV, SINGLE_CORE_XLA_FLAGS, core_sets, pin_worker, pinning_environment
from .execute import EVENT_TOPIC, KERNEL_MANAGER, RunTask, execute_run
from .results import (AGGREGATE_DIR, CHECKPOINT_DIR, DEFAULT_AGGREGATE, MANIFEST_FILE, NO_RECORDS_HINT,
                      OUTPUT_NOTEBOOK, RESULT_FILE, STATUS_FILE, AggregateReport, aggregate_dir, aggregate_settings,
                      export_runs, load_records, notebook_stdout, read_status, utc_timestamp, write_result)
from .runner import RunOutcome, SweepReport, run_sweep, tls_security
from .spec import (AGGREGATE_KEYS, MAX_NAME_LENGTH, RESERVED_PARAMETERS, RunPlan, SweepSpec, check_aggregate,
                   check_parameters, expand_grid,
                   load_spec, make_spec, notebook_parameters, parse_cli_values, plan_runs, run_dir_name)

__all__ = [
    # spec
    "SweepSpec", "RunPlan", "MAX_NAME_LENGTH", "RESERVED_PARAMETERS", "AGGREGATE_KEYS", "make_spec", "load_spec",
    "check_aggregate", "parse_cli_values",
    "run_dir_name", "expand_grid", "notebook_parameters", "check_parameters", "plan_runs",
    # execute
    "RunTask", "execute_run", "EVENT_TOPIC", "KERNEL_MANAGER",
    # runner
    "RunOutcome", "SweepReport", "run_sweep", "tls_security",
    # cores
    "CORE_SETS_ENV", "SINGLE_CORE_XLA_FLAGS", "core_sets", "pinning_environment", "pin_worker",
    # results
    "STATUS_FILE", "RESULT_FILE", "OUTPUT_NOTEBOOK", "MANIFEST_FILE", "CHECKPOINT_DIR", "AGGREGATE_DIR",
    "NO_RECORDS_HINT", "utc_timestamp", "write_result", "read_status", "notebook_stdout", "load_records",
    "AggregateReport", "DEFAULT_AGGREGATE", "aggregate_settings", "aggregate_dir", "export_runs",
    # cli
    "main",
]
