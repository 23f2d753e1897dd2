"""The toy notebook of the sweep tests (``tests/data/sweep_toy.ipynb``) and its expected numbers."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "tests" / "data" / "sweep_toy.ipynb"


def toy_final(x: float, seed: int, epochs: int = 3) -> float:
    """The toy notebook's last accuracy value, computed independently of the notebook."""
    return x * epochs / epochs + 0.01 * seed
