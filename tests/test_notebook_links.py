"""Every notebook's Colab badge and install cell, and the README's Colab links, follow the one setting
(``[project.urls] Repository`` in pyproject.toml): ``ci/notebook_links.py --check`` passes on the
checkout and fails, naming notebook and cell, on a tampered copy."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from notebook_links import LinkError, install_cell_source, repository_url, run

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "ci" / "notebook_links.py"
FORK = "https://github.com/someone/dgnlib-fork"


def _check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--check", "--root", str(root)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def copy(tmp_path):
    """The files the links live in, copied to ``tmp_path``."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    return tmp_path


def _cells(path: Path) -> list:
    return json.loads(path.read_text())["cells"]


def _set_source(path: Path, index: int, text: str) -> None:
    nb = json.loads(path.read_text())
    nb["cells"][index]["source"] = text.splitlines(keepends=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def test_checkout_follows_setting():
    proc = _check(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok " in proc.stdout


def test_another_setting_fails_every_link_then_write_fixes(copy):
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(repository_url(ROOT / "pyproject.toml"), FORK))
    proc = _check(copy)
    assert proc.returncode == 1
    n_notebooks = len(list((copy / "notebooks").glob("*.ipynb")))
    for path in (copy / "notebooks").glob("*.ipynb"):
        assert f"notebooks/{path.name} cell " in proc.stdout  # badge and install cell, by notebook and cell
    assert proc.stdout.count("Colab badge links") == n_notebooks
    assert proc.stdout.count("the install cell differs") == n_notebooks
    assert proc.stdout.count(": Colab link https://colab.research.google.com/github/dgnlib/dgnlib/") == n_notebooks
    assert f"git+https://github.com/dgnlib/dgnlib.git, the setting gives git+{FORK}.git" in proc.stdout
    subprocess.run([sys.executable, str(SCRIPT), "--write", "--root", str(copy)], check=True, capture_output=True)
    assert _check(copy).returncode == 0
    for path in (copy / "notebooks").glob("*.ipynb"):
        text = "".join(_cells(path)[1]["source"])
        assert text == install_cell_source(FORK) and f'"git+{FORK}.git"' in text
        assert f"colab.research.google.com/github/someone/dgnlib-fork/blob/main/notebooks/{path.name}" in path.read_text()
    readme = (copy / "README.md").read_text()
    assert "github/dgnlib/dgnlib/" not in readme and readme.count("github/someone/dgnlib-fork/blob/main/") == n_notebooks
    assert "git+https://github.com/dgnlib/dgnlib.git" not in readme and f"git+{FORK}.git" in readme


def test_edited_install_cell_and_badge_fail(copy):
    path = copy / "notebooks" / "plasticity_sign.ipynb"
    cells = _cells(path)
    _set_source(path, 1, "".join(cells[1]["source"]).replace("-q", "-q --upgrade"))
    proc = _check(copy)
    assert proc.returncode == 1
    assert "FAIL notebooks/plasticity_sign.ipynb cell 1: the install cell differs" in proc.stdout
    assert "--upgrade" in proc.stdout
    _set_source(path, 0, "".join(cells[0]["source"]).replace("/blob/main/", "/blob/dev/"))
    proc = _check(copy)
    assert "FAIL notebooks/plasticity_sign.ipynb cell 0: Colab badge links" in proc.stdout


def test_notebook_without_badge_or_install_cell_is_named(copy):
    nb = json.loads((copy / "notebooks" / "dgn_classification.ipynb").read_text())
    new = copy / "notebooks" / "new_notebook.ipynb"
    nb["cells"] = nb["cells"][2:]  # no badge, no install cell
    new.write_text(json.dumps(nb, indent=1) + "\n")
    problems = run(copy)
    assert any(p.startswith("notebooks/new_notebook.ipynb: no install cell") for p in problems), problems
    assert any("README.md: no Colab badge for notebooks/new_notebook.ipynb" in p for p in problems), problems
    proc = subprocess.run([sys.executable, str(SCRIPT), "--write", "--root", str(copy)], capture_output=True, text=True)
    assert proc.returncode == 1 and "notebooks/new_notebook.ipynb: no install cell" in proc.stdout
    nb["cells"] = _cells(copy / "notebooks" / "dgn_classification.ipynb")[1:]  # install cell, no badge
    new.write_text(json.dumps(nb, indent=1) + "\n")
    assert any(p.startswith("notebooks/new_notebook.ipynb: no Colab badge") for p in run(copy))


def test_install_cell_after_other_code_fails(copy):
    path = copy / "notebooks" / "student_teacher.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"].insert(1, {"cell_type": "code", "execution_count": None, "id": "early", "metadata": {},
                           "outputs": [], "source": ["import dgnlib"]})
    path.write_text(json.dumps(nb, indent=1) + "\n")
    assert any("notebooks/student_teacher.ipynb cell 1: a code cell runs before the install cell (cell 2)" in p
               for p in run(copy))


def test_setting_must_be_a_github_repository(copy):
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(repository_url(ROOT / "pyproject.toml"), "https://example.org/x"))
    with pytest.raises(LinkError, match="Repository must be https://github.com/OWNER/NAME, got 'https://example.org/x'"):
        repository_url(pyproject)
    proc = _check(copy)
    assert proc.returncode == 1 and "https://example.org/x" in proc.stdout
