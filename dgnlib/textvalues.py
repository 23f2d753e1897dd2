"""Parameter values given as text: sweep files, ``-p``/``-f`` on the sweep's command line, and
papermill's ``-p`` (which hands a notebook every list as a string).

* :func:`parse_yaml`: YAML as PyYAML reads it, except that numbers follow YAML 1.2 (and Python,
  papermill, JSON): ``1e-4`` and ``1E5`` are floats, not the strings PyYAML's YAML 1.1 rules make
  of them (there a float needs a dot: ``1.0e-4``). So ``learning_rate: [1e-4]`` in a sweep file is
  the number 0.0001, the same run as ``0.0001``.
* :func:`list_parameter`: a notebook parameter that must be a list, given as a list, a tuple, or
  the text of one (``"[100, 10, 1]"``, ``"[mnist, fashion_mnist]"``: papermill's ``-p``), returned
  as a list; other text gets an error that says how to pass a list (``-y``).
"""
from __future__ import annotations

import ast
import re
from typing import Any

__all__ = ["parse_yaml", "yaml_loader", "list_parameter"]

# YAML 1.2's float forms that YAML 1.1 (PyYAML) leaves as strings: exponent without a dot (1e-4, +2E5)
_FLOAT_1_2 = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_LOADER = None


def yaml_loader():
    """A PyYAML ``SafeLoader`` subclass that also reads ``1e-4``-style numbers as floats."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789"))
        _LOADER = Loader
    return _LOADER


def parse_yaml(text: str) -> Any:
    """``text`` read as YAML with YAML 1.2 numbers (module docstring).

    Arguments:
      text: YAML text (a document, or one value such as ``1e-4`` or ``[256, 256]``).

    Returns:
      The value; ``yaml.YAMLError`` for invalid YAML.
    """
    import yaml

    return yaml.load(text, Loader=yaml_loader())  # noqa: S506 - a SafeLoader subclass


def list_parameter(name: str, value: Any) -> list:
    """A list-valued (notebook) parameter as a list.

    Arguments:
      name: the parameter's name, for the error message.
      value: a list or tuple; or the text of one, ``"[100, 10, 1]"`` / ``"[mnist, fashion_mnist]"``
        / ``"(4.0, 3.0)"`` (what papermill's ``-p`` passes), read as YAML (:func:`parse_yaml`) or
        as a Python literal.

    Returns:
      The list. Other values (a number, text that is not a list) raise ``ValueError`` naming
      ``name`` and saying to pass lists with papermill's ``-y`` (YAML).
    """
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        parsed = None
        if text[:1] in "[(":
            try:
                parsed = parse_yaml(text)
            except Exception:  # noqa: BLE001 - not YAML (e.g. a tuple): try a Python literal
                parsed = None
            if not isinstance(parsed, list):
                try:
                    parsed = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    parsed = None
        if isinstance(parsed, (list, tuple)):
            return list(parsed)
        raise ValueError(f"{name} must be a list, got the text {value!r}; papermill's -p passes text: give lists "
                         f"with -y, e.g. -y '{name}: [...]'")
    raise ValueError(f"{name} must be a list, got {value!r}")
