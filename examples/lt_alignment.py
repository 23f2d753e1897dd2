"""The linear-threshold rule's control-free update over training (the LT-gap mechanism).

Trains one 1 x 256 network with the linear-threshold rule (hard labels, the Table 1 protocol) and,
after chosen epochs, measures on fixed training batches (:func:`dgnlib.dic.rule_alignment`): how
large the update is that the rule makes with no top-down control (fitted at the batch-mean rate,
the paper's rule), relative to its full update, and how the rule's updates align with the exact
rule's and BP's. The hypothesis: as the network fits the data the controller's signal shrinks,
the control-free part does not, so late in training it steers the weights.

    python3 examples/lt_alignment.py --dataset mnist --epochs 20 -o results/lt_alignment/mnist.json

Prints one line per measured epoch and writes them (with the settings and versions) as JSON.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

import jax
import numpy as np

from dgnlib import dic, vision
from dgnlib.atomic import write_json
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
    p.add_argument("--n-train", type=int, default=None, help="training samples (default: all)")
    p.add_argument("-o", "--output", default=None, help="JSON file of the results")
    return p


def default_epochs(epochs: int) -> list:
    return sorted({e for e in (0, 1, 2, 5) if e <= epochs} | set(range(10, epochs + 1, 10)) | {epochs})


def measure(params, x, y, cfg, n_batches: int, batch: int) -> dict:
    """Mean over ``n_batches`` batches of every :class:`~dgnlib.dic.RuleAlignment` measure, for both
    linearisation points (first hidden layer; 1-layer networks)."""
    out = {}
    for point in dic.LT_POINTS:
        rows = [dic.rule_alignment(params, x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch],
                                   cfg=cfg, lt_point=point) for i in range(n_batches)]
        out[point] = {f: float(np.mean([getattr(r, f)[0] for r in rows])) for f in FIELDS}
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.epochs < 0:
        raise SystemExit(f"--epochs must be >= 0, got {args.epochs}")
    if args.n_batches < 1:
        raise SystemExit(f"--n-batches must be >= 1, got {args.n_batches}")
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
    if args.output:
        write_json(args.output, {"command": "python3 examples/lt_alignment.py " + " ".join(sys.argv[1:] if argv is None else argv),
                                 "dataset": args.dataset, "seed": args.seed, "lt_point": args.lt_point,
                                 "n_batches": args.n_batches, "n_train": args.n_train, "epochs": args.epochs,
                                 "rows": rows, "wall_s": wall, "environment": environment_info()})
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
