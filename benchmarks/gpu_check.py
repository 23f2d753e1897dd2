"""One check of dgnlib's jitted paths on whatever JAX finds (a GPU where there is one), with one summary.

Measures, compilation excluded (each program runs once before it is timed):

* ``dgn``: 32 DGN networks trained 3 epochs on the colab's classification problem in one
  ``run_many`` call (seconds);
* ``dic``: one training step of the 3 x 256 E/I network, batch 100, BP / exact inverse (ms, and the ratio);
* ``vision``: one epoch of MNIST 3 x 256 for each rule, 1 seed (s, and each rule's multiple of BP's);
* ``table1``: one Table-1 configuration, MNIST 1 x 256 exact inverse, 10 seeds x 5 epochs through
  ``vision.run_benchmarks`` (wall seconds with compilation, and the mean final test accuracy).

It prints one table: the figure on this machine beside the reference figure of the CPU machine the
project is developed on (``benchmarks/cpu_reference.json``, written by ``--save-reference`` from a real
run there; "-" when there is none). ``--dry-run`` runs every step at toy sizes (a 1 x 32 network,
2,000 training samples, 2 seeds, 1 epoch): a check that the script works, in about a minute on a CPU.

    python3 benchmarks/gpu_check.py                 # full check (about 5 min on a GPU)
    python3 benchmarks/gpu_check.py --dry-run       # the script itself, tiny sizes
    python3 benchmarks/gpu_check.py --missing       # names of the required packages not installed
    bash benchmarks/gpu_check.sh [--wheels DIR]     # install dgnlib without touching JAX, then this

Needs the offline MNIST cache (``bash ci/prepare_vision_data.sh`` or a copy of ``~/.cache/dgnlib/data``).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REFERENCE = ROOT / "benchmarks" / "cpu_reference.json"
# import name -> pip name of what dgnlib needs besides JAX (the script never installs or replaces JAX)
REQUIRED = {"numpy": "numpy", "sklearn": "scikit-learn", "diffrax": "diffrax", "equinox": "equinox",
            "optax": "optax", "tqdm": "tqdm", "matplotlib": "matplotlib", "pandas": "pandas"}


def missing_packages() -> list:
    """pip names of the required packages that cannot be imported here."""
    return [pip for mod, pip in REQUIRED.items() if importlib.util.find_spec(mod) is None]


def _timed(fn, repeats: int = 3):
    """(best seconds of ``repeats`` calls after one warm-up call, the last result)."""
    import jax

    out = jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best, out


def check_dgn(dry: bool) -> dict:
    import jax

    from dgnlib import dgn

    data = dgn.load_problem("classification")
    n = 4 if dry else 32
    params = dgn.init_many(jax.random.split(jax.random.PRNGKey(0), n), data.n_features)
    cfg = dgn.DGNConfig(loss="bernoulli")
    sec, _ = _timed(lambda: dgn.run_many(params, data, 1e-4, 1 if dry else 3, cfg).test, repeats=1 if dry else 3)
    return {f"dgn: {n} networks x {1 if dry else 3} epochs, run_many (s)": sec}


def check_dic(dry: bool) -> dict:
    import jax
    import jax.numpy as jnp
    import optax

    from dgnlib.dic import STATIC_ARGNAMES, EIConfig, init_params, init_train_state, train_step

    sizes = (784, 32, 10) if dry else (784, 256, 256, 256, 10)
    key = jax.random.PRNGKey(0)
    params = init_params(key, sizes)
    x = jax.random.uniform(key, (100, 784))
    y = jax.random.randint(key, (100,), 0, 10)
    opt = optax.adam(1e-3)
    step = jax.jit(train_step, static_argnames=STATIC_ARGNAMES)
    out = {}
    for rule in ("bp", "exact"):
        opt_state, rule_state = init_train_state(params, opt)
        sec, _ = _timed(lambda: step(params, opt_state, rule_state, x, y, rule=rule, cfg=EIConfig(), optimizer=opt))
        out[rule] = sec
    arch = "1 x 32" if dry else "3 x 256"
    return {f"dic: train step {arch}, batch 100, BP (ms)": out["bp"] * 1e3,
            f"dic: train step {arch}, batch 100, exact inverse (ms)": out["exact"] * 1e3,
            "dic: exact / BP step": out["exact"] / out["bp"]}


def check_vision(dry: bool) -> dict:
    from dgnlib import vision

    data = vision.load_arrays("mnist", n_train=2000 if dry else None)
    hidden = (32,) if dry else (256, 256, 256)
    times = {}
    for rule in vision.RULES:
        cfg = vision.make_config(hidden=hidden, rule=rule, epochs=1, seeds=(0,))
        state = vision.init_run(cfg, data.x_train.shape[1])
        times[rule], _ = _timed(lambda: vision.train_epoch(state, data, cfg)[1], repeats=1)
    arch = vision.arch_label(vision.make_config(hidden=hidden))
    out = {f"vision: MNIST {arch} epoch, 1 seed, {r} (s)": t for r, t in times.items()}
    out.update({f"vision: MNIST {arch} epoch, {r} / BP": times[r] / times["bp"] for r in ("exact", "linear_threshold")})
    return out


def check_table1(dry: bool) -> dict:
    from dgnlib import vision

    seeds, epochs = (range(2), 1) if dry else (range(10), 5)
    t0 = time.perf_counter()
    res = vision.run_benchmarks("mnist", "exact", n_train=2000 if dry else None, hidden=(32,) if dry else (256,),
                                epochs=epochs, seeds=tuple(seeds), log=None, progress=False)
    wall = time.perf_counter() - t0
    acc = sum(r["metrics"]["test_accuracy"][-1] for r in res.records) / len(res.records)
    label = f"table1: MNIST {'1x32' if dry else '1x256'} exact, {len(seeds)} seeds x {epochs} epochs"
    return {f"{label}, wall incl. compilation (s)": wall, f"{label}, mean test accuracy (%)": 100 * acc}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="every step at toy sizes (checks the script)")
    p.add_argument("--missing", action="store_true", help="print the pip names of missing required packages")
    p.add_argument("--save-reference", action="store_true",
                   help=f"write this run's figures to {REFERENCE.relative_to(ROOT)} (on the CPU reference machine)")
    p.add_argument("--out", help="also write the figures as JSON here")
    args = p.parse_args(argv)
    if args.missing:
        print(" ".join(missing_packages()))
        return 0
    missing = missing_packages()
    if missing:
        print(f"error: missing packages {missing}: pip install them (bash benchmarks/gpu_check.sh --wheels DIR "
              "installs them from a folder of wheels without touching JAX)", file=sys.stderr)
        return 2
    import jax

    devices = jax.devices()
    machine = {"jax": jax.__version__, "backend": jax.default_backend(),
               "devices": f"{devices[0].device_kind} x {len(devices)}", "cpu": platform.processor() or platform.machine(),
               "cpu_count": os.cpu_count(), "dry_run": args.dry_run}
    print(f"jax {machine['jax']} on {machine['backend']}: {machine['devices']}"
          + ("  (dry run: toy sizes)" if args.dry_run else ""), flush=True)
    figures, t_all = {}, time.perf_counter()
    for name, check in (("dgn", check_dgn), ("dic", check_dic), ("vision", check_vision), ("table1", check_table1)):
        t0 = time.perf_counter()
        figures.update(check(args.dry_run))
        print(f"  {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    ref = {}
    if REFERENCE.is_file():
        stored = json.loads(REFERENCE.read_text())
        ref = stored["figures"] if stored.get("machine", {}).get("dry_run") == args.dry_run else {}
    width = max(len(k) for k in figures)
    print(f"\n{'measurement':<{width}}  {'this machine':>12}  {'CPU reference':>13}")
    for k, v in figures.items():
        r = ref.get(k)
        print(f"{k:<{width}}  {v:>12.3f}  {('-' if r is None else f'{r:.3f}'):>13}")
    print(f"total {time.perf_counter() - t_all:.0f} s; CPU reference: "
          + (f"{REFERENCE.relative_to(ROOT)}" if ref else "none recorded for this mode"))
    result = {"machine": machine, "figures": figures}
    if args.save_reference:
        REFERENCE.write_text(json.dumps(result, indent=1) + "\n")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
