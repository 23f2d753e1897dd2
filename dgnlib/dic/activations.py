"""Soft-rectifier activation used by the dis-inhibitory microcircuits.

``phi(u) = a * log(1 + exp(beta * (u - s)))`` with scale ``a``, sharpness ``beta``
and shift ``s``. Plain softplus is ``SoftRectifier(1, 1, 0)``.

All methods are elementwise and jit/vmap friendly; ``SoftRectifier`` is a pytree
(its three numbers are leaves), so it can be passed into jitted functions.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["SoftRectifier", "softplus", "linearised_inverse"]


class SoftRectifier(NamedTuple):
    """``phi(u) = a * softplus(beta * (u - s))``."""

    a: float = 1.0
    beta: float = 1.0
    s: float = 0.0

    def __call__(self, u):
        return self.a * jax.nn.softplus(self.beta * (u - self.s))

    def slope(self, u):
        """``phi'(u) = a * beta * sigmoid(beta * (u - s))``."""
        return self.a * self.beta * jax.nn.sigmoid(self.beta * (u - self.s))

    def inverse(self, r):
        """``phi^-1(r) = s + log(expm1(r / a)) / beta`` for ``r > 0``.

        For large ``r / a`` the identity ``log(expm1(z)) = z + log1p(-exp(-z))``
        is used, which avoids overflow. ``r <= 0`` has no preimage and gives -inf/nan.
        """
        z = r / self.a
        big = z > 20.0
        z_small = jnp.where(big, 1.0, z)
        small_branch = jnp.log(jnp.expm1(z_small))
        big_branch = z + jnp.log1p(-jnp.exp(-jnp.where(big, z, 20.0)))
        return self.s + jnp.where(big, big_branch, small_branch) / self.beta


softplus = SoftRectifier(1.0, 1.0, 0.0)


def linearised_inverse(phi: SoftRectifier, y0):
    """First-order Taylor model of ``phi^-1`` around the rate ``y0``.

    Returns ``(theta, delta)`` with ``phi^-1(r) ~ theta + delta * r``:
    ``delta = 1 / phi'(phi^-1(y0))`` and ``theta = phi^-1(y0) - y0 * delta``.
    Works elementwise on arrays of ``y0``.
    """
    u0 = phi.inverse(y0)
    delta = 1.0 / phi.slope(u0)
    theta = u0 - y0 * delta
    return theta, delta
