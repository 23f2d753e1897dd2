#!/usr/bin/env python
"""Whole DGN notebooks against the colab's own NumPy loop, in one run on this machine.

For each DGN notebook (``dgn_classification``, ``dgn_regression``) and each of ``--repeats`` rounds,
interleaved (colab, cold, warm, colab, cold, warm, ...):

* the colab's own loop: a papermill run of a one-cell notebook that loads the problem and runs the
  colab's literal NumPy loop (``dgnlib.dgn.reference.run_numpy``, ``implementation="literal"``) with the
  notebook's epochs and learning rate (the reproduction run, the work the colab itself does);
* the whole notebook (papermill, a fresh kernel each time) with an empty JAX persistent compilation
  cache (``DGNLIB_CACHE_DIR`` pointed at a new temporary folder): *cold*;
* the same notebook again with that cache filled: *warm*;

then the medians, the ratios notebook / colab and whether the targets are met (warm <= 1/3,
cold <= 1/2 of the colab's time). ``--baseline-root DIR`` runs the notebooks of a second dgnlib
checkout (e.g. ``git archive`` of main) in the same rounds, so that a change is measured against
the code before it on the same, equally loaded, machine.

Where the time goes: the time to ``import dgnlib.dgn`` (and the notebook's other imports) in a fresh
process, the heaviest imports (``python -X importtime``), a kernel that only starts, the slowest
cells of the last warm run (papermill's per-cell durations) and, with ``--count-compiles``, the XLA
programs a cold run compiles (``JAX_LOG_COMPILES``).

    python benchmarks/bench_notebooks.py [--notebooks dgn_classification] [--repeats 3]
                                         [--baseline-root DIR] [--count-compiles]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {  # name: (problem, learning rate, epochs), the notebooks' parameter defaults
    "dgn_classification": ("classification", 1e-4, 3),
    "dgn_regression": ("regression", 1e-5, 10),
}
WARM_TARGET, COLD_TARGET = 1 / 3, 1 / 2  # notebook time / colab time
# the colab's literal loop as a one-cell notebook: the template bench_dgn.py times too
from bench_dgn import COLAB_LITERAL as COLAB_LOOP  # noqa: E402  (benchmarks/ is on sys.path when run)
NOTEBOOK_IMPORTS = ("import matplotlib.pyplot as plt; from dgnlib import dgn, runtime; "
                    "from dgnlib.textvalues import list_parameter")


def write_notebook(path: Path, source: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def environment(root: Path, cache_dir: Path, extra=None) -> dict:
    env = dict(os.environ)
    env.update({"PYTHONPATH": str(root), "DGNLIB_CACHE_DIR": str(cache_dir), "MPLBACKEND": "Agg"})
    env.update(extra or {})
    return env


def papermill(notebook: Path, cwd: Path, env: dict, out: Path):
    """Execute ``notebook`` in a fresh kernel (its own process, so that the kernel inherits ``env``);
    returns ``(seconds, executed notebook as JSON)``."""
    code = ("import sys, papermill as pm; pm.execute_notebook(sys.argv[1], sys.argv[2], cwd=sys.argv[3], "
            "kernel_name='python3', progress_bar=False, "
            "kernel_manager_class='dgnlib.sweep.kernels.IPCKernelManager')")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(notebook), str(out), str(cwd)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # papermill's own start (its process, not the kernel) is not the notebook's time: subtract it
    return time.perf_counter() - start, json.loads(out.read_text())


def papermill_floor(env: dict) -> float:
    """Seconds to start the process that runs papermill (imported, nothing executed)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import papermill"], env=env, check=True)
    return time.perf_counter() - start


