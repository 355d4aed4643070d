"""Parquet and CSV files through Arrow, typed from the channel's schema (needs ``trailvault[export]``).

Parquet: ``id``, ``app``, ``channel``, ``body_sha256`` strings, ``time`` and
``received`` ``timestamp[us, UTC]``, ``seq`` int64, ``body_nulls`` list<string>, and
``body`` a struct of the schema's fields (RECORD a struct, REPEATED a list,
TIMESTAMP ``timestamp[us, UTC]``, INTEGER int64, FLOAT double, BOOLEAN bool, JSON
the value's JSON text);
``body_additional`` (JSON text) when the schema lets in other fields. A free-form channel
(a schema naming no field) has no typed column to give: its ``body`` is the body's JSON
text, nulls and all, and ``body_nulls`` is empty (null for a redacted body, as elsewhere).

CSV: the same, flattened: one column per field with a dotted name (``body.user.email``),
REPEATED fields and ``body_nulls`` as JSON text, an empty cell for null and ``""``
for the empty string.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from trailvault.adapters.formats.columns import EntryColumns
from trailvault.adapters.formats.hashed import HashedFile
from trailvault.adapters.formats.kinds import TABLE_FORMATS, require_formats
from trailvault.adapters.formats.rows import (
    Entry,
    additional_fields,
    json_text,
    null_paths,
    rebuild_body,
    repeated_paths,
)
from trailvault.core.schema import Field, FieldType, Mode, Schema
from trailvault.core.timestamps import format_timestamp, from_datetime
from trailvault.errors import InvalidInput

try:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.compute as pc  # type: ignore[import-untyped]
    import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
    import pyarrow.json as pa_json  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - the error names the extra to install
    pa = None

__all__ = ["CsvWriter", "ParquetWriter", "empty_table", "flatten", "is_timestamp", "read_table_rows"]

_SCALARS = {
    FieldType.STRING: "string",
    FieldType.JSON: "string",
    FieldType.INTEGER: "int64",
    FieldType.FLOAT: "float64",
    FieldType.BOOLEAN: "bool",
}


def _field_type(f: Field, *, csv: bool) -> Any:
    if f.type is FieldType.RECORD:
        inner = pa.struct([pa.field(c.name, _field_type(c, csv=csv)) for c in f.fields])
    elif f.type is FieldType.TIMESTAMP:
        inner = pa.timestamp("us", tz="UTC")
    else:
        inner = pa.type_for_alias(_SCALARS[f.type])
    if f.mode is Mode.REPEATED:
        return pa.string() if csv else pa.list_(inner)
    return inner


def _body_type(schema: Schema, *, csv: bool) -> Any:
    if _free_form(schema):
        return pa.string()
    return pa.struct([pa.field(f.name, _field_type(f, csv=csv)) for f in schema.fields])


def _json_names(schema: Schema) -> list[str]:
    """The JSON fields (top level only, by the schema's rules): Arrow cannot type them, so Python writes their text."""
    return [f.name for f in schema.fields if f.type is FieldType.JSON]


def _row_schema(schema: Schema, *, csv: bool) -> Any:
    time_type = pa.timestamp("us", tz="UTC")
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("time", time_type, nullable=False),
        pa.field("received", time_type, nullable=False),
        pa.field("app", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("body_sha256", pa.string(), nullable=False),
        pa.field("body_nulls", pa.string() if csv else pa.list_(pa.string())),
        pa.field("body", _body_type(schema, csv=csv)),
    ]
    if schema.additional_fields and not _free_form(schema):
        fields.append(pa.field("body_additional", pa.string()))
    return pa.schema(fields)


def _free_form(schema: Schema) -> bool:
    """Whether the schema names no field, so that the body goes to a file as its JSON text.

    Arrow has no struct of no field to write (Parquet refuses one, and parsing into it
    gives no rows), and the text loses nothing: every field the body has is an extra.
    """
    return not schema.fields


def flatten(table: Any) -> Any:
    """Flatten struct columns into dotted columns, all the way down."""
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    return table


def empty_table(schema: Any) -> Any:
    """An Arrow table with ``schema`` and no rows."""
    return pa.Table.from_pylist([], schema=schema)


def is_timestamp(arrow_type: Any) -> bool:
    return bool(pa.types.is_timestamp(arrow_type))


class _ArrowWriter:
    """Stored entries to one file, a batch at a time.

    Bodies are parsed by Arrow's JSON reader straight into the schema's typed columns
    (in C++, not a Python object per value); Python only touches a body that holds a
    null or an empty record (for ``body_nulls``) or fields outside the schema.
    """

    csv = False

    def __init__(self, path: Path, schema: Schema) -> None:
        require_formats(TABLE_FORMATS)
        self.path = path
        self._schema = schema
        self._final = _row_schema(schema, csv=self.csv)
        self._json = _json_names(schema)
        self._parse = (
            None
            if _free_form(schema)
            else pa_json.ParseOptions(
                explicit_schema=pa.schema([f for f in _body_type(schema, csv=False) if f.name not in self._json]),
                unexpected_field_behavior="ignore",
            )
        )
        self._writer: Any = None
        self._sink: HashedFile | None = None

    def write(self, entries: Sequence[Entry]) -> None:
        self.write_prepared(self.prepare(entries))

    def write_prepared(self, table: Any) -> None:
        """Write what :meth:`prepare` made of a page (pages in order, one thread at a time)."""
        self._write(table)

    def prepare(self, entries: Sequence[Entry]) -> Any:
        """The rows of a page as this file holds them; touches no file, so pages may be prepared in parallel."""
        page = entries if isinstance(entries, EntryColumns) else EntryColumns.of(entries)
        table = page.table
        count = len(page)
        texts = table.column("body").combine_chunks()
        if self._parse is None:
            return self._shape(
                pa.Table.from_arrays(self._envelope(table, _no_nulls(texts, csv=self.csv), texts), schema=self._final)
            )
        # A redacted body reads as an empty record; body_nulls (null) says it is gone.
        filled = texts.fill_null("{}") if texts.null_count else texts
        data = _values_buffer(filled)
        body = self._parse_bodies(data, count)
        if self._json:
            body = self._with_json(body, filled)
        # Only a body that holds a null or an empty record needs a look from Python. When the
        # parsed page has no null anywhere, none can (an empty record parses as nulls, and the
        # schema admits no other field); else one scan of the page's text tells. A JSON
        # field's text hides its nulls from Arrow, so its bodies are always looked at.
        if (self._schema.additional_fields or self._json or _has_null(body)) and _may_hold_nulls(data.to_pybytes()):
            nulls = [None if text is None else _nulls_of(text) for text in texts.to_pylist()]
            body_nulls = (
                pa.array([json_text(n) for n in nulls], pa.string())
                if self.csv
                else pa.array(nulls, pa.list_(pa.string()))
            )
        else:
            body_nulls = _no_nulls(texts, csv=self.csv)
        columns = self._envelope(table, body_nulls, _repeated_as_json(body, self._schema.fields) if self.csv else body)
        if self._schema.additional_fields:
            columns.append(pa.array([_additional_of(text, self._schema) for text in texts.to_pylist()], pa.string()))
        return self._shape(pa.Table.from_arrays(columns, schema=self._final))

    @staticmethod
    def _envelope(table: Any, body_nulls: Any, body: Any) -> list[Any]:
        """The columns of a row before ``body_additional``: the envelope, ``body_nulls`` and ``body``."""
        timestamp = pa.timestamp("us", tz="UTC")
        return [
            table.column("id"),
            table.column("time").cast(timestamp),
            table.column("received").cast(timestamp),
            table.column("app"),
            table.column("channel"),
            table.column("seq"),
            table.column("body_sha256"),
            body_nulls,
            body,
        ]

    def _shape(self, table: Any) -> Any:
        return table

    def _parse_bodies(self, data: Any, count: int) -> Any:
        """The body struct of each of ``count`` JSON objects lying back to back in ``data``, parsed by Arrow."""
        if not count:
            return pa.array([], _body_type(self._schema, csv=False))
        try:
            parsed = pa_json.read_json(
                pa.BufferReader(data),
                parse_options=self._parse,
                read_options=pa_json.ReadOptions(block_size=data.size + 1),
            )
        except pa.ArrowInvalid as exc:
            raise InvalidInput(
                f"format: an event of this channel does not fit the schema's typed columns ({str(exc)[:200]}), "
                "as a field kept before the schema named it can; export the channel as jsonl.gz",
                field="format",
            ) from None
        if parsed.num_rows != count:
            raise InvalidInput(
                "format: a stored body is not one JSON object; export the channel as jsonl.gz", field="format"
            )
        return pa.StructArray.from_arrays(
            [parsed.column(name).combine_chunks() for name in parsed.column_names], names=parsed.column_names
        )

    def _with_json(self, parsed: Any, texts: Any) -> Any:
        """The body struct with each JSON field's column (its value's JSON text) in its declared place."""
        bodies = [orjson.loads(text) for text in texts.to_pylist()]
        columns = []
        for f in self._schema.fields:
            if f.type is FieldType.JSON:
                values = [body.get(f.name) if isinstance(body, dict) else None for body in bodies]
                columns.append(pa.array([None if v is None else json_text(v) for v in values], pa.string()))
            else:
                columns.append(parsed.field(f.name))
        return pa.StructArray.from_arrays(columns, names=[f.name for f in self._schema.fields])

    def _write(self, table: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        try:
            if self._writer is None:
                self._write(self._shape(pa.Table.from_pylist([], schema=self._final)))
            self._writer.close()
        finally:
            if self._sink is not None:
                self._sink.close()

    def sha256(self) -> str:
        """The hex SHA-256 of the file, hashed as it was written (after ``close``)."""
        assert self._sink is not None, "sha256() is for a closed file writer"
        return self._sink.sha256()

    def _file(self) -> HashedFile:
        """The file, created when the first table is written (a subclass may write elsewhere)."""
        if self._sink is None:
            self._sink = HashedFile(self.path)
        return self._sink


class ParquetWriter(_ArrowWriter):
    def _write(self, table: Any) -> None:
        if self._writer is None:
            # Dictionaries only for the envelope's few values: for body fields zstd alone makes
            # files as small (smaller for ids and texts) and writes faster.
            self._writer = pq.ParquetWriter(
                self._file(), self._final, compression="zstd", use_dictionary=["app", "channel"]
            )
        self._writer.write_table(table)


class CsvWriter(_ArrowWriter):
    csv = True

    def _shape(self, table: Any) -> Any:
        return _utc_text(flatten(table))

    def _write(self, table: Any) -> None:
        if self._writer is None:
            self._writer = pa_csv.CSVWriter(self._file(), table.schema)
        self._writer.write_table(table)


def _utc_text(table: Any) -> Any:
    """Timestamp columns as their text, ``2024-05-01 12:00:00.000000Z``, as Arrow's CSV writer would put it.

    Arrow formats a zoned timestamp through the time-zone database, value by value (about
    two microseconds each); the same text from the UTC wall clock costs a few percent of that.
    """
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            text = pc.binary_join_element_wise(table.column(index).cast(pa.timestamp("us")).cast(pa.string()), "Z", "")
            table = table.set_column(index, field.name, text)
    return table


def _nulls_of(text: str) -> list[str]:
    # Most bodies hold neither; only those that might are parsed.
    if "null" not in text and "{}" not in text:
        return []
    return null_paths(orjson.loads(text))


def _additional_of(text: str | None, schema: Schema) -> str | None:
    if text is None:
        return None
    extra = additional_fields(orjson.loads(text), schema)
    return None if extra is None else orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode()


def _values_buffer(texts: Any) -> Any:
    """The values of a string array with no null, back to back in one buffer (no copy).

    Arrow's JSON reader reads objects one after the other with no separator, so a page's
    bodies need no join.
    """
    _, offsets_buffer, data_buffer = texts.buffers()
    if data_buffer is None:
        return pa.py_buffer(b"")
    offsets = pa.Array.from_buffers(pa.int32(), len(texts) + 1, [None, offsets_buffer], offset=texts.offset)
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    return data_buffer.slice(start, end - start)


def _has_null(array: Any) -> bool:
    """Whether a value anywhere in the array, at any depth, is null."""
    if array.null_count:
        return True
    kind = array.type
    if pa.types.is_struct(kind):
        return any(_has_null(array.field(index)) for index in range(kind.num_fields))
    if pa.types.is_list(kind):
        return _has_null(array.flatten())
    return False


def _may_hold_nulls(text: bytes) -> bool:
    return b"null" in text or b"{}" in text


def _no_nulls(texts: Any, *, csv: bool) -> Any:
    """``body_nulls`` of bodies that hold no null: empty (``[]``), and null where the body is redacted."""
    if csv:
        return pc.if_else(texts.is_null(), pa.scalar(None, pa.string()), pa.scalar("[]", pa.string()))
    offsets = pa.array(itertools.repeat(0, len(texts) + 1), pa.int32())
    mask = texts.is_null() if texts.null_count else None
    return pa.ListArray.from_arrays(offsets, pa.array([], pa.string()), mask=mask)


def _json_lists(lists: Any, f: Field) -> Any:
    """The JSON text of each list, built by Arrow, for lists of plain strings, integers or booleans.

    None when a value needs Python's encoder: a null inside a list, a string with a quote,
    backslash or control character to escape, or another type.
    """
    values = lists.values
    if values.null_count:
        return None
    if f.type is FieldType.STRING:
        if len(values) and pc.any(pc.match_substring_regex(values, r'["\\\x00-\x1f]')).as_py():
            return None
        texts = pc.binary_join_element_wise('"', values, '"', "")
    elif f.type in (FieldType.INTEGER, FieldType.BOOLEAN):
        texts = values.cast(pa.string())
    else:
        return None
    joined = pc.binary_join(pa.ListArray.from_arrays(lists.offsets, texts, mask=lists.is_null()), ",")
    return pc.binary_join_element_wise("[", joined, "]", "")


def _repeated_as_json(array: Any, fields: tuple[Field, ...]) -> Any:
    """Replace each REPEATED child of a struct array by its JSON text (CSV cells hold one value)."""
    children = []
    for index, f in enumerate(fields):
        child = array.field(index)
        if f.mode is Mode.REPEATED:
            fast = _json_lists(child, f)
            child = fast if fast is not None else pa.array([json_text(v) for v in child.to_pylist()], pa.string())
        elif f.type is FieldType.RECORD:
            child = _repeated_as_json(child, f.fields)
        children.append(child)
    return pa.StructArray.from_arrays(children, names=[f.name for f in fields], mask=array.is_null())


# -- reading back (verify export) ------------------------------------------------------------


def read_table_rows(path: Path, schema: Schema, *, csv: bool) -> Iterator[dict[str, Any]]:
    """Yield each row of a Parquet or CSV export file in the JSONL shape: envelope, body_sha256, body.

    ``time`` and ``received`` come as microseconds since the epoch (int), not text. A
    file Arrow cannot read as the schema's (a column missing or of another type) raises
    ValueError naming what Arrow found.
    """
    require_formats(TABLE_FORMATS)
    final = _row_schema(schema, csv=csv)
    if csv:
        flat = flatten(pa.Table.from_pylist([], schema=final)).schema
        options = pa_csv.ConvertOptions(
            column_types={field.name: field.type for field in flat},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        )
        batches: Any = pa_csv.open_csv(path, convert_options=options)
    else:
        batches = pq.ParquetFile(path).iter_batches(batch_size=10_000)
    shape = _BodyShape(schema, csv=csv)
    body_type = final.field("body").type
    try:
        for batch in batches:
            # A column at a time, not batch.to_pylist(): no dict per row to build and take
            # apart again, and the times as integers rather than datetimes.
            body = _nested(batch, "body", body_type) if csv else batch.column("body")
            names = ("id", "app", "channel", "seq", "body_sha256", "body_nulls")
            columns = [batch.column(name).to_pylist() for name in names]
            times = [batch.column(name).cast(pa.int64()).to_pylist() for name in ("time", "received")]
            additional = (
                batch.column("body_additional").to_pylist()
                if "body_additional" in final.names
                else itertools.repeat(None, batch.num_rows)
            )
            for ident, app, channel, seq, body_sha256, nulls, time_us, received_us, read, extra in zip(
                *columns, *times, body.to_pylist(), additional, strict=True
            ):
                yield {
                    "id": ident, "time": time_us, "received": received_us, "app": app, "channel": channel,
                    "seq": seq, "body_sha256": body_sha256, "body": shape.body(read, nulls, extra),
                }  # fmt: skip
    except pa.ArrowException as exc:
        raise ValueError(str(exc)[:300]) from None


def _nested(batch: Any, name: str, kind: Any) -> Any:
    """The struct column ``name`` of a flattened batch (``body.user.email``...), nested again without a copy."""
    if not pa.types.is_struct(kind):
        return batch.column(name)
    children = [_nested(batch, f"{name}.{field.name}", field.type) for field in kind]
    return pa.StructArray.from_arrays(children, fields=list(kind))


class _BodyShape:
    """Turns a typed row's body back into the posted body (:func:`~trailvault.adapters.formats.rows.rebuild_body`)."""

    def __init__(self, schema: Schema, *, csv: bool) -> None:
        self.schema = schema
        # CSV keeps REPEATED fields as JSON text; only a schema with TIMESTAMP fields
        # has datetimes to turn back into text.
        self.repeated = list(repeated_paths(schema.fields)) if csv else []
        self.repeated += [(name,) for name in _json_names(schema)]
        self.times = _holds_timestamps(schema.fields)

    def body(self, read: dict[str, Any] | str | None, nulls: list[str] | str | None, additional: str | None) -> Any:
        """The body, or None when the row says it was redacted (``body_nulls`` null)."""
        if isinstance(nulls, str):
            nulls = [] if nulls == "[]" else orjson.loads(nulls)
        if nulls is None:
            return None
        if isinstance(read, str):
            # A free-form channel's body is its JSON text, nulls and extras included.
            return orjson.loads(read)
        typed: dict[str, Any] = read or {}
        for path in self.repeated:
            _decode_json_at(typed, path)
        if self.times:
            typed = _canonical_times(typed, self.schema.fields)
        return rebuild_body(typed, nulls, orjson.loads(additional) if additional else None)


def _holds_timestamps(fields: tuple[Field, ...]) -> bool:
    return any(f.type is FieldType.TIMESTAMP or _holds_timestamps(f.fields) for f in fields)


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
