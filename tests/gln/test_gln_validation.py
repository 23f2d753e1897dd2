"""Bad input to dgnlib.gln fails at the boundary with a ValueError naming the argument."""
import math

import jax
import numpy as np
import pytest

from dgnlib import gln

D = 6


@pytest.mark.parametrize("kwargs, name", [
    (dict(gating="tree"), "gating"),
    (dict(n_classes=1), "n_classes"),
    (dict(n_neurons=(4, 2)), "n_neurons"),
    (dict(n_neurons=()), "n_neurons"),
    (dict(n_neurons=(4, 0, 1)), "n_neurons\\[1\\]"),
    (dict(n_neurons=5), "n_neurons"),
    (dict(context_dim=0), "context_dim"),
    (dict(context_dim=17), "context_dim"),
    (dict(n_branches=0), "n_branches"),
    (dict(shared_gates="yes"), "shared_gates"),
    (dict(eps=0.5), "eps"),
    (dict(eps=float("nan")), "eps"),
    (dict(weight_clip=0.0), "weight_clip"),
    (dict(saturation_rule="never"), "saturation_rule"),
    (dict(initial_weight="random"), "initial_weight"),
    (dict(hyperplane_offset=-1.0), "hyperplane_offset"),
    (dict(standardise=1), "standardise"),
])
def test_bad_config(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gln.GLNConfig(**kwargs)
    with pytest.raises(ValueError, match=name):
        gln.GLNConfig()._replace(**kwargs)


def test_config_is_hashable_and_unclipped_weights_allowed():
    cfg = gln.GLNConfig(weight_clip=math.inf)
    assert hash(cfg) == hash(gln.GLNConfig(weight_clip=math.inf))
    with pytest.raises(TypeError, match="cfg"):
        gln.validate_config((10,))


@pytest.mark.parametrize("make, name", [
    (lambda: gln.constant(0.0), "learning_rate"),
    (lambda: gln.constant(float("nan")), "learning_rate"),
    (lambda: gln.constant("0.1"), "learning_rate"),
    (lambda: gln.decaying(-1.0, 1.0, 0.1), "maximum"),
    (lambda: gln.decaying(0.1, 0.0, 0.1), "scale"),
    (lambda: gln.decaying(0.1, 1.0, -0.1), "decay"),
])
def test_bad_schedule(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def _setup(**kw):
    cfg = gln.GLNConfig(n_classes=3, n_neurons=(2, 1), context_dim=2, n_branches=2, **kw)
    params, gating = gln.init(jax.random.PRNGKey(0), D, cfg)
    rng = np.random.default_rng(0)
    return cfg, params, gating, rng.random((20, D)).astype(np.float32), rng.integers(0, 3, 20)


def test_bad_data():
    cfg, params, gating, x, y = _setup()
    with pytest.raises(ValueError, match="x must be a non-empty"):
        gln.train(params, gating, x[0], y, 0.01, cfg)
    with pytest.raises(ValueError, match="x must be a non-empty"):
        gln.train(params, gating, x[:0], y[:0], 0.01, cfg)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="x must be finite"):
        gln.train(params, gating, bad, y, 0.01, cfg)
    with pytest.raises(ValueError, match="labels must be a 1-D array of 20"):
        gln.train(params, gating, x, y[:-1], 0.01, cfg)
    with pytest.raises(ValueError, match="labels must hold class labels in 0..2"):
        gln.train(params, gating, x, y + 1, 0.01, cfg)
    with pytest.raises(ValueError, match="labels must hold integer"):
        gln.train(params, gating, x, y.astype(float), 0.01, cfg)
    with pytest.raises(ValueError, match="learning_rate"):
        gln.train(params, gating, x, y, -0.01, cfg)
    with pytest.raises(ValueError, match="chunk_size"):
        gln.train(params, gating, x, y, 0.01, cfg, chunk_size=0)
    with pytest.raises(ValueError, match=r"must have shape .* inputs of 5 features"):
        gln.train(params, gating, x[:, :-1], y, 0.01, cfg)
    cfg_raw = cfg._replace(standardise=False)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        gln.train(params, gating, x * 2, y, 0.01, cfg_raw)
    with pytest.raises(ValueError, match="x must be a non-empty"):
        gln.scores(params, gating, gln.init_moments(D), x[0], cfg)


def test_params_that_do_not_fit_the_config():
    cfg, params, gating, x, y = _setup()
    other = cfg._replace(gating="dgn", n_branches=3)
    with pytest.raises(ValueError, match=r"params.weights\[0\] must have shape"):
        gln.train(params, gating, x, y, 0.01, other)
    shared = cfg._replace(shared_gates=True)
    with pytest.raises(ValueError, match=r"gating.hyperplanes\[0\] must have shape"):
        gln.train(params, gating, x, y, 0.01, shared)
    with pytest.raises(ValueError, match="must have 3 layers"):
        gln.train(params, gating, x, y, 0.01, cfg._replace(n_neurons=(2, 2, 1)))
    with pytest.raises(ValueError, match="n_features"):
        gln.init(jax.random.PRNGKey(0), 0, cfg)


def test_deskew_checks_and_keeps_dtype():
    with pytest.raises(ValueError, match="images must be square"):
        gln.deskew(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="images must be"):
        gln.deskew(np.zeros(10))
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 5:23, 10:13] = 255
    out = gln.deskew(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert (gln.deskew(np.zeros((2, 784), np.uint8)) == 0).all()
