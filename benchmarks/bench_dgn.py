#!/usr/bin/env python
"""DGN speed: dgnlib against the colab's NumPy loops, measured in one run on this machine.

Prints, for the classification run (breast cancer, 455 training samples, layers 100-10-1,
20 branches):
  1. one training epoch: the colab's literal NumPy loop (N x N x I intermediate per layer and
     sample), the vectorised NumPy loop (branch weights summed over neurons first), and dgnlib's
     jitted lax.scan (float64 as the colab, and float32);
  2. 32 hyperplane seeds: dgnlib's single vmapped call against 32 sequential vectorised NumPy runs,
     for one training epoch and for the whole 3-epoch protocol;
  3. end to end: papermill runs of each notebook (kernel start included), with an empty and with a
     warm compilation cache, against a papermill run of the colab's literal loop;
and the ratios. Timings are medians of repeats after a warm-up (jit compilation excluded from 1-2).

    python benchmarks/bench_dgn.py [--skip-notebooks] [--seeds 32]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dgnlib import dgn
from dgnlib.dgn.reference import numpy_hyperplanes, numpy_step, run_numpy

ROOT = Path(__file__).resolve().parent.parent
ARCH, BRANCHES, LEARNING_RATE = (100, 10, 1), 20, 1e-4


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def numpy_epoch(data, planes, implementation):
    n_inputs = [data.n_features + 1] + [n + 1 for n in ARCH[:-1]]
    weights = [np.zeros((n, BRANCHES, i)) for n, i in zip(ARCH, n_inputs)]

    def epoch():
        for x, y in zip(data.x_train, data.y_train):
            numpy_step(weights, planes, x, y, LEARNING_RATE, True, True, implementation, "colab")
    return epoch


def dgnlib_epoch(data, params, dtype):
    with dgn.precision(dtype):
        dt = dgn.float_dtype(dtype)
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dt), params)
        x, y = jnp.asarray(data.x_train, dt), jnp.asarray(data.y_train, dt)
        cfg = dgn.DGNConfig()
        jax.block_until_ready(dgn.train_epoch(params, x, y, LEARNING_RATE, cfg))  # compile

        def epoch():
            with dgn.precision(dtype):
                jax.block_until_ready(dgn.train_epoch(params, x, y, LEARNING_RATE, cfg))
    return epoch


def section_epoch(data):
    print("== 1. one training epoch of the classification run ==")
    planes = numpy_hyperplanes(data.n_features, ARCH, BRANCHES)
    params = dgn.init_colab(data.n_features, ARCH, BRANCHES)
    t_literal = median_time(numpy_epoch(data, planes, "literal"), 3)
    t_vector = median_time(numpy_epoch(data, planes, "vectorised"), 7)
    t64 = median_time(dgnlib_epoch(data, params, "float64"), 30)
    t32 = median_time(dgnlib_epoch(data, params, "float32"), 30)
    rows = [("NumPy loop, colab literal (float64)", t_literal), ("NumPy loop, vectorised (float64)", t_vector),
            ("dgnlib lax.scan (float64)", t64), ("dgnlib lax.scan (float32)", t32)]
    for name, t in rows:
        print(f"  {name:40s} {t * 1e3:10.2f} ms/epoch")
    print(f"  ratio literal / dgnlib float64      {t_literal / t64:8.1f}x   (target >= 50x)")
    print(f"  ratio vectorised / dgnlib float64   {t_vector / t64:8.1f}x   (target >= 3x)")
    print(f"  ratio vectorised / dgnlib float32   {t_vector / t32:8.1f}x")
    return t_vector


def section_seeds(data, n_seeds, t_vector_epoch):
    print(f"== 2. {n_seeds} hyperplane seeds (dgnlib: one jitted run_many call, float32) ==")
    keys = jax.random.split(jax.random.key(0), n_seeds)
    many = dgn.init_many(keys, data.n_features, ARCH, BRANCHES)
    many_np = jax.tree_util.tree_map(np.asarray, many)
    cfg = dgn.DGNConfig()

    def dgnlib_run(epochs, chunk_size=None):
        def go():
            jax.block_until_ready(dgn.run_many(many, data, LEARNING_RATE, epochs, cfg, chunk_size=chunk_size))
        go()  # compile
        return median_time(go, 5)
    t_run0, t_run3 = dgnlib_run(0), dgnlib_run(3)
    t_run3_vmap = dgnlib_run(3, chunk_size=n_seeds)
    t_epoch = (t_run3 - t_run0) / 3  # marginal cost of a training epoch (+ its test pass) in one call

    def numpy_seeds_epoch():
        for s in range(n_seeds):
            numpy_epoch(data, [h[s].astype(np.float64) for h in many_np.hyperplanes], "vectorised")()
    t_np_epochs = median_time(numpy_seeds_epoch, 1)

    def numpy_runs():
        for s in range(n_seeds):
            run_numpy(data, ARCH, BRANCHES, LEARNING_RATE, 3,
                      planes=[h[s].astype(np.float64) for h in many_np.hyperplanes])
    t_np_runs = median_time(numpy_runs, 1)
    print(f"  training epoch: {n_seeds} sequential vectorised NumPy epochs {t_np_epochs:7.3f} s; dgnlib "
          f"{t_epoch:7.3f} s per epoch (run_many, 3 epochs minus 0); ratio {t_np_epochs / t_epoch:6.1f}x (target >= 20x)")
    print(f"  whole 3-epoch protocol: {n_seeds} sequential vectorised NumPy runs {t_np_runs:7.3f} s; dgnlib run_many "
          f"{t_run3:7.3f} s; ratio {t_np_runs / t_run3:6.1f}x")
    print(f"  dgnlib run_many with all {n_seeds} networks vmapped at once (chunk_size={n_seeds}): {t_run3_vmap:7.3f} s "
          f"({t_run3_vmap / t_run3:4.2f}x the default chunking's time)")


COLAB_LITERAL = textwrap.dedent('''\
    from dgnlib.dgn import load_problem
    from dgnlib.dgn.reference import run_numpy
    problem = "{problem}"
    data = load_problem(problem)
    for r in run_numpy(data, learning_rate={learning_rate}, epochs={epochs},
                       classification=problem == "classification", implementation="literal"):
        print(r)
    ''')


IMPORTS_ONLY = textwrap.dedent('''\
    import jax
    import matplotlib.pyplot as plt
    from dgnlib import dgn
    data = dgn.load_problem("classification")
    ''')


def papermill_seconds(notebook, cwd, env, parameters=None):
    import papermill as pm

    out = Path(env["DGNLIB_BENCH_TMP"]) / "out.ipynb"
    t = time.perf_counter()
    old = dict(os.environ)
    os.environ.update(env)
    try:
        pm.execute_notebook(str(notebook), str(out), parameters=parameters or {}, cwd=str(cwd),
                            kernel_name="python3", progress_bar=False)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return time.perf_counter() - t


def _write_notebook(path, source):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def section_notebooks():
    print("== 3. end to end (papermill, kernel start included) ==")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"DGNLIB_BENCH_TMP": tmp, "DGNLIB_CACHE_DIR": str(Path(tmp) / "cache"), "MPLBACKEND": "Agg"}
        floor = _write_notebook(Path(tmp) / "imports_only.ipynb", IMPORTS_ONLY)
        t_floor = papermill_seconds(floor, tmp, env)
        print(f"  floor: a notebook that only starts a kernel, imports jax, matplotlib, dgnlib and loads the data "
              f"{t_floor:5.1f} s")
        for name, problem, learning_rate, epochs in (("dgn_classification", "classification", 1e-4, 3),
                                                     ("dgn_regression", "regression", 1e-5, 10)):
            literal = _write_notebook(Path(tmp) / f"colab_literal_{problem}.ipynb",
                                      COLAB_LITERAL.format(problem=problem, learning_rate=learning_rate,
                                                           epochs=epochs))
            t_colab = papermill_seconds(literal, tmp, env)
            notebook = ROOT / "notebooks" / f"{name}.ipynb"
            repro_only = {"n_seeds": 0, "per_neuron_learning_rates": [], "show_plots": False}
            for label, params in (("whole notebook (reproduction, weight-form sweep, 32 seeds, 3 figures)", {}),
                                  ("reproduction only (-p n_seeds 0, no sweep, no figures)", repro_only)):
                # an empty cache for the 'cold' figure, then the same run again with the cache warm
                subprocess.run(["rm", "-rf", env["DGNLIB_CACHE_DIR"]], check=True)
                t_cold = papermill_seconds(notebook, notebook.parent, env, params)
                t_warm = papermill_seconds(notebook, notebook.parent, env, params)
                print(f"  {name}, {label}: empty compilation cache {t_cold:5.1f} s, warm {t_warm:5.1f} s; "
                      f"colab's literal loop {t_colab:5.1f} s; ratio colab / notebook: cold {t_colab / t_cold:4.2f}x, "
                      f"warm {t_colab / t_warm:4.2f}x (target >= 3x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--seeds", type=int, default=32)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    data = dgn.load_problem("classification")
    t_vector = section_epoch(data)
    section_seeds(data, args.seeds, t_vector)
    if not args.skip_notebooks:
        section_notebooks()


if __name__ == "__main__":
    main()
