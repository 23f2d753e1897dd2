"""Process-level JAX settings the notebooks opt into (nothing here runs on import)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

__all__ = ["default_cache_dir", "enable_compilation_cache"]


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
