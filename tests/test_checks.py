"""dgnlib.checks: each check accepts what it should and names the argument and the value otherwise."""
import numpy as np
import pytest

from dgnlib import checks


def test_choice():
    assert checks.choice("rule", "bp", ("bp", "exact")) == "bp"
    with pytest.raises(ValueError, match=r"rule must be one of \('bp', 'exact'\), got 'linear'"):
        checks.choice("rule", "linear", ["bp", "exact"])
    with pytest.raises(ValueError, match="rule must be one of"):
        checks.choice("rule", None, ("bp",))


def test_positive_int():
    assert checks.positive_int("epochs", np.int64(3)) == 3
    assert checks.positive_int("epochs", 0, minimum=0) == 0
    for bad in (0, -1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=r"epochs must be an int >= 1, got"):
            checks.positive_int("epochs", bad)


def test_numbers():
    assert checks.finite_number("scale", np.float32(2.5)) == 2.5
    assert checks.positive_number("learning_rate", 1e-3) == 1e-3
    arr = np.array([1e-3, 1e-2])
    assert checks.positive_number("learning_rate", arr) is arr
    for bad in ("1e-3", b"1", None, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="scale must be a"):
            checks.finite_number("scale", bad)
    for bad in (0.0, -1e-3, np.array([1e-3, 0.0]), np.array([np.nan]), np.array(["a"])):
        with pytest.raises(ValueError, match="learning_rate must"):
            checks.positive_number("learning_rate", bad)


def test_finite_and_labels():
    x = np.ones((3, 2), np.float32)
    assert checks.check_finite(x, "x") is x
    x[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"x must be finite, but 1 of its 6 values .* index \(1, 0\)"):
        checks.check_finite(x, "x")
    y = np.array([0, 2, 1])
    assert checks.check_labels(y, 3, "y") is y
    with pytest.raises(ValueError, match=r"y must hold class labels in 0..1 \(2 classes\), got 1 of 3"):
        checks.check_labels(y, 2, "y")
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        checks.check_labels(y.astype(float), 3, "y")
