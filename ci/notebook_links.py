#!/usr/bin/env python
"""The notebooks' Colab badges and install cells, and the README's Colab links, from one setting.

The project's public location is ``[project.urls] Repository`` in ``pyproject.toml`` (a GitHub
repository, ``https://github.com/OWNER/NAME``). Every notebook in ``notebooks/`` carries

* a Colab badge in a Markdown cell before its first code cell, opening
  ``https://colab.research.google.com/github/OWNER/NAME/blob/main/notebooks/<file>``, and
* as its first code cell the install cell (its first line is ``# Colab set-up``), which installs
  ``git+https://github.com/OWNER/NAME.git`` where ``dgnlib`` is missing (the text is
  :func:`install_cell_source`, the same in every notebook);

and the README has a badge for every notebook, with the same link.

    python ci/notebook_links.py --write   # write the setting into every badge, install cell and README link
    python ci/notebook_links.py --check   # exit 1, naming the notebook and cell (or README line), on any
                                          # disagreement with the setting (part of `make test`)

``--write`` does not add a badge or an install cell that a notebook lacks: it stops and names the
notebook (copy the first two cells of ``notebooks/dgn_classification.ipynb``), as ``--check`` does.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

ROOT = Path(__file__).resolve().parent.parent
BRANCH = "main"  # the branch the Colab badges open
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_RE = re.compile(r"\[!\[Open In Colab\]\(" + re.escape(BADGE_IMAGE) + r"\)\]\((?P<url>[^)\s]*)\)")
COLAB_URL_RE = re.compile(r"https://colab\.research\.google\.com/github/[^/\s]+/[^/\s]+/blob/[^/\s]+/(?P<path>[^)\s]+)")
GIT_URL_RE = re.compile(r"git\+https://github\.com/[^\s\"'`)]+")
REPOSITORY_RE = re.compile(r"https://github\.com/(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+)")
INSTALL_MARKER = "# Colab set-up"

INSTALL_CELL = '''\
# Colab set-up: installs dgnlib where it is missing; does nothing where it is installed.
# An installed JAX (Colab's CUDA build) is kept: pip gets its jax and jaxlib versions as requirements,
# so it never replaces them (e.g. with a CPU build); without JAX, pip installs JAX from PyPI.
# $DGNLIB_INSTALL_SOURCE (a path, a wheel or a URL) installs dgnlib from elsewhere.
import importlib.util
if importlib.util.find_spec("dgnlib") is None:
    import os, subprocess, sys
    from importlib.metadata import PackageNotFoundError, version
    DGNLIB_SOURCE = os.environ.get("DGNLIB_INSTALL_SOURCE", "{source}")
    try:
        keep_jax = [f"jax=={{version('jax')}}", f"jaxlib=={{version('jaxlib')}}"]
    except PackageNotFoundError:
        keep_jax = []
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", DGNLIB_SOURCE, *keep_jax])
    importlib.invalidate_caches()'''


class LinkError(Exception):
    """A notebook or the README disagrees with the setting, or lacks a badge or an install cell."""


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The project's public location, ``[project.urls] Repository`` of ``pyproject``.

    Arguments:
      pyproject: the ``pyproject.toml`` to read.

    Returns:
      The URL, ``https://github.com/OWNER/NAME`` (Colab opens notebooks from GitHub only).
    """
    if tomllib is not None:
        url = tomllib.loads(pyproject.read_text()).get("project", {}).get("urls", {}).get("Repository")
    else:  # Python 3.10 without tomli: the line of the [project.urls] table
        table = re.search(r"^\[project\.urls\]\s*$(?P<body>.*?)(?=^\[|\Z)", pyproject.read_text(), re.M | re.S)
        line = table and re.search(r'^Repository\s*=\s*"(?P<url>[^"]*)"', table.group("body"), re.M)
        url = line.group("url") if line else None
    if url is None:
        raise LinkError(f"{pyproject}: [project.urls] has no Repository (the project's public location)")
    if not REPOSITORY_RE.fullmatch(url):
        raise LinkError(f"{pyproject}: [project.urls] Repository must be https://github.com/OWNER/NAME, got {url!r}")
    return url


