"""Run or aggregate a parameter sweep of a papermill notebook on Dask (``python -m dgnlib.sweep``).

``run`` executes every not-yet-finished run of a sweep (a YAML/JSON file and/or ``--notebook``,
``-p`` grid axes and ``-f`` fixed values) and exits 0 when every run finished, 1 when one failed,
2 on an error before running (bad spec, unknown parameter, unreachable scheduler). ``aggregate``
prints the table of a run directory and writes its CSV files and curves (its defaults: the sweep
file's ``aggregate`` section, else Table 1's layout). ``export`` copies the finished runs' small
files (status and result, not notebooks or checkpoints) into a directory that ``aggregate`` reads
the same way.

CLI::

    python -m dgnlib.sweep run examples/sweeps/small.yaml -o runs/small --n-workers 2
    python -m dgnlib.sweep run --notebook nb.ipynb -p rules=bp,exact -p seed=0,1 -f epochs=2 -o runs/a
    python -m dgnlib.sweep run spec.yaml -o runs/a --scheduler tcp://host:8786
    python -m dgnlib.sweep run spec.yaml -o runs/a --scheduler-file scheduler.json   # dask scheduler/worker
    python -m dgnlib.sweep run spec.yaml -o runs/a --scheduler-file scheduler.json \\
        --tls-ca-file tls/ca.pem --tls-cert tls/cert.pem --tls-key tls/key.pem          # a TLS cluster
    python -m dgnlib.sweep aggregate runs/small                 # Table 1 of test accuracy
    python -m dgnlib.sweep aggregate runs/a --rows rules --cols x --metric acc --out-dir runs/a/acc
    python -m dgnlib.sweep export runs/table1 results/table1    # keep the results, not the notebooks
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Optional, Sequence

from ..atomic import json_default
from .results import aggregate_dir, export_runs
from .runner import run_sweep, tls_security
from .spec import SweepSpec, check_parameters, load_spec, make_spec, parse_cli_values, plan_runs

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Returns the ``argparse`` parser of ``python -m dgnlib.sweep`` (subcommands ``run``, ``aggregate``, ``export``)."""
    p = argparse.ArgumentParser(prog="python -m dgnlib.sweep", description=__doc__.split("\n\n")[0],
                                epilog="examples:" + __doc__.split("CLI::")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute a sweep (skips finished runs, retries failed ones)")
    r.add_argument("spec", nargs="?", help="sweep file (YAML or JSON: notebook, grid, fixed)")
    r.add_argument("--notebook", help="notebook to sweep (overrides the file's)")
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME=V1,V2",
                   help="grid axis (values read as YAML; commas inside [] do not split); repeatable")
    r.add_argument("-f", "--fixed", action="append", default=[], metavar="NAME=VALUE",
                   help="fixed parameter (read as YAML); repeatable")
    r.add_argument("-o", "--run-dir", required=True, help="directory of the runs")
    r.add_argument("--n-workers", type=int, help="LocalCluster worker processes (default: min(CPUs, runs))")
    r.add_argument("--pin-cores", action="store_true",
                   help="give each LocalCluster worker its own share of the cores (one core each: XLA "
                        "single-threaded); faster when runs share a small machine, float32 rounding differs")
    r.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786")
    r.add_argument("--scheduler-file", help="Dask scheduler file (dask-jobqueue, `dask scheduler --scheduler-file`)")
    r.add_argument("--tls-ca-file", metavar="PEM",
                   help="TLS cluster: its CA certificate (as `dask scheduler --tls-ca-file`); "
                        "needs --tls-cert, --tls-key")
    r.add_argument("--tls-cert", metavar="PEM", help="TLS cluster: the certificate this client presents")
    r.add_argument("--tls-key", metavar="PEM", help="TLS cluster: the private key of --tls-cert")
    r.add_argument("--kernel", help="Jupyter kernel name (default: the notebook's)")
    r.add_argument("--timeout", type=float, help="per-cell execution timeout in seconds")
    r.add_argument("--cwd", help="working directory of the notebooks (default: the notebook's directory)")
    r.add_argument("--force", action="store_true", help="re-run finished runs too")
    r.add_argument("--dry-run", action="store_true", help="list the runs and their state; execute nothing")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = sub.add_parser("aggregate", help="table (CSV) and curves (PNG) of a run directory")
    a.add_argument("run_dir", help="a sweep's run directory, or a copy made by export (e.g. results/table1)")
    a.add_argument("--metric", help="metric (default: the sweep file's, else test_accuracy)")
    a.add_argument("--rows", help="row key(s), comma-separated (default: the sweep file's, else rule)")
    a.add_argument("--cols", help="column key(s), comma-separated (default: the sweep file's, else dataset,arch)")
    a.add_argument("--seed-key", help="key of the replicates (default: the sweep file's, else seed)")
    a.add_argument("--pool", help="other key(s) that may differ within a cell, comma-separated (e.g. first_seed "
                                  "when seeds run in groups; default: the sweep file's, else none)")
    a.add_argument("--where", action="append", default=[], metavar="KEY=VALUE", help="keep matching records only")
    a.add_argument("--scale", type=float, help="factor of the shown values (default 100 for accuracies)")
    a.add_argument("--out-dir", "--out", dest="out_dir", help="output directory (default RUN_DIR/aggregate)")
    a.add_argument("--no-plot", action="store_true", help="no PNG")
    e = sub.add_parser("export", help="copy the finished runs' status and result files into another directory")
    e.add_argument("run_dir", help="the sweep's run directory")
    e.add_argument("dest", help="directory to export into (created; several sweeps may share it)")
    return p


