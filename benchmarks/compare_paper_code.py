"""Compare dgnlib's dis-inhibitory E/I training step with the paper's own code, on identical inputs.

The paper (Rossbroich & Zenke, NeurIPS 2023) has public code (``fmi-basel/disinhibitory-control``):
Flax modules, diffrax solves vmapped over the batch, and a trainer whose ``modify_fb_weights``
batch-averages (``average_fb_weights``) and normalises (``norm_fb_weights``, Frobenius norm 1 per
sample, on in ``conf/trainer/dale_defaults.yaml``) the Jacobian feedback weights. This script builds
an ``L x 256`` Dale network in both codes with the SAME weights (dgnlib's ``W`` is input-major like
Flax's ``kernel``, so it is copied as it is; biases are set non-zero so that they are tested too),
runs one batch of MNIST-like random inputs in [0, 1] with hard one-hot labels, and prints the max
absolute and relative differences of:

* ``ol_state``/``cl_state``: the open-/closed-loop steady states, each code on its own (dgnlib with
  both its solvers). The ODE solves differ by the solvers' tolerance (rtol 1e-3 of the steady-state
  event, per-sample step sizes in the paper's vmapped solve, one shared step size in dgnlib's), not
  float32 rounding, so these rows are expected at ~1e-4..1e-3, not 1e-6;
* ``Q``: the feedback weights after ``modify_fb_weights``; ``grad_exact``/``grad_lt``: the
  exact-inverse and linear-threshold "gradients" (batch means, before Adam);
* the same quantities with dgnlib fed the paper's own states (``[shared]`` rows): there both codes
  compute the same function of the same numbers and must agree to float32 rounding (~1e-6 rel).
  The linear-threshold error ``theta + delta r_I - r_E`` is a difference of large terms, so there the
  two float32 codes differ by ~1e-5 of the gradient; a NumPy float64 evaluation on the same states
  (``vs float64`` rows) shows that each code is that close to the exact value;
* ``Q padded``: dgnlib's ``sample_weights`` mask on a padded batch vs the paper's unpadded batch.

Both ``average_fb_weights`` False and True. dgnlib's gradients are taken from :func:`train_step`
itself (an optimizer that stores the gradients it gets) and compared with those of its public pieces
(solve, ``feedback_weights``, learning rules; ``train_step vs pieces`` rows: the jitted and the eager
solves round differently, ~1e-5 of a gradient).

The paper's code needs ``flax`` (and ``rich``, ``markdown-it-py``, ``mdurl``, ``pygments``,
``treescope``), not dgnlib's dependencies: install them beside dgnlib's JAX without touching it::

    DEPS=$HOME/paperdeps PAPER=$HOME/paper_code   # any two folders
    pip install --target "$DEPS" --no-deps flax==0.12.8 rich markdown-it-py mdurl pygments treescope
    git clone <mirror of fmi-basel/disinhibitory-control> "$PAPER"
    PYTHONPATH=$PWD:"$DEPS" python benchmarks/compare_paper_code.py --paper-code "$PAPER"

Shims (no edit of the paper's files): ``jax.tree_map`` (removed from JAX) is set to
``jax.tree_util.tree_map``. Without ``--paper-code`` (or when the path or flax is missing) the script
prints why and exits 0 with "skipped". Rows marked ``*`` (dgnlib vs the paper, or vs float64, on shared
states) are checked against ``--rtol`` (default 1e-5), the row marked ``**`` (linear-threshold rule vs
float64, where both float32 codes are ~2-4e-5 off) against ``--lt-rtol`` (default 1e-4): exit status 1
when one exceeds its tolerance. One core: ~8-11 minutes
for the default 3 x 256 and 1 x 256 networks (mostly compilation).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from dgnlib.dic import network as N  # noqa: E402
from dgnlib.dic import learning_rules as R  # noqa: E402
from dgnlib.dic.steady_state import solve_closed_loop, solve_open_loop  # noqa: E402
from dgnlib.dic.training import STATIC_ARGNAMES, init_train_state, train_step  # noqa: E402

N_CLASSES, N_IN = 10, 784


def load_paper_code(path):
    """Import the paper's modules from ``path`` (with the ``jax.tree_map`` shim); None + reason if not."""
    if not path or not os.path.isdir(os.path.join(path, "src", "models", "dale")):
        return None, f"paper code not found at {path!r} (need src/models/dale)"
    try:
        import flax  # noqa: F401
    except ImportError as e:
        return None, f"flax is not importable ({e}); see the module docstring for the install"
    if not hasattr(jax, "tree_map"):
        jax.tree_map = jax.tree_util.tree_map  # removed from JAX; the paper's code still calls it
    sys.path.insert(0, os.path.abspath(path))
    # the paper's Model passes diffrax's deprecated (still working) discrete_terminating_event
    warnings.filterwarnings("ignore", message=".*discrete_terminating_event.*")
    from src.core.activation import SoftReLu
    from src.core.controller import LeakyPIController
    from src.core.losses import SoftmaxCrossEntropy
    from src.core.model import Model
    from src.models.dale.trainer import AvgInhTaylorApproxTrainer, ExactTrainer
    from src.models.dale.vf import FullyConnectedDalianVectorField
    return dict(SoftReLu=SoftReLu, LeakyPIController=LeakyPIController, Loss=SoftmaxCrossEntropy,
                Model=Model, Exact=ExactTrainer, LT=AvgInhTaylorApproxTrainer,
                VF=FullyConnectedDalianVectorField), None


