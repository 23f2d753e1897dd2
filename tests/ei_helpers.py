"""Shared small E/I problems for the dis-inhibitory tests (same shapes, so compiled solvers are reused)."""
import jax

from dgnlib.dic.network import init_params

S1 = (12, 16, 10)            # 1 hidden layer
S3 = (12, 16, 16, 16, 10)    # 3 hidden layers


def make_problem(sizes, seed, B=4):
    """Random params, inputs in [0, 2) ``(B, n_in)`` and one-hot targets ``(B, K)``."""
    kp, kx, ky = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = init_params(kp, sizes)
    x = 2.0 * jax.random.uniform(kx, (B, sizes[0]))
    y = jax.nn.one_hot(jax.random.randint(ky, (B,), 0, sizes[-1]), sizes[-1])
    return params, x, y
