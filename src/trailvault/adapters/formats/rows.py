"""The shape of an exported row, shared by every file format.

Every row holds the envelope (``id``, ``time``, ``received``, ``app``, ``channel``,
``seq``), the ``body_sha256`` the log hashed, and the body. Typed formats (Parquet,
CSV) give every schema field a column, so a field the producer left out and one it
sent as null would read back the same; ``body_nulls`` lists the paths that were
sent as null (and, ending in ``{}``, the records sent empty, which would otherwise
read back like absent ones), and ``body_additional`` holds the top-level fields a schema with
``additional_fields`` let in, so that :func:`rebuild_body` gives back exactly the
body that was hashed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

import orjson

from trailvault.core.event import Envelope
from trailvault.core.schema import Field, FieldType, Mode, Schema
from trailvault.core.timestamps import format_timestamp, from_datetime

__all__ = ["Entry", "additional_fields", "null_paths", "rebuild_body", "repeated_paths"]


class Entry(Envelope, Protocol):
    """An entry as the store keeps it (``trailvault.adapters.store.base.StoredEntry`` has this shape)."""

    @property
    def seq(self) -> int: ...
    @property
    def body_json(self) -> str | None: ...
    @property
    def body_sha256(self) -> bytes: ...


def null_paths(body: Any, prefix: str = "") -> list[str]:
    """Return the path of every value sent as null (``taxes[1].rate`` inside lists)."""
    found: list[str] = []
    if isinstance(body, dict):
        for name, value in body.items():
            path = f"{prefix}.{name}" if prefix else name
            if value is None:
                found.append(path)
            elif value == {}:
                found.append(path + "{}")
            elif isinstance(value, (dict, list)):
                found.extend(null_paths(value, path))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            path = f"{prefix}[{index}]"
            if value is None:
                found.append(path)
            elif isinstance(value, (dict, list)):
                found.extend(null_paths(value, path))
    return found


def additional_fields(body: dict[str, Any], schema: Schema) -> dict[str, Any] | None:
    """Return the fields the schema does not name, at any depth (kept by ``additional_fields``), or None.

    The answer has the body's shape: a record's own extras under its name, a repeated
    record's as a list with an entry per element (``{}`` for an element with none).
    """
    return _extras(body, schema.fields) or None


def _extras(value: dict[str, Any], fields: tuple[Field, ...]) -> dict[str, Any]:
    by_name = {f.name: f for f in fields}
    found: dict[str, Any] = {}
    for name, item in value.items():
        f = by_name.get(name)
        if f is None:
            found[name] = item
        elif f.type is FieldType.RECORD and isinstance(item, dict):
            inner = _extras(item, f.fields)
            if inner:
                found[name] = inner
        elif f.type is FieldType.RECORD and isinstance(item, list):
            inner_list = [_extras(element, f.fields) if isinstance(element, dict) else {} for element in item]
            if any(inner_list):
                found[name] = inner_list
    return found


def _merge(body: Any, extra: Any) -> Any:
    """Put extras back into the body they came from (the inverse of :func:`additional_fields`)."""
    if isinstance(body, dict) and isinstance(extra, dict):
        merged = dict(body)
        for name, item in extra.items():
            merged[name] = _merge(merged[name], item) if name in merged else item
        return merged
    if isinstance(body, list) and isinstance(extra, list):
        return [_merge(element, more) for element, more in zip(body, extra, strict=False)] + body[len(extra) :]
    return extra


def repeated_paths(fields: tuple[Field, ...], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Yield the path of every REPEATED field outside a REPEATED one (CSV writes each as JSON text)."""
    for f in fields:
        path = (*prefix, f.name)
        if f.mode is Mode.REPEATED:
            yield path
        elif f.type is FieldType.RECORD:
            yield from repeated_paths(f.fields, path)


def rebuild_body(read: dict[str, Any], nulls: list[str], additional: dict[str, Any] | None) -> dict[str, Any]:
    """Return the body as posted from a typed row's body: absent fields dropped, nulls sent kept."""
    # Most bodies sent no null: then every null read back is a field left out.
    body: dict[str, Any] = _drop_absent(read, "", set(nulls)) if nulls else _present(read)
    if additional:
        body = _merge(body, additional)
    return body


def _drop_absent(value: Any, path: str, nulls: set[str]) -> Any:
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for name, item in value.items():
            child = f"{path}.{name}" if path else name
            if item is None:
                if child in nulls:
                    kept[name] = None
                continue
            rebuilt = _drop_absent(item, child, nulls)
            if rebuilt == {} and isinstance(item, dict) and child + "{}" not in nulls:
                # A record that reads back with no field was sent as null (CSV cannot tell
                # a null record from one of nulls) or was absent, unless it was sent as {}.
                if child in nulls:
                    kept[name] = None
                continue
            kept[name] = rebuilt
        return kept
    if isinstance(value, list):
        return [_drop_absent(item, f"{path}[{index}]", nulls) for index, item in enumerate(value)]
    return value


def _present(value: Any) -> Any:
    """``_drop_absent`` with no null sent: drop every null field and every record left with no field."""
    if type(value) is dict:
        kept: dict[str, Any] = {}
        for name, item in value.items():
            if item is None:
                continue
            if type(item) is dict:
                item = _present(item)
                if not item:
                    continue
            elif type(item) is list:
                item = _present_in(item)
            kept[name] = item
        return kept
    if type(value) is list:
        return _present_in(value)
    return value


def _present_in(values: list[Any]) -> list[Any]:
    # A list keeps its nulls (they are elements); only records and lists inside it change.
    return [_present(item) if type(item) is dict or type(item) is list else item for item in values]


def json_text(value: Any) -> str | None:
    """JSON text of a value for a CSV cell (None stays an empty cell); timestamps in their canonical text."""
    if value is None:
        return None
    return orjson.dumps(value, default=_canonical_time, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def _canonical_time(value: Any) -> str:
    if isinstance(value, datetime):
        return format_timestamp(from_datetime(value))
    raise TypeError(f"{type(value).__name__} is not JSON")
