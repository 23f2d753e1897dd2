"""Tests of the jitted vision epoch and its step (synthetic data, small widths): dgnlib.vision's
epoch, metrics and config modules."""
import numpy as np
import jax
import jax.numpy as jnp
import optax
import pytest

from dgnlib import vision
from dgnlib.dic.network import EIConfig
from dgnlib.dic.training import STATIC_ARGNAMES, train_step
from dgnlib.dic.learning_rules import init_rule_state, mlp_forward
from dgnlib.dic.steady_state import solve_open_loop

from vision_helpers import K, N_IN, config, synthetic

train_step_jit = jax.jit(train_step, static_argnames=STATIC_ARGNAMES)
OPT = optax.adam(1e-2)  # config()'s learning rate; one object, so the reference steps share compiled programs


def reference_step(carry, x, y, rule, avg, momentum=0.0):
    """dgnlib.dic.training.train_step, unweighted, with the settings of config(rule=rule, ...)."""
    return train_step_jit(*carry, x, y, rule=rule, solver="algebraic", average_jacobian=avg,
                          cfg=EIConfig(target_value=0.99), optimizer=OPT, lt_momentum=momentum)


def seed_slice(tree, i):
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def assert_tree_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def trainable(state):
    return state.params, state.opt_state, state.rule_state


# ----------------------------------------------------------------------------- batching
@pytest.mark.parametrize("n,B", [(23, 10), (20, 10), (5, 8)])
def test_batch_indices_use_every_sample_once(n, B):
    idx, mask = vision.batch_indices(jax.random.PRNGKey(1), n, B)
    idx, mask = np.asarray(idx), np.asarray(mask)
    assert idx.shape == mask.shape == (-(-n // B), B)
    assert sorted(idx[mask].tolist()) == list(range(n))
    assert mask.sum() == n and (idx >= 0).all() and (idx < n).all()
    assert not mask.ravel()[n:].any()  # padding only at the end


# ----------------------------------------------------------------------------- reference
@pytest.mark.parametrize("rule,avg", [("bp", False), ("exact", False), ("linear_threshold", True)])
def test_uneven_epoch_equals_per_batch_reference(rule, avg):
    """Epoch of 23 samples in batches of 10 (10, 10, 3 valid) == train_step on the unpadded slices,
    with soft targets (EIConfig.target_value=0.99) in the reference."""
    data = synthetic()
    cfg = config(rule=rule, average_jacobian=avg)
    state0 = vision.init_run(cfg, N_IN)
    state1, m = vision.train_epoch(state0, data, cfg)

    # reference: the same permutation, real batch slices, dgnlib.dic.training.train_step
    params = seed_slice(state0.params, 0)
    opt_state, rule_state = OPT.init(params), init_rule_state(params)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(state0.key[0], 0), 23))
    x_all = np.asarray(data.x_train, np.float32) / np.float32(255.0)
    y_all = np.asarray(data.y_train)
    loss_sum = correct_sum = 0.0
    for start in range(0, 23, 10):
        sl = perm[start:start + 10]
        params, opt_state, rule_state, tm = reference_step(
            (params, opt_state, rule_state), jnp.asarray(x_all[sl]), jnp.asarray(y_all[sl]), rule, avg)
        loss_sum += float(tm.loss) * len(sl)
        correct_sum += float(tm.accuracy) * len(sl)
    assert_tree_close(seed_slice(state1.params, 0), params, rtol=2e-5, atol=2e-6)
    assert_tree_close(seed_slice(state1.rule_state, 0), rule_state)
    np.testing.assert_allclose(float(m.train.loss[0]), loss_sum / 23, rtol=1e-5)
    np.testing.assert_allclose(float(m.train.accuracy[0]), correct_sum / 23, rtol=1e-6)
    assert int(m.epoch[0]) == 1 and bool(m.solver.success[0])


