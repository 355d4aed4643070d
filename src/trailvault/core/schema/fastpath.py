"""A generated fast path: accept, in one flat function, a body that needs no work.

Most event bodies are already exactly right: every value of its exact JSON type, no
unknown keys, timestamps already canonical. For them the full validator
(trailvault.core.schema.validate) still pays a closure call and a loop step per field.
This module writes the same checks out as straight-line Python source, one block
per field, and compiles it once per schema. The generated function answers only
"keep the body as it is" (True) or "not sure" (False); on False the full validator
runs and produces normalisation or the error messages. So the fast path can only
ever be stricter than the validator, never more lenient (a property test checks it).

Field names enter the source only through ``repr()``, which yields a valid string
literal for any text; an enum's allowed values are passed in as a set bound to a
generated name; nothing else from a schema is written into the source.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from trailvault.core.schema.fields import Field, FieldType, Mode

__all__ = ["compile_fast_path"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INDENT = "    "


def _canonical_time(value: str) -> bool:
    if len(value) != 27 or value[26] != "Z" or value[4:20:3] != "--T::.":
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names = 0
        # Values the source refers to by name (sets of allowed values), never written into it.
        self.constants: dict[str, Any] = {}

    def line(self, depth: int, text: str) -> None:
        self.lines.append(_INDENT * depth + text)

    def fresh(self, stem: str) -> str:
        self.names += 1
        return f"{stem}{self.names}"


def compile_fast_path(fields: tuple[Field, ...]) -> Callable[[Any], bool]:
    """Return ``fast(body) -> bool``: True when ``body`` is valid and already normalised.

    Unknown keys always answer False, whether or not the schema allows them.
    """
    writer = _Writer()
    writer.line(0, "def fast(body):")
    writer.line(1, "if type(body) is not dict:")
    writer.line(2, "return False")
    _record(writer, 1, "body", fields)
    writer.line(1, "return True")
    namespace: dict[str, Any] = {
        "MISSING": object(),
        "INT_MIN": _INT64_MIN,
        "INT_MAX": _INT64_MAX,
        "INF": math.inf,
        "canonical_time": _canonical_time,
        **writer.constants,
    }
    exec(compile("\n".join(writer.lines), "<trailvault fast path>", "exec"), namespace)
    fast: Callable[[Any], bool] = namespace["fast"]
    return fast


def _record(writer: _Writer, depth: int, record: str, fields: tuple[Field, ...]) -> None:
    """Write the checks of one record held in the variable ``record`` (already known to be a dict)."""
    missing = writer.fresh("missing")
    writer.line(depth, f"{missing} = 0")
    for field in fields:
        value = writer.fresh("value")
        writer.line(depth, f"{value} = {record}.get({field.name!r}, MISSING)")
        writer.line(depth, f"if {value} is MISSING:")
        if field.mode is Mode.REQUIRED:
            writer.line(depth + 1, "return False")
        else:
            writer.line(depth + 1, f"{missing} += 1")
        writer.line(depth, "else:")
        writer.line(depth + 1, f"if {value} is None:")
        writer.line(depth + 2, "return False" if field.mode is Mode.REQUIRED else "pass")
        writer.line(depth + 1, "else:")
        if field.mode is Mode.REPEATED:
            element = writer.fresh("element")
            writer.line(depth + 2, f"if type({value}) is not list:")
            writer.line(depth + 3, "return False")
            writer.line(depth + 2, f"for {element} in {value}:")
            _value(writer, depth + 3, element, field)
        else:
            _value(writer, depth + 2, value, field)
    # Counting the (rare) missing fields tells how many declared keys are present; a
    # longer dict holds unknown keys, which the full validator judges even when the
    # schema allows them (their values must still be plain JSON).
    writer.line(depth, f"if len({record}) != {len(fields)} - {missing}:")
    writer.line(depth + 1, "return False")


def _value(writer: _Writer, depth: int, value: str, field: Field) -> None:
    """Write the check of one present, non-null value (or list element)."""
    kind = field.type
    if kind is FieldType.JSON:
        # Plain JSON needs a walk through the value: the full validator does it.
        writer.line(depth, "return False")
        return
    if kind is FieldType.RECORD:
        writer.line(depth, f"if type({value}) is not dict:")
        writer.line(depth + 1, "return False")
        _record(writer, depth, value, field.fields)
        return
    condition = {
        FieldType.STRING: f"type({value}) is not str",
        FieldType.BOOLEAN: f"type({value}) is not bool",
        FieldType.INTEGER: f"type({value}) is not int or not INT_MIN <= {value} <= INT_MAX",
        # The comparison is also False for NaN.
        FieldType.FLOAT: f"type({value}) is not float or not -INF < {value} < INF",
        FieldType.TIMESTAMP: f"type({value}) is not str or not canonical_time({value})",
    }[kind]
    if field.allowed:
        allowed = writer.fresh("allowed")
        writer.constants[allowed] = frozenset(field.allowed)
        condition = f"type({value}) is not str or {value} not in {allowed}"
    if kind is FieldType.TIMESTAMP and field.time_formats:
        # A canonical text may not match the field's own formats: let the full validator judge.
        condition = "True"
    writer.line(depth, f"if {condition}:")
    writer.line(depth + 1, "return False")
