"""Process-level JAX settings the notebooks opt into, and a description of the machine a result
came from (nothing here runs on import)."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Optional

__all__ = ["default_cache_dir", "enable_compilation_cache", "source_commit", "environment_info"]


def default_cache_dir() -> Path:
    """``$DGNLIB_CACHE_DIR`` if set, else ``~/.cache/dgnlib``."""
    return Path(os.environ.get("DGNLIB_CACHE_DIR", Path.home() / ".cache" / "dgnlib"))


def enable_compilation_cache(path: Optional[os.PathLike] = None) -> Path:
    """Turn on JAX's persistent compilation cache in ``path`` (default ``default_cache_dir()/jax``).

    Compiled programs are then reused across processes: a notebook re-run (or a papermill sweep)
    skips XLA compilation. Returns the directory used.
    """
    import jax

    path = Path(path) if path is not None else default_cache_dir() / "jax"
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def source_commit() -> Optional[str]:
    """The git commit of the dgnlib source in use, ``"<sha>"`` or ``"<sha>+dirty"`` (uncommitted
    changes to tracked files); None when dgnlib is not imported from a git checkout (an installed
    wheel) or git is missing."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


def environment_info() -> dict:
    """Where a result was computed, for the result files of long runs (JSON-ready).

    Returns:
      ``{"dgnlib_commit", "python", "jax", "jaxlib", "numpy", "backend", "devices", "machine",
      "processor", "cpu_count", "cpu_affinity", "xla_flags", "hostname"}``: the commit of
      :func:`source_commit`, the versions, the JAX backend and its devices (``"cpu x 1"``,
      ``"NVIDIA H200 x 1"``), the platform, the CPU count, the number of cores this process may run
      on (None where the platform does not say) and ``XLA_FLAGS`` (they set XLA's CPU threads, which
      change float rounding: :mod:`dgnlib.sweep.cores`).
    """
    import jax
    import jaxlib
    import numpy as np

    devices = jax.devices()
    kinds = sorted({getattr(d, "device_kind", d.platform) for d in devices})
    return {
        "dgnlib_commit": source_commit(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "backend": jax.default_backend(),
        "devices": f"{', '.join(kinds)} x {len(devices)}",
        "machine": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "hostname": platform.node(),
    }
