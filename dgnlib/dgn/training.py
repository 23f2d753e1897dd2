"""Online training of DGNs: one jitted ``lax.scan`` per epoch, vmapped evaluation, whole runs,
many networks at once, and the colab's printed epoch log.

The protocol is the colab's: epoch 0 evaluates the untrained network on both splits; each later
epoch is one online pass over the training split (the reported train metrics are those of the
predictions made sample by sample *before* each update) followed by an evaluation of the test split.
"""
from __future__ import annotations

import contextlib
import warnings
from functools import partial
from typing import Callable, Iterator, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .model import DGNConfig, DGNParams, _forward, gates, predict, sample_loss, step, validate_config

__all__ = [
    "PRECISIONS", "precision", "validate_data", "train_epoch", "evaluate", "epoch_metrics",
    "run", "run_many", "iterate_epochs", "fit", "format_epoch_line", "header_lines", "RunResult",
    "DivergenceWarning", "diverged_epoch",
]

PRECISIONS = ("float32", "float64")


def precision(name: str):
    """Context manager for a run's floating-point precision.

    ``"float64"`` enables JAX's 64-bit mode inside the block only (the colab computes in
    float64); ``"float32"`` is JAX's default and changes nothing.
    """
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
    if name == "float64":
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _dtype(name):
    return jnp.float64 if name == "float64" else jnp.float32


