"""Learning-rate schedules of the online classifiers: ``min(maximum, scale / (1 + decay * t))``.

``t`` counts the training samples seen, 1 for the first (DeepMind's GLN example counts so). A
constant rate is the schedule with ``decay = 0`` and ``scale = maximum``. The fields may be arrays
with a leading axis: one schedule per network set of a sweep (:func:`dgnlib.gln.train_many`).
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from ..checks import positive_number

__all__ = ["Schedule", "constant", "decaying", "as_schedule", "rate_at"]


class Schedule(NamedTuple):
    """``learning_rate(t) = min(maximum, scale / (1 + decay * t))`` (a pytree of numbers or arrays)."""

    maximum: object
    scale: object
    decay: object


def constant(learning_rate) -> Schedule:
    """A constant learning rate.

    Arguments:
        learning_rate: a positive number, or an array of them (one per run of a sweep).

    Returns:
        A :class:`Schedule` with ``decay = 0``.
    """
    learning_rate = positive_number("learning_rate", learning_rate)
    return Schedule(learning_rate, learning_rate, 0.0 * np.asarray(learning_rate, float))


def decaying(maximum, scale, decay) -> Schedule:
    """``min(maximum, scale / (1 + decay * t))``, e.g. DeepMind's example ``decaying(0.003, 1.0, 0.1)``.

    Arguments:
        maximum: the cap, positive (number or array).
        scale: the numerator ``c``, positive.
        decay: ``d >= 0``.

    Returns:
        A :class:`Schedule`.
    """
    positive_number("maximum", maximum)
    positive_number("scale", scale)
    d = np.asarray(decay, dtype=float) if not isinstance(decay, str) else None
    if d is None or not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError(f"decay must hold finite numbers >= 0, got {decay!r}")
    return Schedule(maximum, scale, decay)


def as_schedule(learning_rate) -> Schedule:
    """``learning_rate`` as a :class:`Schedule`: a schedule is checked and returned, a number or an
    array of numbers becomes :func:`constant`.

    Arguments:
        learning_rate: a :class:`Schedule`, a positive number or an array of them.

    Returns:
        A :class:`Schedule`; ``ValueError`` naming ``learning_rate`` otherwise.
    """
    if isinstance(learning_rate, Schedule):
        return decaying(*learning_rate)
    return constant(learning_rate)


def rate_at(schedule: Schedule, t):
    """The learning rate at sample ``t`` (1 for the first sample).

    Arguments:
        schedule: a :class:`Schedule` (scalars).
        t: the sample count, a number or an array.

    Returns:
        ``min(maximum, scale / (1 + decay * t))``.
    """
    return jnp.minimum(schedule.maximum, schedule.scale / (1.0 + schedule.decay * t))
