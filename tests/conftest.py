import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))  # the log comparison helpers live with the CI scripts
sys.path.insert(0, str(Path(__file__).resolve().parent))  # shared helpers (ei_helpers) for tests in sub-folders

# JAX's persistent compilation cache (the notebooks' default, dgnlib.runtime): the tests reuse the
# programs the CI's notebook runs compiled before them, and each other's across pytest-xdist workers.
# DGNLIB_TEST_COMPILATION_CACHE=0 turns it off.
if os.environ.get("DGNLIB_TEST_COMPILATION_CACHE", "1") != "0":
    from dgnlib.runtime import enable_compilation_cache

    enable_compilation_cache()
