"""SQLite's dialect of the listing compiler (:mod:`trailvault.adapters.store.listing`).

Body paths are read with ``json_extract``, which yields SQL integers for JSON booleans
and the canonical text for timestamps, so values are converted the same way. ``eq`` on
text compares ``lower()`` of both sides (ASCII case, matching each indexed field's
lower-case index); ``co``, ``sw`` and ``ew`` use LIKE, which in
SQLite ignores ASCII case.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from trailvault.adapters.store.listing import EVENT_COLUMNS, ChannelKeys, ListingCompiler, like_pattern
from trailvault.core.query import EventQuery, Op
from trailvault.core.timestamps import format_timestamp, from_datetime
from trailvault.errors import InvalidQuery

__all__ = ["body_expression", "body_index_statements", "compile_listing"]

_COMPARISONS = {Op.EQ_CS: "=", Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<="}


def body_expression(segments: tuple[str, ...]) -> str:
    """Return the SQL expression that extracts a body path (also used in index DDL)."""
    json_path = "$" + "".join(f'."{segment}"' for segment in segments)
    return f"json_extract(body, '{json_path}')"


def body_index_statements(index_name: str, segments: tuple[str, ...]) -> tuple[str, str]:
    """The two indexes of an ``"index": true`` field: on its value, and on its lower-case text for ``eq``.

    Partial on IS NOT NULL: only events that carry the field pay for them, and SQLite
    knows that ``expr = ?`` (and ``lower(expr) = lower(?)``) imply it.
    """
    expression = body_expression(segments)
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name} ON events (channel_key, {expression}, time) "
        f"WHERE {expression} IS NOT NULL",
        f"CREATE INDEX IF NOT EXISTS {index_name}_ci ON events (channel_key, lower({expression}), time) "
        f"WHERE lower({expression}) IS NOT NULL",
    )


def compile_listing(
    query: EventQuery, app_key: int, channel_keys: ChannelKeys, columns: str = EVENT_COLUMNS
) -> tuple[str, list[Any]]:
    """Return ``(sql, params)`` selecting ``columns`` of the query's page of event rows."""
    return _SQLiteListing(query, app_key, channel_keys, columns).compile()


class _SQLiteListing(ListingCompiler):
    def _unindexed(self, column: str) -> str:
        return f"+{column}"

    def _present_body(self, segments: tuple[str, ...]) -> str:
        return f"({body_expression(segments)} IS NOT NULL)"

    def _compare_channel(self, negated: bool, keys: list[int]) -> str:
        marks = ", ".join(self.bind(key) for key in keys)
        return f"(channel_key {'NOT IN' if negated else 'IN'} ({marks}))"

    def _compare_envelope(self, column: str, op: Op, values: Sequence[Any]) -> str:
        return self._compare_values(column, op, values)

    def _compare_body(self, segments: tuple[str, ...], op: Op, values: Sequence[Any]) -> str:
        condition = self._compare_values(body_expression(segments), op, [_body_value(value) for value in values])
        value = values[0] if values else None
        json_path = "$" + "".join(f'."{segment}"' for segment in segments)
        if op is Op.EQ and isinstance(value, str):
            # lower() would turn the number 1 or true into text equal to "1": compare text with text only.
            return f"(json_type(body, '{json_path}') = 'text' AND {condition})"
        if op in (Op.GT, Op.GE, Op.LT, Op.LE) and isinstance(value, (int, float, str)):
            # SQLite orders text above every number; a range compares like with like.
            kinds = "('text')" if isinstance(value, str) else "('integer', 'real')"
            return f"(json_type(body, '{json_path}') IN {kinds} AND {condition})"
        return condition

    def _sort_body(self, segments: tuple[str, ...], kind: str) -> str:
        json_path = "$" + "".join(f'."{segment}"' for segment in segments)
        types = {"number": "'integer', 'real'", "text": "'text'", "boolean": "'true', 'false'"}[kind]
        # json_extract gives 1/0 for booleans, the same as PostgreSQL's boolean::int.
        return f"(CASE WHEN json_type(body, '{json_path}') IN ({types}) THEN {body_expression(segments)} END)"

    def _compare_values(self, expression: str, op: Op, values: Sequence[Any]) -> str:
        if op in (Op.IN, Op.NOT_IN):
            marks = ", ".join(self.bind(value) for value in values)
            if op is Op.IN:
                return f"({expression} IN ({marks}))"
            return f"({expression} IS NULL OR {expression} NOT IN ({marks}))"
        value = values[0]
        if op in (Op.CO, Op.SW, Op.EW):
            return f"({expression} LIKE {self.bind(like_pattern(op, value))} ESCAPE '\\')"
        mark = self.bind(value)
        if op is Op.EQ:
            # lower() folds ASCII case only, as NOCASE does, and matches the fields' _ci indexes.
            return f"(lower({expression}) = lower({mark}))" if isinstance(value, str) else f"({expression} = {mark})"
        if op is Op.NE:
            return f"({expression} IS NULL OR {expression} <> {mark})"
        return f"({expression} {_COMPARISONS[op]} {mark})"


def _body_value(value: Any) -> Any:
    # json_extract yields SQL integers for JSON booleans and canonical text for timestamps.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return format_timestamp(from_datetime(value))
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise InvalidQuery(f"cannot compare a body field with a {type(value).__name__}", field=None)