def _spec_from_args(args, parser) -> SweepSpec:
    if args.spec is None and args.notebook is None:
        parser.error("run: give a sweep file or --notebook")
    base = load_spec(args.spec) if args.spec else make_spec(args.notebook)
    grid, fixed = dict(base.grid), dict(base.fixed)
    try:
        for item in args.param:
            k, vals = parse_cli_values(item)
            fixed.pop(k, None)
            grid[k] = vals
        for item in args.fixed:
            k, val = parse_cli_values(item, single=True)
            grid.pop(k, None)
            fixed[k] = val
    except ValueError as e:
        parser.error(f"run: {e}")
    return make_spec(args.notebook or base.notebook, grid, fixed, kernel=args.kernel or base.kernel,
                     timeout=args.timeout or base.timeout, aggregate=base.aggregate, source="command line")


def _tls_from_args(args, parser):
    """The Security of ``--tls-*`` (None without them); a usage error when incomplete."""
    tls = {"--tls-ca-file": args.tls_ca_file, "--tls-cert": args.tls_cert, "--tls-key": args.tls_key}
    if not any(tls.values()):
        return None
    missing = [k for k, v in tls.items() if not v]
    if missing:
        parser.error(f"run: {', '.join(missing)} missing: TLS needs --tls-ca-file, --tls-cert and --tls-key together")
    if not (args.scheduler or args.scheduler_file):
        parser.error("run: --tls-ca-file/--tls-cert/--tls-key are for a running cluster: "
                     "give --scheduler or --scheduler-file too")
    return tls_security(args.tls_ca_file, args.tls_cert, args.tls_key)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (``python -m dgnlib.sweep``; see the module docstring).

    Arguments:
      argv: the arguments (default ``sys.argv[1:]``).

    Returns:
      The exit status: 0 done, 1 a run failed, 2 an error (printed as one line to stderr), 130
      interrupted (Ctrl-C: one line, no tracebacks).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            spec = _spec_from_args(args, parser)
            if args.dry_run:
                check_parameters(spec)
                plans = plan_runs(spec, args.run_dir, force=args.force)
                for pl in plans:
                    print(f"{pl.state:9s} {pl.name}  {json.dumps(pl.params, default=json_default)}")
                print(f"{len(plans)} run(s) of {spec.notebook} in {args.run_dir}")
                return 0
            security = _tls_from_args(args, parser)
            report = run_sweep(spec, args.run_dir, n_workers=args.n_workers, scheduler=args.scheduler,
                               scheduler_file=args.scheduler_file, force=args.force, cwd=args.cwd,
                               progress=not args.no_progress, security=security, pin_cores=args.pin_cores,
                               command=shlex.join(["python", "-m", "dgnlib.sweep", *(argv or sys.argv[1:])]))
            print(report.summary())
            return 0 if report.ok else 1
        if args.command == "export":
            copied = export_runs(args.run_dir, args.dest)
            print(f"exported {len(copied)} new or changed finished run(s) to {args.dest}" +
                  "".join(f"\n  {n}" for n in copied))
            return 0
        where = dict(parse_cli_values(w, single=True) for w in args.where)
        rep = aggregate_dir(args.run_dir, args.out_dir, metric=args.metric, rows=args.rows, cols=args.cols,
                            seed_key=args.seed_key, where=where, scale=args.scale, pool=args.pool,
                            plot=not args.no_plot)
        print(rep.text)
        print(f"wrote {rep.csv_path}, {rep.long_csv_path}" + (f", {rep.png_path}" if rep.png_path else ""))
        return 0
    except (ValueError, FileNotFoundError, ImportError, ConnectionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; the same command resumes the others (an interrupted run "
              "continues after its last finished epoch)", file=sys.stderr)
        return 130
