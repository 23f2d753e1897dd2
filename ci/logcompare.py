"""Compare printed logs number by number, within a tolerance.

A log line is split into its numbers and the text between them. Two lines match when their
text is identical and every pair of numbers satisfies
``|got - expected| <= max(abs, rel * |expected|)`` (plus a 1e-9 slack for decimal round-off).
Tolerances can be overridden for lines that match a regular expression.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, List, Optional

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)\b", re.IGNORECASE)
SLACK = 1e-9


@dataclass
class Tolerance:
    abs: float = 0.0
    rel: float = 0.0
    overrides: list = field(default_factory=list)  # [{"match": regex, "abs": .., "rel": ..}]

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "Tolerance":
        d = dict(d or {})
        unknown = set(d) - {"abs", "rel", "overrides"}
        if unknown:
            raise ValueError(f"tolerance has unknown keys {sorted(unknown)}; allowed: abs, rel, overrides")
        return cls(float(d.get("abs", 0.0)), float(d.get("rel", 0.0)), list(d.get("overrides", [])))

    def for_line(self, line: str):
        a, r = self.abs, self.rel
        for o in self.overrides:
            if re.search(o["match"], line):
                a, r = float(o.get("abs", a)), float(o.get("rel", r))
        return a, r


def split_line(line: str):
    """``(text skeleton with numbers replaced by '#', [numbers as float])``."""
    numbers = [float(m) for m in NUMBER.findall(line)]
    return NUMBER.sub("#", line.strip()), numbers


def select_lines(text: str, pattern: Optional[str]) -> List[str]:
    """Lines of ``text`` that match ``pattern`` (all non-blank lines when ``pattern`` is None)."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    if pattern:
        rx = re.compile(pattern)
        lines = [ln for ln in lines if rx.search(ln)]
    return lines


def compare_lines(got: Iterable[str], expected: Iterable[str], tol: Tolerance) -> List[str]:
    """Return a list of readable problems (empty when the logs match)."""
    got, expected = list(got), list(expected)
    problems = []
    if len(got) != len(expected):
        problems.append(f"expected {len(expected)} log lines, got {len(got)}")
    for i, (g, e) in enumerate(zip(got, expected)):
        g_text, g_nums = split_line(g)
        e_text, e_nums = split_line(e)
        if g_text != e_text or len(g_nums) != len(e_nums):
            problems.append(f"line {i + 1}: text differs\n  expected: {e}\n  got:      {g}")
            continue
        a, r = tol.for_line(e)
        bad = []
        for j, (gv, ev) in enumerate(zip(g_nums, e_nums)):
            limit = max(a, r * abs(ev)) + SLACK
            if not (abs(gv - ev) <= limit):  # also catches NaN
                bad.append(f"number {j + 1}: expected {ev:g}, got {gv:g} (|diff| {abs(gv - ev):.3g} > {limit:.3g})")
        if bad:
            problems.append(f"line {i + 1}:\n  expected: {e}\n  got:      {g}\n  " + "\n  ".join(bad))
    for k in range(len(got), len(expected)):
        problems.append(f"line {k + 1} missing: {expected[k]}")
    for k in range(len(expected), len(got)):
        problems.append(f"line {k + 1} unexpected: {got[k]}")
    return problems
