"""The two tabular problems of the DGN colab, from scikit-learn's bundled data sets.

* ``"classification"``: ``load_breast_cancer`` (569 x 30, binary targets).
* ``"regression"``: ``load_diabetes`` (442 x 10, targets standardised).

Both are split with ``train_test_split(test_size=0.2, random_state=0)`` (455/114 and
353/89) and standardised with a ``StandardScaler`` fitted on the training split,
exactly as the colab does. Nothing is downloaded: the data ship with scikit-learn.

Importing scikit-learn takes longer than everything else a warm DGN notebook does but start its
kernel and import JAX, so ``load_problem(..., cache_dir=DIR)`` keeps the preprocessed arrays in
``DIR`` (a ``.npz`` file per problem, split and scikit-learn version) and later calls read them back,
bit for bit, without importing scikit-learn.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from ..atomic import atomic_path
from ..checks import choice, finite_number

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


def load_problem(problem: str, test_size: float = 0.2, random_state: int = 0,
                 cache_dir: Optional[os.PathLike] = None) -> TabularData:
    """Load and preprocess the colab's classification or regression problem.

    Arguments:
        problem: ``"classification"`` (breast cancer) or ``"regression"`` (diabetes).
        test_size: the test fraction of ``train_test_split`` (the colab's 0.2).
        random_state: its seed (the colab's 0).
        cache_dir: a folder for the preprocessed arrays (e.g. ``dgnlib.runtime.default_cache_dir() /
            "data"``), or None (the default) to compute them every time. A cached file is named by the
            problem, ``test_size``, ``random_state`` and the installed scikit-learn version, so a new
            scikit-learn computes (and caches) them again.

    Returns:
        A :class:`TabularData`, features standardised with the training split's statistics (and
        the regression targets too); the same arrays, bit for bit, whether read from the cache or not.
    """
    choice("problem", problem, PROBLEMS)
    if cache_dir is None or not isinstance(random_state, (int, np.integer)) or isinstance(random_state, bool):
        return _preprocessed(problem, test_size, random_state)  # a random split (None) is not cached
    path = Path(cache_dir) / _cache_name(problem, test_size, random_state)
    if path.is_file():
        try:
            with np.load(path) as f:
                return TabularData(*(f[name] for name in TabularData._fields))
        except (OSError, KeyError, ValueError):  # damaged or foreign: computed again and rewritten below
            pass
    data = _preprocessed(problem, test_size, random_state)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **data._asdict())
    return data


def _cache_name(problem: str, test_size, random_state) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        sklearn_version = version("scikit-learn")
    except PackageNotFoundError:  # pragma: no cover - scikit-learn is a core dependency
        sklearn_version = "unknown"
    finite_number("test_size", test_size)  # a fraction (float) or a count (int), as scikit-learn reads it
    # "prep1": how the arrays are prepared here; a change to _preprocessed must change it
    return f"{problem}-test_size{test_size}-random_state{int(random_state)}-sklearn{sklearn_version}-prep1.npz"


def _preprocessed(problem: str, test_size, random_state) -> TabularData:
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