def paper_objects(pc, n_hidden, width, cfg: N.EIConfig):
    """The paper's ``Model`` and loss module, with dgnlib's constants (``cfg``, ``cfg.ode``)."""
    import diffrax
    act = pc["SoftReLu"](scale=1.0, sharpness=1.0, shift=0.0)
    loss = pc["Loss"]()
    c = cfg.controller
    ctrl = pc["LeakyPIController"](loss=loss, dim_output=N_CLASSES, k_p=c.k_p, k_i=c.k_i, leak=c.lam, tau=c.tau_c)
    vf = pc["VF"](dim_output=N_CLASSES, flatten_input=True, nb_hidden=n_hidden, sizes_hidden=[width],
                  use_bias=True, actE=act, actI=act, controller=ctrl, tauE=cfg.tau_E, tauI=cfg.tau_I,
                  fb_to_readout=True)
    o = cfg.ode
    model = pc["Model"](vf=vf, dt=o.dt0, T=o.t1, rtol=o.rtol, atol=o.atol, solver=diffrax.Tsit5(),
                        adaptive_stepsize=True, early_termination=True)
    return model, loss


def to_flax(params: N.EIParams):
    """dgnlib's parameters as the paper's Flax tree (``W`` input-major = Flax ``kernel``)."""
    tree = {f"hidden_{i}": {"kernel": l.W, "bias": l.b} for i, l in enumerate(params.layers)}
    tree["readout"] = {"kernel": params.W_out}
    return {"params": tree}


def from_flax(tree, n_hidden):
    """The paper's Flax tree (parameters or gradients) as dgnlib's ``EIParams``."""
    p = tree["params"]
    return N.EIParams(tuple(N.Layer(p[f"hidden_{i}"]["kernel"], p[f"hidden_{i}"]["bias"]) for i in range(n_hidden)),
                      p["readout"]["kernel"])


def to_eistate(state, y=None, cfg=N.EIConfig()):
    """The paper's state dict ``{'vf': [{'exc','inh'}..., u_out], 'ctrl': {'c_int'}}`` as an ``EIState``."""
    vf = state["vf"]
    u_out, c_int = vf[-1], state["ctrl"]["c_int"]
    c = jnp.zeros_like(u_out) if y is None else N.control_signal(u_out, c_int, y, cfg)
    return N.EIState(tuple(l["exc"] for l in vf[:-1]), tuple(l["inh"] for l in vf[:-1]), u_out, c_int, c)