def test_padding_content_is_ignored():
    """Changing what fills the padded slots (other valid indices) does not change the step (that
    the step equals the unpadded one: test_masked_steps_equal_unpadded_train_steps, whose program
    for this config it shares)."""
    data = synthetic(dtype="float32")
    cfg = config(rule="linear_threshold", average_jacobian=True)
    state = vision.init_run(cfg, N_IN)
    x, y = data.x_train[:10], data.y_train[:10]
    mask = jnp.arange(10) < 6
    x2 = jnp.where(mask[:, None], x, data.x_train[10:20])  # different padding samples
    y2 = jnp.where(mask, y, data.y_train[10:20])
    outs = [vision.train_batch(state, xx, yy, mask, cfg)[0] for xx, yy in ((x, y), (x2, y2))]
    assert_tree_close(trainable(outs[0]), trainable(outs[1]), rtol=1e-6, atol=1e-7)
    assert not np.allclose(np.asarray(outs[0].params.W_out), np.asarray(state.params.W_out))  # it did train


@pytest.mark.parametrize("rule,avg,momentum", [("bp", False, 0.0), ("exact", False, 0.0),
                                               ("linear_threshold", True, 0.0),
                                               ("linear_threshold", False, 0.5)])
def test_masked_steps_equal_unpadded_train_steps(rule, avg, momentum):
    """The vision step (train_step with sample_weights=mask, through train_batch) on padded batches
    == the unweighted train_step on the unpadded batches, over 2 steps of 3 valid samples in 10,
    the padding rows filled with saturated inputs and other labels (which do change a step without
    the mask)."""
    data = synthetic(dtype="float32")
    cfg = config(rule=rule, average_jacobian=avg, lt_momentum=momentum)
    masked = vision.init_run(cfg, N_IN)
    p = seed_slice(masked, 0)
    ref = (p.params, OPT.init(p.params), p.rule_state)
    mask = jnp.arange(10) < 3
    for start in (0, 10):
        x, y = data.x_train[start:start + 10], data.y_train[start:start + 10]
        x_pad = jnp.where(mask[:, None], x, 1.0)
        y_pad = jnp.where(mask, y, (y + 3) % K)
        prev = masked
        masked, sums = vision.train_batch(prev, x_pad, y_pad, mask, cfg)
        *ref, m = reference_step(ref, x[:3], y[:3], rule, avg, momentum)
        assert_tree_close(seed_slice(trainable(masked), 0), ref, rtol=2e-5, atol=2e-6)
        assert int(sums.n[0]) == 3
        np.testing.assert_allclose(float(sums.loss[0]), float(m.loss) * 3, rtol=1e-5)
        np.testing.assert_allclose(float(sums.ol_correct[0]), float(m.ol_accuracy) * 3, atol=1e-5)
    # the padding rows do matter without the mask (all ones): the last step differs
    unmasked, sums = vision.train_batch(prev, x_pad, y_pad, jnp.ones(10, bool), cfg)
    assert int(sums.n[0]) == 10
    assert not np.allclose(np.asarray(unmasked.params.W_out), np.asarray(masked.params.W_out), rtol=1e-3)


