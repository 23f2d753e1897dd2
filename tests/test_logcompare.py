"""The CI's numeric log comparison."""
import pytest

from logcompare import Tolerance, compare_lines, select_lines, split_line

SEED = "epoch: 9, test loss: 0.275 (train: 0.285)"


def test_split_line():
    text, numbers = split_line("epoch: 9, test loss: 0.275 (train: 1e-3) -2.5")
    assert text == "epoch: #, test loss: # (train: #) #"
    assert numbers == [9.0, 0.275, 0.001, -2.5]


def test_one_unit_in_the_last_digit_passes():
    assert compare_lines(["epoch: 9, test loss: 0.275 (train: 0.286)"], [SEED], Tolerance(abs=0.001)) == []


def test_drift_fails_with_readable_diff():
    problems = compare_lines(["epoch: 9, test loss: 0.277 (train: 0.285)"], [SEED], Tolerance(abs=0.001))
    assert len(problems) == 1
    assert "expected 0.275, got 0.277" in problems[0]


def test_nan_fails():
    assert compare_lines(["epoch: 9, test loss: nan (train: 0.285)"], [SEED], Tolerance(abs=1.0))


def test_text_and_count_mismatches():
    assert "text differs" in compare_lines(["epoch: 9, test LOSS: 0.275 (train: 0.285)"], [SEED], Tolerance())[0]
    problems = compare_lines([], [SEED], Tolerance())
    assert problems[0] == "expected 1 log lines, got 0" and "missing" in problems[1]
    assert "unexpected" in compare_lines([SEED, SEED], [SEED], Tolerance(abs=0.001))[-1]


def test_relative_tolerance_and_overrides():
    tol = Tolerance.from_dict({"rel": 0.05, "overrides": [{"match": r"\(CL\)", "rel": 0.25}]})
    assert compare_lines(["MSE (OL): 1.04"], ["MSE (OL): 1.0"], tol) == []
    assert compare_lines(["MSE (OL): 1.06"], ["MSE (OL): 1.0"], tol)
    assert compare_lines(["MSE (CL): 1.2"], ["MSE (CL): 1.0"], tol) == []
    with pytest.raises(ValueError, match="unknown keys"):
        Tolerance.from_dict({"absolute": 1})


def test_select_lines():
    text = "header\nepoch: 0, x 1\n\nother\nepoch: 1, x 2\n"
    assert select_lines(text, "^epoch: ") == ["epoch: 0, x 1", "epoch: 1, x 2"]
    assert select_lines(text, None) == ["header", "epoch: 0, x 1", "other", "epoch: 1, x 2"]
