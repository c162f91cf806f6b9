"""The one rule for a YAML or JSON scalar against a Python annotation.

``params.yaml`` (:mod:`pipeline.core.config`) and the reports' JSON (:mod:`pipeline.core.schemas`)
are checked by it, so a value the parameters accept is a value the reports accept.
"""

from __future__ import annotations

from typing import Any

# The annotation of each scalar and how an error names it.
SCALAR_NAMES: dict[type, str] = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}


def scalar_matches(value: Any, tp: type) -> bool:
    """Whether ``value`` may stand for a ``tp``.

    A float takes an int (YAML and JSON both write ``1.0`` back as ``1``) but not a bool;
    an int refuses a bool (Python's ``True`` is an int, a user's ``true`` is not a count).
    """
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)
