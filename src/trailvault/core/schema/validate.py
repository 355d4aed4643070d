"""Compiling a Schema into the function that checks and normalises every event body.

Validation runs for every event (tens of thousands a second), so a schema is
compiled once into nested closures, one per field, and the hot loop does little
more than a dict lookup and an exact ``type(value) is str`` test per field. Slower
coercions run only when that test fails.

Rules (the contract of ``Schema.validate``):

- the body is a JSON object; REQUIRED fields are present and not null; NULLABLE
  fields may be missing or null and stay so; REPEATED fields hold a list without
  nulls (missing or null stays as given, meaning an empty list);
- STRING takes text only; INTEGER takes integers in the signed 64-bit range, digit
  strings and integral floats (turned into int); FLOAT takes finite numbers and
  numeric strings (turned into float, so ``10`` becomes ``10.0``); BOOLEAN takes
  booleans and the texts "true"/"false" in any case; TIMESTAMP takes RFC 3339 text
  (or the field's ``time_formats``), aware datetimes and epoch numbers in the field's
  ``epoch_unit``, and becomes the canonical UTC text of trailvault.core.timestamps;
  RECORD takes an object checked by the same rules; a STRING with ``allowed`` values
  (an enum) takes only those, exactly; JSON takes any plain JSON value, kept as given;
- unknown keys, at any depth, are refused unless the schema allows additional
  fields; then they are kept as given but must be plain JSON values.

Every problem is collected (the first 20 are reported) into one ValidationFailed.
``problems`` holds ``(path, message)`` pairs, the path like ``taxes[1].taxrate``
and the message without it; the path ``""`` means the body itself. The input is
never changed: when something is normalised a new dict (and new lists and
sub-dicts along the way) is returned, otherwise the input object itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from trailvault.core.schema.dates import compile_time_formats
from trailvault.core.schema.fastpath import compile_fast_path
from trailvault.core.schema.fields import Field, FieldType, Mode
from trailvault.core.schema.values import describe, json_type, plain_json_problem
from trailvault.core.timestamps import format_timestamp, from_datetime, parse_timestamp
from trailvault.errors import InvalidInput, ValidationFailed

__all__ = ["MAX_PROBLEMS", "compile_validator"]

#: How many problems one ValidationFailed reports.
MAX_PROBLEMS = 20

Problem = tuple[str, str]
# A compiled check takes a value that is present and not null, plus the problem list
# (used by records and lists for their inner problems); it returns the value,
# normalised, or raises _BadValueError for a problem with the value itself.
Check = Callable[[Any, list[Problem]], Any]

_MISSING: Any = object()
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MIN_US, _MAX_US = -62135596800_000000, 253402300799_999999  # years 0001 to 9999, as timestamps.py
# ASCII digits only: int() and float() would also take other scripts' digits.
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UNKNOWN_FIELD = "unknown field; declare it in the channel schema as a NULLABLE field, or allow additional fields"


class _NoFastPath:
    """A type no value has: fields whose every value needs a check use it as their fast type."""


_FAST_TYPES: dict[FieldType, type[Any]] = {
    FieldType.STRING: str,
    FieldType.BOOLEAN: bool,
    FieldType.INTEGER: int,
    FieldType.FLOAT: float,
}


class _BadValueError(Exception):
    """A problem with one value; the caller knows the path and adds it."""


def compile_validator(
    fields: tuple[Field, ...], additional_fields: bool, *, fast_path: bool = True
) -> Callable[[Any], dict[str, Any]]:
    """Return ``validate(body) -> normalised body`` for a schema of ``fields``, raising ValidationFailed.

    With ``fast_path`` a generated function first accepts bodies that need no work
    (trailvault.core.schema.fastpath); the result is the same either way.
    """
    check_root = _record_check(fields, additional_fields, "")
    fast = compile_fast_path(fields) if fast_path else lambda body: False

    def validate(body: Any) -> dict[str, Any]:
        if fast(body):
            return body  # type: ignore[no-any-return]
        if type(body) is not dict and not isinstance(body, dict):
            message = f"expected a JSON object, got {json_type(body)}"
            raise ValidationFailed(f"body: {message}", field=None, problems=[("", message)])
        problems: list[Problem] = []
        result: dict[str, Any] = check_root(body, problems)
        if problems:
            raise _failure(problems)
        return result

    return validate


def _failure(problems: list[Problem]) -> ValidationFailed:
    shown = problems[:MAX_PROBLEMS]
    message = "; ".join(f"{path}: {text}" if path else f"body: {text}" for path, text in shown)
    if len(problems) > MAX_PROBLEMS:
        message += f"; and {len(problems) - MAX_PROBLEMS} more problems"
    return ValidationFailed(message, field=shown[0][0] or None, problems=shown)


def _record_check(fields: tuple[Field, ...], additional: bool, prefix: str) -> Check:
    """Compile a record; ``prefix`` is its path from the nearest list element (or the body).

    The returned check refuses a value that is not an object, like any other check.
    """
    # The hot loop unpacks only what the fast path needs; the rest is looked up on problems.
    specs = tuple((f.name, _fast_type(f), _field_check(f, additional, prefix + f.name)) for f in fields)
    paths = {f.name: prefix + f.name for f in fields}
    required = frozenset(f.name for f in fields if f.mode is Mode.REQUIRED)
    known = frozenset(paths)
    declared = len(specs)

    def check_record(record: Any, problems: list[Problem]) -> Any:
        if type(record) is not dict and not isinstance(record, dict):
            raise _BadValueError(f"expected an object (RECORD), got {describe(record)}")
        get = record.get
        value: Any
        missing = 0
        changes: dict[str, Any] | None = None
        for name, fast_type, check in specs:
            value = get(name, _MISSING)
            if type(value) is fast_type:
                # Numbers are checked here too: a call per number would double the time per event.
                if fast_type is int:
                    if _INT64_MIN <= value <= _INT64_MAX:
                        continue
                elif fast_type is float:
                    if value - value == 0.0:  # false for NaN and infinities
                        continue
                else:
                    continue
            if value is _MISSING or value is None:
                missing += value is _MISSING
                if name in required:
                    problems.append((paths[name], "missing REQUIRED field"))
                continue
            try:
                normalised = check(value, problems)
            except _BadValueError as bad:
                problems.append((paths[name], str(bad)))
                continue
            if normalised is not value:
                if changes is None:
                    changes = {}
                changes[name] = normalised
        # Counting missing declared keys avoids a set operation on every event.
        if declared - missing != len(record):
            _check_unknown_keys(record, known, additional, prefix, problems)
        if changes is None:
            return record
        copy = dict(record)
        copy.update(changes)
        return copy

    return check_record


def _fast_type(f: Field) -> type[Any]:
    """Return the type whose values the record loop checks itself, without calling the field's check."""
    if f.mode is Mode.REPEATED or f.allowed:
        return _NoFastPath
    return _FAST_TYPES.get(f.type, _NoFastPath)