def validate_data(x, y, n_features: int, cfg: DGNConfig, name: str = "x"):
    """Check one split: ``x`` ``(n, d)`` finite with ``d == n_features``; ``y`` ``(n,)`` finite,
    and in {0, 1} for the Bernoulli loss. Returns NumPy float64 copies."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    cfg = validate_config(cfg)
    yname = "y" + name[1:]
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_features), got shape {x.shape}")
    if x.shape[1] != n_features:
        raise ValueError(
            f"{name} has {x.shape[1]} features but the network was built for n_features={n_features}"
        )
    if y.shape != (x.shape[0],):
        raise ValueError(f"{yname} must have shape ({x.shape[0]},) to match {name}, got {y.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no samples")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{yname} contains NaN or infinite values")
    if cfg.loss == "bernoulli" and not np.all((y == 0) | (y == 1)):
        bad = np.unique(y[(y != 0) & (y != 1)])[:5]
        raise ValueError(
            f"{yname} must hold binary targets 0/1 for the Bernoulli DGN, got values such as {bad}"
        )
    return x, y


def _n_features(params: DGNParams) -> int:
    return params.hyperplanes[0].shape[-1] - 1


def _check_lr(lr):
    a = np.asarray(lr)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")


@partial(jax.jit, static_argnames=("cfg",))
def train_epoch(params: DGNParams, x, y, lr, cfg: DGNConfig = DGNConfig(), layer_gates=None):
    """One online pass over ``x`` ``(n, d)``, ``y`` ``(n,)`` in order, updating after each sample.

    Returns ``(params, predictions (n,))``, each prediction made before its sample's update.
    ``layer_gates`` (``gates(params.hyperplanes, x)``) may be passed to reuse them across epochs.
    """
    cfg = validate_config(cfg)  # at trace time: free in the compiled program
    if layer_gates is None:
        layer_gates = gates(params.hyperplanes, x)
    if cfg.weight_form == "colab":
        return _train_epoch_colab(params, x, y, lr, cfg, layer_gates)

    def body(p, sample):
        xi, yi, gi = sample
        return step(p, xi, yi, lr, cfg, layer_gates=gi)

    return jax.lax.scan(body, params, (x, y, layer_gates))


# --- The colab form on neuron-summed weights -------------------------------------------------
# In the colab form a neuron reads only W[b, i] = sum_m w[m, b, i], and the local update
# w[n, b, i] -= lr g[n, b] err[n] in[i] moves that sum by -lr (sum_n g[n, b] err[n]) in[i]. So a
# pass can carry the small (B, I_k) sums instead of the (N_k, B, I_k) weights, record each sample's
# errors (N_k,) and layer inputs (I_k,), and rebuild the per-neuron weights afterwards with one
# matrix product per layer. Same numbers as dgnlib.dgn.model.step up to round-off, far less memory traffic.


def _summed_pass(sums, x, y, lr, cfg, layer_gates):
    """Online pass on summed weights. Returns ``(sums, preds (n,), errors, inputs)`` where
    ``errors[k]`` is ``(n, N_k)`` and ``inputs[k]`` is ``(n, I_k)``."""

    def body(sums, sample):
        xi, yi, gi = sample
        pred, local = _forward(sums, gi, xi, yi, cfg, summed=True)
        sums = tuple(
            s - lr * jnp.einsum("n,nb->b", err, g)[:, None] * inp[None, :]  # sum_n g[n,b] err[n]
            for s, g, (err, inp) in zip(sums, gi, local)
        )
        return sums, (pred, tuple(err for err, _ in local), tuple(inp for _, inp in local))

    sums, (preds, errors, inputs) = jax.lax.scan(body, sums, (x, y, layer_gates))
    return sums, preds, errors, inputs


def _rebuild_weights(weights, layer_gates, errors, inputs, lr):
    """``w - lr * sum_t g_t[n, b] err_t[n] in_t[i]`` per layer; the ``t`` axis may span epochs."""
    return tuple(
        w - lr * jnp.einsum("tnb,tn,ti->nbi", g, err, inp)
        for w, g, err, inp in zip(weights, layer_gates, errors, inputs)
    )


def _summed_predictions(sums, x, cfg, layer_gates):
    forward = lambda xi, gi: _forward(sums, gi, xi, 0.0, cfg, summed=True)[0]  # noqa: E731
    return jax.vmap(forward)(x, layer_gates)


def _train_epoch_colab(params, x, y, lr, cfg, layer_gates):
    sums = tuple(w.sum(axis=0) for w in params.weights)
    _, preds, errors, inputs = _summed_pass(sums, x, y, lr, cfg, layer_gates)
    weights = _rebuild_weights(params.weights, layer_gates, errors, inputs, lr)
    return DGNParams(weights, params.hyperplanes), preds


@partial(jax.jit, static_argnames=("cfg",))
def evaluate(params: DGNParams, x, cfg: DGNConfig = DGNConfig(), layer_gates=None):
    """Predictions ``(n,)`` for ``x`` ``(n, d)`` without learning."""
    cfg = validate_config(cfg)
    if layer_gates is None:
        layer_gates = gates(params.hyperplanes, x)
    return jax.vmap(predict, in_axes=(None, 0, None, 0))(params, x, cfg, layer_gates)


def epoch_metrics(y, preds, cfg: DGNConfig = DGNConfig()) -> dict:
    """Mean loss and, for the Bernoulli loss, accuracy ``mean(round(pred) == y)`` over the last axis."""
    cfg = validate_config(cfg)
    out = {"loss": jnp.mean(sample_loss(y, preds, cfg), axis=-1)}
    if cfg.loss == "bernoulli":
        # in the predictions' precision (a mean of booleans would be float32 even in a float64 run)
        out["accuracy"] = jnp.mean((jnp.round(preds) == y).astype(jnp.result_type(preds)), axis=-1)
    return out


@partial(jax.jit, static_argnames=("epochs", "cfg"))
def _run(params, x_train, y_train, x_test, y_test, lr, epochs, cfg):
    g_train = gates(params.hyperplanes, x_train)  # fixed for the whole run
    g_test = gates(params.hyperplanes, x_test)
    train0 = evaluate(params, x_train, cfg, g_train)
    test0 = evaluate(params, x_test, cfg, g_test)
    if cfg.weight_form == "colab":
        # carry the summed weights through all epochs; rebuild per-neuron weights once at the end
        def one_epoch(sums, _):
            sums, train_preds, errors, inputs = _summed_pass(sums, x_train, y_train, lr, cfg, g_train)
            return sums, (train_preds, _summed_predictions(sums, x_test, cfg, g_test), errors, inputs)

        sums0 = tuple(w.sum(axis=0) for w in params.weights)
        _, (train_preds, test_preds, errors, inputs) = jax.lax.scan(one_epoch, sums0, None, length=epochs)
        flat = lambda a: a.reshape((-1,) + a.shape[2:])  # noqa: E731  (epochs, n, ...) -> (epochs * n, ...)
        tiled = tuple(jnp.tile(g, (epochs, 1, 1)) for g in g_train)
        weights = _rebuild_weights(params.weights, tiled, tuple(map(flat, errors)), tuple(map(flat, inputs)), lr)
        params = DGNParams(weights, params.hyperplanes)
    else:
        def one_epoch(p, _):
            p, train_preds = train_epoch(p, x_train, y_train, lr, cfg, g_train)
            return p, (train_preds, evaluate(p, x_test, cfg, g_test))

        params, (train_preds, test_preds) = jax.lax.scan(one_epoch, params, None, length=epochs)
    train_preds = jnp.concatenate([train0[None], train_preds])
    test_preds = jnp.concatenate([test0[None], test_preds])
    return params, train_preds, test_preds


@partial(jax.jit, static_argnames=("epochs", "cfg", "chunk_size"))
def _run_many(params, x_train, y_train, x_test, y_test, lr, epochs, cfg, chunk_size):
    run_one = partial(_run.__wrapped__, epochs=epochs, cfg=cfg)
    # batch_size=None: a plain sequential map (batch_size=1 would add size-1 vmapped axes)
    return jax.lax.map(lambda a: run_one(a[0], x_train, y_train, x_test, y_test, a[1]), (params, lr),
                       batch_size=None if chunk_size == 1 else chunk_size)


def _auto_chunk_size(n_nets: int) -> int:
    # On the CPU the per-sample loop is bound by dispatch, and XLA runs one network's small
    # operations faster than a vmapped batch of them (measured: 32 seeds, 0.75 s one after another
    # against 1.3 s all vmapped, on 2 cores); accelerators want the whole batch at once.
    return 1 if jax.default_backend() == "cpu" else n_nets


class RunResult(NamedTuple):
    """A whole run. Metric arrays have shape ``(epochs + 1,)`` (``(S, epochs + 1)`` for
    :func:`run_many`); index 0 is the untrained network."""

    params: DGNParams
    train: dict
    test: dict


class DivergenceWarning(RuntimeWarning):
    """A DGN run diverged: its loss became NaN or infinite (the learning rate is too large for the
    weight form and loss). :func:`run`, :func:`run_many`, :func:`iterate_epochs` and :func:`fit`
    warn on the host after the compiled program has returned, naming the run, the first diverged
    epoch and the learning rate; the numbers they return are left as they are (NaN/inf)."""


def diverged_epoch(result: RunResult):
    """The first epoch whose train or test loss is not finite, or -1 where the run did not diverge.

    Arguments:
        result: a :class:`RunResult` of :func:`run` (metrics ``(epochs + 1,)``) or of
            :func:`run_many` (``(S, epochs + 1)``).

    Returns:
        An ``int`` for one run, an ``(S,)`` integer array for many.
    """
    bad = ~(np.isfinite(np.asarray(result.train["loss"])) & np.isfinite(np.asarray(result.test["loss"])))
    first = np.where(bad.any(axis=-1), bad.argmax(axis=-1), -1)
    return int(first) if first.ndim == 0 else first


def _divergence_text(epoch, lr, cfg, dtype, epochs):
    return (f"loss not finite from epoch {epoch} of {epochs} (learning rate {lr:g}, loss={cfg.loss!r}, "
            f"weight_form={cfg.weight_form!r}, {dtype})")


def _warn_if_diverged(result, lr, cfg, dtype, epochs, what):
    first = np.atleast_1d(diverged_epoch(result))
    bad = np.flatnonzero(first >= 0)
    if bad.size == 0:
        return
    lrs = np.broadcast_to(np.asarray(lr, dtype=float), first.shape)
    if what == "run":
        detail = "run diverged: " + _divergence_text(first[0], lrs[0], cfg, dtype, epochs)
    else:
        detail = f"run_many: {bad.size} of {first.size} networks diverged: " + "; ".join(
            f"network {i}: " + _divergence_text(first[i], lrs[i], cfg, dtype, epochs) for i in bad)
    warnings.warn(detail + ". Lower the learning rate.", DivergenceWarning, stacklevel=3)


def _prepare(params, data, cfg, dtype_name, lr):
    cfg = validate_config(cfg)
    n_features = _n_features(params)
    x_tr, y_tr = validate_data(data.x_train, data.y_train, n_features, cfg, "x_train")
    x_te, y_te = validate_data(data.x_test, data.y_test, n_features, cfg, "x_test")
    _check_lr(lr)
    dt = _dtype(dtype_name)
    cast = lambda a: jnp.asarray(a, dt)  # noqa: E731
    params = jax.tree_util.tree_map(cast, params)
    return cfg, params, [cast(a) for a in (x_tr, y_tr, x_te, y_te)], cast(lr)


def run(params: DGNParams, data, lr, epochs: int, cfg: DGNConfig = DGNConfig(),
        dtype: str = "float32") -> RunResult:
    """The colab's whole protocol for one network in one jitted call.

    ``data`` has ``x_train, y_train, x_test, y_test`` (see :class:`dgnlib.dgn.data.TabularData`).
    A run whose loss becomes NaN or infinite warns (:class:`DivergenceWarning`, checked on the host
    after the compiled program has returned) and returns its numbers as they are.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    with precision(dtype):
        cfg, params, (x_tr, y_tr, x_te, y_te), lr = _prepare(params, data, cfg, dtype, lr)
        params, tr, te = _run(params, x_tr, y_tr, x_te, y_te, lr, epochs, cfg)
        result = RunResult(params, epoch_metrics(y_tr, tr, cfg), epoch_metrics(y_te, te, cfg))
    _warn_if_diverged(result, lr, cfg, dtype, epochs, "run")
    return result


