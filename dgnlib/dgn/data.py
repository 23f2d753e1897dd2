"""The two tabular problems of the DGN colab, from scikit-learn's bundled data sets.

* ``"classification"``: ``load_breast_cancer`` (569 x 30, binary targets).
* ``"regression"``: ``load_diabetes`` (442 x 10, targets standardised).

Both are split with ``train_test_split(test_size=0.2, random_state=0)`` (455/114 and
353/89) and standardised with a ``StandardScaler`` fitted on the training split,
exactly as the colab does. Nothing is downloaded: the data ship with scikit-learn.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import choice

__all__ = ["TabularData", "load_problem", "PROBLEMS"]

PROBLEMS = ("classification", "regression")


class TabularData(NamedTuple):
    """Train/test arrays. ``x_*``: ``(n, d)`` float64; ``y_*``: ``(n,)`` float64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self) -> int:
        """The input dimension ``d``."""
        return self.x_train.shape[1]


def load_problem(problem: str, test_size: float = 0.2, random_state: int = 0) -> TabularData:
    """Load and preprocess the colab's classification or regression problem.

    Arguments:
        problem: ``"classification"`` (breast cancer) or ``"regression"`` (diabetes).
        test_size: the test fraction of ``train_test_split`` (the colab's 0.2).
        random_state: its seed (the colab's 0).

    Returns:
        A :class:`TabularData`, features standardised with the training split's statistics (and
        the regression targets too).
    """
    choice("problem", problem, PROBLEMS)
    try:
        from sklearn import datasets
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
    except ImportError as err:  # pragma: no cover - scikit-learn is a core dependency
        raise ImportError(
            "load_problem needs scikit-learn: pip install scikit-learn"
        ) from err
    if problem == "classification":
        features, targets = datasets.load_breast_cancer(return_X_y=True)
    else:
        features, targets = datasets.load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, targets, test_size=test_size, random_state=random_state
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    if problem == "regression":
        y_scaler = StandardScaler().fit(y_train[:, None])
        y_train = y_scaler.transform(y_train[:, None]).squeeze(1)
        y_test = y_scaler.transform(y_test[:, None]).squeeze(1)
    as64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    return TabularData(as64(x_train), as64(y_train), as64(x_test), as64(y_test))
