"""Cost of the paper's Table-1 sweep on this machine: measured epochs, seed scaling, checkpoints.

For each requested configuration (data set x depth x rule, full training set of 54k, full
validation and test sets, batch 100: one epoch of a real Table-1 run) it times one epoch of ONE
seed after a warm-up epoch (compilation excluded). For the first configuration it also times one
epoch of ``--seeds`` seeds trained at once (vmap) and prints the ratio against ``--seeds`` times the
one-seed epoch (< 1: training seeds together is cheaper than one after another), and the cost of
saving and restoring the ``--seeds``-seed checkpoint (:mod:`dgnlib.checkpoint`) as a fraction of
that epoch. Then prints each rule's epoch as a multiple of BP's epoch of the same data set and
depth (when BP is among the configurations), measured in this one run, and projects: one full run
(50 epochs, ``--seeds`` seeds) per configuration, and the whole sweep (sum over configurations, one
run at a time on this machine). Besides wall seconds it prints the process's CPU seconds (all
threads), the steadier figure when other jobs share the cores.

    python benchmarks/bench_sweep.py                       # mnist 1x256 exact only (about 2 min)
    python benchmarks/bench_sweep.py --configs all         # all 12 Table-1 configurations
    python benchmarks/bench_sweep.py --configs deep        # MNIST 3 x 256: BP, exact, linear threshold

Needs the offline data cache (``make data``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from dgnlib import vision  # noqa: E402

ALL = [(ds, h, r) for ds in vision.DATASETS for h in ((256,), (256, 256, 256)) for r in vision.RULES]
DEEP = [("mnist", (256, 256, 256), r) for r in vision.RULES]


def epoch_seconds(cfg, data, repeats=1):
    """Wall and CPU seconds of one epoch (the fastest of ``repeats`` epochs after a warm-up
    epoch), the state and the last epoch's metrics."""
    state = vision.init_run(cfg, data.x_train.shape[1])
    state, m = vision.train_epoch(state, data, cfg)  # compile + warm-up
    jax.block_until_ready(m)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        state, m = vision.train_epoch(state, data, cfg)
        jax.block_until_ready(m)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu), state, jax.device_get(m)


def checkpoint_seconds(cfg, data, state, metrics):
    identity = vision.checkpoint_identity(cfg, data)
    like = vision.init_run(cfg, data.x_train.shape[1])
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "run.ckpt"
        history = [metrics._replace(epoch=metrics.epoch - 1), metrics]  # epoch_seconds ran two epochs
        t0 = time.perf_counter()
        vision.save_checkpoint(path, state, history, identity)
        t_save = time.perf_counter() - t0
        size = path.stat().st_size
        t0 = time.perf_counter()
        vision.load_checkpoint(path, like, identity)
        t_load = time.perf_counter() - t0
    return t_save, t_load, size


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="mnist:256:exact",
                   help="'all' (the 12 of Table 1), 'deep' (MNIST 3 x 256, the three rules) or comma-separated "
                        "DATASET:WIDTHS:RULE, widths like 256 or 256-256-256")
    p.add_argument("--repeats", type=int, default=1, help="timed epochs per configuration (the fastest counts)")
    p.add_argument("--seeds", type=int, default=10, help="seeds per run (Table 1: 10)")
    p.add_argument("--epochs", type=int, default=50)
    args = p.parse_args(argv)
    if args.configs in ("all", "deep"):
        configs = ALL if args.configs == "all" else DEEP
    else:
        configs = []
        for item in args.configs.split(","):
            ds, widths, rule = item.split(":")
            configs.append((ds, tuple(int(w) for w in widths.split("-")), rule))
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({os.cpu_count()} CPUs); "
          f"full data, batch 100; the fastest of {args.repeats} epoch(s) after a warm-up epoch")
    data_cache, one_seed, cpu_seed, keys = {}, {}, {}, {}
    for i, (ds, hidden, rule) in enumerate(configs):
        if ds not in data_cache:
            data_cache[ds] = vision.load_arrays(ds)
        data = data_cache[ds]
        cfg = vision.make_config(hidden=hidden, rule=rule, seeds=(0,))
        name = vision.run_label(ds, cfg)
        t1, c1, _, _ = epoch_seconds(cfg, data, args.repeats)
        one_seed[name], cpu_seed[name], keys[name] = t1, c1, (ds, hidden, rule)
        print(f"{name:32s} 1 seed: {t1:7.2f} s/epoch ({c1:7.2f} CPU s)", flush=True)
        if i == 0:
            cfg_s = cfg._replace(seeds=tuple(range(args.seeds)))
            ts, _, state, m = epoch_seconds(cfg_s, data)
            ratio = ts / (args.seeds * t1)
            print(f"{name:32s} {args.seeds} seeds at once: {ts:7.2f} s/epoch = {ratio:.2f} x {args.seeds} one-seed "
                  f"epochs", flush=True)
            t_save, t_load, size = checkpoint_seconds(cfg_s, data, state, m)
            print(f"{name:32s} checkpoint of {args.seeds} seeds: {size / 1e6:.1f} MB, save {t_save:.3f} s "
                  f"({100 * t_save / ts:.1f}% of the epoch), restore {t_load:.3f} s", flush=True)
    bp = {k[:2]: name for name, k in keys.items() if k[2] == "bp"}
    if any(k[:2] in bp and k[2] != "bp" for k in keys.values()):
        print("\nepoch / BP's epoch (same data set and depth, this run): wall (CPU)")
        for name, k in keys.items():
            if k[:2] in bp and k[2] != "bp":
                ref = bp[k[:2]]
                print(f"  {name:32s} {one_seed[name] / one_seed[ref]:5.2f} x ({cpu_seed[name] / cpu_seed[ref]:5.2f} x)")
    scale = ratio
    print(f"\nprojection ({args.epochs} epochs x {args.seeds} seeds per run, seed scaling {scale:.2f} measured "
          f"on {next(iter(one_seed))}):")
    total = 0.0
    for name, t1 in one_seed.items():
        run_s = args.epochs * args.seeds * t1 * scale
        total += run_s
        print(f"  {name:32s} {run_s / 60:7.1f} min")
    print(f"  {'sweep total (one run at a time)':32s} {total / 3600:7.2f} h")


if __name__ == "__main__":
    main()
