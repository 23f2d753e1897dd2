"""Tests of dgnlib.dic.steady_state (with its solvers dgnlib.dic.algebraic and dgnlib.dic.ode):
ODE vs algebraic solvers, failures, derivatives."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgnlib.dic.network import EIConfig, feedback_weights, input_drive
from dgnlib.dic.algebraic import closed_loop_jacobian, closed_loop_residual, unit_root
from dgnlib.dic.steady_state import SteadyStateError, simulate, solve_closed_loop, solve_open_loop

from ei_helpers import S1, S3, make_problem as _problem

CFG = EIConfig()
# The ODE stops when rms(du/dt) < 1e-6 + 1e-3 rms(state); measured distances to the
# algebraic fixed point are ~1e-4 (hidden units) and ~1e-3 (readout, controller).
TOL_HIDDEN = 5e-4
TOL_OUT = 5e-3


@pytest.fixture(scope="module", params=[S1, S3], ids=["1layer", "3layers"])
def solved(request):
    params, x, y = _problem(request.param, seed=len(request.param))
    assert float(jnp.max(jnp.abs(x))) > 0.5
    out = {"params": params, "x": x, "y": y}
    for solver in ("algebraic", "ode"):
        ol, ol_stats = solve_open_loop(params, x, CFG, solver)
        Q = feedback_weights(params, ol, CFG)
        cl, cl_stats = solve_closed_loop(params, x, y, Q, ol, CFG, solver)
        out[solver] = dict(ol=ol, ol_stats=ol_stats, Q=Q, cl=cl, cl_stats=cl_stats)
    return out


def _compare(a, b, ref):
    """max |a - b| per field, and the size of the OL->CL shift (so agreement is meaningful)."""
    for name, tol in (("u_E", TOL_HIDDEN), ("u_I", TOL_HIDDEN), ("u_out", TOL_OUT),
                      ("c_int", TOL_OUT), ("c", TOL_OUT)):
        for la, lb in zip(jax.tree_util.tree_leaves(getattr(a, name)),
                          jax.tree_util.tree_leaves(getattr(b, name))):
            err = float(jnp.max(jnp.abs(la - lb)))
            assert err < tol, f"{name}: ODE and algebraic differ by {err} > {tol}"


def test_open_loop_ode_matches_algebraic(solved):
    a, o = solved["algebraic"], solved["ode"]
    assert bool(a["ol_stats"].success) and bool(o["ol_stats"].success)
    assert int(o["ol_stats"].steps) > 5  # the ODE really integrated
    assert float(a["ol_stats"].residual) < 1e-5
    _compare(a["ol"], o["ol"], None)
    np.testing.assert_array_equal(a["ol"].c, 0.0)
    # the states are far from zero, so agreement is not trivial
    assert float(jnp.max(jnp.abs(a["ol"].u_E[-1]))) > 0.1


def test_closed_loop_ode_matches_algebraic(solved):
    a, o = solved["algebraic"], solved["ode"]
    assert bool(a["cl_stats"].success) and bool(o["cl_stats"].success)
    assert 1 <= int(a["cl_stats"].steps) <= 6
    assert float(a["cl_stats"].residual) < 1e-4
    # feedback weights from the two OL solutions agree too
    for qa, qo in zip(a["Q"], o["Q"]):
        assert float(jnp.max(jnp.abs(qa - qo))) < 1e-3
    _compare(a["cl"], o["cl"], a["ol"])
    # control really moved the state (much more than the tolerance)
    shift = float(jnp.max(jnp.abs(a["cl"].u_out - a["ol"].u_out)))
    assert shift > 20 * TOL_OUT
    # steady-state relations: c = G e and u_I = phi_E(u_E) - Q^T c
    G = CFG.controller.steady_state_gain
    e = solved["y"] - jax.nn.softmax(a["cl"].u_out, axis=-1)
    np.testing.assert_allclose(a["cl"].c, G * e, atol=1e-4)


def test_closed_loop_averaged_jacobian_agrees():
    params, x, y = _problem(S1, seed=7)
    res = {}
    for solver in ("algebraic", "ode"):
        ol, _ = solve_open_loop(params, x, CFG, solver)
        Q = feedback_weights(params, ol, CFG, average=True)
        assert Q[0].shape == (10, 16)
        res[solver] = solve_closed_loop(params, x, y, Q, ol, CFG, solver)[0]
    _compare(res["algebraic"], res["ode"], None)


def test_closed_loop_from_open_loop_state_agrees(solved):
    """``state0_is_open_loop=True`` (the training step's shortcut: no re-solve at c = 0) gives the
    closed-loop state of the plain solve within the solver's tolerance, with the same stopping test."""
    params, x, y = solved["params"], solved["x"], solved["y"]
    a = solved["algebraic"]
    cl, stats = solve_closed_loop(params, x, y, a["Q"], a["ol"], CFG, state0_is_open_loop=True)
    assert bool(stats.success) and int(stats.steps) == int(a["cl_stats"].steps)
    for la, lb in zip(jax.tree_util.tree_leaves(cl), jax.tree_util.tree_leaves(a["cl"])):
        np.testing.assert_allclose(la, lb, atol=1e-5)
    with pytest.raises(ValueError, match="state0_is_open_loop must be a bool"):
        solve_closed_loop(params, x, y, a["Q"], a["ol"], CFG, state0_is_open_loop=1)
    with pytest.raises(ValueError, match="state0_is_open_loop=True needs state0"):
        solve_closed_loop(params, x, y, a["Q"], None, CFG, state0_is_open_loop=True)


def test_closed_loop_jacobian_matches_jacfwd():
    params, x, y = _problem(S3, seed=3)
    ol, _ = solve_open_loop(params, x, CFG)
    ff0 = input_drive(params, x)

    @jax.jit
    def both(c, Q):
        r, sweep = closed_loop_residual(params, ff0, y, Q, c, CFG)
        J = closed_loop_jacobian(params, Q, c, sweep, CFG)
        full = jax.jacfwd(lambda c: closed_loop_residual(params, ff0, y, Q, c, CFG)[0])(c)
        return J, full

    for avg in (False, True):
        Q = feedback_weights(params, ol, CFG, average=avg)
        c = 0.3 * jax.random.normal(jax.random.PRNGKey(5), y.shape)
        J, full = both(c, Q)
        for b in range(x.shape[0]):
            np.testing.assert_allclose(J[b], full[b, :, b, :], atol=2e-5)
            # samples are independent
            other = np.delete(np.asarray(full[b]), b, axis=1)
            assert np.max(np.abs(other)) == 0.0


def test_unit_root_solves_equation_and_has_implicit_derivative():
    ff = jnp.linspace(-30.0, 40.0, 141)
    q = jnp.concatenate([jnp.linspace(-5.0, 5.0, 70), jnp.zeros(71)])
    u, n = unit_root(ff, q, CFG)
    sp = jax.nn.softplus
    np.testing.assert_allclose(u + sp(sp(u) - q), ff, atol=2e-5 * 40)
    assert int(n) <= 10
    # derivative by the implicit function theorem vs central finite differences (float64-free)
    g = jax.grad(lambda f: jnp.sum(unit_root(f, q, CFG)[0]))(ff)
    h = 1e-2
    fd = (unit_root(ff + h, q, CFG)[0] - unit_root(ff - h, q, CFG)[0]) / (2 * h)
    np.testing.assert_allclose(g, fd, atol=2e-3)
    assert float(jnp.min(g)) > 0.3 and float(jnp.max(g)) <= 1.0 + 1e-6


@pytest.mark.parametrize("solver", ["ode", "algebraic"])
def test_step_budget_exhausted_raises(solver):
    params, x, y = _problem(S1, seed=1)
    if solver == "ode":
        bad = CFG._replace(ode=CFG.ode._replace(max_steps=2))
    else:
        bad = CFG._replace(algebraic=CFG.algebraic._replace(unit_max_iter=1, c_max_iter=1))
    with pytest.raises(SteadyStateError, match=f"open-loop solve with solver='{solver}' did not reach"):
        solve_open_loop(params, x, bad, solver)
    # flag mode returns the failure instead of raising
    _, stats = solve_open_loop(params, x, bad, solver, on_failure="flag")
    assert not bool(stats.success)
    if solver == "ode":
        assert int(stats.steps) == 2
        assert "max_steps (=2)" in _message(lambda: solve_open_loop(params, x, bad, solver))
        return
    ol, _ = solve_open_loop(params, x, CFG, "algebraic")
    Q = feedback_weights(params, ol, CFG)
    with pytest.raises(SteadyStateError, match="closed-loop solve"):
        solve_closed_loop(params, x, y, Q, ol, bad, solver)
    _, stats = solve_closed_loop(params, x, y, Q, ol, bad, solver, on_failure="flag")
    assert not bool(stats.success) and int(stats.steps) == 1
    # under jit the failure still surfaces (runtime error), it is never silent
    f = jax.jit(lambda x: solve_open_loop(params, x, bad, solver)[0].u_out)
    with pytest.raises(RuntimeError, match="did not reach a steady state"):
        jax.block_until_ready(f(x))


def _message(fn):
    try:
        fn()
    except SteadyStateError as err:
        return str(err)
    raise AssertionError("no SteadyStateError raised")


def test_bad_arguments_raise():
    params, x, y = _problem(S1, seed=1)
    with pytest.raises(ValueError, match="solver must be one of"):
        solve_open_loop(params, x, CFG, "euler")
    with pytest.raises(ValueError, match="on_failure"):
        solve_open_loop(params, x, CFG, on_failure="ignore")
    with pytest.raises(ValueError, match=r"x must have shape \(B, 12\)"):
        solve_open_loop(params, x[:, :5], CFG)
    ol, _ = solve_open_loop(params, x, CFG)
    Q = feedback_weights(params, ol, CFG)
    with pytest.raises(ValueError, match=r"y must have shape \(4, 10\)"):
        solve_closed_loop(params, x, y[:3], Q, ol, CFG)
    with pytest.raises(ValueError, match="state0"):
        solve_closed_loop(params, x, y, Q, ol._replace(u_out=ol.u_out[:2]), CFG)
    with pytest.raises(ValueError, match="cfg must be an EIConfig"):
        solve_open_loop(params, x, {"tau_E": 0.02})


def test_simulate_trajectory_approaches_steady_state():
    params, x, _ = _problem(S1, seed=2)
    ts = jnp.linspace(0.0, 0.5, 11)
    traj = simulate(params, x, ts, CFG)
    assert traj.u_E[0].shape == (11, 4, 16) and traj.u_out.shape == (11, 4, 10)
    ol, _ = solve_open_loop(params, x, CFG)
    err = jnp.max(jnp.abs(traj.u_out - ol.u_out[None]), axis=(1, 2))
    assert float(err[0]) > 0.05 and float(err[-1]) < 1e-2
    assert bool(jnp.all(jnp.diff(err[2:]) <= 1e-6))  # relaxes monotonically after the onset
