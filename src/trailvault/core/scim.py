"""The SCIM filter language (RFC 7644 §3.4.2.2) with OCI Data Safe's operators, parsed into a filter tree.

::

    filter  = term *("or" term)
    term    = factor *("and" factor)
    factor  = "not" factor / "(" filter ")" / attribute "pr" / attribute op value
            / attribute ("in" / "not_in") "(" value *("," value) ")"
    op      = "eq" / "eq_cs" / "ne" / "co" / "sw" / "ew" / "gt" / "ge" / "lt" / "le"
    value   = JSON string / JSON number / "true" / "false" / "null"

``and`` binds tighter than ``or``; keywords and operators are case-insensitive;
attributes are envelope fields (``id``, ``time``, ``received``, ``app``, ``channel``,
``seq``) or dotted body paths (``user.email``). Strings and timestamps are quoted,
numbers and booleans bare, as in ``(time ge "2021-06-04T01:00:26.000Z") and
(operation eq "LOGON")``. A text that does not parse raises InvalidQuery naming the
1-based column and what was expected there; so does a number no event can hold (an
integer outside the signed 64-bit range, or beyond a double). Two ``not`` cancel out, so
a run of them reads flat.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from trailvault.core.query import ENVELOPE_FIELDS, And, Compare, Filter, Not, Op, Or, Present, body_path, number_problem
from trailvault.errors import InvalidQuery

__all__ = ["parse_filter", "render_filter"]

_MAX_LENGTH = 10_000
_MAX_DEPTH = 64
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\\x00-\x1f]|\\.)*")
      | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![A-Za-z0-9_@.\-]))
      | (?P<punct>[(),\[\]])
      | (?P<word>[A-Za-z_@][A-Za-z0-9_@.\-]*)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_OPS = {op.value: op for op in Op}
_LITERALS = {"true": True, "false": False, "null": None}


class _Token:
    __slots__ = ("column", "kind", "text")

    def __init__(self, kind: str, text: str, column: int) -> None:
        self.kind, self.text, self.column = kind, text, column


def parse_filter(text: str) -> Filter:
    """Parse a SCIM filter into the tree every store compiles; raise InvalidQuery naming the column."""
    if len(text) > _MAX_LENGTH:
        raise InvalidQuery(f"filter: at most {_MAX_LENGTH:,} characters", field="filter")
    parser = _Parser(_tokens(text), len(text))
    result = parser.filter(0)
    parser.expect_end()
    return result


def render_filter(tree: Filter) -> str:
    """Write a filter tree as SCIM text that :func:`parse_filter` reads back to the same tree."""
    if isinstance(tree, Present):
        return f"{tree.attribute} pr"
    if isinstance(tree, Compare):
        if isinstance(tree.value, tuple):
            return f"{tree.attribute} {tree.op.value} ({', '.join(_literal(item) for item in tree.value)})"
        return f"{tree.attribute} {tree.op.value} {_literal(tree.value)}"
    if isinstance(tree, Not):
        return f"not ({render_filter(tree.item)})"
    joiner = " and " if isinstance(tree, And) else " or "
    return joiner.join(f"({render_filter(item)})" for item in tree.items)


def _literal(value: Any) -> str:
    return orjson.dumps(value).decode()


def _tokens(text: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing blanks are left
            break
        kind = match.lastgroup
        assert kind is not None
        column = match.start(kind) + 1
        if kind == "bad":
            character = match.group(kind)
            hint = " (strings take double quotes)" if character == "'" else ""
            raise _error(column, f"unexpected character {character!r}{hint}")
        tokens.append(_Token(kind, match.group(kind), column))
        position = match.end()
    return tokens


def _error(column: int, message: str) -> InvalidQuery:
    return InvalidQuery(f"filter: at column {column}: {message}", field="filter")


class _Parser:
    def __init__(self, tokens: list[_Token], length: int) -> None:
        self.tokens = tokens
        self.index = 0
        self.end_column = length + 1

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token | None:
        token = self.peek()
        self.index += token is not None
        return token

    def keyword(self, *words: str) -> str | None:
        """Take the next token when it is one of ``words`` (case-insensitive)."""
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() in words:
            self.index += 1
            return token.text.lower()
        return None

    def column(self) -> int:
        token = self.peek()
        return token.column if token is not None else self.end_column

    def expect_end(self) -> None:
        token = self.peek()
        if token is not None:
            raise _error(token.column, f"expected 'and', 'or' or the end of the filter, found {token.text!r}")

    def filter(self, depth: int) -> Filter:
        items = [self.term(depth)]
        while self.keyword("or"):
            items.append(self.term(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def term(self, depth: int) -> Filter:
        items = [self.factor(depth)]
        while self.keyword("and"):
            items.append(self.factor(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def factor(self, depth: int) -> Filter:
        # A run of nots is read in a loop, and two cancel out: "not not x" is x (an unknown,
        # null comparison counts as false either way), so a long run neither recurses nor nests.
        negated = False
        while self.keyword("not"):
            negated = not negated
        inner = self.operand(depth)
        return Not(inner) if negated else inner

    def operand(self, depth: int) -> Filter:
        if depth > _MAX_DEPTH:
            raise _error(self.column(), f"nested deeper than {_MAX_DEPTH} levels")
        token = self.take()
        if token is None:
            raise _error(self.end_column, "expected an attribute, 'not' or '(' but the filter ended")
        if token.kind == "punct" and token.text == "(":
            inner = self.filter(depth + 1)
            closing = self.take()
            if closing is None or closing.text != ")":
                raise _error(closing.column if closing else self.end_column, "expected ')' to close the '('")
            return inner
        if token.kind != "word" or token.text.lower() in ("and", "or") or token.text.lower() in _OPS:
            raise _error(token.column, f"expected an attribute such as time or user.email, found {token.text!r}")
        attribute = _attribute(token)
        if self.keyword("pr"):
            return Present(attribute)
        op_token = self.take()
        op = _OPS.get(op_token.text.lower()) if op_token is not None and op_token.kind == "word" else None
        if op is None:
            found = f"found {op_token.text!r}" if op_token is not None else "the filter ended"
            raise _error(
                op_token.column if op_token else self.end_column,
                f"expected an operator after {attribute!r} (eq, eq_cs, ne, co, sw, ew, gt, ge, lt, le, in, "
                f"not_in, pr), {found}",
            )
        if op in (Op.IN, Op.NOT_IN):
            return Compare(attribute, op, self.value_list(op))
        return Compare(attribute, op, self.value(op))

    def value_list(self, op: Op) -> tuple[Any, ...]:
        opening = self.take()
        if opening is None or opening.text not in ("(", "["):
            raise _error(
                opening.column if opening else self.end_column, f"expected '(' and a list of values after {op}"
            )
        closer = ")" if opening.text == "(" else "]"
        values = [self.value(op)]
        while True:
            token = self.take()
            if token is not None and token.text == ",":
                values.append(self.value(op))
            elif token is not None and token.text == closer:
                return tuple(values)
            else:
                raise _error(token.column if token else self.end_column, f"expected ',' or {closer!r} in the list")

    def value(self, op: Op) -> Any:
        token = self.take()
        if token is not None and token.kind == "number":
            return _number(token)
        if token is not None and token.kind == "string":
            try:
                return orjson.loads(token.text)
            except orjson.JSONDecodeError:
                raise _error(token.column, "this string has an invalid escape") from None
        if token is not None and token.kind == "word" and token.text.lower() in _LITERALS:
            return _LITERALS[token.text.lower()]
        found = f"found {token.text!r}" if token is not None else "the filter ended"
        raise _error(
            token.column if token else self.end_column,
            f'expected a value after {op} (a "quoted string", a number, true, false or null), {found}',
        )


def _number(token: _Token) -> int | float:
    """A number token as an int (whole numbers) or a float, refused when no stored value could equal it."""
    text = token.text
    whole = not any(mark in text for mark in ".eE")
    # More digits than any 64-bit integer has: refuse before int() (which limits its input length).
    value: int | float = (1 << 64 if len(text) > 21 else int(text)) if whole else float(text)
    problem = number_problem(value)
    if problem is not None:
        raise _error(token.column, f"{text[:40]}: {problem}")
    return value


def _attribute(token: _Token) -> str:
    if token.text in ENVELOPE_FIELDS:
        return token.text
    try:
        body_path(token.text)
    except InvalidQuery as exc:
        raise _error(token.column, exc.message) from None
    return token.text
