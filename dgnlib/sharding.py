"""Spread the *seed* axis of a vision-benchmark run over the local devices (``jax.sharding``).

:func:`dgnlib.vision.init_run` gives a :class:`~dgnlib.vision.RunState` whose
every leaf has a leading seed axis ``S``; the data (:class:`~dgnlib.vision.VisionArrays`)
is shared by all seeds. :func:`place_run` shards the state over a 1-D mesh with axis ``"seeds"``
(each device holds ``S / d`` seeds) and replicates the data on the same devices; the jitted
``train_epoch`` / ``iterate_epochs`` / ``evaluate_seeds`` then run unchanged, each device training its own seeds,
and their outputs keep the seed sharding::

    state, data = place_run(init_run(cfg, n_in), data)
    for state, m, took in iterate_epochs(state, data, cfg): ...
    seed_devices(state)          # -> number of devices the seeds are spread over

Seeds are independent, so no communication is needed. The numbers equal one device's up to float32
rounding: each device runs the program compiled for ``S / d`` seeds, and XLA's CPU matrix products
round differently for different batch sizes (measured: integer leaves and solver counts identical,
floats within 2.3e-6 of the leaf's scale after 2 epochs; with one device, bitwise identical).
"""
from __future__ import annotations

import operator
from typing import Any, Optional, Sequence, Tuple

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

__all__ = ["AXIS", "seed_mesh", "shard_seeds", "replicate", "place_run", "seed_devices"]

AXIS = "seeds"


def seed_mesh(n_seeds: int, devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """1-D :class:`~jax.sharding.Mesh` with axis ``"seeds"`` over the first ``d`` of ``devices``
    (default ``jax.local_devices()``), ``d`` the largest number ``<= len(devices)`` dividing
    ``n_seeds`` (e.g. 3 seeds on 4 devices -> 3 devices, 6 seeds on 4 devices -> 3 devices)."""
    try:
        n = operator.index(n_seeds)
    except TypeError:
        n = 0
    if isinstance(n_seeds, bool) or n < 1:
        raise ValueError(f"n_seeds must be an int >= 1, got {n_seeds!r}")
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must not be empty")
    d = max(k for k in range(1, min(n, len(devices)) + 1) if n % k == 0)
    return Mesh(devices[:d], (AXIS,))


def _leading_sizes(tree: Any) -> Tuple[int, ...]:
    """Leading-axis sizes of the leaves (``ValueError`` naming a scalar leaf)."""
    sizes = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        shape = getattr(leaf, "shape", ())
        if len(shape) < 1:
            raise ValueError(f"leaf {jax.tree_util.keystr(path)} has no leading seed axis (shape {tuple(shape)})")
        sizes.append(shape[0])
    return tuple(sizes)


def shard_seeds(tree: Any, mesh: Mesh) -> Any:
    """``device_put`` every leaf with ``NamedSharding(mesh, P("seeds"))``: leaf ``(S, ...)`` ->
    ``S / mesh.size`` rows per device. All leaves must share the leading size ``S``, a multiple of
    the mesh size (``ValueError`` naming the offending leaf otherwise)."""
    n_dev = mesh.shape[AXIS]
    first = None
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        shape = tuple(getattr(leaf, "shape", ()))
        name = jax.tree_util.keystr(path) or "<root>"
        if len(shape) < 1:
            raise ValueError(f"leaf {name} has no leading seed axis (shape {shape})")
        if first is None:
            first = (name, shape[0])
        if shape[0] != first[1]:
            raise ValueError(f"leaf {name} has leading size {shape[0]} but leaf {first[0]} has {first[1]}; "
                             f"every leaf must carry the same leading seed axis")
        if shape[0] % n_dev:
            raise ValueError(f"leaf {name} has leading size {shape[0]}, not a multiple of the "
                             f"{n_dev} devices of the seed mesh")
    return jax.device_put(tree, NamedSharding(mesh, P(AXIS)))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """``device_put`` every leaf with ``NamedSharding(mesh, P())``: a full copy on each device."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def place_run(state: Any, data: Any, devices: Optional[Sequence[jax.Device]] = None) -> Tuple[Any, Any]:
    """``(state, data)`` placed for a multi-device run: ``state`` (leaves ``(S, ...)``, e.g. a
    ``RunState``) sharded over :func:`seed_mesh` ``(S, devices)``, ``data`` (e.g. ``VisionArrays``)
    replicated on the same devices. With one device both simply end up on that device."""
    leaves = jax.tree_util.tree_leaves(state)
    if not leaves:
        raise ValueError("state has no array leaves")
    sizes = _leading_sizes(state)
    mesh = seed_mesh(int(sizes[0]), devices)
    return shard_seeds(state, mesh), replicate(data, mesh)


def seed_devices(state: Any) -> int:
    """Number of devices the leading (seed) axis of ``state`` is split over: the largest
    ``S / rows per shard`` over its ``jax.Array`` leaves ``(S, ...)`` (1 when on one device or
    replicated; NumPy leaves count as 1)."""
    n = 1
    for leaf in jax.tree_util.tree_leaves(state):
        if isinstance(leaf, jax.Array) and leaf.ndim >= 1 and leaf.shape[0] > 0:
            n = max(n, leaf.shape[0] // leaf.sharding.shard_shape(leaf.shape)[0])
    return n
