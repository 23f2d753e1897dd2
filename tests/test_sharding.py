"""Tests of :mod:`dgnlib.sharding`: the seed axis of a vision run spread over several devices.

The multi-device checks run in ONE subprocess with 4 forced host (CPU) devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4`` must be set before jax is imported; this
pytest process has a single CPU device). Errors and the 1-device behaviour are tested in process.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgnlib import sharding as sh
from dgnlib import vision

ROOT = Path(__file__).resolve().parent.parent

# Sharded vs unsharded results are NOT bitwise identical on XLA:CPU, and cannot be expected to be:
# each device runs the epoch program compiled for its S/d seeds instead of S, and XLA:CPU's matmul
# kernels round differently for different (vmapped) seed-batch sizes -- vmap(x @ W) over 4 seeds vs
# 4 separate 1-seed calls already differs by ~1 ulp on ONE device, and an unsharded 4-seed run
# differs from four 1-seed runs in the same way. No computation mixes seeds, so the differences
# stay at float32 rounding level. Observed over 2 epochs: every float leaf of the state and every
# metric within 2.3e-6 of that leaf's largest magnitude with jax 0.10.2, and within 1.27e-5 with
# the pinned 0.10.1 (the linear-threshold rule's first-layer bias, 4 devices; the same code at the
# commit before the pin measures the same 1.27e-5 on 0.10.1: XLA's CPU code rounds the per-device
# batch products differently; REL_TOL leaves ~4x margin), except the
# solver ``residual`` diagnostic (max |tau du/dt| at convergence, itself rounding noise of O(1)
# quantities: values 2e-7..3e-6 in steps of 2**-23), which gets an absolute bound of a few ulps of
# 1. Integer and boolean leaves (data keys, epoch counters, solver step counts, success flags)
# must match exactly.
REL_TOL = 5e-5
RESIDUAL_ATOL = 1e-6

SCRIPT = textwrap.dedent(r"""
    import json
    import numpy as np, jax
    from dgnlib import vision
    from dgnlib.sharding import place_run, seed_devices, seed_mesh, shard_seeds

    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)

    def split(n):
        return rng.random((n, 20), dtype=np.float32), rng.integers(0, 10, n).astype(np.int32)

    data = vision.make_arrays(*split(130), *split(30), *split(30))   # 130 % 20 != 0: padded batch
    dev0 = jax.devices()[0]

    def compare(a, b):
        r = dict(bitwise=True, ints_equal=True, bad_ints=[], max_rel=0.0, worst="", residual_abs=0.0)
        for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b)):
            name, x, y = jax.tree_util.keystr(path), np.asarray(x), np.asarray(y)
            assert x.shape == y.shape and x.dtype == y.dtype, (name, x.shape, y.shape, x.dtype, y.dtype)
            if np.array_equal(x, y):
                continue
            r["bitwise"] = False
            diff = float(np.max(np.abs(x.astype(np.float64) - y)))
            if not np.issubdtype(x.dtype, np.floating):
                r["ints_equal"] = False
                r["bad_ints"].append(name)
            elif name.endswith(".residual"):
                r["residual_abs"] = max(r["residual_abs"], diff)
            elif diff / max(float(np.max(np.abs(y))), 1e-30) > r["max_rel"]:
                r["max_rel"], r["worst"] = diff / max(float(np.max(np.abs(y))), 1e-30), name
        return r

    out = dict(cases=[])
    cases = [(rule, (0, 1, 2, 3)) for rule in ("bp", "exact", "linear_threshold")]
    cases += [("bp", (0, 1, 2)), ("bp", (5, 7))]
    init = {}   # the initial state does not depend on the rule: one init_run compile per S
    for rule, seeds in cases:
        cfg = vision.make_config(hidden=(16,), rule=rule, epochs=2, seeds=seeds, batch_size=20,
                                 eval_batch_size=16)
        if seeds not in init:
            init[seeds] = vision.init_run(cfg, 20)
        s0 = init[seeds]
        ref_state, ref_data = jax.device_put((s0, data), dev0)        # everything on one device
        ref = list(vision.iterate_epochs(ref_state, ref_data, cfg, progress=False))
        state, placed = place_run(s0, data)
        res = list(vision.iterate_epochs(state, placed, cfg, progress=False))
        final = res[-1][0]
        a, b = (final, [m for _, m, _ in res]), (ref[-1][0], [m for _, m, _ in ref])
        case = dict(rule=rule, n_seeds=len(seeds), placed_devices=seed_devices(state),
                    final_devices=seed_devices(final), ref_devices=seed_devices(ref[-1][0]),
                    epochs=[int(np.max(m.epoch)) for _, m, _ in res])
        W = final.params.W_out
        case.update(W_out_spec=str(W.sharding.spec), W_out_devices=len(W.sharding.device_set),
                    W_out_shard_rows=[s.data.shape[0] for s in W.addressable_shards])
        if rule == "exact":   # evaluate on the placed inputs keeps the seed sharding too
            ev = vision.evaluate_seeds(final.params, placed.x_test, placed.y_test, cfg)
            ev_ref = vision.evaluate_seeds(ref[-1][0].params, ref_data.x_test, ref_data.y_test, cfg)
            case["eval_devices"] = seed_devices(ev)
            a, b = a + (ev,), b + (ev_ref,)
        case.update(compare(a, b))
        out["cases"].append(case)

    # checkpoint of a sharded run: killed after epoch 1 (generator dropped), resumed sharded
    import tempfile, pathlib
    cfg = vision.make_config(hidden=(16,), rule="exact", epochs=2, seeds=(0, 1, 2, 3), batch_size=20,
                             eval_batch_size=16)
    state, placed = place_run(init[(0, 1, 2, 3)], data)
    full = list(vision.iterate_epochs(state, placed, cfg, progress=False))
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "run.ckpt"
        gen = vision.iterate_epochs(state, placed, cfg, progress=False, checkpoint=path)
        next(gen)
        gen.close()
        resumed = list(vision.iterate_epochs(state, placed, cfg, progress=False, checkpoint=path, log=None))
    first = resumed[0][0]   # the restored state
    out["resume"] = dict(
        restored_devices=seed_devices(first), final_devices=seed_devices(resumed[-1][0]),
        restored=[took.restored for _, _, took in resumed],
        bitwise=all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(
            jax.tree_util.tree_leaves((resumed[-1][0], [m for _, m, _ in resumed])),
            jax.tree_util.tree_leaves((full[-1][0], [m for _, m, _ in full])))))

    out["mesh_sizes"] = {n: seed_mesh(n).devices.size for n in (1, 2, 3, 4, 5, 6, 8, 12)}
    out["mesh_sizes_2dev"] = {n: seed_mesh(n, jax.devices()[:2]).devices.size for n in (1, 3, 4)}
    try:
        shard_seeds({"a": np.zeros((4, 2)), "b": np.zeros((8, 2))}, seed_mesh(4))
        out["mismatch_error"] = None
    except ValueError as err:
        out["mismatch_error"] = str(err)
    try:
        shard_seeds({"w": np.zeros((6, 2))}, seed_mesh(4))
        out["indivisible_error"] = None
    except ValueError as err:
        out["indivisible_error"] = str(err)
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def multi():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    # the checkout itself first: the subprocess must import THIS dgnlib whatever is installed
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT "):])
    out["cases"] = {(c["rule"], c["n_seeds"]): c for c in out["cases"]}
    return out