def run_many(params: DGNParams, data, lr, epochs: int, cfg: DGNConfig = DGNConfig(),
             dtype: str = "float32", chunk_size: Optional[int] = None) -> RunResult:
    """:func:`run` for ``S`` independent networks in one jitted call.

    ``params`` carries a leading axis ``S`` (:func:`dgnlib.dgn.model.init_many` or
    :func:`dgnlib.dgn.model.stack_params`); ``lr`` is a scalar or an ``(S,)`` array (a learning-rate sweep).
    The networks are vmapped in chunks of ``chunk_size`` that run one after another inside the
    compiled program (``jax.lax.map(..., batch_size=chunk_size)``); the default is 1 on the CPU,
    where that is fastest, and ``S`` (everything vmapped at once) on accelerators. The numbers do
    not depend on the chunking. One :class:`DivergenceWarning` names every network that diverged.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    first = params.hyperplanes[0]
    if first.ndim != 4:
        raise ValueError(
            "params must carry a leading networks axis (hyperplanes[0] of shape (S, N, B, d+1)), "
            f"got hyperplanes[0] of shape {first.shape}; use init_many or stack_params"
        )
    n_nets = first.shape[0]
    lr_arr = np.asarray(lr)
    if lr_arr.ndim not in (0, 1) or (lr_arr.ndim == 1 and lr_arr.shape[0] != n_nets):
        raise ValueError(f"lr must be a scalar or have shape ({n_nets},), got shape {lr_arr.shape}")
    with precision(dtype):
        one = jax.tree_util.tree_map(lambda a: a[0], params)
        cfg, _, (x_tr, y_tr, x_te, y_te), lr = _prepare(one, data, cfg, dtype, lr)
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, _dtype(dtype)), params)
        lr = jnp.broadcast_to(lr, (n_nets,))
        if chunk_size is None:
            chunk_size = _auto_chunk_size(n_nets)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not 1 <= chunk_size <= n_nets:
            raise ValueError(f"chunk_size must be an integer in [1, {n_nets}], got {chunk_size!r}")
        params, tr, te = _run_many(params, x_tr, y_tr, x_te, y_te, lr, epochs, cfg, chunk_size)
        result = RunResult(params, epoch_metrics(y_tr, tr, cfg), epoch_metrics(y_te, te, cfg))
    _warn_if_diverged(result, lr, cfg, dtype, epochs, "run_many")
    return result


@partial(jax.jit, static_argnames=("cfg",))
def _epoch_program(params, x_train, y_train, x_test, y_test, lr, cfg):
    """One epoch of the protocol as one compiled program: train pass, test pass, metrics.

    With ``lr = 0`` the train pass changes no weight (``w - 0 * update == w`` exactly), so its
    predictions are those of an evaluation: epoch 0 reuses this program instead of compiling another.
    """
    params, train_preds = train_epoch(params, x_train, y_train, lr, cfg)
    test_preds = evaluate(params, x_test, cfg)
    return params, epoch_metrics(y_train, train_preds, cfg), epoch_metrics(y_test, test_preds, cfg)


def iterate_epochs(params: DGNParams, data, lr, epochs: int, cfg: DGNConfig = DGNConfig(),
                   dtype: str = "float32") -> Iterator[dict]:
    """The colab's protocol epoch by epoch, for progress bars and live logs.

    Yields one dict per epoch ``0 .. epochs`` with ``epoch``, ``train_loss``, ``test_loss``
    (and ``train_accuracy``, ``test_accuracy`` for the Bernoulli loss) as Python floats, and
    ``params`` after that epoch. At the first epoch whose loss is not finite it warns once
    (:class:`DivergenceWarning`) and goes on.
    """
    yield from _iterate_epochs(params, data, lr, epochs, cfg, dtype, stacklevel=3)


def _iterate_epochs(params, data, lr, epochs, cfg, dtype, stacklevel):
    # stacklevel: the frame a DivergenceWarning points at (the user's, through iterate_epochs or fit)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    with precision(dtype):
        cfg, params, arrays, lr = _prepare(params, data, cfg, dtype, lr)
    diverged = False
    for epoch in range(epochs + 1):
        with precision(dtype):
            params, train, test = _epoch_program(params, *arrays, lr if epoch else 0 * lr, cfg)
            record = {"epoch": epoch}
            record.update({f"train_{k}": float(v) for k, v in train.items()})
            record.update({f"test_{k}": float(v) for k, v in test.items()})
        if not diverged and not (np.isfinite(record["train_loss"]) and np.isfinite(record["test_loss"])):
            diverged = True
            warnings.warn("run diverged: " + _divergence_text(epoch, float(lr), cfg, dtype, epochs)
                          + ". Lower the learning rate.", DivergenceWarning, stacklevel=stacklevel)
        record["params"] = params
        yield record


def format_epoch_line(record: dict) -> str:
    """The colab's epoch line, e.g.
    ``epoch: 1, test loss: 0.099 (train: 0.196), test accuracy: 0.974 (train: 0.963)``."""
    line = "epoch: {epoch}, test loss: {test_loss:.3f} (train: {train_loss:.3f})".format(**record)
    if "test_accuracy" in record:
        line += ", test accuracy: {test_accuracy:.3f} (train: {train_accuracy:.3f})".format(**record)
    return line


def header_lines(cfg: DGNConfig, epochs: int, lr) -> list:
    """The two lines printed before the epoch log."""
    cfg = validate_config(cfg)
    problem = "classification (Bernoulli log loss)" if cfg.loss == "bernoulli" else "regression (square loss)"
    return [
        f"Problem: {problem}, epochs: {epochs}, learning rate: {lr:g}",
        "Training online, one sample at a time; please be patient.",
    ]


def fit(params: DGNParams, data, lr, epochs: int, cfg: DGNConfig = DGNConfig(),
        dtype: str = "float32", progress: bool = True, log: Optional[Callable[[str], None]] = print):
    """Train with the colab's protocol, printing its header and one line per epoch.

    A tqdm progress bar (``tqdm.auto``: a widget in notebooks, stderr elsewhere) runs over the
    epochs without touching the printed log. Returns ``(params, history)``; ``history`` maps
    ``epoch``, ``train_loss``, ``test_loss`` (and the accuracies) to NumPy arrays of length
    ``epochs + 1``. A run whose loss becomes NaN or infinite warns (:class:`DivergenceWarning`).
    """
    from tqdm.auto import tqdm

    cfg = validate_config(cfg)
    if log is not None:
        for line in header_lines(cfg, epochs, float(np.asarray(lr))):
            log(line)
    history: dict = {}
    with tqdm(total=epochs + 1, desc="epochs", disable=not progress, leave=False) as bar:
        for record in _iterate_epochs(params, data, lr, epochs, cfg, dtype, stacklevel=3):
            params = record.pop("params")
            for key, value in record.items():
                history.setdefault(key, []).append(value)
            if log is not None:
                log(format_epoch_line(record))
            bar.update(1)
    return params, {k: np.asarray(v) for k, v in history.items()}