def paper_step(model, loss, pc, avg, flax_params, x, y):
    """The paper's ``FeedbackControlTrainer.train_step`` up to (not including) ``apply_gradients``,
    for both rules: returns OL state, Q, CL state, exact and linear-threshold gradients."""
    kw = dict(model=model, optimizer=optax.adam(1e-3), loss=loss, average_fb_weights=avg,
              norm_fb_weights=True, norm_val=1.0)
    exact = pc["Exact"](**kw)
    lt = pc["LT"](**kw)  # avg_inh_lambda = 1.0, avg_inh_init = 0.8 (conf/trainer/lin-thresh.yaml)

    def run(params, x, y):
        batch = (x, y)
        u0 = model.vf.get_initial_state_batchexp(x)
        ol_y, ol_state, ol_sol = model.openloop(params, u0, x)
        fb = exact.modify_fb_weights(model.get_fb_weights(params, ol_state), batch)
        targets = exact.calculate_targets(ol_y, y)
        cl_y, cl_state, cl_sol = model.closedloop(params, ol_state, x, targets, fb)
        ts_e = exact.ExtTrainState.create(apply_fn=None, params=params, tx=exact.optimizer)
        g_e = exact.get_gradients(ts_e, x, y, ol_y, cl_y, ol_state, cl_state)
        ts_l = lt.ExtTrainState.create(apply_fn=None, params=params, tx=lt.optimizer,
                                       **lt.init_trainstate_params(params))
        ts_l = ts_l.replace(**lt.update_trainstate_params(ts_l, ol_sol))
        g_l = lt.get_gradients(ts_l, x, y, ol_y, cl_y, ol_state, cl_state)
        return ol_state, tuple(fb), cl_state, g_e, g_l

    return jax.jit(run)(flax_params, x, y)


def store_grads():
    """An optax transformation whose state is the last gradient it got (and whose update is 0)."""
    return optax.GradientTransformation(
        lambda p: jax.tree_util.tree_map(jnp.zeros_like, p),
        lambda g, s, p=None: (jax.tree_util.tree_map(jnp.zeros_like, g), g))


def dgnlib_step(params, x, labels, avg, solver, cfg):
    """dgnlib's step: states and Q from its public pieces; gradients from ``train_step``, and
    their differences from the pieces' gradients (``"<rule> vs pieces"``)."""
    targets = jax.nn.one_hot(labels, N_CLASSES, dtype=jnp.float32)
    ol, _ = solve_open_loop(params, x, cfg, solver)
    Q = N.feedback_weights(params, ol, cfg, average=avg)
    cl, _ = solve_closed_loop(params, x, targets, Q, ol, cfg, solver)
    ge = R.exact_inverse_gradients(params, x, cl, cfg)
    gl, _ = R.linear_threshold_gradients(params, x, cl, ol, R.init_rule_state(params), cfg)
    step = jax.jit(train_step, static_argnames=STATIC_ARGNAMES)
    opt = store_grads()
    out = {}
    for rule, g in (("exact", ge), ("linear_threshold", gl)):
        o, r = init_train_state(params, opt)
        _, g_ts, _, _ = step(params, o, r, x, labels, rule=rule, solver=solver, average_jacobian=avg,
                             cfg=cfg, optimizer=opt)
        out[rule] = g_ts
        out[rule + " vs pieces"] = diff(g_ts, g)  # jitted vs eager solves: rounding, not 0
    return ol, Q, cl, out


def float64_gradients(params: N.EIParams, x, ol: N.EIState, cl: N.EIState):
    """Both rules' gradients from given OL/CL states, written out in NumPy float64 (plain softplus).

    The linear-threshold error ``theta + delta r_I - r_E`` is a small difference of large terms, so
    float32 codes differ from each other by more than the rounding of their inputs; this reference
    tells which one is closer to the exact value. Returns ``(exact, linear_threshold)`` ``EIParams``.
    """
    f = lambda a: np.asarray(a, np.float64)  # noqa: E731
    sp = lambda u: np.logaddexp(u, 0.0)  # noqa: E731
    sig = lambda u: 1.0 / (1.0 + np.exp(-u))  # noqa: E731
    B = x.shape[0]
    pre = [f(x)] + [sp(f(u)) for u in cl.u_E]
    d_out = pre[-1] @ f(params.W_out) - f(cl.u_out)
    out = []
    for lt in (False, True):
        layers = []
        for l, (uE, uI, uI_ol) in enumerate(zip(cl.u_E, cl.u_I, ol.u_I)):
            uE, uI = f(uE), f(uI)
            if lt:  # Taylor model of softplus^-1 around the batch-mean OL inhibitory rate
                y0 = sp(f(uI_ol)).mean(axis=0)
                u0 = np.log(np.expm1(y0))
                delta = 1.0 / sig(u0)
                m = u0 - y0 * delta + delta * sp(uI)
            else:
                m = uI
            err = (m - sp(uE)) * sig(uE)
            layers.append(N.Layer(pre[l].T @ err / B, err.mean(axis=0)))
        out.append(N.EIParams(tuple(layers), pre[-1].T @ d_out / B))
    return tuple(out)


