"""What the remote client and its archiving half share about the wire: errors, times and path segments."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import httpx

from trailvault.errors import from_wire

__all__ = ["error_of", "segment", "time_text"]


def error_of(response: httpx.Response) -> Exception:
    """Rebuild the server's error; an answer without the error body still says what happened."""
    try:
        document = response.json()["error"]
        assert isinstance(document, dict)
    except (ValueError, KeyError, TypeError, AssertionError):
        return from_wire({"message": f"server: HTTP {response.status_code} from {response.url.path}"}, 502)
    retry = response.headers.get("retry-after")
    return from_wire(document, response.status_code, retry_after=float(retry) if retry and retry.isdigit() else None)


def segment(text: str) -> str:
    """Quote a name or id for a URL path, so ``/`` or ``?`` in it cannot change the route."""
    return quote(text, safe="")


def time_text(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value
