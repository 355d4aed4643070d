"""Format A: BigQuery-style field lists, which are also the fields of our normalised form.

A field is ``{"name", "type", "mode", "nested": [...]}``; BigQuery's own ``"fields"``
key for children and ``"description"`` are accepted too, plus trailvault's keys
``"index"``, ``"sensitive"``, ``"time_formats"``, ``"epoch_unit"``, ``"enum"`` (the
values a STRING may take) and ``"event_time"`` (what ``Schema.to_document`` writes).
Types and modes are case-insensitive; BigQuery's aliases INT64, FLOAT64, BOOL and
STRUCT are understood. Any other key is refused, so a typo such as ``"mdoe"`` cannot silently make a field NULLABLE.
"""

from __future__ import annotations

from typing import Any

from trailvault.core.schema.model import Field, FieldType, Mode
from trailvault.core.schema.values import json_type
from trailvault.errors import InvalidSchema

__all__ = ["parse_bigquery_fields"]

_ALIASES = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN", "STRUCT": "RECORD"}
_DECIMAL_TYPES = {"NUMERIC", "BIGNUMERIC", "DECIMAL", "BIGDECIMAL"}
_KEYS = (
    "name", "type", "mode", "nested", "fields", "description",
    "index", "sensitive", "time_formats", "epoch_unit", "enum", "event_time",
)  # fmt: skip
_TYPES = ", ".join(FieldType)
_MODES = ", ".join(Mode)


def parse_bigquery_fields(items: Any, prefix: str = "") -> tuple[Field, ...]:
    """Parse a list of field objects; ``prefix`` is the parent's dotted path plus "." (or "").

    Raises InvalidSchema naming the field path and the fix. The rules that hold for
    every format (names, duplicates, RECORD children) are checked by Schema.
    """
    where = prefix[:-1] or "the schema"
    if not isinstance(items, list):
        raise InvalidSchema(f"{where}: the fields must be a JSON array, got {json_type(items)}")
    return tuple(_parse_field(item, prefix, position) for position, item in enumerate(items))


def _parse_field(item: Any, prefix: str, position: int) -> Field:
    if not isinstance(item, dict):
        where = f"{prefix}[{position}]" if prefix else f"field #{position + 1}"
        raise InvalidSchema(f'{where}: expected an object with "name" and "type", got {json_type(item)}')
    name = item.get("name")
    if not isinstance(name, str):
        where = f"{prefix}[{position}]" if prefix else f"field #{position + 1}"
        raise InvalidSchema(f'{where}: every field needs a "name" (a string)')
    path = prefix + name
    unknown = [key for key in item if key not in _KEYS]
    if unknown:
        raise InvalidSchema(f'{path}: unknown key "{unknown[0]}"; a field may have {", ".join(_KEYS)}', field=path)
    if "nested" in item and "fields" in item:
        raise InvalidSchema(f'{path}: give the nested fields once, in "nested" or in "fields"', field=path)
    children = item.get("nested", item.get("fields"))
    field_type = _parse_type(item.get("type"), path)
    return Field(
        name=name,
        type=field_type,
        mode=_parse_mode(item.get("mode"), path),
        fields=parse_bigquery_fields(children, f"{path}.") if children is not None else (),
        index=_parse_flag(item, "index", path),
        sensitive=_parse_flag(item, "sensitive", path),
        description=_parse_description(item.get("description"), path),
        time_formats=_parse_time_formats(item.get("time_formats"), path),
        epoch_unit=_parse_epoch_unit(item.get("epoch_unit"), path),
        allowed=_parse_enum(item.get("enum"), path),
        event_time=_parse_flag(item, "event_time", path),
    )


def _parse_type(value: Any, path: str) -> FieldType:
    if not isinstance(value, str):
        raise InvalidSchema(f'{path}: "type" is missing or not a string; use one of {_TYPES}', field=path)
    upper = value.strip().upper()
    if upper in _DECIMAL_TYPES:
        raise InvalidSchema(f"{path}: type {upper} is not supported; use FLOAT or STRING", field=path)
    upper = _ALIASES.get(upper, upper)
    if upper not in FieldType.__members__:
        raise InvalidSchema(f'{path}: unknown type "{value}"; use one of {_TYPES}', field=path)
    return FieldType(upper)


def _parse_mode(value: Any, path: str) -> Mode:
    if value is None:
        return Mode.NULLABLE
    upper = value.strip().upper() if isinstance(value, str) else ""
    if upper not in Mode.__members__:
        raise InvalidSchema(f'{path}: unknown mode "{value}"; use one of {_MODES}', field=path)
    return Mode(upper)


def _parse_flag(item: dict[str, Any], key: str, path: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise InvalidSchema(f'{path}: "{key}" must be true or false, got {value!r}', field=path)
    return value


def _parse_description(value: Any, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidSchema(f'{path}: "description" must be a string', field=path)
    return value


def _parse_time_formats(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(fmt, str) for fmt in value):
        raise InvalidSchema(f'{path}: "time_formats" must be a list of strings', field=path)
    return tuple(value)


def _parse_enum(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise InvalidSchema(f'{path}: "enum" must be a non-empty list of strings', field=path)
    return tuple(value)


def _parse_epoch_unit(value: Any, path: str) -> Any:
    if value is None:
        return "s"
    if value not in ("s", "ms"):
        raise InvalidSchema(f'{path}: "epoch_unit" must be "s" or "ms", got {value!r}', field=path)
    return value