def diff(a, b):
    """``(max |a - b|, max relative difference)`` of two pytrees of equal structure: the relative
    difference of a leaf is ``max |a - b| / max |b|``, and the larger over the leaves is returned
    (so a small hidden-layer gradient is not hidden behind a large readout one). A batch-shared
    ``(K, n)`` leaf broadcasts against a per-sample ``(B, K, n)`` one."""
    la = [np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(a)]
    lb = [np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(b)]
    if len(la) != len(lb):
        raise ValueError(f"pytrees differ: {len(la)} vs {len(lb)} leaves")
    pairs = [np.broadcast_arrays(u, v) for u, v in zip(la, lb)]
    ab = [float(np.max(np.abs(u - v))) for u, v in pairs]
    rel = [d / max(float(np.max(np.abs(v))), 1e-30) for d, (_, v) in zip(ab, pairs)]
    return max(ab), max(rel)


def compare(pc, n_hidden, width, batch, seed, rtol, lt_rtol):
    cfg = N.EIConfig()
    kp, kb, kx, ky = jax.random.split(jax.random.PRNGKey(seed), 4)
    params = N.init_params(kp, (N_IN,) + (width,) * n_hidden + (N_CLASSES,))
    kbs = jax.random.split(kb, n_hidden)
    params = params._replace(layers=tuple(
        l._replace(b=0.1 * jax.random.normal(k, l.b.shape)) for l, k in zip(params.layers, kbs)))
    x = jax.random.uniform(kx, (batch, N_IN), jnp.float32)
    labels = jax.random.randint(ky, (batch,), 0, N_CLASSES)
    y = jax.nn.one_hot(labels, N_CLASSES, dtype=jnp.float32)
    model, loss = paper_objects(pc, n_hidden, width, cfg)
    fp = to_flax(params)
    ref = model.init(jax.random.PRNGKey(0), x[0], y[0])  # the paper's own tree: same keys and shapes?
    same = jax.tree_util.tree_structure(ref) == jax.tree_util.tree_structure(fp) and all(
        a.shape == b.shape for a, b in zip(jax.tree_util.tree_leaves(ref), jax.tree_util.tree_leaves(fp)))
    if not same:
        raise AssertionError(f"param trees differ: {jax.tree_util.tree_map(jnp.shape, ref)}")

    print(f"\n== {n_hidden} x {width} Dale network, batch {batch}, seed {seed} ==")
    print(f"{'quantity (*/**: checked, --rtol/--lt-rtol)':40s} {'average':>7s} {'max abs diff':>13s} {'max rel diff':>13s}")
    failed = []
    for avg in (False, True):
        p_ol, p_Q, p_cl, p_ge, p_gl = paper_step(model, loss, pc, avg, fp, x, y)
        p_ol_s, p_cl_s = to_eistate(p_ol), to_eistate(p_cl, y, cfg)
        p_ge, p_gl = from_flax(p_ge, n_hidden), from_flax(p_gl, n_hidden)
        rows = []
        for solver in ("ode", "algebraic"):
            d_ol, d_Q, d_cl, g = dgnlib_step(params, x, labels, avg, solver, cfg)
            ol_f = (d_ol.u_E, d_ol.u_I, d_ol.u_out)
            cl_f = (d_cl.u_E, d_cl.u_I, d_cl.u_out, d_cl.c_int)
            rows += [(f"ol_state  (dgnlib {solver})", diff(ol_f, (p_ol_s.u_E, p_ol_s.u_I, p_ol_s.u_out)), None),
                     (f"Q         (dgnlib {solver})", diff(d_Q, p_Q), None),
                     (f"cl_state  (dgnlib {solver})",
                      diff(cl_f, (p_cl_s.u_E, p_cl_s.u_I, p_cl_s.u_out, p_cl_s.c_int)), None),
                     (f"grad_exact (dgnlib {solver})", diff(g["exact"], p_ge), None),
                     (f"grad_lt    (dgnlib {solver})", diff(g["linear_threshold"], p_gl), None),
                     ("  dgnlib train_step vs pieces, exact", g["exact vs pieces"], None),
                     ("  dgnlib train_step vs pieces, lt", g["linear_threshold vs pieces"], None)]
        # [shared]: dgnlib's functions on the paper's own states
        s_Q = N.feedback_weights(params, p_ol_s, cfg, average=avg)
        ff0 = N.input_drive(params, x)
        res_ol = float(N.steady_state_residual(params, ff0, p_ol_s, cfg))
        res_cl = float(N.steady_state_residual(params, ff0, p_cl_s, cfg, p_Q, y))
        s_ge = R.exact_inverse_gradients(params, x, p_cl_s, cfg)
        s_gl, _ = R.linear_threshold_gradients(params, x, p_cl_s, p_ol_s, R.init_rule_state(params), cfg)
        f_ge, f_gl = float64_gradients(params, x, p_ol_s, p_cl_s)
        rows += [("Q          [shared OL state]", diff(s_Q, p_Q), rtol),
                 ("grad_exact [shared CL state]", diff(s_ge, p_ge), rtol),
                 ("grad_lt    [shared OL+CL states]", diff(s_gl, p_gl), None),
                 ("  grad_exact paper  vs float64", diff(p_ge, f_ge), None),
                 ("  grad_exact dgnlib vs float64", diff(s_ge, f_ge), rtol),
                 ("  grad_lt    paper  vs float64", diff(p_gl, f_gl), None),
                 ("  grad_lt    dgnlib vs float64", diff(s_gl, f_gl), lt_rtol)]
        if avg:
            # padded batch: dgnlib's 0/1 mask on the paper's OL state of the first m samples plus
            # 7 junk rows vs the paper's averaged Q of those m samples (its batches are never padded)
            m = batch - 7
            pm_ol, p_Qm, _, _, _ = paper_step(model, loss, pc, avg, fp, x[:m], y[:m])
            pad = N.EIState(*[jax.tree_util.tree_map(
                lambda a: jnp.concatenate([a, jnp.full((batch - m,) + a.shape[1:], 3.0, a.dtype)]), f)
                for f in to_eistate(pm_ol)])
            w = jnp.arange(batch) < m
            rows.append(("Q padded   [shared, sample_weights]",
                         diff(N.feedback_weights(params, pad, cfg, average=True, sample_weights=w), p_Qm), rtol))
        for name, (ab, rel), tol in rows:
            mark = "" if tol is None else (" *" if tol == rtol else " **")
            print(f"{name + mark:40s} {str(avg):>7s} {ab:13.3e} {rel:13.3e}")
            if tol is not None and rel > tol:
                failed.append(f"{name.strip()} (average={avg}): {rel:.3e} > {tol:g}")
        print(f"{'paper residual max|tau du/dt| (OL, CL)':40s} {str(avg):>7s} {res_ol:13.3e} {res_cl:13.3e}")
        if avg:
            fro = [float(jnp.linalg.norm(q[0])) for q in p_Q]
            same_rows = all(bool(jnp.all(q == q[0])) for q in p_Q)
            print(f"   paper's averaged Q: rows identical={same_rows}, Frobenius norms={np.round(fro, 6).tolist()}")
    print("all checked rows within tolerance: OK" if not failed else "FAIL: " + "; ".join(failed))
    return not failed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper-code", default=None, help="checkout of fmi-basel/disinhibitory-control")
    ap.add_argument("--layers", type=int, nargs="+", default=[3, 1])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtol", type=float, default=1e-5, help="tolerance of the rows marked *")
    ap.add_argument("--lt-rtol", type=float, default=1e-4,
                    help="tolerance of the row marked ** (linear-threshold rule vs float64: cancellation)")
    args = ap.parse_args(argv)
    pc, why = load_paper_code(args.paper_code)
    if pc is None:
        print(f"skipped: {why}")
        return 0
    ok = all([compare(pc, L, args.width, args.batch, args.seed, args.rtol, args.lt_rtol) for L in args.layers])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
