"""Tests of the single E/I microcircuit (Fig. 3 / Fig. S2)."""
import numpy as np
import pytest
from scipy.optimize import brentq

from dgnlib.dic import microcircuit as mc


def np_softplus3(u):
    return np.log1p(np.exp(u - 3.0))


def np_sigmoid3(u):
    return 1.0 / (1.0 + np.exp(-(u - 3.0)))


def np_inverse3(r):
    return 3.0 + np.log(np.expm1(r))


def np_euler(x, target=None, alpha=5.0, dt=1 / 50, n=600):
    """Independent float64 re-implementation of the Euler integration."""
    u_E = np.zeros_like(x)
    u_I = np.zeros_like(x)
    for _ in range(n):
        r_E = np_softplus3(u_E)
        td = 0.0 if target is None else -alpha * (target - r_E)
        u_E, u_I = u_E + dt * (-u_E - np_softplus3(u_I) + x), u_I + dt * (-u_I + r_E + td)
    return u_E, u_I


@pytest.mark.parametrize("target", [None, 4.0, 3.0])
def test_simulate_matches_numpy_euler(target):
    x = np.array([0.0, 0.7, 2.5, 5.0, 9.3, 12.0])
    s = mc.simulate(x, target)
    u_E, u_I = np_euler(x, target)
    np.testing.assert_allclose(np.asarray(s.u_E), u_E, atol=2e-4)
    np.testing.assert_allclose(np.asarray(s.u_I), u_I, atol=2e-4)
    np.testing.assert_allclose(np.asarray(s.r_E), np_softplus3(u_E), atol=2e-4)
    np.testing.assert_allclose(np.asarray(s.r_I), np_softplus3(u_I), atol=2e-4)


@pytest.mark.parametrize("target", [None, 4.0])
def test_simulate_reaches_fixed_point_of_scipy_root(target):
    a = 0.0 if target is None else 5.0
    t = 0.0 if target is None else target
    xs = np.array([1.0, 4.0, 8.0])
    s = mc.simulate(xs, target)
    for x, uE_sim in zip(xs, np.asarray(s.u_E)):
        # steady state: u_I = (1+a) phi_E(u_E) - a t,  u_E + phi_I(u_I) = x
        root = brentq(lambda u: u + np_softplus3((1 + a) * np_softplus3(u) - a * t) - x, -50, 50, xtol=1e-12)
        assert abs(uE_sim - root) < 3e-3
    ss = mc.steady_state(xs, target)
    np.testing.assert_allclose(np.asarray(ss.u_E), np.asarray(s.u_E), atol=3e-3)


def test_rule_formulas_by_hand():
    state = mc.CircuitState(u_E=np.float32(4.0), u_I=np.float32(2.0), r_E=np.float32(np_softplus3(4.0)),
                            r_I=np.float32(np_softplus3(2.0)))
    x, theta, delta = 2.0, 1.5, 1.5
    r_E, r_I = np_softplus3(4.0), np_softplus3(2.0)
    want_lin = x * (r_E - (theta + delta * r_I)) * np_sigmoid3(4.0)
    want_exact = x * (r_E - np_inverse3(r_I)) * np_sigmoid3(4.0)  # = x (r_E - u_I) phi'(u_E)
    assert float(mc.dw_linear_threshold(x, state, theta, delta)) == pytest.approx(want_lin, rel=1e-5)
    assert float(mc.dw_exact(x, state)) == pytest.approx(want_exact, rel=1e-4)
    assert want_exact == pytest.approx(x * (r_E - 2.0) * np_sigmoid3(4.0), rel=1e-9)


def test_crossings_on_synthetic_curve():
    r = np.linspace(0.0, 6.0, 61)
    dw = -(r - 1.23) * (r - 4.56)  # negative, positive between the roots, negative
    c = mc.crossings(r, dw)
    np.testing.assert_allclose(c.dep_to_pot, [1.23], atol=1e-3)
    np.testing.assert_allclose(c.pot_to_dep, [4.56], atol=1e-3)
    # zeros and sub-tolerance values carry no sign
    c2 = mc.crossings([0, 1, 2, 3], [0.0, 1e-4, -1e-4, 0.0], tol=1e-3)
    assert c2.pot_to_dep.size == 0 and c2.dep_to_pot.size == 0
    with pytest.raises(ValueError, match="r_E and dw"):
        mc.crossings(r, dw[:-1])
    with pytest.raises(ValueError, match="tol"):
        mc.crossings(r, dw, tol=-1)


@pytest.mark.parametrize("target", [4.0, 3.0])
def test_exact_rule_crosses_at_target_and_fit_near_it(target):
    x = np.linspace(0.0, 10.0, 2001)
    curves = {c.rule: c for c in mc.topdown_curves(x, target)}
    ex = mc.crossings(curves["exact"].r_E, curves["exact"].dw)
    np.testing.assert_allclose(ex.pot_to_dep, [target], atol=0.01)
    assert ex.dep_to_pot.size == 0
    fit = mc.crossings(curves[(1.5, 1.5)].r_E, curves[(1.5, 1.5)].dw)
    assert fit.pot_to_dep.size == 1 and target < fit.pot_to_dep[0] < target + 0.2
    # potentiation well below the target (above the low-rate dip), depression above
    r, dw = curves[(1.5, 1.5)].r_E, curves[(1.5, 1.5)].dw
    assert np.all(dw[(r > 1.6) & (r < target - 0.1)] > 0)
    assert np.all(dw[r > target + 0.2] < 0)


def test_ablated_is_bcm_like_and_exact_vanishes():
    x = np.linspace(0.0, 13.0, 801)
    curves = {c.rule: c for c in mc.ablated_curves(x)}
    c = mc.crossings(curves[(1.5, 1.5)].r_E, curves[(1.5, 1.5)].dw)
    assert c.dep_to_pot.size == 1 and c.pot_to_dep.size == 1
    assert c.dep_to_pot[0] < c.pot_to_dep[0]
    assert np.max(np.abs(curves["exact"].dw)) < 2e-3
    line = mc.crossing_line(curves["exact"])
    assert line.endswith("pot->dep r_E=none dep->pot r_E=none")


def test_isolated_threshold_is_theta_plus_delta_rI():
    u = np.linspace(0.0, 9.0, 901)
    for curve in mc.isolated_curves(u, fits=((1.5, 1.5),)):
        c = mc.crossings(curve.r_E, curve.dw)
        np.testing.assert_allclose(c.dep_to_pot, [1.5 + 1.5 * curve.r_I], atol=2e-3)
        assert c.pot_to_dep.size == 0


def test_crossing_line_format():
    x = np.linspace(0.0, 10.0, 501)
    line = mc.crossing_line(mc.topdown_curves(x, 4.0, fits=((1.5, 1.5),), exact=False)[0], prefix="figure=3")
    assert line.startswith("crossing: figure=3 protocol=topdown target=4 fit=(1.5,1.5) pot->dep r_E=")
    assert "dep->pot r_E=" in line


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="r_I"):
        mc.isolated_neuron(np.linspace(0, 1, 3), 0.0)
    with pytest.raises(ValueError, match="target"):
        mc.simulate(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="n_steps"):
        mc.simulate(np.zeros(3), None, n_steps=0)
    with pytest.raises(ValueError, match="x must be a 1-D grid"):
        mc.topdown_curves(np.zeros((2, 2)), 4.0)