def _field_check(f: Field, additional: bool, path: str) -> Check:
    if f.mode is not Mode.REPEATED:
        return _value_check(f, additional, f"{path}.")
    # Inside a list element, paths start afresh; the list check puts "path[i]." in front.
    return _repeated_check(f, _value_check(f, additional, ""), path)


def _value_check(f: Field, additional: bool, record_prefix: str) -> Check:
    if f.type is FieldType.RECORD:
        return _record_check(f.fields, additional, record_prefix)
    if f.type is FieldType.TIMESTAMP:
        return _timestamp_check(f)
    if f.allowed:
        return _enum_check(f.allowed)
    return _SCALAR_CHECKS[f.type]


def _repeated_check(f: Field, element: Check, path: str) -> Check:
    # Only text and booleans skip the call here; numbers in lists are rarer than in records.
    fast_type = _NoFastPath if f.allowed else {FieldType.STRING: str, FieldType.BOOLEAN: bool}.get(f.type, _NoFastPath)

    def check_list(value: Any, problems: list[Problem]) -> Any:
        if type(value) is not list:
            raise _BadValueError(f"expected a list (REPEATED {f.type}), got {describe(value)}")
        copy: list[Any] | None = None
        for position, item in enumerate(value):
            if type(item) is fast_type:
                continue
            if item is None:
                problems.append((f"{path}[{position}]", "null is not allowed in a REPEATED field"))
                continue
            before = len(problems)
            try:
                normalised = element(item, problems)
            except _BadValueError as bad:
                problems.append((f"{path}[{position}]", str(bad)))
                continue
            if len(problems) > before:
                # Record elements report paths from the element; put the list path in front.
                head = f"{path}[{position}]."
                problems[before:] = [(head + inner, text) for inner, text in problems[before:]]
            elif normalised is not item:
                if copy is None:
                    copy = list(value)
                copy[position] = normalised
        return value if copy is None else copy

    return check_list


def _check_string(value: Any, problems: list[Problem]) -> Any:
    if isinstance(value, str):
        return str.__str__(value)  # a str subclass (an enum, say) becomes plain text
    raise _BadValueError(f"expected STRING, got {describe(value)}")


def _check_integer(value: Any, problems: list[Problem]) -> Any:
    if type(value) is int:
        number = value
    elif type(value) is str and len(value) > 30 and _INTEGER_TEXT.fullmatch(value):
        # Python refuses to convert very long digit strings; this one is out of range anyway.
        raise _BadValueError(f"{describe(value)} is outside the signed 64-bit range of INTEGER")
    elif (type(value) is str and _INTEGER_TEXT.fullmatch(value)) or (type(value) is float and value.is_integer()):
        number = int(value)
    else:
        raise _BadValueError(f"expected INTEGER, got {describe(value)}")
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise _BadValueError(f"{describe(value)} is outside the signed 64-bit range of INTEGER")
    return number