def colab_url(repository: str, notebook: str) -> str:
    """The Colab link of a notebook.

    Arguments:
      repository: the project's public location (:func:`repository_url`).
      notebook: the notebook's path relative to the repository root (``notebooks/x.ipynb``).

    Returns:
      ``https://colab.research.google.com/github/OWNER/NAME/blob/<BRANCH>/<notebook>``.
    """
    return f"https://colab.research.google.com/github/{repository.removeprefix('https://github.com/')}/blob/{BRANCH}/{notebook}"


def badge(repository: str, notebook: str) -> str:
    """The Markdown of a notebook's Colab badge.

    Arguments:
      repository: the project's public location.
      notebook: the notebook's path relative to the repository root.

    Returns:
      ``[![Open In Colab](<badge image>)](<colab_url>)``.
    """
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(repository, notebook)})"


def install_source(repository: str) -> str:
    """What pip installs dgnlib from in Colab.

    Arguments:
      repository: the project's public location.

    Returns:
      ``git+<repository>.git``.
    """
    return f"git+{repository}.git"


def install_cell_source(repository: str) -> str:
    """The text of every notebook's install cell (its first code cell).

    Arguments:
      repository: the project's public location.

    Returns:
      The cell's source, which installs :func:`install_source` where dgnlib is missing.
    """
    return INSTALL_CELL.format(source=install_source(repository))


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _lines(text: str) -> list:
    return text.splitlines(keepends=True)


def notebook_problems(path: Path, repository: str, root: Path = ROOT, write: bool = False) -> list:
    """What in the notebook at ``path`` disagrees with ``repository`` (``write``: rewrite it instead).

    Arguments:
      path: the notebook.
      repository: the project's public location (:func:`repository_url`).
      root: the repository root (the badge links the notebook by its path relative to it).
      write: rewrite the badge and the install cell from ``repository`` (the notebook file is
        written only where something changed).

    Returns:
      The disagreements left, one line each naming the notebook and the cell.

    Raises:
      LinkError: the notebook has no badge or no install cell, or more than one of either.
    """
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    raw = path.read_text()
    nb = json.loads(raw)
    cells = nb.get("cells", [])
    code = [i for i, c in enumerate(cells) if c.get("cell_type") == "code"]
    install = [i for i in code if _text(cells[i]).startswith(INSTALL_MARKER)]
    badges = [i for i, c in enumerate(cells) if c.get("cell_type") == "markdown" for _ in BADGE_RE.finditer(_text(c))]
    hint = "copy the first two cells of notebooks/dgn_classification.ipynb, then run ci/notebook_links.py --write"
    if not install:
        raise LinkError(f"{rel}: no install cell (a code cell whose first line is {INSTALL_MARKER!r}); {hint}")
    if len(install) > 1:
        raise LinkError(f"{rel}: cells {install} are all install cells ({INSTALL_MARKER!r}); keep one")
    if not badges:
        raise LinkError(f"{rel}: no Colab badge ([![Open In Colab]({BADGE_IMAGE})](...)) in a Markdown cell; {hint}")
    if len(badges) > 1:
        raise LinkError(f"{rel}: cells {badges} hold {len(badges)} Colab badges; keep one")
    problems = []
    if install[0] != code[0]:
        problems.append(f"{rel} cell {code[0]}: a code cell runs before the install cell (cell {install[0]}); "
                        "the install cell must be the first code cell")
    if badges[0] > code[0]:
        problems.append(f"{rel} cell {badges[0]}: the Colab badge must come before the first code cell (cell {code[0]})")
    b, i = cells[badges[0]], cells[install[0]]
    url = BADGE_RE.search(_text(b)).group("url")
    want_url = colab_url(repository, rel)
    want_cell = install_cell_source(repository)
    if write:
        if url != want_url:
            b["source"] = _lines(_text(b).replace(url, want_url))
        if _text(i) != want_cell:
            i["source"] = _lines(want_cell)
        new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if new != raw:
            path.write_text(new)
        return problems
    if url != want_url:
        problems.append(f"{rel} cell {badges[0]}: Colab badge links {url}, the setting gives {want_url}")
    if _text(i) != want_cell:
        got = [line for line in _text(i).splitlines() if line not in want_cell.splitlines()]
        problems.append(f"{rel} cell {install[0]}: the install cell differs from the one the setting gives "
                        f"(first differing line: {got[0] if got else '(a line is missing)'!r})")
    return problems


