"""Plain NumPy, per-sample DGN loops: the reference that ``dgnlib.dgn`` is tested and timed against.

Two implementations of the same online computation (float64, in place, one sample at a time):

* ``implementation="literal"``: the colab's own arithmetic. Its gate-times-weights product is
  ``np.dot(g, w)`` with ``g`` of shape (N, B) and ``w`` of shape (N, B, I), which builds an
  (N, N, I) array per layer and sample and is then summed over the second neuron axis.
* ``implementation="vectorised"``: the same numbers, with the branch weights summed over
  neurons first (``g @ w.sum(0)``), or the per-neuron product for ``weight_form="per_neuron"``.

Only used by tests and benchmarks; it is deliberately written as a loop, independent of JAX and of
the rest of ``dgnlib.dgn`` (so it is not re-exported by the package: import ``dgnlib.dgn.reference``).
"""
from __future__ import annotations

import numpy as np

from ..checks import choice

__all__ = ["IMPLEMENTATIONS", "numpy_hyperplanes", "numpy_step", "run_numpy"]

EPS = 0.01
IMPLEMENTATIONS = ("literal", "vectorised")
WEIGHT_FORMS = ("colab", "per_neuron")


def numpy_hyperplanes(n_features, n_neurons, n_branches, seed=12345):
    """The colab's gating hyperplanes, drawn as the colab draws them.

    Arguments:
        n_features, n_neurons, n_branches: the sizes.
        seed: seeds NumPy's *global* legacy RNG (as the colab does), then one normal draw per layer.

    Returns:
        A list of arrays ``(N_k, B, d + 1)``, each neuron's hyperplanes divided by the Frobenius
        norm of their first ``d`` entries."""
    np.random.seed(seed)
    planes = []
    for n in n_neurons:
        h = np.random.normal(0, 1, size=(n, n_branches, n_features + 1))
        planes.append(h / np.linalg.norm(h[:, :, :-1], axis=(1, 2))[:, None, None])
    return planes


def _sigmoid(x):
    return np.exp(-np.logaddexp(0, -x))


def _logit(p):
    return np.log(p / (1 - p))


def _effective(g, w, implementation, weight_form):
    if weight_form == "per_neuron":
        return np.einsum("nb,nbi->ni", g, w)
    if implementation == "literal":
        return np.dot(g, w).sum(axis=1)  # (N, N, I) intermediate, as in the colab
    return g @ w.sum(axis=0)


def numpy_step(weights, planes, x, y, learning_rate, classification, update=True, implementation="vectorised",
               weight_form="colab"):
    """One sample through all layers, in float64, the colab's way.

    Arguments:
        weights: per layer ``(N_k, B, I_k)`` NumPy arrays, updated in place when ``update``.
        planes: per layer the hyperplanes ``(N_k, B, d + 1)``.
        x: the sample ``(d,)``; y: its target.
        learning_rate: the step size.
        classification: Bernoulli (``True``) or square loss.
        update: learn from this sample (``False``: predict only).
        implementation: ``"literal"`` or ``"vectorised"`` (see the module docstring).
        weight_form: ``"colab"`` or ``"per_neuron"``.

    Returns:
        The prediction made before the update, a float.
    """
    side = np.concatenate([[1.0], x])
    if classification:
        r_in = np.clip(_sigmoid(x), EPS, 1 - EPS)
    else:
        r_in = x
    for w, h in zip(weights, planes):
        g = (h @ side > 0).astype(np.float64)  # (N, B)
        eff = _effective(g, w, implementation, weight_form)  # (N, I)
        if classification:
            r_in = np.concatenate([[_sigmoid(1.0)], r_in])
            h_in = _logit(r_in)
            r_unclipped = _sigmoid(eff @ h_in)
            r_out = np.clip(r_unclipped, EPS, 1 - EPS)
            if update:
                learn = np.abs(y - r_unclipped) > EPS
                grad = np.outer((r_out - y) * learn, h_in)
                w -= learning_rate * g[:, :, None] * grad[:, None, :]
        else:
            r_in = np.concatenate([[1.0], r_in])
            r_out = eff @ r_in
            if update:
                grad = np.outer(r_out - y, r_in)
                w -= learning_rate * g[:, :, None] * grad[:, None, :]
        r_in = r_out
    return float(r_in[0])


def _loss(y, pred, classification):
    if classification:
        return -(y * np.log(pred) + (1 - y) * np.log(1 - pred))
    return (y - pred) ** 2 / 2


def run_numpy(data, n_neurons=(100, 10, 1), n_branches=20, learning_rate=1e-4, epochs=3,
              classification=True, seed=12345, implementation="vectorised",
              weight_form="colab", planes=None, return_weights=False):
    """The colab's whole protocol, one sample at a time.

    Arguments:
        data: ``x_train, y_train, x_test, y_test`` (:class:`dgnlib.dgn.TabularData`).
        n_neurons, n_branches: the architecture.
        learning_rate: the step size.
        epochs: training passes; epoch 0 evaluates the untrained network.
        classification: Bernoulli (``True``) or square loss.
        seed: for :func:`numpy_hyperplanes` when ``planes`` is not given.
        implementation: ``"literal"`` or ``"vectorised"``.
        weight_form: ``"colab"`` or ``"per_neuron"``.
        planes: the hyperplanes to use (e.g. ``dgnlib.dgn.init_colab``'s).
        return_weights: also return the final weights.

    Returns:
        A list of per-epoch dicts with ``epoch``, ``train_loss``, ``test_loss`` and, for
        classification, ``*_accuracy``; with ``return_weights=True``, ``(history, final weights as
        a list of (N_k, B, I_k) arrays)``."""
    choice("implementation", implementation, IMPLEMENTATIONS)
    choice("weight_form", weight_form, WEIGHT_FORMS)
    if planes is None:
        planes = numpy_hyperplanes(data.x_train.shape[1], n_neurons, n_branches, seed)
    n_inputs = [data.x_train.shape[1] + 1] + [n + 1 for n in n_neurons[:-1]]
    weights = [np.zeros((n, n_branches, i)) for n, i in zip(n_neurons, n_inputs)]
    history = []
    for epoch in range(epochs + 1):
        record = {"epoch": epoch}
        for split, xs, ys in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
            update = split == "train" and epoch > 0
            preds = np.array([
                numpy_step(weights, planes, x, y, learning_rate, classification, update, implementation,
                           weight_form)
                for x, y in zip(xs, ys)
            ])
            record[f"{split}_loss"] = float(np.mean(_loss(ys, preds, classification)))
            if classification:
                record[f"{split}_accuracy"] = float(np.mean(np.round(preds) == ys))
        history.append(record)
    return (history, weights) if return_weights else history