# ----------------------------------------------------------------------------- soft targets
def test_soft_targets_in_loss_and_updates():
    data = synthetic(dtype="float32")
    cfg_soft, cfg_hard = config(rule="bp"), config(rule="bp", soft_target=1.0)
    state = vision.init_run(cfg_soft, N_IN)
    p = seed_slice(state, 0)
    x, y = data.x_train[:10], data.y_train[:10]
    mask = jnp.ones(10, bool)
    st_s, sums_s = vision.train_batch(state, x, y, mask, cfg_soft)
    st_h, sums_h = vision.train_batch(state, x, y, mask, cfg_hard)
    # hand computation of the mean cross-entropy against 0.99 / (0.01 / 9) targets
    W, b = np.asarray(p.params.layers[0].W, np.float64), np.asarray(p.params.layers[0].b, np.float64)
    h = np.logaddexp(0.0, np.asarray(x, np.float64) @ W + b)
    z = h @ np.asarray(p.params.W_out, np.float64)
    logp = z - z.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    t = np.full((10, K), 0.01 / 9)
    t[np.arange(10), np.asarray(y)] = 0.99
    expected = -(t * logp).sum(1).mean()
    np.testing.assert_allclose(float(sums_s.loss[0]) / 10, expected, rtol=1e-5)
    hard = -logp[np.arange(10), np.asarray(y)].mean()
    np.testing.assert_allclose(float(sums_h.loss[0]) / 10, hard, rtol=1e-5)
    assert abs(expected - hard) > 10 * 1e-5 * hard  # well beyond the tolerance above
    # so do the gradients (Adam's first moment, 0.1 * grad; its first update is ~ lr * sign(grad))
    mu_s, mu_h = st_s.opt_state[0].mu.W_out[0], st_h.opt_state[0].mu.W_out[0]
    assert np.max(np.abs(np.asarray(mu_s) - np.asarray(mu_h))) > 1e-4 * np.max(np.abs(np.asarray(mu_h)))


def test_default_protocol_is_hard_labels():
    """The published numbers come from hard labels (the paper's code never applies its soft
    targets): the default config, its network targets and its records say so."""
    cfg = vision.make_config()
    assert cfg.soft_target == 1.0 and vision.ei_config(cfg).target_value == 1.0
    assert vision.protocol_label(cfg) == "hard labels"
    assert vision.protocol_label(vision.make_config(soft_target=0.99)) == "soft targets 0.99"
    assert vision.protocol_label(vision.make_config(average_jacobian=True)) == "hard labels, averaged Jacobian"
    lt = vision.make_config(rule="linear_threshold", lt_momentum=0.9)
    assert vision.protocol_label(lt) == "hard labels, lt momentum 0.9"
    assert vision.protocol_label(lt._replace(rule="exact")) == "hard labels"  # momentum only matters to the rule
    data = synthetic(dtype="float32")
    x, y, mask = data.x_train[:10], data.y_train[:10], jnp.ones(10, bool)
    hard = vision.make_config(hidden=(12,), rule="bp", batch_size=10, learning_rate=1e-2)
    _, sums = vision.train_batch(vision.init_run(hard, N_IN), x, y, mask, hard)
    p = seed_slice(vision.init_run(hard, N_IN), 0).params
    logp = jax.nn.log_softmax(mlp_forward(p, jnp.asarray(x)))  # float32 data: train_batch uses it as given
    np.testing.assert_allclose(float(sums.loss[0]) / 10, -float(np.mean(np.asarray(logp)[np.arange(10), np.asarray(y)])),
                               rtol=1e-5)  # the plain cross-entropy of the labels


def test_lt_point_reaches_the_step_and_the_checkpoint_identity():
    """The linear-threshold linearisation point ("sample" vs the paper's "batch_mean") changes the
    hidden-layer update; the checkpoint identity leaves the default out (older checkpoints resume)."""
    data = synthetic(dtype="float32")
    x, y, mask = data.x_train[:10], data.y_train[:10], jnp.ones(10, bool)
    cfgs = [config(rule="linear_threshold", lt_point=p) for p in ("batch_mean", "sample")]
    (s0, _), (s1, _) = [vision.train_batch(vision.init_run(c, N_IN), x, y, mask, c) for c in cfgs]
    mu0, mu1 = np.asarray(s0.opt_state[0].mu.layers[0].W), np.asarray(s1.opt_state[0].mu.layers[0].W)
    assert np.max(np.abs(mu0 - mu1)) > 1e-3 * np.max(np.abs(mu0))
    ids = [vision.checkpoint_identity(c, data)["config"] for c in cfgs]
    assert "lt_point" not in ids[0] and ids[1]["lt_point"] == "sample"


