"""What a listing asks for: the query model, its filter tree, and page tokens.

A filter is a small tree of :class:`Compare`, :class:`Present`, :class:`And`,
:class:`Or` and :class:`Not` nodes over *attributes*: an envelope field (``id``,
``time``, ``received``, ``channel``, ``seq``) or a dotted body path
(``user.email``). Each store backend compiles the same tree into parameterized
SQL of its own dialect; the SCIM filter parser builds the same tree.

Page tokens are opaque to callers: keyset cursors ``(sort value, seq)`` bound to
the query they came from, so a page never skips or repeats an event while new
events keep arriving.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import difflib
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from trailvault.core.schema import Field, FieldType, Mode, Schema
from trailvault.core.schema.values import describe
from trailvault.core.timestamps import format_timestamp, parse_timestamp
from trailvault.errors import InvalidInput, InvalidQuery

__all__ = [
    "ENVELOPE_FIELDS",
    "MAX_FILTER_DEPTH",
    "SORT_FIELDS",
    "And",
    "Compare",
    "EventQuery",
    "Filter",
    "Not",
    "Op",
    "Or",
    "Present",
    "body_path",
    "check_filter",
    "decode_page_token",
    "encode_page_token",
    "equality_filter",
    "filtered_channels",
    "map_conditions",
    "mask_filter",
    "number_problem",
    "overlaps",
    "query_time",
    "typed_filter",
]

ENVELOPE_FIELDS = frozenset({"id", "time", "received", "app", "channel", "seq"})
SORT_FIELDS = ("time", "received", "seq")
#: How a body field sorts, from its schema type: numbers, text (strings and timestamps) or booleans.
SORT_KINDS = ("number", "text", "boolean")
_CURSOR_TYPES: dict[str | None, tuple[type, ...]] = {
    None: (int,),
    "number": (int, float, type(None)),
    "text": (str, type(None)),
    "boolean": (int, type(None)),
}
MAX_LIMIT = 1000
#: How deeply ``and``, ``or`` and ``not`` may nest in a filter tree. SQLite before 3.46 parses with
#: a fixed stack of 100 entries, and ``a or (b and (c or ...))`` as the stores write it takes about
#: three of them a level; this leaves room for the listing's own conditions around the filter.
MAX_FILTER_DEPTH = 24
#: The integers a filter may compare with: what both stores hold (SQLite INTEGER, PostgreSQL bigint).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_SEGMENT = re.compile(r"[A-Za-z_@][A-Za-z0-9_@\-]{0,127}")


class Op(StrEnum):
    """Comparison operators (the OCI Data Safe set of SCIM operators)."""

    EQ = "eq"  # equal; case-insensitive for strings
    EQ_CS = "eq_cs"  # equal, case-sensitive
    NE = "ne"
    CO = "co"  # contains
    SW = "sw"  # starts with
    EW = "ew"  # ends with
    GT = "gt"
    GE = "ge"
    LT = "lt"
    LE = "le"
    IN = "in"
    NOT_IN = "not_in"


@dataclass(frozen=True, slots=True)
class Compare:
    """``attribute op value``; for ``in``/``not_in`` the value is a tuple."""

    attribute: str
    op: Op
    value: Any

    @property
    def values(self) -> tuple[Any, ...]:
        """Every value compared with: the list of ``in``/``not_in``, or the one value."""
        return tuple(self.value) if isinstance(self.value, (tuple, list)) else (self.value,)


@dataclass(frozen=True, slots=True)
class Present:
    """``attribute pr``: the attribute exists and is not null."""

    attribute: str


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Filter


Filter = Compare | Present | And | Or | Not


def overlaps(attribute: str, path: str) -> bool:
    """Whether a filter or sort ``attribute`` is the field at ``path``, lies below it, or holds it."""
    return attribute == path or attribute.startswith(path + ".") or path.startswith(attribute + ".")


def mask_filter(tree: Filter, paths: Iterable[str], masked: str) -> Filter:
    """Return ``tree`` with ``masked`` in place of each value compared with a field that overlaps one of ``paths``.

    The shape (attributes, operators, nesting) stays, so a record of the filter still
    says what was asked, without the values that would reveal what a mask hides.
    """
    hidden = tuple(paths)

    def mask(node: Compare | Present) -> Filter:
        if isinstance(node, Present) or not any(overlaps(node.attribute, path) for path in hidden):
            return node
        value = tuple(masked for _ in node.value) if isinstance(node.value, tuple) else masked
        return Compare(node.attribute, node.op, value)

    return map_conditions(tree, mask)


def map_conditions(tree: Filter, change: Callable[[Compare | Present], Filter]) -> Filter:
    """Return ``tree`` with each comparison and ``pr`` test replaced by ``change(it)``; the logic stays.

    Recursive: call it on trees :func:`check_filter` has bounded.
    """
    if isinstance(tree, (Compare, Present)):
        return change(tree)
    if isinstance(tree, Not):
        return Not(map_conditions(tree.item, change))
    return type(tree)(tuple(map_conditions(item, change) for item in tree.items))


def body_path(attribute: str) -> tuple[str, ...]:
    """Split a dotted body path into its segments, or raise InvalidQuery naming it.

    Segments follow the schema's field-name rule, which is what makes it safe for
    a store to render a path into an index expression.
    """
    segments = tuple(attribute.split("."))
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise InvalidQuery(
            f"{attribute[:80]!r} is not a field: use an envelope field "
            f"({', '.join(sorted(ENVELOPE_FIELDS))}) or a dotted body path such as user.email",
            field=attribute[:80],
        )
    return segments


def check_filter(tree: Filter) -> None:
    """Raise InvalidQuery naming the filter when a store could not run it as a query.

    That is when ``and``/``or``/``not`` nest deeper than :data:`MAX_FILTER_DEPTH`, or a
    comparison's number is an integer outside the signed 64-bit range or not finite.
    The walk is iterative, so a tree of any depth built in Python is refused, not a crash.
    """
    pending: list[tuple[Filter, int]] = [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, (And, Or, Not)):
            if depth >= MAX_FILTER_DEPTH:
                raise InvalidQuery(
                    f"filter: and, or and not nest deeper than {MAX_FILTER_DEPTH} levels; write it flatter "
                    "(not not x is x; a or (b or c) is a or b or c)",
                    field="filter",
                )
            children = (node.item,) if isinstance(node, Not) else node.items
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(node, Compare):
            for value in node.values:
                problem = number_problem(value)
                if problem is not None:
                    shown = f"{node.attribute} {node.op} {describe(value)}"
                    raise InvalidQuery(f"filter: {shown}: {problem}", field="filter")


def number_problem(value: Any) -> str | None:
    """Why ``value`` is a number no stored value can equal (None when it is not one of those)."""
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        return f"the integer is outside the signed 64-bit range ({INT64_MIN} to {INT64_MAX}) that events hold"
    if isinstance(value, float) and not math.isfinite(value):
        return "the number is out of range (beyond a 64-bit float) or not a number"
    return None


def typed_filter(tree: Filter, schemas: Callable[[], Mapping[str, Schema]]) -> Filter:
    """Check ``tree`` against the schemas of the channels a query reads; return it with values typed.

    ``schemas()`` maps each such channel's name to its schema; it is called once, and only
    when the filter names a body path. Every body path must be a
    field of at least one of them (any path is, in a channel that allows additional
    fields); otherwise InvalidQuery names it. A field that is a TIMESTAMP in every channel
    declaring it compares as an instant: the values it is compared with (``eq``, ``ne``,
    ranges, ``in``) become canonical UTC text, the fixed-width form bodies keep it in, so
    ``"2023-01-16T20:00:00+01:00"`` matches ``"2023-01-16T19:00:00Z"``. ``co``, ``sw``
    and ``ew`` still look at that text.
    """
    check_filter(tree)  # bounds the depth of the recursion below
    kinds: dict[str, FieldType | None] = {}
    loaded: list[Mapping[str, Schema]] = []

    def kind_of(attribute: str) -> FieldType | None:
        if attribute in ENVELOPE_FIELDS:
            return None
        if attribute not in kinds:
            if not loaded:
                loaded.append(schemas())
            kinds[attribute] = _field_kind(attribute, loaded[0])
        return kinds[attribute]

    def typed(node: Compare | Present) -> Filter:
        kind = kind_of(node.attribute)  # for a pr test too: it refuses a field no schema has
        if not isinstance(node, Compare) or kind is not FieldType.TIMESTAMP or node.op in (Op.CO, Op.SW, Op.EW):
            return node
        if isinstance(node.value, (tuple, list)):
            return replace(node, value=tuple(_instant(node, value) for value in node.value))
        return replace(node, value=_instant(node, node.value))

    return map_conditions(tree, typed)


_NAMING_OPS = (Op.EQ, Op.EQ_CS, Op.IN)


def filtered_channels(tree: Filter) -> frozenset[str] | None:
    """The channels a filter limits a listing to (``channel eq``/``in`` it must meet), or None for any."""
    conditions = tree.items if isinstance(tree, And) else (tree,)
    found: frozenset[str] | None = None
    for condition in conditions:
        if isinstance(condition, Compare) and condition.attribute == "channel" and condition.op in _NAMING_OPS:
            names = frozenset(str(value) for value in condition.values)
            found = names if found is None else found & names
    return found


def _field_kind(attribute: str, schemas: Mapping[str, Schema]) -> FieldType | None:
    """The type of a body path in the channels read: TIMESTAMP when every channel declaring it says so."""
    declared = {found.type for schema in schemas.values() if (found := schema.field(attribute)) is not None}
    if declared or any(schema.additional_fields for schema in schemas.values()):
        return declared.pop() if len(declared) == 1 else None
    paths = sorted({path for schema in schemas.values() for path in _field_paths(schema.fields, "")})
    close = difflib.get_close_matches(attribute, paths, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    if len(schemas) == 1:
        where = f"the schema of channel {next(iter(schemas))!r} has no field {attribute[:80]!r}{hint}"
    else:
        where = f"no channel this listing reads has a field {attribute[:80]!r}{hint}"
    raise InvalidQuery(
        f"filter: {where}; filter on a field of the schema, or on {', '.join(sorted(ENVELOPE_FIELDS))}",
        field="filter",
    )


def _field_paths(fields: Sequence[Field], prefix: str) -> list[str]:
    paths = []
    for item in fields:
        paths.append(prefix + item.name)
        paths.extend(_field_paths(item.fields, f"{prefix}{item.name}."))
    return paths


def _instant(node: Compare, value: Any) -> Any:
    """A value compared with a TIMESTAMP field, as canonical text (null and other types stay as given)."""
    if not isinstance(value, (str, datetime)):
        return value
    try:
        return format_timestamp(parse_timestamp(value, field=node.attribute))
    except InvalidInput:
        raise InvalidQuery(
            f"filter: {node.attribute} {node.op} {describe(value)}: {node.attribute} is a TIMESTAMP; compare it with "
            "an RFC 3339 timestamp such as 2023-01-16T19:00:00Z",
            field="filter",
        ) from None


@dataclass(frozen=True)
class EventQuery:
    """One listing of one app's events.

    ``time_from``/``time_to`` bound ``time`` as ``[from, to)`` in microseconds.
    Results are ordered by ``(sort_by, seq)``, ascending unless ``descending``.
    ``sort_by`` is an envelope field (:data:`SORT_FIELDS`) or a dotted body path with
    ``sort_kind`` (:data:`SORT_KINDS`) saying how its values sort; events without the
    field sort first in ascending order. ``after`` is the keyset cursor, ``(sort value,
    seq)``, of the last event already returned.
    """

    app: str
    channel: str | None = None
    time_from: int | None = None
    time_to: int | None = None
    filter: Filter | None = None
    sort_by: str = "time"
    descending: bool = False
    limit: int = 100
    after: tuple[Any, int] | None = field(default=None, compare=False)
    sort_kind: str | None = None

    def __post_init__(self) -> None:
        if self.sort_kind is None and self.sort_by not in SORT_FIELDS:
            raise InvalidQuery(
                f"sort_by: {self.sort_by[:80]!r} is not sortable; use one of {', '.join(SORT_FIELDS)} "
                "or a body field of the channel's schema (with channel=)",
                field="sort_by",
            )
        if self.sort_kind is not None:
            if self.sort_kind not in SORT_KINDS:
                raise InvalidQuery(f"sort_by: unknown sort kind {self.sort_kind!r}", field="sort_by")
            body_path(self.sort_by)
        # Callers bound the page size (MAX_LIMIT); the vault asks for one more row
        # than it shows to learn whether a next page exists.
        if self.limit < 1:
            raise InvalidQuery(f"limit: {self.limit} is out of range; use at least 1", field="limit")
        if self.time_from is not None and self.time_to is not None and self.time_to < self.time_from:
            raise InvalidQuery("to: the end of the time range is before its start", field="to")
        if self.filter is not None:
            check_filter(self.filter)

    def digest(self) -> str:
        """Identify the query apart from its page size and position."""
        material = orjson.dumps(
            [
                self.app,
                self.channel,
                self.time_from,
                self.time_to,
                repr(self.filter),
                self.sort_by,
                self.descending,
                self.sort_kind,
            ]
        )
        return hashlib.sha256(material).hexdigest()[:16]

    def starting_after(self, cursor: tuple[Any, int] | None) -> EventQuery:
        """Return the same query continuing after ``cursor``."""
        return replace(self, after=cursor)


def encode_page_token(query: EventQuery, cursor: tuple[Any, int]) -> str:
    """Return an opaque token that continues ``query`` after ``cursor``."""
    raw = orjson.dumps({"v": 1, "q": query.digest(), "k": list(cursor)})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_page_token(token: str, query: EventQuery) -> tuple[Any, int]:
    """Return the cursor in ``token``, or raise InvalidQuery naming ``page``.

    A token only continues the query that produced it.
    """
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        version, digest, (sort_value, seq) = data["v"], data["q"], data["k"]
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise InvalidQuery("page: not a page token from trailvault; pass next_page as given", field="page") from None
    if version != 1 or not isinstance(seq, int):
        raise InvalidQuery("page: not a page token from trailvault; pass next_page as given", field="page")
    if digest != query.digest():
        raise InvalidQuery(
            "page: this token belongs to a different query; repeat the query's filters exactly or start over",
            field="page",
        )
    if isinstance(sort_value, bool) or not isinstance(sort_value, _CURSOR_TYPES[query.sort_kind]):
        raise InvalidQuery("page: not a page token from trailvault; pass next_page as given", field="page")
    return (sort_value, seq)


def equality_filter(where: Mapping[str, Any], schema: Schema | None) -> Filter:
    """Return the filter that ``where`` (field path -> value, all equal) means for a channel's schema."""
    return And(tuple(_equality(str(attribute), value, schema) for attribute, value in where.items()))


