"""Parse JSON text with errors that say where it went wrong."""

from __future__ import annotations

from typing import Any

import orjson

from trailvault.errors import MalformedJSON

__all__ = ["decode_json"]


def decode_json(text: str | bytes, *, field: str) -> Any:
    """Parse ``text``; raise MalformedJSON naming ``field`` and the line, column and char position."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        reason = exc.msg.rstrip(".")
        raise MalformedJSON(
            f"{field}: malformed JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {reason}",
            field=field,
        ) from None