def test_soft_targets_reach_the_controller():
    """E/I rule: 0.99 and 1.0 give different closed-loop states, hence different steps, and the
    reported CL loss is the cross-entropy against the soft targets. (One step: the epoch runs the
    same step, test_uneven_epoch_equals_per_batch_reference.)"""
    data = synthetic(dtype="float32")
    x, y, mask = data.x_train[:10], data.y_train[:10], jnp.ones(10, bool)
    out = [vision.train_batch(vision.init_run(config(soft_target=v), N_IN), x, y, mask, config(soft_target=v))
           for v in (0.99, 1.0)]
    (s0, m0), (s1, m1) = out
    # the gradients (Adam's first moment: its first update is ~ lr * sign(grad)) of the hidden layer,
    # which only the closed-loop state (the controller) connects to the targets
    mu0, mu1 = np.asarray(s0.opt_state[0].mu.layers[0].W), np.asarray(s1.opt_state[0].mu.layers[0].W)
    assert np.max(np.abs(mu0 - mu1)) > 1e-3 * np.max(np.abs(mu1))
    assert abs(float(m0.loss[0]) - float(m1.loss[0])) / 10 > 1e-3


# ----------------------------------------------------------------------------- seeds, determinism
def test_vmapped_seeds_equal_single_runs():
    data = synthetic()
    cfg2 = config(seeds=(3, 7), epochs=2)
    runs = {}
    for cfg in (cfg2, config(seeds=(7,), epochs=2)):
        st = vision.init_run(cfg, N_IN)
        for st, m, _ in vision.iterate_epochs(st, data, cfg, progress=False):
            pass
        runs[cfg.seeds] = (st, m)
    (st2, m2) = runs[(3, 7)]
    for i, s in [(1, 7)]:  # the second seed of the pair (the first would test the same way)
        st1, m1 = runs[(s,)]
        assert_tree_close(seed_slice(st2.params, i), seed_slice(st1.params, 0), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(float(m2.val.loss[i]), float(m1.val.loss[0]), rtol=1e-5)
        np.testing.assert_allclose(float(m2.test.accuracy[i]), float(m1.test.accuracy[0]))
    # different seeds really are different runs
    assert not np.allclose(np.asarray(st2.params.W_out[0]), np.asarray(st2.params.W_out[1]))


def test_same_seed_same_numbers():
    data = synthetic()
    cfg = config(rule="linear_threshold", average_jacobian=True, epochs=2, seeds=(5,))
    lines, finals = [], []
    for _ in range(2):
        out = []
        for st, m, _ in vision.iterate_epochs(vision.init_run(cfg, N_IN), data, cfg, progress=False):
            out.append(vision.format_epoch_line(vision.run_label("syn", cfg), 5, m))
        lines.append(out)
        finals.append(st)
    assert lines[0] == lines[1]
    for a, b in zip(jax.tree_util.tree_leaves(finals[0]), jax.tree_util.tree_leaves(finals[1])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # epochs are shuffled differently
    i0, _ = vision.batch_indices(jax.random.fold_in(finals[0].key[0], 0), 23, 10)
    i1, _ = vision.batch_indices(jax.random.fold_in(finals[0].key[0], 1), 23, 10)
    assert not np.array_equal(np.asarray(i0), np.asarray(i1))


def test_ode_solver_agrees_with_algebraic():
    """solver="ode" (diffrax inside vmap + scan) trains like the algebraic default."""
    data = synthetic()
    out = {}
    for solver in ("algebraic", "ode"):
        cfg = config(solver=solver)
        out[solver] = vision.train_epoch(vision.init_run(cfg, N_IN), data, cfg)
    (st_a, m_a), (st_o, m_o) = out["algebraic"], out["ode"]
    assert bool(m_o.solver.success[0]) and int(m_o.solver.ol_steps[0]) > 0 and int(m_o.solver.cl_steps[0]) > 0
    assert_tree_close(st_o.params, st_a.params, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(float(m_o.val.loss[0]), float(m_a.val.loss[0]), rtol=1e-4)


# ----------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize("rule", ["bp", "exact"])
def test_evaluate_seeds_chunked_equals_whole(rule):
    data = synthetic(n_test=11)
    cfg = config(rule=rule, eval_batch_size=4)  # 11 = 4 + 4 + 3
    st = vision.init_run(cfg, N_IN)
    ev, summ = vision.evaluate_seeds(st.params, data.x_test, data.y_test, cfg)
    p = seed_slice(st.params, 0)
    x = jnp.asarray(np.asarray(data.x_test, np.float32) / np.float32(255.0))
    if rule == "bp":
        logits = mlp_forward(p, x)
    else:
        logits = solve_open_loop(p, x, EIConfig(target_value=0.99))[0].u_out
    logp = jax.nn.log_softmax(logits)
    t = np.full((11, K), 0.01 / 9)
    t[np.arange(11), np.asarray(data.y_test)] = 0.99
    np.testing.assert_allclose(float(ev.loss[0]), float(-(t * logp).sum(1).mean()), rtol=1e-5)
    acc = float(np.mean(np.argmax(np.asarray(logits), 1) == np.asarray(data.y_test)))
    assert float(ev.accuracy[0]) == pytest.approx(acc)
    assert bool(summ.success[0])


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("field,value", [("rule", "backprop"), ("solver", "rk4"), ("batch_size", 0),
                                         ("batch_size", 2.5), ("hidden", []), ("hidden", [0]),
                                         ("seeds", [1, 1]), ("seeds", 3), ("soft_target", 1.5),
                                         ("learning_rate", -1.0), ("learning_rate", float("nan")),
                                         ("on_failure", "ignore"), ("average_jacobian", "yes")])
def test_bad_options_raise(field, value):
    with pytest.raises(ValueError, match=field):
        vision.make_config(**{field: value})


def test_as_choices_takes_a_name_or_a_list():
    assert vision.as_choices("datasets", "mnist", vision.DATASETS) == ("mnist",)
    assert vision.as_choices("rules", ["bp", "exact"], vision.RULES) == ("bp", "exact")
    for bad, match in (("cifar10", r"datasets\[0\] must be one of"), ([], "non-empty"),
                       (["mnist", "mnist"], "repeat"), (3, "non-empty list")):
        with pytest.raises(ValueError, match=match):
            vision.as_choices("datasets", bad, vision.DATASETS)


def test_bad_names_and_shapes_raise():
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        vision.make_config(lr=1e-3)
    with pytest.raises(ValueError, match="dataset"):
        vision.load_arrays("cifar10")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, N_IN), dtype=np.uint8)
    y = np.zeros(5, np.int32)
    with pytest.raises(ValueError, match="x_val"):
        vision.make_arrays(x, y, x[:, :-1], y, x, y)
    with pytest.raises(ValueError, match="y_train"):
        vision.make_arrays(x, y[:4], x, y, x, y)
    with pytest.raises(ValueError, match="y_test"):
        vision.make_arrays(x, y, x, y, x, y + 10)
    with pytest.raises(ValueError, match="y_train"):
        vision.make_arrays(x, y.astype(np.float32), x, y, x, y)
    cfg = config()
    st = vision.init_run(cfg, N_IN)
    with pytest.raises(ValueError, match="data"):
        vision.train_epoch(st, (x, y), cfg)
    with pytest.raises(ValueError, match="data.x_train"):
        vision.train_epoch(st, vision.make_arrays(x[:, :-1], y, x[:, :-1], y, x[:, :-1], y), cfg)
    with pytest.raises(ValueError, match="state"):
        vision.train_epoch(st, synthetic(), config(hidden=(7,)))
    with pytest.raises(ValueError, match="n_in"):
        vision.init_run(cfg, 0)
