"""The linear-threshold rule's control-free update over training (the LT-gap mechanism).

Trains one 1 x 256 network with the linear-threshold rule (hard labels, the Table 1 protocol) and,
after chosen epochs, measures on fixed training batches (:func:`dgnlib.dic.rule_alignment`): how
large the update is that the rule makes with no top-down control (fitted at the batch-mean rate,
the paper's rule), relative to its full update, and how the rule's updates align with the exact
rule's and BP's. The hypothesis: as the network fits the data the controller's signal shrinks,
the control-free part does not, so late in training it steers the weights.

    python3 examples/lt_alignment.py --dataset mnist --epochs 20 -o results/lt_alignment/mnist.json

Prints one line per measured epoch and writes them (with the settings and versions) as JSON.

With ``--checkpoint`` it trains nothing: it measures, in every hidden layer, the networks saved in
finished runs' checkpoints (any depth; every seed of each file, pooled over repeated
``--checkpoint``) and the same seeds' initial networks, and prints each measure per layer as the
mean +- std over seeds::

    python3 examples/lt_alignment.py --dataset mnist \
        --checkpoint runs/table1/<unit, first_seed=0>/checkpoints/mnist_3x256_linear_threshold.ckpt \
        --checkpoint runs/table1/<unit, first_seed=5>/checkpoints/mnist_3x256_linear_threshold.ckpt
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import jax
import numpy as np

from dgnlib import dic, vision
from dgnlib.atomic import write_json
from dgnlib.checkpoint import CheckpointError, read_manifest
from dgnlib.runtime import environment_info

FIELDS = dic.RuleAlignment._fields


def _ints(text: str) -> list:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or values[0] < 0:
        raise argparse.ArgumentTypeError(f"expected integers >= 0, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", choices=vision.DATASETS)
    p.add_argument("--epochs", type=int, default=20, help="epochs to train (default 20)")
    p.add_argument("--measure-at", type=_ints, default=None,
                   help="epochs after which to measure, comma-separated (0 = the initial network); "
                        "default 0,1,2,5,10,... up to --epochs")
    p.add_argument("--lt-point", default="batch_mean", choices=dic.LT_POINTS,
                   help="the linearisation point the network is trained with (measured: both)")
    p.add_argument("--n-batches", type=int, default=10, help="training batches of 100 measured (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=None,
                   help="training samples (default: all); with --checkpoint, the run's")
    p.add_argument("--checkpoint", action="append", default=None, metavar="PATH",
                   help="measure the networks of a run's checkpoint (every seed, every hidden layer) and "
                        "their initial networks instead of training; repeat to pool runs of one "
                        "configuration. --dataset and --n-train must be the run's; --epochs, "
                        "--measure-at, --lt-point and --seed are not used")
    p.add_argument("-o", "--output", default=None, help="JSON file of the results")
    return p


def default_epochs(epochs: int) -> list:
    return sorted({e for e in (0, 1, 2, 5) if e <= epochs} | set(range(10, epochs + 1, 10)) | {epochs})


def measure_layers(params, x, y, cfg, n_batches: int, batch: int) -> dict:
    """Mean over ``n_batches`` batches of every :class:`~dgnlib.dic.RuleAlignment` measure, for both
    linearisation points: ``{point: {measure: [one float per hidden layer, first layer first]}}``."""
    out = {}
    for point in dic.LT_POINTS:
        rows = [dic.rule_alignment(params, x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch],
                                   cfg=cfg, lt_point=point) for i in range(n_batches)]
        out[point] = {f: [float(v) for v in np.mean([getattr(r, f) for r in rows], axis=0)] for f in FIELDS}
    return out


def measure(params, x, y, cfg, n_batches: int, batch: int) -> dict:
    """:func:`measure_layers` of the first hidden layer: ``{point: {measure: float}}``."""
    return {point: {f: v[0] for f, v in m.items()}
            for point, m in measure_layers(params, x, y, cfg, n_batches, batch).items()}


def config_from_checkpoint(path: str) -> vision.TrainConfig:
    """The :class:`~dgnlib.vision.TrainConfig` a vision checkpoint was written with (its network
    constants ``ei`` at their defaults: :func:`~dgnlib.vision.load_checkpoint` refuses a file whose
    stored constants differ, naming them)."""
    try:
        meta = read_manifest(path)["metadata"]
    except (OSError, CheckpointError) as e:
        raise SystemExit(f"--checkpoint {path}: {e}") from None
    if meta.get("kind") != vision.CHECKPOINT_KIND:
        raise SystemExit(f"--checkpoint {path} is not a vision run's checkpoint (kind {meta.get('kind')!r}, "
                         f"expected {vision.CHECKPOINT_KIND!r})")
    fields = {("learning_rate" if k == "lr" else k): v for k, v in meta["config"].items() if k != "ei"}
    return vision.make_config(**fields, epochs=meta["epoch"])


def measure_checkpoints(args) -> list:
    """One row per checkpoint seed and network (the initial one, ``epoch`` 0, and the saved one).
    Every file's settings are checked before anything is measured."""
    configs, seen = [], set()
    for path in args.checkpoint:
        cfg = config_from_checkpoint(path)
        first = configs[0] if configs else cfg
        if (cfg.hidden, cfg.rule) != (first.hidden, first.rule):
            raise SystemExit(f"--checkpoint {path} holds {vision.arch_label(cfg.hidden)} {cfg.rule}, the first "
                             f"{vision.arch_label(first.hidden)} {first.rule}: pool runs of one configuration")
        if seen & set(cfg.seeds):
            raise SystemExit(f"--checkpoint {path} repeats seed(s) {sorted(seen & set(cfg.seeds))}")
        seen |= set(cfg.seeds)
        configs.append(cfg)
    data = vision.load_arrays(args.dataset, n_train=args.n_train)
    states = []
    for path, cfg in zip(args.checkpoint, configs):
        if args.n_batches * cfg.batch_size > data.x_train.shape[0]:
            raise SystemExit(f"--n-batches {args.n_batches} needs {args.n_batches * cfg.batch_size} training "
                             f"samples, the split has {data.x_train.shape[0]}")
        initial = vision.init_run(cfg, n_in=data.x_train.shape[1])
        try:
            state, _ = vision.load_checkpoint(path, initial, vision.checkpoint_identity(cfg, data))
        except CheckpointError as e:
            raise SystemExit(f"--checkpoint {path} does not fit --dataset {args.dataset} --n-train "
                             f"{args.n_train} with the run's settings: {e}") from None
        states.append((initial, state))
    rows = []
    for path, cfg, (initial, state) in zip(args.checkpoint, configs, states):
        batch = cfg.batch_size
        x, y = data.x_train[:args.n_batches * batch], data.y_train[:args.n_batches * batch]
        ei = vision.ei_config(cfg)
        for epoch, s in ((0, initial), (cfg.epochs, state)):
            for k, seed in enumerate(cfg.seeds):
                params = jax.tree_util.tree_map(lambda a: a[k], s.params)
                rows.append({"run": Path(path).parent.parent.name, "file": Path(path).name, "seed": seed,
                             "epoch": epoch, **measure_layers(params, x, y, ei, args.n_batches, batch)})
    return rows


