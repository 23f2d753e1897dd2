#!/usr/bin/env python
"""One-vs-all GLN/DGN speed on MNIST: dgnlib's jitted scan against the plain per-sample NumPy loop
(dgnlib.gln.reference), measured in the same run on this machine.

For each architecture: seconds per 60k-sample online pass of the JAX scan (a pass over the
training split after a warm-up pass that compiles, scaled to 60,000 samples), the NumPy loop's
seconds per 60k (a few thousand samples timed and extrapolated), their ratio, and the validation
accuracy after the pass (never the test split). pygln's published figures for comparison: 85 s
(PyTorch) to 570 s (NumPy) per 60k pass.

    python benchmarks/bench_gln.py [--n-train 54000] [--numpy-samples 2000] [--archs gln,dgn,mlp]

The MLP (the notebook's baseline, as many weights as the 4-branch DGN, SGD at rate 0.03) has no NumPy loop here.
"""
from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from dgnlib import gln, vision
from dgnlib.gln.reference import numpy_state, numpy_step

# name -> (config, learning-rate schedule as (maximum, scale, decay)). pygln's regime: inputs
# pixel / 255 used directly (no standardisation; hyperplanes through the origin over them),
# weights starting at the average of the inputs, weight clip 5, Bernoulli eps 0.001.
_PYGLN = dict(n_neurons=(16, 16, 1), standardise=False, initial_weight="average", weight_clip=5.0, eps=0.001)
ARCHITECTURES = {
    "gln": (gln.GLNConfig(gating="gln", context_dim=4, **_PYGLN), (0.003, 1.0, 0.1)),
    "gln_shared": (gln.GLNConfig(gating="gln", context_dim=4, shared_gates=True, **_PYGLN), (0.003, 1.0, 0.1)),
    "dgn": (gln.GLNConfig(gating="dgn", n_branches=4, **_PYGLN), (0.003, 1.0, 0.1)),
    "dgn_shared": (gln.GLNConfig(gating="dgn", n_branches=4, shared_gates=True, **_PYGLN), (0.003, 1.0, 0.1)),
    "dgn8": (gln.GLNConfig(gating="dgn", n_branches=8, **_PYGLN), (0.003, 1.0, 0.1)),
}
# the notebook's baseline: one hidden layer with as many weights as the 4-branch DGN, SGD at batch 1
MLP = gln.MLPConfig(n_hidden=(gln.mlp_hidden_for(gln.count_weights(ARCHITECTURES["dgn"][0], 784), 784),))


def jax_pass(cfg, schedule, x, y, chunk_size):
    params, gating = gln.init(jax.random.PRNGKey(0), x.shape[1], cfg)
    jax.block_until_ready(gln.train(params, gating, x, y, schedule, cfg, chunk_size=chunk_size))  # compiles
    start = time.perf_counter()
    out = jax.block_until_ready(gln.train(params, gating, x, y, schedule, cfg, chunk_size=chunk_size))
    return time.perf_counter() - start, out, gating


def numpy_pass(cfg, schedule, x, y, n_samples):
    params, gating = gln.init(jax.random.PRNGKey(0), x.shape[1], cfg)
    w, h, o, m = numpy_state(params, gating, np.float32)
    xs = gln.prepare_inputs(x[:n_samples], cfg)
    xs = np.asarray(xs)
    numpy_step(w, h, o, m, xs[0], int(y[0]), np.float32(1e-3), cfg)  # warm-up
    start = time.perf_counter()
    for t in range(1, n_samples):
        rate = np.float32(min(schedule.maximum, schedule.scale / (1 + schedule.decay * (t + 1))))
        numpy_step(w, h, o, m, xs[t], int(y[t]), rate, cfg)
    return (time.perf_counter() - start) / (n_samples - 1)


def mlp_pass(x, y, xv, yv, chunk_size, learning_rate=0.03):
    n = (len(x) // chunk_size) * chunk_size
    stream = gln.make_stream(x[:n], y[:n], chunk_size, gln.GLNConfig(standardise=False))
    params = gln.init_mlp(jax.random.PRNGKey(0), x.shape[1], MLP)
    jax.block_until_ready(gln.train_mlp_segment(params, stream, 0, 1, learning_rate))  # compiles
    start = time.perf_counter()
    out, _ = jax.block_until_ready(gln.train_mlp_segment(params, stream, 0, stream.x.shape[0], learning_rate))
    return (time.perf_counter() - start) * len(x) / n, gln.mlp_accuracy(out, xv, yv)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=54000, help="training samples of the timed pass")
    ap.add_argument("--numpy-samples", type=int, default=2000, help="samples of the NumPy loop timed")
    ap.add_argument("--archs", default="gln,gln_shared,dgn,dgn_shared,mlp",
                    help="comma-separated: " + ", ".join(ARCHITECTURES) + ", mlp")
    ap.add_argument("--chunk-size", type=int, default=256)
    ap.add_argument("--no-deskew", action="store_true", help="skip deskewing (changes the accuracy only)")
    args = ap.parse_args()
    data = vision.load_arrays("mnist", n_train=args.n_train)
    x, y = np.asarray(data.x_train), np.asarray(data.y_train)
    xv, yv = np.asarray(data.x_val), np.asarray(data.y_val)
    if not args.no_deskew:
        start = time.perf_counter()
        x, xv = gln.deskew(x), gln.deskew(xv)
        print(f"deskewed {len(x) + len(xv)} images in {time.perf_counter() - start:.1f} s (not in the timings)")
    print(f"MNIST one-vs-all, one online pass over {len(x)} training samples (batch 1), float32, "
          f"{'deskewed' if not args.no_deskew else 'raw'} images, "
          f"{jax.devices()[0].platform.upper()}; times scaled to 60,000 samples")
    print(f"{'architecture':<12} {'JAX s/60k':>10} {'NumPy s/60k':>12} {'ratio':>7} {'val acc':>8}")
    for name in args.archs.split(","):
        if name == "mlp":
            seconds, acc = mlp_pass(x, y, xv, yv, args.chunk_size)
            print(f"{name:<12} {seconds * 60000 / len(x):>10.1f} {'-':>12} {'-':>7} {acc:>8.4f}", flush=True)
            continue
        cfg, (maximum, scale, decay) = ARCHITECTURES[name]
        schedule = gln.decaying(maximum, scale, decay)
        seconds, out, gating = jax_pass(cfg, schedule, x, y, args.chunk_size)
        jax_60k = seconds * 60000 / len(x)
        numpy_60k = numpy_pass(cfg, schedule, x, y, args.numpy_samples) * 60000
        acc = gln.accuracy(out.params, gating, out.moments, xv, yv, cfg)
        print(f"{name:<12} {jax_60k:>10.1f} {numpy_60k:>12.1f} {numpy_60k / jax_60k:>6.1f}x {acc:>8.4f}", flush=True)


if __name__ == "__main__":
    main()
