"""Compile an :class:`~trailvault.query.EventQuery` into parameterized SQLite SQL.

Values are always bound parameters. A body path is rendered into the SQL text
as a JSON path literal so that it matches the expression indexes built for
``"index": true`` fields; that is safe because :func:`trailvault.query.body_path`
admits only segments of ``[A-Za-z_@][A-Za-z0-9_@-]*``, which can hold no quote.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from trailvault.errors import InvalidQuery
from trailvault.query import And, Compare, EventQuery, Filter, Not, Op, Or, Present, body_path
from trailvault.timestamps import format_timestamp, from_datetime, parse_timestamp

__all__ = ["body_expression", "compile_listing"]

_ENVELOPE_COLUMNS = {"id": "id", "time": "time", "received": "received", "seq": "seq"}
_COMPARISONS = {Op.EQ_CS: "=", Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<="}
_LIKE_PATTERNS = {Op.CO: "%{}%", Op.SW: "{}%", Op.EW: "%{}"}

#: Resolves a channel name of the querying app to its key (None when it does not exist).
ChannelKeys = Callable[[str], int | None]


def body_expression(segments: tuple[str, ...]) -> str:
    """Return the SQL expression that extracts a body path (also used in index DDL)."""
    json_path = "$" + "".join(f'."{segment}"' for segment in segments)
    return f"json_extract(body, '{json_path}')"


def compile_listing(query: EventQuery, app_key: int, channel_keys: ChannelKeys) -> tuple[str, list[Any]]:
    """Return ``(sql, params)`` selecting the query's page of event rows."""
    # A channel key belongs to exactly one app, so with a channel the app test is
    # implied; leaving it out steers SQLite to the (channel, time) index.
    if query.channel is not None:
        where = ["channel_key = ?"]
        params: list[Any] = [channel_keys(query.channel) or -1]
    else:
        where = ["app_key = ?"]
        params = [app_key]
    if query.time_from is not None:
        where.append("time >= ?")
        params.append(query.time_from)
    if query.time_to is not None:
        where.append("time < ?")
        params.append(query.time_to)
    if query.filter is not None:
        where.append(_compile(query.filter, params, query.app, channel_keys))
    sort_column = query.sort_by
    direction = "DESC" if query.descending else "ASC"
    if query.after is not None:
        # Row values keep the keyset exact when many events share one time.
        where.append(f"({sort_column}, seq) {'<' if query.descending else '>'} (?, ?)")
        params.extend(query.after)
    sql = (
        "SELECT seq, id, channel_key, time, received, body FROM events WHERE "
        + " AND ".join(where)
        + f" ORDER BY {sort_column} {direction}, seq {direction} LIMIT ?"
    )
    params.append(query.limit)
    return sql, params


def _compile(node: Filter, params: list[Any], app: str, channel_keys: ChannelKeys) -> str:
    if isinstance(node, And):
        return "(" + " AND ".join(_compile(item, params, app, channel_keys) for item in node.items) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(_compile(item, params, app, channel_keys) for item in node.items) + ")"
    if isinstance(node, Not):
        return "(NOT coalesce(" + _compile(node.item, params, app, channel_keys) + ", 0))"
    if isinstance(node, Present):
        column, _ = _attribute(node.attribute)
        return f"({column} IS NOT NULL)"
    return _compare(node, params, app, channel_keys)


def _compare(node: Compare, params: list[Any], app: str, channel_keys: ChannelKeys) -> str:
    if node.attribute == "app":
        # A query only ever sees its own app: compare the name here, in Python.
        return _constant(node, app)
    if node.attribute == "channel":
        column = "channel_key"
        convert: Callable[[Any], Any] = lambda value: channel_keys(str(value)) or -1  # noqa: E731
        if node.op not in (Op.EQ, Op.EQ_CS, Op.NE, Op.IN, Op.NOT_IN):
            raise InvalidQuery(f"channel: operator {node.op} does not apply to channel names", field="channel")
    else:
        column, convert = _attribute(node.attribute)
    op = node.op
    if op in (Op.IN, Op.NOT_IN):
        values = node.value if isinstance(node.value, (tuple, list)) else (node.value,)
        params.extend(convert(value) for value in values)
        marks = ", ".join("?" for _ in values)
        if op is Op.IN:
            return f"({column} IN ({marks}))"
        return f"({column} IS NULL OR {column} NOT IN ({marks}))"
    value = convert(node.value)
    if op in _LIKE_PATTERNS:
        escaped = str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(_LIKE_PATTERNS[op].format(escaped))
        return f"({column} LIKE ? ESCAPE '\\')"
    params.append(value)
    if op is Op.EQ:
        return f"({column} = ? COLLATE NOCASE)" if isinstance(value, str) else f"({column} = ?)"
    if op is Op.NE:
        return f"({column} IS NULL OR {column} <> ?)"
    return f"({column} {_COMPARISONS[op]} ?)"


def _constant(node: Compare, app: str) -> str:
    values = node.value if isinstance(node.value, (tuple, list)) else (node.value,)
    if node.op is Op.EQ:
        truth = app.lower() in {str(value).lower() for value in values}
    elif node.op in (Op.EQ_CS, Op.IN):
        truth = app in values
    elif node.op in (Op.NE, Op.NOT_IN):
        truth = app not in values
    else:
        raise InvalidQuery(f"app: operator {node.op} does not apply to app names", field="app")
    return "1" if truth else "0"


def _attribute(attribute: str) -> tuple[str, Callable[[Any], Any]]:
    if attribute in _ENVELOPE_COLUMNS:
        if attribute in ("time", "received"):
            return attribute, lambda value: _envelope_time(value, attribute)
        return _ENVELOPE_COLUMNS[attribute], lambda value: value
    return body_expression(body_path(attribute)), _body_value


def _envelope_time(value: Any, field: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return parse_timestamp(value, field=field)
    except Exception as exc:
        raise InvalidQuery(str(exc), field=field) from None


def _body_value(value: Any) -> Any:
    # json_extract yields SQL integers for JSON booleans and canonical text for timestamps.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return format_timestamp(from_datetime(value))
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise InvalidQuery(f"cannot compare a body field with a {type(value).__name__}", field=None)