LAYER_COLUMNS = (("control_free", "control_free"), ("cos_lt_exact", "cos(LT,exact)"), ("cos_lt_bp", "cos(LT,BP)"),
                 ("cos_exact_bp", "cos(exact,BP)"), ("cos_lt_control_free", "cos(LT,free)"),
                 ("cos_controlled_exact", "cos(ctl,exact)"), ("controlled_to_exact", "|ctl|/|exact|"))


def print_layers(rows: list) -> None:
    """Each measure per (epoch, linearisation point, hidden layer): mean +- std over the rows' seeds."""
    print(f"{'epoch':>5} {'fit':>10} {'layer':>5} " + " ".join(f"{h:>15}" for _, h in LAYER_COLUMNS))
    for epoch in sorted({r["epoch"] for r in rows}):
        group = [r for r in rows if r["epoch"] == epoch]
        for point in dic.LT_POINTS:
            for layer in range(len(group[0][point]["control_free"])):
                cells = []
                for f, _ in LAYER_COLUMNS:
                    v = np.array([r[point][f][layer] for r in group])
                    sd = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
                    cells.append(f"{float(np.mean(v)):+.3f}+-{sd:.3f}")
                print(f"{epoch:>5} {point:>10} {layer + 1:>5} " + " ".join(f"{c:>15}" for c in cells), flush=True)


