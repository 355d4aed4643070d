"""PostgreSQL's dialect of the listing compiler (:mod:`trailvault.adapters.store.listing`).

Body values are compared as ``jsonb`` (``body_json #> '{a,b}'``, the expression the
``"index": true`` indexes are built on), so numbers compare as numbers and strings as
strings, as SQLite's ``json_extract`` does. ``eq`` on text compares ``lower()`` of
both sides; ``co``, ``sw`` and ``ew`` use ILIKE, matching SQLite's LIKE, which
ignores ASCII case.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from trailvault.adapters.store.listing import EVENT_COLUMNS, ChannelKeys, ListingCompiler, like_pattern
from trailvault.core.query import EventQuery, Op
from trailvault.core.timestamps import format_timestamp, from_datetime
from trailvault.errors import InvalidQuery

__all__ = ["body_expression", "compile_listing"]

_COMPARISONS = {Op.EQ_CS: "=", Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<="}


def body_expression(segments: tuple[str, ...]) -> str:
    """Return the SQL expression giving a body path's value as jsonb (as in the index DDL)."""
    return f"(body_json #> '{{{','.join(segments)}}}')"


def compile_listing(
    query: EventQuery, app_key: int, channel_keys: ChannelKeys, columns: str = EVENT_COLUMNS
) -> tuple[str, list[Any]]:
    """Return ``(sql, params)`` selecting ``columns`` of the query's page of event rows."""
    return _PostgresListing(query, app_key, channel_keys, columns).compile()


class _PostgresListing(ListingCompiler):
    placeholder = "%s"
    true, false = "true", "false"

    def _present_body(self, segments: tuple[str, ...]) -> str:
        return f"(coalesce(jsonb_typeof({body_expression(segments)}), 'null') <> 'null')"

    def _compare_channel(self, negated: bool, keys: list[int]) -> str:
        return f"(channel_key {'<> ALL' if negated else '= ANY'}({self.bind(keys)}))"

    def _compare_envelope(self, column: str, op: Op, values: Sequence[Any]) -> str:
        if op in (Op.IN, Op.NOT_IN):
            condition = f"({column} = ANY({self.bind(list(values))}))"
            return condition if op is Op.IN else f"(NOT {condition})"
        value = values[0]
        if op in (Op.CO, Op.SW, Op.EW):
            return f"({column}::text ILIKE {self.bind(like_pattern(op, value))} ESCAPE '\\')"
        mark = self.bind(value)
        if op is Op.EQ and isinstance(value, str):
            return f"(lower({column}) = lower({mark}))"
        if op is Op.NE:
            return f"({column} <> {mark})"
        return f"({column} {_COMPARISONS.get(op, '=')} {mark})"

    def _sort_body(self, segments: tuple[str, ...], kind: str) -> str:
        json_type, cast = _SORTED_AS[kind]
        text = f"(body_json #>> '{{{','.join(segments)}}}')"
        return f"(CASE WHEN jsonb_typeof({body_expression(segments)}) = '{json_type}' THEN {text}{cast} END)"

    def _sort_value(self, kind: str) -> str:
        return {"number": "{}::text::numeric", "text": '{}::text COLLATE "C"', "boolean": "{}::int"}[kind]

    def _sort_param(self, kind: str, value: Any) -> Any:
        # A float sent as float8 would become a numeric of 15 digits; its shortest repr is exact.
        return repr(value) if kind == "number" and isinstance(value, float) else value

    def _compare_body(self, segments: tuple[str, ...], op: Op, values: Sequence[Any]) -> str:
        expression = body_expression(segments)
        converted = [_body_value(value) for value in values]
        if op in (Op.IN, Op.NOT_IN):
            mark = self.bind([orjson.dumps(value).decode() for value in converted])
            if op is Op.IN:
                return f"({expression} = ANY({mark}::jsonb[]))"
            return f"({expression} IS NULL OR NOT ({expression} = ANY({mark}::jsonb[])))"
        value = converted[0]
        text = f"(body_json #>> '{{{','.join(segments)}}}')"
        if op in (Op.CO, Op.SW, Op.EW):
            return f"({text} ILIKE {self.bind(like_pattern(op, value))} ESCAPE '\\')"
        if op is Op.EQ and isinstance(value, str):
            return f"(jsonb_typeof({expression}) = 'string' AND lower({text}) = lower({self.bind(value)}))"
        mark = f"{self.bind(orjson.dumps(value).decode())}::jsonb"
        if op is Op.NE:
            return f"({expression} IS NULL OR {expression} <> {mark})"
        if op in (Op.GT, Op.GE, Op.LT, Op.LE):
            # jsonb orders across types (a string above any number); a range compares like with like.
            return f"(jsonb_typeof({expression}) = '{_json_type(value)}' AND {expression} {_COMPARISONS[op]} {mark})"
        return f"({expression} {_COMPARISONS.get(op, '=')} {mark})"


_SORTED_AS = {
    "number": ("number", "::numeric"),
    # Bytewise order, as SQLite compares text, whatever the database's collation.
    "text": ("string", ' COLLATE "C"'),
    "boolean": ("boolean", "::boolean::int"),
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "null"


def _body_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(from_datetime(value))
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise InvalidQuery(f"cannot compare a body field with a {type(value).__name__}", field=None)