def _check_float(value: Any, problems: list[Problem]) -> Any:
    if type(value) is float:
        number = value
    elif type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            raise _BadValueError(f"{describe(value)} is too large for FLOAT") from None
    elif type(value) is str and _FLOAT_TEXT.fullmatch(value):
        number = float(value)
    else:
        raise _BadValueError(f"expected FLOAT, got {describe(value)}")
    if number - number != 0.0:  # true for NaN and both infinities, which JSON cannot carry
        raise _BadValueError(f"expected a finite FLOAT, got {describe(value)}")
    return number


def _check_boolean(value: Any, problems: list[Problem]) -> Any:
    if type(value) is str:
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    raise _BadValueError(f"expected BOOLEAN, got {describe(value)}")


def _check_json(value: Any, problems: list[Problem]) -> Any:
    problem = plain_json_problem(value)
    if problem is not None:
        raise _BadValueError(problem)
    return value


def _enum_check(allowed: tuple[str, ...]) -> Check:
    values = frozenset(allowed)
    listed = ", ".join(allowed)

    def check_enum(value: Any, problems: list[Problem]) -> Any:
        text = _check_string(value, problems)
        if text not in values:
            raise _BadValueError(f"{describe(value)} is not an allowed value; use one of {listed}")
        return text

    return check_enum


_SCALAR_CHECKS: dict[FieldType, Check] = {
    FieldType.JSON: _check_json,
    FieldType.STRING: _check_string,
    FieldType.INTEGER: _check_integer,
    FieldType.FLOAT: _check_float,
    FieldType.BOOLEAN: _check_boolean,
}


def _timestamp_check(f: Field) -> Check:
    parse_formats = compile_time_formats(f.time_formats) if f.time_formats else None
    formats_text = "||".join(f.time_formats)
    micros_per_unit = 1_000_000 if f.epoch_unit == "s" else 1_000
    unit_name = "seconds" if f.epoch_unit == "s" else "milliseconds"

    def check_timestamp(value: Any, problems: list[Problem]) -> Any:
        if type(value) is str:
            if parse_formats is None:
                if len(value) == 27 and value[26] == "Z" and value[4:20:3] == "--T::." and _is_valid(value):
                    return value  # already canonical: keep the very object, so no copy is made
                micros = _parse_rfc3339(value)
            else:
                found = parse_formats(value)
                if found is None:
                    raise _BadValueError(f"{describe(value)} does not match any of the formats {formats_text}")
                micros = found
        elif isinstance(value, datetime):
            try:
                micros = from_datetime(value)
            except InvalidInput:
                shown = value.isoformat()
                raise _BadValueError(f"{shown} has no UTC offset; add one (for example Z or +02:00)") from None
        elif type(value) is int:
            micros = value * micros_per_unit
        elif type(value) is float and math.isfinite(value):
            micros = round(value * micros_per_unit)
        else:
            raise _BadValueError(
                f"expected TIMESTAMP (text such as 2024-10-07T01:00:00Z, or epoch {unit_name}), got {describe(value)}"
            )
        if not _MIN_US <= micros <= _MAX_US:
            raise _BadValueError(f"{describe(value)} is outside the years 0001 to 9999")
        text = format_timestamp(micros)
        return value if text == value else text

    return check_timestamp


def _is_valid(value: str) -> bool:
    """Tell whether text laid out like the canonical form holds real digits and a real date.

    With the separators at the canonical places (checked by the caller), fromisoformat
    (in C, ASCII digits only) leaves no other reading; it is several times faster than a regex.
    """
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _parse_rfc3339(value: str) -> int:
    try:
        return parse_timestamp(value)
    except InvalidInput:
        pass
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("z", "Z")) else text)
    except ValueError:
        raise _BadValueError(
            f"{describe(value)} is not an RFC 3339 timestamp; use for example 2024-10-07T01:00:00Z"
        ) from None
    if moment.utcoffset() is None:
        raise _BadValueError(f"{describe(value)} has no UTC offset; add one (for example Z or +02:00)")
    raise _BadValueError(f"{describe(value)} is outside the years 0001 to 9999")


def _check_unknown_keys(
    record: dict[Any, Any], known: frozenset[str], additional: bool, prefix: str, problems: list[Problem]
) -> None:
    for key, value in record.items():
        if key in known:
            continue
        path = f"{prefix}{key}" if isinstance(key, str) else f"{prefix}{describe(key)}"
        if not additional:
            problems.append((path, _UNKNOWN_FIELD))
        elif not isinstance(key, str):
            problems.append((path, "object keys must be strings"))
        else:
            problem = plain_json_problem(value)
            if problem is not None:
                problems.append((path, problem))
