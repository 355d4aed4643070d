"""Compiling an :class:`~trailvault.core.query.EventQuery` into parameterized SQL: the part every dialect shares.

A dialect (``store/sqlite/sql.py``, ``store/postgres/sql.py``) subclasses
:class:`ListingCompiler` and says how one comparison reads in its SQL: on the channel,
on an envelope column, or on a body path. The shape of the statement, the keyset
condition that keeps pages exact, and the walk over ``and``/``or``/``not`` are here.

Values are always bound parameters. Body paths reach the SQL text only as literals
built from :func:`trailvault.core.query.body_path` segments (``[A-Za-z_@][A-Za-z0-9_@-]*``),
which can hold no quote, so they can match the expression indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from trailvault.core.query import And, Compare, EventQuery, Filter, Not, Op, Or, Present, body_path
from trailvault.core.timestamps import parse_timestamp
from trailvault.errors import InvalidQuery

__all__ = ["ENTRY_COLUMNS", "ENVELOPE_COLUMNS", "EVENT_COLUMNS", "ListingCompiler", "like_pattern"]

#: What a listing selects for events, and for stored entries (export: the body's text and hash too).
EVENT_COLUMNS = "seq, id, channel_key, time, received, body"
ENTRY_COLUMNS = "seq, id, channel_key, time, received, body, body_sha256, fingerprint"
#: Envelope fields that are columns of the events table.
ENVELOPE_COLUMNS = ("id", "time", "received", "seq")
_LIKE_PATTERNS = {Op.CO: "%{}%", Op.SW: "{}%", Op.EW: "%{}"}

#: Resolves a channel name of the querying app to its key (None when it does not exist).
ChannelKeys = Callable[[str], int | None]


def like_pattern(op: Op, value: Any) -> str:
    """Return the LIKE pattern for ``co``, ``sw`` or ``ew`` (escape character ``\\``)."""
    escaped = str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return _LIKE_PATTERNS[op].format(escaped)


class ListingCompiler:
    """Compile one query for one app; a dialect fills in the four ``_compare_*``/``_present_body`` hooks."""

    #: The driver's placeholder, and how the dialect spells a constant truth value.
    placeholder = "?"
    true, false = "1", "0"

    def __init__(
        self, query: EventQuery, app_key: int, channel_keys: ChannelKeys, columns: str = EVENT_COLUMNS
    ) -> None:
        self.query = query
        self.columns = columns
        self.app_key = app_key
        self.channel_keys = channel_keys
        self.params: list[Any] = []

    def compile(self) -> tuple[str, list[Any]]:
        """Return ``(sql, params)`` selecting the query's page of event rows."""
        query, mark = self.query, self.placeholder
        # In seq order the log's own key is the index to walk: each page then starts
        # where the last ended, instead of sorting the app's (or channel's) events again.
        by_seq = query.sort_by == "seq" and query.sort_kind is None
        # A channel key belongs to exactly one app, so with a channel the app test is
        # implied; leaving it out steers the planner to the (channel, time) index.
        if query.channel is not None:
            where = [f"{self._unindexed('channel_key') if by_seq else 'channel_key'} = {mark}"]
            self.params.append(self.channel_keys(query.channel) or -1)
        else:
            where = [f"{self._unindexed('app_key') if by_seq else 'app_key'} = {mark}"]
            self.params.append(self.app_key)
        if query.time_from is not None:
            where.append(f"time >= {mark}")
            self.params.append(query.time_from)
        if query.time_to is not None:
            where.append(f"time < {mark}")
            self.params.append(query.time_to)
        if query.filter is not None:
            where.append(self.filter(query.filter))
        direction = "DESC" if query.descending else "ASC"
        if by_seq:
            order = f"seq {direction}"
            if query.after is not None:
                where.append(f"seq {'<' if query.descending else '>'} {mark}")
                self.params.append(query.after[1])
        elif query.sort_kind is None:
            order = f"{query.sort_by} {direction}"
            if query.after is not None:
                # Row values keep the keyset exact when many events share one sort value.
                where.append(f"({query.sort_by}, seq) {'<' if query.descending else '>'} ({mark}, {mark})")
                self.params.extend(query.after)
        else:
            expression = self._sort_body(body_path(query.sort_by), query.sort_kind)
            # Events without the field sort first going up and last going down, in every dialect.
            order = f"{expression} {direction} NULLS {'LAST' if query.descending else 'FIRST'}"
            if query.after is not None:
                where.append(self._after_body(expression, query.sort_kind, query.descending, *query.after))
        tie = "" if by_seq else f", seq {direction}"
        sql = f"SELECT {self.columns} FROM events WHERE " + " AND ".join(where) + f" ORDER BY {order}{tie} LIMIT {mark}"
        self.params.append(query.limit)
        return sql, self.params

    def filter(self, node: Filter) -> str:
        """Return the SQL condition of a filter tree, adding its values to ``params``."""
        if isinstance(node, And):
            return "(" + " AND ".join(self.filter(item) for item in node.items) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.filter(item) for item in node.items) + ")"
        if isinstance(node, Not):
            # An unknown (NULL) comparison is false, so its negation is true. IS NOT TRUE says so
            # with one parenthesis a level (NOT coalesce(...) took three of SQLite's parser stack).
            return f"({self.filter(node.item)} IS NOT TRUE)"
        if isinstance(node, Present):
            if node.attribute in ENVELOPE_COLUMNS or node.attribute in ("app", "channel"):
                return self.true
            return self._present_body(body_path(node.attribute))
        return self._compare(node)

    def _compare(self, node: Compare) -> str:
        values = list(node.values)
        if node.attribute == "app":
            # A query only ever sees its own app: compare the name here, in Python.
            return self.true if _app_matches(node.op, values, self.query.app) else self.false
        if node.attribute == "channel":
            if node.op not in (Op.EQ, Op.EQ_CS, Op.NE, Op.IN, Op.NOT_IN):
                raise InvalidQuery(f"channel: operator {node.op} does not apply to channel names", field="channel")
            keys = [self.channel_keys(str(value)) or -1 for value in values]
            return self._compare_channel(node.op in (Op.NE, Op.NOT_IN), keys)
        if node.attribute in ENVELOPE_COLUMNS:
            return self._compare_envelope(node.attribute, node.op, [_envelope_value(node.attribute, v) for v in values])
        segments = body_path(node.attribute)
        if values == [None] and node.op in (Op.EQ, Op.EQ_CS, Op.NE):
            # Equal to null means absent or null, as in SCIM; not equal to null means present.
            present = self._present_body(segments)
            return present if node.op is Op.NE else f"(NOT {present})"
        return self._compare_body(segments, node.op, values)

    def _after_body(self, expression: str, kind: str, descending: bool, value: Any, seq: int) -> str:
        """The keyset condition "after (value, seq)" on a nullable sort expression."""
        later = "<" if descending else ">"
        if value is None:
            nulls_after = f"({expression} IS NULL AND seq {later} {self.bind(seq)})"
            return nulls_after if descending else f"({nulls_after} OR {expression} IS NOT NULL)"
        mark = self._sort_value(kind)
        value = self._sort_param(kind, value)
        beyond = (
            f"({expression} {later} {mark.format(self.bind(value))} "
            f"OR ({expression} = {mark.format(self.bind(value))} AND seq {later} {self.bind(seq)})"
        )
        return beyond + (f" OR {expression} IS NULL)" if descending else ")")

    def bind(self, value: Any) -> str:
        """Add a parameter and return its placeholder."""
        self.params.append(value)
        return self.placeholder

    # -- the dialect's hooks -------------------------------------------------------

    def _present_body(self, segments: tuple[str, ...]) -> str:
        raise NotImplementedError

    def _compare_channel(self, negated: bool, keys: list[int]) -> str:
        raise NotImplementedError

    def _compare_envelope(self, column: str, op: Op, values: Sequence[Any]) -> str:
        raise NotImplementedError

    def _compare_body(self, segments: tuple[str, ...], op: Op, values: Sequence[Any]) -> str:
        raise NotImplementedError

    def _unindexed(self, column: str) -> str:
        """The column in a form the planner will not pick an index for (SQLite: ``+column``)."""
        return column

    def _sort_body(self, segments: tuple[str, ...], kind: str) -> str:
        """The expression a body field sorts by: its value when of ``kind``, else NULL."""
        raise NotImplementedError

    def _sort_value(self, kind: str) -> str:
        """How a cursor value is bound to compare with :meth:`_sort_body` (``{}`` is the placeholder)."""
        return "{}"

    def _sort_param(self, kind: str, value: Any) -> Any:
        """The cursor value as bound (a dialect may need it in another form to compare exactly)."""
        return value


def _app_matches(op: Op, values: list[Any], app: str) -> bool:
    if op is Op.EQ:
        return app.lower() in {str(value).lower() for value in values}
    if op in (Op.EQ_CS, Op.IN):
        return app in values
    if op in (Op.NE, Op.NOT_IN):
        return app not in values
    raise InvalidQuery(f"app: operator {op} does not apply to app names", field="app")


def _envelope_value(column: str, value: Any) -> Any:
    if column not in ("time", "received") or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    try:
        return parse_timestamp(value, field=column)
    except Exception as exc:
        raise InvalidQuery(str(exc), field=column) from None