def readme_problems(readme: Path, repository: str, notebooks: list, root: Path = ROOT, write: bool = False) -> list:
    """What in the README disagrees with ``repository``.

    Arguments:
      readme: the README.
      repository: the project's public location.
      notebooks: the notebooks' paths relative to ``root``; each needs a Colab badge in the README.
      root: the repository root.
      write: rewrite the Colab links and ``git+`` URLs from ``repository`` (a missing badge is
        still reported: the README's table is written by hand).

    Returns:
      The disagreements left, one line each naming the README line.
    """
    text = readme.read_text()
    problems = []
    lines = text.splitlines(keepends=True)
    linked = set()
    for n, line in enumerate(lines, 1):
        for m in COLAB_URL_RE.finditer(line):
            want = colab_url(repository, m.group("path"))
            linked.add(m.group("path"))
            if not (root / m.group("path")).is_file():
                problems.append(f"{readme.name} line {n}: Colab link to {m.group('path')}, which does not exist")
            elif m.group(0) != want:
                if write:
                    lines[n - 1] = lines[n - 1].replace(m.group(0), want)
                else:
                    problems.append(f"{readme.name} line {n}: Colab link {m.group(0)}, the setting gives {want}")
        for m in GIT_URL_RE.finditer(line):
            want = install_source(repository)
            if m.group(0) != want:
                if write:
                    lines[n - 1] = lines[n - 1].replace(m.group(0), want)
                else:
                    problems.append(f"{readme.name} line {n}: {m.group(0)}, the setting gives {want}")
    problems += [f"{readme.name}: no Colab badge for {nb} (add a row to the notebooks table: {badge(repository, nb)})"
                 for nb in notebooks if nb not in linked]
    if write and "".join(lines) != text:
        readme.write_text("".join(lines))
    return problems


def run(root: Path = ROOT, write: bool = False) -> list:
    """Check (or write) every notebook in ``root/notebooks`` and ``root/README.md`` against the setting.

    Arguments:
      root: the repository root (its ``pyproject.toml`` holds the setting).
      write: rewrite the badges, install cells and README links from the setting.

    Returns:
      The problems left, one line each naming the notebook and cell or the README line.
    """
    repository = repository_url(root / "pyproject.toml")
    paths = sorted((root / "notebooks").glob("*.ipynb"))
    problems = []
    for path in paths:
        try:
            problems += notebook_problems(path, repository, root, write)
        except LinkError as e:
            problems.append(str(e))
    rels = [p.relative_to(root).as_posix() for p in paths]
    problems += readme_problems(root / "README.md", repository, rels, root, write)
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="report every disagreement with the setting; exit 1 if any")
    mode.add_argument("--write", action="store_true", help="write the setting into the notebooks and the README")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        problems = run(args.root, write=args.write)
    except LinkError as e:
        print(f"FAIL {e}")
        return 1
    for p in problems:
        print(f"FAIL {p}")
    repository = repository_url(args.root / "pyproject.toml")
    if problems:
        if args.check:
            print(f"{len(problems)} disagreement(s) with [project.urls] Repository = {repository!r}; "
                  "python ci/notebook_links.py --write rewrites the links")
        return 1
    print(f"ok   the notebooks' badges and install cells and the README's links follow {repository}"
          if args.check else f"wrote {repository} into the notebooks and the README")
    return 0


if __name__ == "__main__":
    sys.exit(main())
