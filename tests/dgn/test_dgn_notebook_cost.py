"""What a whole DGN notebook costs besides its arithmetic (issue 14, item 7): the XLA programs it
compiles (one per computation: no small eager programs for casts, slices or key handling), host-side
casts that equal JAX's, and the prepared data read back from the cache bit for bit without
importing scikit-learn."""
import logging
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgnlib import dgn
from dgnlib.dgn.inputs import as_dtype

ROOT = Path(__file__).resolve().parents[2]


def small_problem(n_train=23, n_test=7, d=3, seed=5):
    rng = np.random.default_rng(seed)
    return dgn.TabularData(rng.normal(size=(n_train, d)), (rng.random(n_train) > 0.5).astype(float),
                           rng.normal(size=(n_test, d)), (rng.random(n_test) > 0.5).astype(float))


def lowered_programs(caplog, fn):
    """Names of the programs ``fn`` traces and lowers (each one a compilation or a persistent-cache
    read), from JAX's ``log_compiles`` lines, with the in-memory caches cleared first."""
    jax.clear_caches()
    with caplog.at_level(logging.WARNING, logger="jax"), jax.log_compiles(True):
        caplog.clear()
        fn()
    prefix = "Finished jaxpr to MLIR module conversion jit("
    return [r.getMessage()[len(prefix):].split(")")[0] for r in caplog.records if r.getMessage().startswith(prefix)]


def test_a_notebook_compiles_one_program_per_computation(caplog):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, cfg = small_problem(), dgn.DGNConfig()
    params0 = dgn.init_colab(data.n_features, (5, 2, 1), 3)

    def notebook():  # the notebooks' cells, figures included
        _, history = dgn.fit(params0, data, 1e-3, 2, cfg, dtype="float64", progress=False, log=None)
        dgn.plot_learning_curves(history)
        forms = dgn.compare_weight_forms(params0, data, history, 1e-3, [1e-3, 1e-2], cfg, dtype="float64")
        dgn.format_weight_forms(forms)
        dgn.plot_weight_forms(forms)
        many = dgn.run_seeds(data, 3, 1e-3, 2, cfg, (5, 2, 1), 3)
        dgn.format_seeds_summary(dgn.seeds_summary(many))
        dgn.plot_seeds(many)
        plt.close("all")

    assert lowered_programs(caplog, notebook) == [
        "_epoch_program", "_run_many_program", "_split_key", "_init_many", "_run_many_program"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_as_dtype_equals_jax_cast(dtype):
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(4, 3)) * 10.0 ** rng.integers(-30, 30, size=(4, 3)), 1e-4, np.float32(0.1),
              np.arange(5)]
    with dgn.precision(dtype):
        dt = dgn.float_dtype(dtype)
        for a in values:
            got, want = as_dtype(a, dt), jnp.asarray(a, dt)
            assert isinstance(got, jax.Array) and got.dtype == want.dtype and got.shape == want.shape
            assert not got.weak_type
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        same = jnp.ones(3, dt)
        assert as_dtype(same, dt) is same
        weak = jnp.asarray(0.5)  # weakly typed, as jnp.asarray(weak, dt) is not
        assert not as_dtype(weak, dt).weak_type and as_dtype(weak, dt).dtype == dt


def test_load_problem_cache_is_bit_exact(tmp_path):
    for problem in dgn.PROBLEMS:
        fresh = dgn.load_problem(problem)
        first = dgn.load_problem(problem, cache_dir=tmp_path)  # computes and writes
        again = dgn.load_problem(problem, cache_dir=tmp_path)  # reads
        for a, b, c in zip(fresh, first, again):
            assert a.dtype == b.dtype == c.dtype == np.float64
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and all(n.endswith(".npz") and "sklearn" in n for n in names), names
    # another split is another file; a random split (random_state=None) is never cached
    dgn.load_problem("regression", random_state=1, cache_dir=tmp_path)
    dgn.load_problem("regression", random_state=None, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 3


def test_load_problem_cache_rewrites_a_damaged_file(tmp_path):
    dgn.load_problem("regression", cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"not an npz file")
    data = dgn.load_problem("regression", cache_dir=tmp_path)
    np.testing.assert_array_equal(data.x_train, dgn.load_problem("regression").x_train)
    with np.load(path) as f:
        np.testing.assert_array_equal(f["x_train"], data.x_train)


def test_cached_problem_is_read_without_scikit_learn(tmp_path):
    dgn.load_problem("classification", cache_dir=tmp_path)
    code = ("import sys; from dgnlib.dgn import load_problem; "
            f"d = load_problem('classification', cache_dir={str(tmp_path)!r}); "
            "print(d.x_train.shape, 'sklearn' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["(455,", "30)", "False"]
