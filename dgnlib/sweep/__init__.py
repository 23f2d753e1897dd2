"""Parameter sweeps over papermill notebooks on Dask, and their aggregation (``python -m dgnlib.sweep``)."""
from . import results, runner
from .results import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
from .runner import CHECKPOINT_DIR, MAX_NAME_LENGTH, RunTask, main  # noqa: F401
from .runner import __all__ as _runner_all

__all__ = list(_runner_all)
