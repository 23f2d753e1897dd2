"""Training throughput of the vision-benchmark loop (dgnlib.vision) on the CPU.

For BP, exact inverse and linear threshold at 1 and 3 hidden layers of ``--width`` units, batch
``--batch``, one seed: samples per second of a whole epoch run as ONE jitted program
(:func:`dgnlib.vision.train_epoch`: shuffle + ``lax.scan`` over batches), and of a
per-batch Python loop over the same jitted step (:func:`dgnlib.vision.train_batch`,
indices from the same shuffle, one dispatch and one host sync of the metrics per batch).
Compilation is excluded (one warm-up epoch each); the best of ``--repeats`` epochs is taken (the
machine may be shared). Validation/test sets are tiny so the epoch program is dominated by
training. Prints a table, then the two targets: exact inverse with 3 hidden layers at >= 1/10 of
BP's throughput, and the on-device epoch faster than the per-batch loop.

Data: synthetic MNIST-shaped uint8 images (``--data synthetic``, default; sparse smooth random blobs
with MNIST's fraction of lit pixels and mean intensity, labels from a random linear teacher so the
rules have something to learn; the cost of the steady-state solves depends on the inputs) or the real training
set (``--data mnist`` / ``fashion_mnist``, needs the data cache of dgnlib.vision).

Run: ``python benchmarks/bench_vision.py [--n-train 3000] [--repeats 3]``
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from dgnlib import vision  # noqa: E402


def synthetic_arrays(n_train, n_eval=200, seed=0):
    rng = np.random.default_rng(seed)
    n = n_train + 2 * n_eval
    # blurred random images in 0..255 and labels of a random linear teacher
    img = rng.random((n, 28, 28)).astype(np.float32)
    for axis in (1, 2):
        img = (img + np.roll(img, 1, axis) + np.roll(img, -1, axis)) / 3.0
    img = np.clip((img - 0.58) * 14.0, 0.0, 1.0)  # ~21% non-zero pixels, mean 0.12 (MNIST: 19%, 0.13)
    x = (img * 255).astype(np.uint8).reshape(n, 784)
    teacher = rng.normal(size=(784, 10))
    y = np.argmax((x / 255.0) @ teacher, axis=1).astype(np.int32)
    a, b = n_train, n_train + n_eval
    return vision.make_arrays(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


def real_arrays(name, n_train):
    data = vision.load_arrays(name, n_train=n_train)
    # tiny evaluation sets: this benchmark measures training
    return data._replace(x_val=data.x_val[:200], y_val=data.y_val[:200],
                         x_test=data.x_test[:200], y_test=data.y_test[:200])


def time_epoch(state, data, cfg, repeats):
    state, m = vision.train_epoch(state, data, cfg)  # compile + warm-up
    jax.block_until_ready(m)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, m = vision.train_epoch(state, data, cfg)
        jax.block_until_ready((state, m))
        best = min(best, time.perf_counter() - t0)
    return best, state


def time_batch_loop(state, data, cfg, repeats):
    n = data.x_train.shape[0]
    idx, mask = vision.batch_indices(jax.random.PRNGKey(0), n, cfg.batch_size)
    idx, mask = np.asarray(idx), np.asarray(mask)

    def epoch(state):
        total = 0.0
        for i, m in zip(idx, mask):
            state, sums = vision.train_batch(state, data.x_train[i], data.y_train[i], m, cfg)
            total += float(sums.loss[0])  # per-batch host sync, as a Python training loop logs
        return state, total

    state, _ = epoch(state)  # compile + warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, _ = epoch(state)
        jax.block_until_ready(state)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", default="synthetic", choices=("synthetic",) + vision.DATASETS)
    ap.add_argument("--solver", default="algebraic", choices=vision.SOLVERS)
    ap.add_argument("--no-loop", action="store_true", help="skip the per-batch Python loop")
    args = ap.parse_args(argv)

    data = synthetic_arrays(args.n_train) if args.data == "synthetic" else real_arrays(args.data, args.n_train)
    n = data.x_train.shape[0]
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPUs; data {args.data}, "
          f"{n} training samples, batch {args.batch}, width {args.width}, solver {args.solver}")
    print(f"{'layers':>6} {'rule':>16} {'epoch prog (samples/s)':>23} {'per-batch loop (samples/s)':>27} "
          f"{'ratio':>6}")
    thr = {}
    for layers in (1, 3):
        for rule in vision.RULES:
            cfg = vision.make_config(hidden=(args.width,) * layers, rule=rule, solver=args.solver,
                                 batch_size=args.batch, seeds=(0,))
            state = vision.init_run(cfg, 784)
            t_epoch, _ = time_epoch(state, data, cfg, args.repeats)
            thr[(layers, rule)] = n / t_epoch
            if args.no_loop:
                t_loop = float("nan")
            else:
                t_loop = time_batch_loop(vision.init_run(cfg, 784), data, cfg, args.repeats)
            print(f"{layers:>6} {rule:>16} {n / t_epoch:>23.0f} {n / t_loop:>27.0f} {t_loop / t_epoch:>6.2f}",
                  flush=True)
    for layers in (1, 3):
        r = thr[(layers, "exact")] / thr[(layers, "bp")]
        print(f"exact / BP throughput, {layers} hidden layer(s): {r:.3f} (target >= 0.1 at 3 layers: "
              f"{'met' if r >= 0.1 else 'NOT met'})" if layers == 3 else
              f"exact / BP throughput, {layers} hidden layer(s): {r:.3f}")
    print("ratio = per-batch-loop time / epoch-program time (> 1: the on-device epoch is faster)")


if __name__ == "__main__":
    main()