def write_output(args, argv, payload: dict) -> None:
    """With ``--output``: write ``payload`` there as JSON, after the command line and before the environment."""
    if not args.output:
        return
    command = "python3 examples/lt_alignment.py " + " ".join(sys.argv[1:] if argv is None else argv)
    write_json(args.output, {"command": command, **payload, "environment": environment_info()})
    print(f"wrote {args.output}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.epochs < 0:
        raise SystemExit(f"--epochs must be >= 0, got {args.epochs}")
    if args.n_batches < 1:
        raise SystemExit(f"--n-batches must be >= 1, got {args.n_batches}")
    if args.checkpoint:
        return main_checkpoints(args, argv)
    at = default_epochs(args.epochs) if args.measure_at is None else args.measure_at
    if at[-1] > args.epochs:
        raise SystemExit(f"--measure-at {at[-1]} is after the last epoch (--epochs {args.epochs})")
    cfg = vision.make_config(rule="linear_threshold", hidden=(256,), seeds=(args.seed,), lt_point=args.lt_point,
                             epochs=args.epochs)
    data = vision.load_arrays(args.dataset, n_train=args.n_train)
    batch = cfg.batch_size
    if args.n_batches * batch > data.x_train.shape[0]:
        raise SystemExit(f"--n-batches {args.n_batches} needs {args.n_batches * batch} training samples, "
                         f"the split has {data.x_train.shape[0]}")
    x, y = data.x_train[:args.n_batches * batch], data.y_train[:args.n_batches * batch]
    ei = vision.ei_config(cfg)
    state = vision.init_run(cfg, n_in=data.x_train.shape[1])
    rows, t0 = [], time.perf_counter()
    print(f"{args.dataset} 1x256 linear threshold ({args.lt_point}), seed {args.seed}: control-free update "
          f"(batch-mean fit) / full update, cosines; mean over {args.n_batches} training batches")
    print("columns: control_free = |LT at open loop| / |LT|; cos(LT,free) = cosine of the two; ctl = LT minus "
          "its control-free part (what the control drives); sample-fit = the rule fitted at each sample's rate")
    print(f"{'epoch':>5} {'train_ol_loss':>13} {'test_acc':>8} {'control_free':>12} {'cos(LT,exact)':>13} "
          f"{'cos(LT,BP)':>10} {'cos(exact,BP)':>13} {'cos(LT,free)':>12} {'cos(ctl,exact)':>14} "
          f"{'|ctl|/|exact|':>13} {'sample-fit cos(LT,exact)':>24}")
    metrics = None
    for epoch in range(args.epochs + 1):
        if epoch > 0:
            state, metrics = vision.train_epoch(state, data, cfg)
        if epoch not in at:
            continue
        params = jax.tree_util.tree_map(lambda a: a[0], state.params)
        m = measure(params, x, y, ei, args.n_batches, batch)
        row = {"epoch": epoch, **m,
               "train_ol_loss": None if metrics is None else float(metrics.train_ol.loss[0]),
               "test_accuracy": None if metrics is None else 100.0 * float(metrics.test.accuracy[0])}
        rows.append(row)
        b, s = m["batch_mean"], m["sample"]
        loss = "-" if row["train_ol_loss"] is None else f"{row['train_ol_loss']:.4f}"
        acc = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.2f}"
        print(f"{epoch:>5} {loss:>13} {acc:>8} {b['control_free']:>12.3f} {b['cos_lt_exact']:>13.3f} "
              f"{b['cos_lt_bp']:>10.3f} {b['cos_exact_bp']:>13.3f} {b['cos_lt_control_free']:>12.3f} "
              f"{b['cos_controlled_exact']:>14.3f} {b['controlled_to_exact']:>13.3f} "
              f"{s['cos_lt_exact']:>24.3f}", flush=True)
    wall = time.perf_counter() - t0
    print(f"took {wall:.0f} s")
    write_output(args, argv, {"dataset": args.dataset, "seed": args.seed, "lt_point": args.lt_point,
                              "n_batches": args.n_batches, "n_train": args.n_train, "epochs": args.epochs,
                              "rows": rows, "wall_s": wall})
    return 0


def main_checkpoints(args, argv) -> int:
    """``--checkpoint``: measure saved networks and print :func:`print_layers`."""
    t0 = time.perf_counter()
    rows = measure_checkpoints(args)
    seeds = sorted({r["seed"] for r in rows})
    print(f"{args.dataset} linear-threshold update on the networks of {len(args.checkpoint)} checkpoint(s), "
          f"seeds {seeds}, at epoch 0 (initial) and as saved; every hidden layer; mean +- std over seeds of the "
          f"mean over {args.n_batches} training batches (columns as without --checkpoint; fit = the rule's "
          f"linearisation point)")
    print_layers(rows)
    wall = time.perf_counter() - t0
    print(f"took {wall:.0f} s")
    write_output(args, argv, {"dataset": args.dataset, "n_train": args.n_train, "n_batches": args.n_batches,
                              "rows": rows, "wall_s": wall})
    return 0


if __name__ == "__main__":
    sys.exit(main())
