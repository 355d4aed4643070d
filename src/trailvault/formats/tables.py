"""Parquet and CSV files through Arrow, typed from the channel's schema (needs ``trailvault[export]``).

Parquet: ``id``, ``app``, ``channel``, ``body_sha256`` strings, ``time`` and
``received`` ``timestamp[us, UTC]``, ``seq`` int64, ``body_nulls`` list<string>, and
``body`` a struct of the schema's fields (RECORD a struct, REPEATED a list,
TIMESTAMP ``timestamp[us, UTC]``, INTEGER int64, FLOAT double, BOOLEAN bool);
``body_additional`` (JSON text) when the schema lets in other fields.

CSV: the same, flattened: one column per field with a dotted name (``body.user.email``),
REPEATED fields and ``body_nulls`` as JSON text, an empty cell for null and ``""``
for the empty string.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from trailvault.errors import InvalidInput
from trailvault.formats.rows import json_text, rebuild_body, repeated_paths
from trailvault.schema import Field, FieldType, Mode, Schema
from trailvault.timestamps import format_timestamp, from_datetime

try:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - the error names the extra to install
    pa = None

__all__ = ["CsvWriter", "ParquetWriter", "read_table_rows", "require_arrow"]

_SCALARS = {
    FieldType.STRING: "string",
    FieldType.INTEGER: "int64",
    FieldType.FLOAT: "float64",
    FieldType.BOOLEAN: "bool",
}


def require_arrow() -> None:
    """Raise InvalidInput naming the extra when pyarrow is not installed."""
    if pa is None:
        raise InvalidInput(
            "format: Parquet and CSV need pyarrow; pip install 'trailvault[export]' (jsonl.gz needs nothing)",
            field="format",
        )


def _field_type(f: Field, *, staging: bool, csv: bool) -> Any:
    if f.type is FieldType.RECORD:
        inner = pa.struct([pa.field(c.name, _field_type(c, staging=staging, csv=csv)) for c in f.fields])
    elif f.type is FieldType.TIMESTAMP:
        inner = pa.string() if staging else pa.timestamp("us", tz="UTC")
    else:
        inner = pa.type_for_alias(_SCALARS[f.type])
    if f.mode is Mode.REPEATED:
        return pa.string() if csv else pa.list_(inner)
    return inner


def _row_schema(schema: Schema, *, staging: bool, csv: bool) -> Any:
    time_type = pa.int64() if staging else pa.timestamp("us", tz="UTC")
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("time", time_type, nullable=False),
        pa.field("received", time_type, nullable=False),
        pa.field("app", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("body_sha256", pa.string(), nullable=False),
        pa.field("body_nulls", pa.string() if csv else pa.list_(pa.string())),
        pa.field(
            "body", pa.struct([pa.field(f.name, _field_type(f, staging=staging, csv=csv)) for f in schema.fields])
        ),
    ]
    if schema.additional_fields:
        fields.append(pa.field("body_additional", pa.string()))
    return pa.schema(fields)


def _flatten(table: Any) -> Any:
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    return table


class _ArrowWriter:
    """Rows (dicts of the row shape, ``time``/``received`` in microseconds) to one file, batch by batch."""

    csv = False

    def __init__(self, path: Path, schema: Schema) -> None:
        require_arrow()
        self.path = path
        self._schema = schema
        self._staging = _row_schema(schema, staging=True, csv=self.csv)
        self._final = _row_schema(schema, staging=False, csv=self.csv)
        self._repeated = list(repeated_paths(schema.fields)) if self.csv else []
        self._writer: Any = None

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        # A redacted body (None; its body_nulls is None too) is written as an empty struct:
        # Arrow's cast would otherwise parse the hidden child slots of a null struct.
        rows = [row if row["body"] is not None else {**row, "body": {}} for row in rows]
        if self.csv:
            rows = [self._for_csv(row) for row in rows]
        table = pa.Table.from_pylist(list(rows), schema=self._staging).cast(self._final)
        self._write(table)

    def _for_csv(self, row: dict[str, Any]) -> dict[str, Any]:
        row = dict(row)
        row["body_nulls"] = json_text(row["body_nulls"])
        body = row["body"]
        if body is not None and self._repeated:
            body = _with_json_text(body, self._repeated)
            row["body"] = body
        return row

    def _write(self, table: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self._writer is None:
            self._write(pa.Table.from_pylist([], schema=self._final))
        self._writer.close()


class ParquetWriter(_ArrowWriter):
    def _write(self, table: Any) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self._final, compression="zstd")
        self._writer.write_table(table)


class CsvWriter(_ArrowWriter):
    csv = True

    def _write(self, table: Any) -> None:
        flat = _flatten(table)
        if self._writer is None:
            self._writer = pa_csv.CSVWriter(self.path, flat.schema)
        self._writer.write_table(flat)


def _with_json_text(body: dict[str, Any], paths: list[tuple[str, ...]]) -> dict[str, Any]:
    body = dict(body)
    for path in paths:
        holder: Any = body
        for name in path[:-1]:
            child = holder.get(name) if isinstance(holder, dict) else None
            if not isinstance(child, dict):
                holder = None
                break
            holder[name] = child = dict(child)
            holder = child
        if isinstance(holder, dict) and path[-1] in holder:
            holder[path[-1]] = json_text(holder[path[-1]])
    return body


# -- reading back (verify export) ------------------------------------------------------------


def read_table_rows(path: Path, schema: Schema, *, csv: bool) -> Iterator[dict[str, Any]]:
    """Yield each row of a Parquet or CSV export file as the JSONL shape: envelope, body_sha256, body."""
    require_arrow()
    if csv:
        final = _row_schema(schema, staging=False, csv=True)
        flat = _flatten(pa.Table.from_pylist([], schema=final)).schema
        options = pa_csv.ConvertOptions(
            column_types={field.name: field.type for field in flat},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        )
        batches: Any = pa_csv.open_csv(path, convert_options=options)
    else:
        batches = pq.ParquetFile(path).iter_batches(batch_size=10_000)
    repeated = list(repeated_paths(schema.fields)) if csv else []
    for batch in batches:
        for row in batch.to_pylist():
            yield _jsonl_shape(_nest(row) if csv else row, schema, repeated)


def _nest(row: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name, value in row.items():
        parts = name.split(".")
        holder = nested
        for part in parts[:-1]:
            holder = holder.setdefault(part, {})
        holder[parts[-1]] = value
    return nested


def _jsonl_shape(row: dict[str, Any], schema: Schema, repeated: list[tuple[str, ...]]) -> dict[str, Any]:
    nulls = row.get("body_nulls")
    if isinstance(nulls, str):
        nulls = orjson.loads(nulls)
    body = None
    if nulls is not None:
        read = row.get("body") or {}
        for path in repeated:
            _decode_json_at(read, path)
        read = _canonical_times(read, schema.fields)
        additional = row.get("body_additional")
        body = rebuild_body(read, nulls, orjson.loads(additional) if additional else None)
    return {
        "id": row["id"],
        "time": _text_time(row["time"]),
        "received": _text_time(row["received"]),
        "app": row["app"],
        "channel": row["channel"],
        "seq": row["seq"],
        "body_sha256": row["body_sha256"],
        "body": body,
    }


def _decode_json_at(body: dict[str, Any], path: tuple[str, ...]) -> None:
    holder: Any = body
    for name in path[:-1]:
        holder = holder.get(name) if isinstance(holder, dict) else None
    if isinstance(holder, dict) and isinstance(holder.get(path[-1]), str):
        holder[path[-1]] = orjson.loads(holder[path[-1]])


def _canonical_times(value: Any, fields: tuple[Field, ...]) -> Any:
    """Turn timestamps read back (datetimes, or CSV's text) into the canonical text the body held."""
    if not isinstance(value, dict):
        return value
    result = dict(value)
    for f in fields:
        item = result.get(f.name)
        if item is None:
            continue
        if f.type is FieldType.TIMESTAMP:
            result[f.name] = [_text_time(v) for v in item] if isinstance(item, list) else _text_time(item)
        elif f.type is FieldType.RECORD:
            if isinstance(item, list):
                result[f.name] = [_canonical_times(v, f.fields) for v in item]
            else:
                result[f.name] = _canonical_times(item, f.fields)
    return result


def _text_time(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(from_datetime(value))
    return value