def fresh_process_seconds(code: str, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - start


def heaviest_imports(code: str, env: dict, top: int = 8) -> list:
    """``(seconds, module)`` of the top-level imports of ``code`` (``-X importtime``), heaviest first."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, check=True,
                         capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(2)) <= 1:  # a module imported by the code itself, not by another module
            rows.append((int(m.group(1)) / 1e6, m.group(3)))
    return sorted(rows, reverse=True)[:top]


def slowest_cells(nb: dict, top: int = 5) -> list:
    """``(seconds, first line)`` of the slowest code cells of an executed notebook."""
    rows = []
    for cell in nb["cells"]:
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell["cell_type"] == "code" and duration is not None:
            lines = [s for s in "".join(cell["source"]).splitlines() if s.strip() and not s.startswith("#")]
            rows.append((duration, (lines or [""])[0][:70]))
    return sorted(rows, reverse=True)[:top]


def compiled_programs(nb: dict) -> list:
    """Names of the XLA programs compiled, from the ``JAX_LOG_COMPILES`` lines a notebook printed."""
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")
    return re.findall(r"Finished XLA compilation of (\S+) in", text)


def median(xs):
    return statistics.median(xs)


def section_imports(roots: dict, tmp: Path, repeats: int):
    print("== where the time goes: kernel start and imports (fresh processes, medians) ==")
    env0 = environment(ROOT, tmp / "unused-cache")
    times = {}
    for _ in range(repeats):
        for label, root in roots.items():
            env = environment(root, tmp / "unused-cache")
            times.setdefault((label, "python"), []).append(fresh_process_seconds("pass", env))
            times.setdefault((label, "dgn"), []).append(fresh_process_seconds("from dgnlib import dgn", env))
            times.setdefault((label, "nb"), []).append(fresh_process_seconds(NOTEBOOK_IMPORTS, env))
    for label in roots:
        print(f"  [{label}] python start {median(times[(label, 'python')]):5.2f} s; 'from dgnlib import dgn' "
              f"{median(times[(label, 'dgn')]):5.2f} s; the notebook's imports (matplotlib.pyplot, dgnlib) "
              f"{median(times[(label, 'nb')]):5.2f} s (python start included)")
    for label, root in roots.items():
        rows = heaviest_imports(NOTEBOOK_IMPORTS + "; dgn.load_problem('classification')",
                                environment(root, tmp / "unused-cache"))
        print(f"  [{label}] heaviest imports of the notebook's import cell and load_problem (-X importtime): "
              + ", ".join(f"{name} {s:.2f} s" for s, name in rows))
    empty = write_notebook(tmp / "empty.ipynb", "pass")
    kernel = [papermill(empty, tmp, env0, tmp / "out-empty.ipynb")[0] - papermill_floor(env0) for _ in range(repeats)]
    print(f"  a kernel that starts and runs 'pass' (papermill): {median(kernel):5.2f} s")


def section_notebook(name: str, roots: dict, tmp: Path, repeats: int, count_compiles: bool) -> dict:
    problem, learning_rate, epochs = NOTEBOOKS[name]
    print(f"== {name}: {repeats} interleaved rounds (colab loop, then per checkout: cold, warm) ==")
    colab_nb = write_notebook(tmp / f"colab_{problem}.ipynb",
                              COLAB_LOOP.format(problem=problem, learning_rate=learning_rate, epochs=epochs))
    times: dict = {"colab": []}
    last_warm = {}
    for r in range(repeats):
        floor = papermill_floor(environment(ROOT, tmp / "unused-cache"))
        times["colab"].append(papermill(colab_nb, tmp, environment(ROOT, tmp / "colab-cache"),
                                        tmp / "out-colab.ipynb")[0] - floor)
        for label, root in roots.items():
            cache = Path(tempfile.mkdtemp(dir=tmp, prefix=f"cache-{label}-"))  # empty: cold
            notebook = root / "notebooks" / f"{name}.ipynb"
            env = environment(root, cache)
            for kind in ("cold", "warm"):
                seconds, nb = papermill(notebook, notebook.parent, env, tmp / f"out-{label}.ipynb")
                times.setdefault((label, kind), []).append(seconds - floor)
            last_warm[label] = nb
    t_colab = median(times["colab"])
    print(f"  colab's literal NumPy loop ({epochs} epochs, kernel start included): {t_colab:6.2f} s "
          f"(runs: {', '.join(f'{t:.1f}' for t in times['colab'])})")
    summary = {"colab": t_colab}
    for label in roots:
        cold, warm = median(times[(label, "cold")]), median(times[(label, "warm")])
        summary[label] = (cold, warm)
        ok_w, ok_c = warm / t_colab <= WARM_TARGET, cold / t_colab <= COLD_TARGET
        print(f"  [{label}] whole notebook: cold {cold:6.2f} s = {cold / t_colab:4.2f} x colab (target <= 0.50: "
              f"{'met' if ok_c else 'NOT met'}), warm {warm:6.2f} s = {warm / t_colab:4.2f} x colab (target <= 0.33: "
              f"{'met' if ok_w else 'NOT met'}); runs cold {', '.join(f'{t:.1f}' for t in times[(label, 'cold')])}, "
              f"warm {', '.join(f'{t:.1f}' for t in times[(label, 'warm')])}")
        print(f"  [{label}] slowest cells of the last warm run: "
              + "; ".join(f"{s:.2f} s {src!r}" for s, src in slowest_cells(last_warm[label])))
    if count_compiles:
        for label, root in roots.items():
            cache = Path(tempfile.mkdtemp(dir=tmp, prefix=f"count-{label}-"))
            notebook = root / "notebooks" / f"{name}.ipynb"
            _, nb = papermill(notebook, notebook.parent, environment(root, cache, {"JAX_LOG_COMPILES": "1"}),
                              tmp / f"out-count-{label}.ipynb")
            names = compiled_programs(nb)
            print(f"  [{label}] XLA programs compiled by a cold run: {len(names)}: {', '.join(names)}")
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", nargs="+", default=list(NOTEBOOKS), choices=list(NOTEBOOKS))
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians are reported)")
    parser.add_argument("--baseline-root", type=Path, default=None,
                        help="a second dgnlib checkout whose notebooks run in the same rounds")
    parser.add_argument("--count-compiles", action="store_true",
                        help="one more cold run per notebook and checkout, listing the XLA programs it compiles")
    parser.add_argument("--skip-imports", action="store_true")
    args = parser.parse_args()
    roots = {"this": ROOT}
    if args.baseline_root is not None:
        roots = {"baseline": args.baseline_root.resolve(), "this": ROOT}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} at the start; checkouts: "
          + ", ".join(f"{k} = {v}" for k, v in roots.items()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_imports:
            section_imports(roots, tmp, args.repeats)
        for name in args.notebooks:
            section_notebook(name, roots, tmp, args.repeats, args.count_compiles)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} at the end")


if __name__ == "__main__":
    main()
