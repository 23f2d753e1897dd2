"""The splits of the one-pass experiments, from the offline MNIST / Fashion-MNIST loaders.

The 60,000 training images in file order give three things: the validation split (the first
``n_validation``, as :func:`dgnlib.vision.load_arrays`), the search stream (the images after it,
on which hyper-parameters are chosen by validation accuracy) and the final stream (all training
images, validation included: one online pass, evaluated on the test split).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from ..checks import positive_int
from .preprocess import deskew as deskew_images

__all__ = ["OnePassData", "load_one_pass_data"]


class OnePassData(NamedTuple):
    """uint8 pixels ``(n, 784)`` and int labels of each split; ``name`` the data set."""

    x_search: np.ndarray
    y_search: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str


def load_one_pass_data(dataset: str, n_train: Optional[int] = None, n_validation: int = 6000,
                       n_test: Optional[int] = None, deskew: bool = False, **load_kwargs) -> OnePassData:
    """Load a data set offline and cut the splits of the one-pass experiments.

    Arguments:
        dataset: "mnist" or "fashion_mnist" (:func:`dgnlib.vision.load_dataset`).
        n_train: images of the final stream (the first ``n_train`` training images; None: all 60,000).
            The search stream is images ``n_validation .. n_train - 1``.
        n_validation: validation images (the first ``n_validation``; fewer than ``n_train``).
        n_test: test images (the first ``n_test``; None: all 10,000).
        deskew: deskew every image (:func:`dgnlib.gln.deskew`; meant for digits).
        **load_kwargs: passed to :func:`dgnlib.vision.load_dataset`.

    Returns:
        An :class:`OnePassData`.
    """
    from ..vision import load_dataset

    data = load_dataset(dataset, **load_kwargs)
    x, y = data.x_train.reshape(len(data.x_train), -1), np.asarray(data.y_train)
    xt, yt = data.x_test.reshape(len(data.x_test), -1), np.asarray(data.y_test)
    n_train = len(x) if n_train is None else positive_int("n_train", n_train)
    n_test = len(xt) if n_test is None else positive_int("n_test", n_test)
    positive_int("n_validation", n_validation)
    if n_train > len(x):
        raise ValueError(f"n_train must be at most {len(x)} (training images of {dataset}), got {n_train}")
    if n_test > len(xt):
        raise ValueError(f"n_test must be at most {len(xt)} (test images of {dataset}), got {n_test}")
    if n_validation >= n_train:
        raise ValueError(f"n_validation must be below n_train={n_train} (the search stream follows it), "
                         f"got {n_validation}")
    x, xt = x[:n_train], xt[:n_test]
    if deskew:
        x, xt = deskew_images(x), deskew_images(xt)
    return OnePassData(x[n_validation:], y[n_validation:n_train], x[:n_validation], y[:n_validation],
                       x, y[:n_train], xt, yt[:n_test], dataset)
