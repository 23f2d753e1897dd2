"""Time one training step of the dis-inhibitory E/I network (exact-inverse rule).

3 x 256 network (784 -> 256 x 3 -> 10), batch 100, random MNIST-shaped inputs in
[0, 1] and random labels. Times (jit warm-up excluded, median of ``--repeats`` calls,
``block_until_ready``): exact rule + algebraic solver, exact rule + ODE solver, and
the BP baseline. Prints the times and the ratios algebraic/BP and ODE/algebraic
(targets: algebraic <= 10x BP, ODE >= 10x algebraic). The minimum is printed too: on a
shared machine it is the less noisy figure.

Run: ``python benchmarks/bench_disinhibitory.py [--repeats 7] [--layers 3]``
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from dgnlib.dic import STATIC_ARGNAMES, EIConfig, init_params, init_train_state, train_step  # noqa: E402


def time_step(step, args, kwargs, repeats):
    out = step(*args, **kwargs)  # compile + warm-up
    jax.block_until_ready(out)
    out = step(*args, **kwargs)
    jax.block_until_ready(out)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = step(*args, **kwargs)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args(argv)

    key = jax.random.PRNGKey(0)
    kp, kx, ky = jax.random.split(key, 3)
    sizes = (784,) + (args.width,) * args.layers + (10,)
    params = init_params(kp, sizes)
    x = jax.random.uniform(kx, (args.batch, 784), jnp.float32)  # pixels / 255
    labels = jax.random.randint(ky, (args.batch,), 0, 10)
    cfg = EIConfig()
    opt = optax.adam(1e-3)
    opt_state, rule_state = init_train_state(params, opt)
    step = jax.jit(train_step, static_argnames=STATIC_ARGNAMES)
    a = (params, opt_state, rule_state, x, labels)

    print(f"devices: {jax.devices()}; network {sizes}, batch {args.batch}, "
          f"median of {args.repeats} repeats")
    res = {}
    for name, kw in [
        ("bp", dict(rule="bp", solver="algebraic")),
        ("exact+algebraic", dict(rule="exact", solver="algebraic")),
        ("exact+ode", dict(rule="exact", solver="ode")),
    ]:
        t, tmin, out = time_step(step, a, dict(kw, average_jacobian=False, cfg=cfg, optimizer=opt),
                                 args.repeats)
        m = out[3]
        res[name] = t
        extra = ""
        if kw["rule"] != "bp":
            extra = (f"  OL steps {int(m.ol_stats.steps)} (unit iters {int(m.ol_stats.unit_iterations)}),"
                     f" CL steps {int(m.cl_stats.steps)} (unit iters {int(m.cl_stats.unit_iterations)}),"
                     f" CL residual {float(m.cl_stats.residual):.2e}")
        print(f"{name:>16s}: {t * 1e3:9.2f} ms/step (min {tmin * 1e3:.2f}){extra}")
    print(f"ratio algebraic/BP : {res['exact+algebraic'] / res['bp']:.1f}x  (target <= 10x)")
    print(f"ratio ODE/algebraic: {res['exact+ode'] / res['exact+algebraic']:.1f}x  (target >= 10x)")
    return res


if __name__ == "__main__":
    main()
