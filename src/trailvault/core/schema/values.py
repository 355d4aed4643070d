"""How schema messages show JSON values, and what counts as a plain JSON value.

Messages name JSON types (object, list, string, number, boolean, null), never
Python ones, and show an offending value in JSON quoting cut to 60 characters.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["describe", "json_type", "plain_json_problem"]

_MAX_SHOWN = 60
_PLAIN_DEPTH = 100
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def json_type(value: Any) -> str:
    """Return the JSON type name of ``value``, or "a Python <type>" for anything else."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    return f"a Python {type(value).__name__}"


def describe(value: Any) -> str:
    """Show a scalar in JSON quoting, cut to 60 characters; other values by their JSON type."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**_MAX_SHOWN:
        return "a number of more than 60 digits"  # also dodges Python's limit on int-to-text conversion
    if isinstance(value, str | int | float):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"
    return json_type(value)


def plain_json_problem(value: Any) -> str | None:
    """Return why ``value`` is not plain JSON (dict, list, str, int, finite float, bool, None), or None.

    Integers are those of the signed 64-bit range, which the stores hold and filters compare.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not _INT64_MIN <= item <= _INT64_MAX:
                return (
                    f"{describe(item)} is outside the signed 64-bit integer range ({_INT64_MIN} to {_INT64_MAX}); "
                    "send it as a string"
                )
            continue
        if kind is float:
            if not math.isfinite(item):
                return f"expected a finite number, got {describe(item)}"
            continue
        if depth >= _PLAIN_DEPTH:
            return f"nested deeper than {_PLAIN_DEPTH} levels"
        if kind is list:
            pending.extend((child, depth + 1) for child in item)
        elif kind is dict:
            if not all(type(key) is str for key in item):
                return "object keys must be strings"
            pending.extend((child, depth + 1) for child in item.values())
        else:
            return f"expected a plain JSON value, got {describe(item)}"
    return None
