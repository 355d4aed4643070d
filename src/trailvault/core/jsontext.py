"""Parse JSON text with errors that say where it went wrong.

orjson reads JSON several times faster than the standard library, but it keeps the
last of an object's duplicate keys and turns an integer beyond 64 bits into a float
(``123456789012345678901234567890`` becomes ``1.2345678901234568e29``): either way
what is kept is not what was sent. Two checks at C speed tell when that may have
happened, and only that text is read again by the standard library, which sees
every key and every integer's digits, to refuse it naming the path.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from trailvault.errors import InvalidInput, MalformedJSON

__all__ = ["decode_json"]

# orjson reads integers from -2**63 to 2**64 - 1 exactly; any other has 19 digits or more. Finding
# 19 zeros after turning every digit into one is several times faster than a regular expression.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class _Duplicated(dict[str, Any]):
    """An object of the standard library's reading that had ``key`` more than once."""

    key: str


class _OutOfRange(str):
    """The digits of an integer outside the signed 64-bit range, as the standard library read them."""


def decode_json(text: str | bytes, *, field: str) -> Any:
    """Parse ``text``; raise MalformedJSON naming ``field`` and the line, column and char position.

    A key that appears twice in one object, or an integer outside the signed 64-bit
    range, is refused (InvalidInput) naming its path: orjson would keep another value.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        reason = exc.msg.rstrip(".")
        raise MalformedJSON(
            f"{field}: malformed JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {reason}",
            field=field,
        ) from None
    if _maybe_changed(text, value):
        value = _exact(text, field)
    return value


def _maybe_changed(text: str | bytes, value: Any) -> bool:
    """Tell whether orjson may have dropped a duplicate key or rounded a long integer.

    Written out again, the value has one colon per key kept plus those inside strings;
    the text has one per key sent plus the same ones, unless an escape (``\\u003a``)
    spelled one, so text with ``\\u`` escapes is read again whatever the counts say.
    More colons in the text mean a key was dropped.
    """
    raw = text.encode() if isinstance(text, str) else text
    if _LONG_DIGITS in raw.translate(_DIGITS_TO_ZERO) or b"\\u" in raw:
        return True
    try:
        return raw.count(b":") != orjson.dumps(value).count(b":")
    except orjson.JSONEncodeError:  # deeper than orjson writes: let the standard library read it
        return True


def _exact(text: str | bytes, field: str) -> Any:
    """Read ``text`` (already known to be valid JSON) with the standard library.

    Refuses a key repeated in one object, and an integer outside the signed 64-bit
    range (what events hold, filters compare and orjson writes), naming its path.
    """
    flagged = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal flagged
        result = dict(items)
        if len(result) == len(items):
            return result
        marked = _Duplicated(result)
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                marked.key = key
                break
            seen.add(key)
        flagged = True
        return marked

    def integer(digits: str) -> int | _OutOfRange:
        nonlocal flagged
        # int() refuses texts of thousands of digits; none beyond 20 fits anyway.
        value = int(digits) if len(digits) <= 20 else None
        if value is not None and _INT64_MIN <= value <= _INT64_MAX:
            return value
        flagged = True
        return _OutOfRange(digits)

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_int=integer)
    except RecursionError:
        raise MalformedJSON(f"{field}: nested too deeply; send a flatter document", field=field) from None
    if flagged:
        raise _first_problem(value, field)
    return value


def _first_problem(value: Any, field: str) -> InvalidInput:
    """The error for the first (in document order) repeated key or out-of-range integer in ``value``."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        where = f" (at {path})" if path else ""
        if isinstance(item, _OutOfRange):
            shown = item if len(item) <= 40 else f"a number of {len(item)} digits"
            return InvalidInput(
                f"{field}: {shown}{where} is outside the signed 64-bit integer range "
                f"({_INT64_MIN} to {_INT64_MAX}); send it as a string",
                field=field,
            )
        if isinstance(item, _Duplicated):
            return MalformedJSON(
                f"{field}: the key {json.dumps(item.key)[:80]} appears more than once in the same object{where}; "
                "send each key once",
                field=field,
            )
        if isinstance(item, dict):
            children = [(child, f"{path}.{key}" if path else key) for key, child in item.items()]
        elif isinstance(item, list):
            children = [(child, f"{path}[{index}]") for index, child in enumerate(item)]
        else:
            continue
        pending.extend(reversed(children))
    raise AssertionError("a problem was flagged but not found")