def _equality(attribute: str, value: Any, schema: Schema | None) -> Filter:
    if attribute in ENVELOPE_FIELDS:
        if attribute == "seq":
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise InvalidQuery(f"seq: {value!r} is not a whole number", field="seq") from None
        return Compare(attribute, Op.EQ_CS, value)
    segments = body_path(attribute)
    if schema is None:
        return _loose_equality(attribute, value)
    for depth in range(1, len(segments) + 1):
        field = schema.field(".".join(segments[:depth]))
        if field is None:
            if schema.additional_fields:
                return _loose_equality(attribute, value)
            raise InvalidQuery(f"{attribute}: the channel schema has no such field", field=attribute)
        if field.mode is Mode.REPEATED:
            raise InvalidQuery(
                f"{attribute}: {'.'.join(segments[:depth])} is REPEATED; equality on list fields is not supported",
                field=attribute,
            )
    assert field is not None
    return Compare(attribute, Op.EQ_CS, _typed(field.type, value, attribute))


def _typed(kind: FieldType, value: Any, attribute: str) -> Any:
    """Read a query value as the schema type, so ``--where amount=101.12`` matches a FLOAT."""
    if not isinstance(value, str) or kind is FieldType.STRING:
        return value
    try:
        if kind is FieldType.INTEGER:
            return int(value)
        if kind is FieldType.FLOAT:
            return float(value)
        if kind is FieldType.BOOLEAN and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind is FieldType.TIMESTAMP:
            return format_timestamp(parse_timestamp(value, field=attribute))
    except (ValueError, InvalidInput):
        pass
    raise InvalidQuery(f"{attribute}: {value!r} is not a {kind}", field=attribute)


def _loose_equality(attribute: str, value: Any) -> Filter:
    """Without a schema, a text value also matches the number or boolean it spells."""
    if not isinstance(value, str):
        return Compare(attribute, Op.EQ_CS, value)
    options: list[Filter] = [Compare(attribute, Op.EQ_CS, value)]
    if value.lower() in ("true", "false"):
        options.append(Compare(attribute, Op.EQ_CS, value.lower() == "true"))
    else:
        with contextlib.suppress(ValueError):
            options.append(Compare(attribute, Op.EQ_CS, float(value)))
    return options[0] if len(options) == 1 else Or(tuple(options))


def query_time(value: datetime | str, field: str) -> int:
    """A query's time bound (RFC 3339 text or an aware datetime) in microseconds; InvalidQuery naming ``field``."""
    try:
        return parse_timestamp(value, field=field)
    except InvalidInput as exc:
        raise InvalidQuery(exc.message, field=field) from None
