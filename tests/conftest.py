import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))  # the log comparison helpers live with the CI scripts
sys.path.insert(0, str(Path(__file__).resolve().parent))  # shared helpers (ei_helpers) for tests in sub-folders
