#!/usr/bin/env python3
"""The README's result tables, generated from the result files under ``results/`` (never typed).

Each block of the README between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` holds the
text that ``python3 -m dgnlib.sweep aggregate results/NAME`` prints (the table, then the run
counts), in a code block. This script rewrites the blocks from the files, or checks that they
agree with them (``--check``, run by ``make test`` through ``tests/test_readme_tables.py``)::

    python3 ci/readme_tables.py            # rewrite every block from results/
    python3 ci/readme_tables.py --check    # exit 1 with a diff when a block differs from results/

A block whose directory has no finished runs yet says so.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- results:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def block_text(name: str, root: Path = ROOT) -> str:
    """The body of block ``name``: ``aggregate``'s text for ``results/<name>`` in a code block."""
    from dgnlib.sweep import aggregate_dir

    run_dir = root / "results" / name
    command = f"python3 -m dgnlib.sweep aggregate results/{name}"
    if not run_dir.is_dir():
        text = f"(no finished runs in results/{name} yet)"
    else:
        with tempfile.TemporaryDirectory() as out:  # the CSV files; the README needs the text only
            try:
                text = aggregate_dir(run_dir, out, plot=False).text
            except ValueError:  # no records yet
                text = f"(no finished runs in results/{name} yet)"
    return f"```text\n$ {command}\n{text}\n```\n"


def render(readme: str, root: Path = ROOT) -> str:
    """``readme`` with every results block regenerated."""
    return BLOCK.sub(lambda m: m.group(1) + block_text(m.group("name"), root) + m.group(4), readme)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare only; exit 1 when a block differs")
    args = p.parse_args(argv)
    old = README.read_text(encoding="utf-8")
    names = [m.group("name") for m in BLOCK.finditer(old)]
    new = render(old)
    if args.check:
        if new != old:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       "README.md", "README.md (from results/)"))
            print("README result tables differ from results/: run python3 ci/readme_tables.py", file=sys.stderr)
            return 1
        print(f"README result tables agree with results/ ({', '.join(names) or 'no blocks'})")
        return 0
    if new != old:
        README.write_text(new, encoding="utf-8")
    print(f"{'rewrote' if new != old else 'unchanged'}: README blocks {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
