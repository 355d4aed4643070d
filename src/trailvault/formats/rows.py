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
from typing import Any, Protocol

import orjson

from trailvault.schema import Field, FieldType, Mode, Schema

__all__ = ["ENVELOPE", "Entry", "additional_fields", "null_paths", "rebuild_body", "repeated_paths"]


class Entry(Protocol):
    """An entry as the store keeps it (``trailvault.store.base.StoredEntry`` has this shape)."""

    @property
    def seq(self) -> int: ...
    @property
    def id(self) -> str: ...
    @property
    def app(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def time_us(self) -> int: ...
    @property
    def received_us(self) -> int: ...
    @property
    def body_json(self) -> str | None: ...
    @property
    def body_sha256(self) -> bytes: ...


#: Envelope columns, in file order.
ENVELOPE = ("id", "time", "received", "app", "channel", "seq", "body_sha256")


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
    """Return the top-level fields the schema does not name (kept by ``additional_fields``), or None."""
    known = {f.name for f in schema.fields}
    extra = {name: value for name, value in body.items() if name not in known}
    return extra or None


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
    wanted = set(nulls)
    body: dict[str, Any] = _drop_absent(read, "", wanted)
    if additional:
        body.update(additional)
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


def json_text(value: Any) -> str | None:
    """JSON text of a value for a CSV cell (None stays an empty cell)."""
    return None if value is None else orjson.dumps(value).decode()
