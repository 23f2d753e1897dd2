"""Leaky proportional-integral (PI) controller of the dis-inhibitory circuits.

    c = k_p * e + k_i * c_int,        tau_c * d c_int / dt = e - lam * c_int,

with ``c_int`` starting at 0. At steady state ``c_int = e / lam`` so ``c = gain * e``
with ``gain = k_p + k_i / lam`` (:meth:`LeakyPI.steady_state_gain`).
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["LeakyPI"]


class LeakyPI(NamedTuple):
    """Parameters of the leaky PI controller (a pytree of four scalars)."""

    k_p: float = 0.2
    k_i: float = 0.4
    lam: float = 1.0
    tau_c: float = 0.1  # seconds (100 ms)

    def output(self, e, c_int):
        """Control signal ``c = k_p e + k_i c_int``."""
        return self.k_p * e + self.k_i * c_int

    def d_integral(self, e, c_int):
        """Time derivative of the integral state, ``(e - lam c_int) / tau_c``."""
        return (e - self.lam * c_int) / self.tau_c

    @property
    def steady_state_gain(self):
        """``G = k_p + k_i / lam``: at steady state ``c = G e``."""
        return self.k_p + self.k_i / self.lam
