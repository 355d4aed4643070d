"""Parse JSON text with errors that say where it went wrong.

orjson reads JSON several times faster than the standard library, but it keeps the
last of an object's duplicate keys and turns an integer beyond 64 bits into a float
(``123456789012345678901234567890`` becomes ``1.2345678901234568e29``): either way
what is kept is not what was sent. Two checks at C speed tell when that may have
happened, and only that text is read again by the standard library, which keeps
every key and every integer exactly. The caller's own checks then refuse an integer
it cannot hold, naming its field.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from trailvault.errors import MalformedJSON

__all__ = ["decode_json"]

# orjson reads integers from -2**63 to 2**64 - 1 exactly; any other has 19 digits or more. Finding
# 19 zeros after turning every digit into one is several times faster than a regular expression.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19


class _Duplicated(dict[str, Any]):
    """An object of the standard library's reading that had ``key`` more than once."""

    key: str


def decode_json(text: str | bytes, *, field: str) -> Any:
    """Parse ``text``; raise MalformedJSON naming ``field`` and the line, column and char position.

    A key that appears twice in one object is refused, naming its path. Integers are
    kept exactly, however long.
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
    """Read ``text`` (already known to be valid JSON) with the standard library, refusing duplicate keys."""
    duplicated = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
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
        duplicated = True
        return marked

    try:
        value = json.loads(text, object_pairs_hook=pairs)
    except RecursionError:
        raise MalformedJSON(f"{field}: nested too deeply; send a flatter document", field=field) from None
    if duplicated:
        path, key = _duplicate(value)
        where = f" in {path}" if path else ""
        raise MalformedJSON(
            f"{field}: the key {json.dumps(key)[:80]} appears more than once in the same object{where}; "
            "send each key once",
            field=field,
        )
    return value


def _duplicate(value: Any) -> tuple[str, str]:
    """The path of the first object (in document order) with a repeated key, and that key."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, _Duplicated):
            return path, item.key
        if isinstance(item, dict):
            children = [(child, f"{path}.{key}" if path else key) for key, child in item.items()]
        elif isinstance(item, list):
            children = [(child, f"{path}[{index}]") for index, child in enumerate(item)]
        else:
            continue
        pending.extend(reversed(children))
    raise AssertionError("a duplicated key was seen but not found")
