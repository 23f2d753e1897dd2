"""*Run all* from nothing, as Colab does it: every notebook in notebooks/ executed from its first
cell in a fresh virtual environment without dgnlib, whose install cell installs dgnlib (a wheel
built from this checkout, through ``$DGNLIB_INSTALL_SOURCE``) and keeps the installed JAX.

The environment (``python -m venv --without-pip``) sees the system's packages (JAX, NumPy, pip,
ipykernel, ...) through a folder of links to the system site-packages that leaves out dgnlib's
editable install (its ``.pth`` finder and ``.dist-info``), so that ``import dgnlib`` fails there
until the install cell has run, and pip, run with ``PIP_NO_INDEX``, finds every requirement but
dgnlib already installed. Each notebook runs whole, first cell to last, with small parameters
(``SMALL``) so that the file stays short; a notebook not in ``SMALL`` (one added later) runs with
the parameters of its first entry in ci/notebooks.json.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# one short epoch, few samples; the optional parts that only repeat the main call with other sizes
# (the DGN notebooks' per-neuron table and many-seeds run, the student-teacher burn-in) are skipped
SMALL = {
    "dgn_classification": {"epochs": 1, "n_seeds": 0, "per_neuron_learning_rates": [], "show_plots": False},
    "dgn_regression": {"epochs": 1, "n_seeds": 0, "per_neuron_learning_rates": [], "show_plots": False},
    "plasticity_sign": {"n_grid": 201},
    "student_teacher": {"epochs": 1, "burn_in_epochs": 0},
    "vision_benchmarks": {"datasets": ["mnist"], "rules": ["bp"], "epochs": 1, "n_train": 500, "show_plots": False},
    "dgn_mnist": {"datasets": ["mnist"], "n_train": 500, "n_validation": 250, "n_test": 250, "n_seeds": 1,
                  "dgn_rates": [0.01], "gln_rates": [0.01], "mlp_rates": [0.01], "n_tasks": 0, "show_plots": False},
}
KERNEL = "dgnlib-fresh-venv"
WHERE = "dgnlib imported from: "


def parameters(name: str) -> dict:
    """The notebook's parameters here: ``SMALL``, else its first entry of ci/notebooks.json, else none."""
    if name in SMALL:
        return SMALL[name]
    entries = json.loads((ROOT / "ci" / "notebooks.json").read_text())
    return next((e.get("parameters", {}) for e in entries if Path(e["notebook"]).stem == name), {})


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # PYTHONPATH would show the checkout
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of this checkout (built from a copy: no build/ or egg-info in the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "dgnlib", src / "dgnlib", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(src)],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, f"building the wheel of this checkout failed:\n{proc.stdout}{proc.stderr}"
    (found,) = (tmp / "dist").glob("dgnlib-*.whl")
    return found


def _system_view(folder: Path) -> Path:
    """``folder`` with a link to every entry of the system site-packages but dgnlib's own."""
    folder.mkdir()
    for site in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]):
        for entry in Path(site).iterdir():
            if "dgnlib" not in entry.name.lower() and not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


def fresh_venv(tmp: Path) -> Path:
    """A virtual environment in ``tmp/venv`` without dgnlib that sees the system's other packages;
    returns its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True, timeout=300)
    (site,) = (tmp / "venv" / "lib").glob("python*/site-packages")
    view = _system_view(tmp / "system-site-packages")
    # after the environment's own site-packages; addsitedir also runs the .pth files there (but dgnlib's)
    (site / "zz_system_view.pth").write_text(f"import site; site.addsitedir({str(view)!r})\n")
    kernel = tmp / "jupyter" / "kernels" / KERNEL
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(tmp / "venv" / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (fresh venv)", "language": "python"}))
    return site


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_run_all_from_nothing(notebook, wheel, tmp_path, monkeypatch):
    import nbformat
    import papermill as pm

    site = fresh_venv(tmp_path)
    python = tmp_path / "venv" / "bin" / "python"
    before = subprocess.run([str(python), "-c", "import dgnlib; print(dgnlib.__file__)"], cwd=tmp_path,
                            capture_output=True, text=True, env=_env(), timeout=300)
    assert before.returncode != 0 and "No module named 'dgnlib'" in before.stderr, before.stdout + before.stderr
    jax_here = subprocess.run([str(python), "-c", "import jax, pip, ipykernel; print(jax.__file__)"], cwd=tmp_path,
                              capture_output=True, text=True, env=_env(), timeout=300)
    assert jax_here.returncode == 0, jax_here.stderr

    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(f"import dgnlib\nprint({WHERE!r} + dgnlib.__file__)"))
    copy = tmp_path / notebook.name
    nbformat.write(nb, str(copy))
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the kernel inherits the environment
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("DGNLIB_INSTALL_SOURCE", str(wheel))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # every requirement but dgnlib is there already: nothing to download
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    out = pm.execute_notebook(str(copy), str(tmp_path / "out.ipynb"), parameters=parameters(notebook.stem),
                              kernel_name=KERNEL, cwd=str(tmp_path), progress_bar=False, execution_timeout=600,
                              kernel_manager_class="dgnlib.sweep.kernels.IPCKernelManager")

    printed = "".join(o.get("text", "") for o in out.cells[-1].outputs if o.get("output_type") == "stream")
    assert WHERE in printed, printed
    where = Path(printed.split(WHERE, 1)[1].strip())
    assert where == site / "dgnlib" / "__init__.py", f"{notebook.name} imported dgnlib from {where}, not from {site}"
    assert not list(site.glob("jax*")), f"the install cell installed JAX into the environment: {list(site.glob('jax*'))}"