CASES = [("bp", 4), ("exact", 4), ("linear_threshold", 4), ("bp", 3), ("bp", 2)]


@pytest.mark.parametrize("rule,n_seeds", CASES)
def test_sharded_run_spans_the_seed_devices(multi, rule, n_seeds):
    c = multi["cases"][(rule, n_seeds)]
    n_dev = {4: 4, 3: 3, 2: 2}[n_seeds]                 # largest divisor of S that is <= 4
    assert c["ref_devices"] == 1
    assert c["placed_devices"] == c["final_devices"] == c["W_out_devices"] == n_dev
    assert c["W_out_spec"] == str(jax.sharding.PartitionSpec("seeds"))
    assert c["W_out_shard_rows"] == [n_seeds // n_dev] * n_dev
    assert c["epochs"] == [1, 2]
    if rule == "exact":
        assert c["eval_devices"] == 4


@pytest.mark.parametrize("rule,n_seeds", CASES)
def test_sharded_matches_unsharded(multi, rule, n_seeds):
    c = multi["cases"][(rule, n_seeds)]
    assert c["ints_equal"], f"integer/bool leaves differ: {c['bad_ints']}"
    assert c["max_rel"] <= REL_TOL, f"{c['worst']}: {c['max_rel']:.3g} of the leaf's scale"
    assert c["residual_abs"] <= RESIDUAL_ATOL


def test_sharded_run_resumes_from_checkpoint_sharded_and_exact(multi):
    r = multi["resume"]
    assert r["restored"] == [True, False]                 # epoch 1 restored, epoch 2 trained
    assert r["restored_devices"] == r["final_devices"] == 4
    assert r["bitwise"]                                   # same sharded program: identical numbers


def test_seed_mesh_sizes_and_errors_multi_device(multi):
    assert multi["mesh_sizes"] == {"1": 1, "2": 2, "3": 3, "4": 4, "5": 1, "6": 3, "8": 4, "12": 4}
    assert multi["mesh_sizes_2dev"] == {"1": 1, "3": 1, "4": 2}
    assert multi["mismatch_error"].startswith("leaf ['b'] has leading size 8 but leaf ['a'] has 4")
    assert multi["indivisible_error"].startswith("leaf ['w'] has leading size 6, not a multiple of the 4")


# ----------------------------------------------------------------------------- in process
@pytest.mark.parametrize("bad", [0, -2, True, 2.5, "3", None])
def test_seed_mesh_rejects_bad_n_seeds(bad):
    with pytest.raises(ValueError, match="n_seeds"):
        sh.seed_mesh(bad)


def test_seed_mesh_rejects_empty_devices():
    with pytest.raises(ValueError, match="devices"):
        sh.seed_mesh(4, devices=[])


def test_seed_mesh_one_device():
    mesh = sh.seed_mesh(np.int64(4))
    assert mesh.axis_names == ("seeds",) and mesh.devices.size == 1


def test_shard_seeds_names_the_bad_leaf():
    mesh = sh.seed_mesh(4)
    tree = {"a": np.zeros((4, 3)), "b": [np.zeros((4,)), np.zeros((5, 2))]}
    with pytest.raises(ValueError, match=r"\['b'\]\[1\].*leading size 5"):
        sh.shard_seeds(tree, mesh)
    with pytest.raises(ValueError, match=r"\['s'\].*no leading seed axis"):
        sh.shard_seeds({"a": np.zeros((4,)), "s": np.float32(1.0)}, mesh)
    with pytest.raises(ValueError, match="no leading seed axis"):
        sh.place_run({"s": jnp.float32(1.0)}, {})
    with pytest.raises(ValueError, match="no array leaves"):
        sh.place_run({}, {})


def test_place_run_on_one_device_changes_nothing():
    rng = np.random.default_rng(1)
    split = lambda n: (rng.random((n, 20), dtype=np.float32), rng.integers(0, 10, n).astype(np.int32))  # noqa: E731
    data = vision.make_arrays(*split(33), *split(9), *split(7))
    cfg = vision.make_config(hidden=(8,), rule="bp", epochs=1, seeds=(0, 1), batch_size=10)
    state = vision.init_run(cfg, 20)
    p_state, p_data = sh.place_run(state, data)
    dev = jax.devices()[0]
    assert sh.seed_devices(p_state) == sh.seed_devices(state) == 1
    for x, y in zip(jax.tree_util.tree_leaves((p_state, p_data)), jax.tree_util.tree_leaves((state, data))):
        assert x.devices() == {dev} and x.dtype == y.dtype and np.array_equal(x, y)
    ref, m_ref = vision.train_epoch(state, data, cfg)
    out, m = vision.train_epoch(p_state, p_data, cfg)
    for x, y in zip(jax.tree_util.tree_leaves((out, m)), jax.tree_util.tree_leaves((ref, m_ref))):
        assert np.array_equal(x, y)                     # same program on one device: bitwise
    assert sh.seed_devices(out) == 1
    assert sh.replicate(data, sh.seed_mesh(1)).x_train.sharding.is_fully_replicated
