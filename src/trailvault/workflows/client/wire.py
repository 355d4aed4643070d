"""What the remote client and its archiving half share: the wire (errors, times, path segments) and RemoteParts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from trailvault.errors import from_wire
from trailvault.workflows.api import VaultAPI

__all__ = ["RemoteParts", "byte_lines", "error_of", "segment", "time_text"]


class RemoteParts(VaultAPI, Protocol):
    """What the remote client's archiving half uses of the :class:`~trailvault.workflows.client.RemoteVault`."""

    url: str
    _http: httpx.Client

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any: ...


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


def byte_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Split a byte stream into lines (without their newline, empty ones left out), as the bytes arrive."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        yield from (line for line in lines if line)
    if rest:
        yield rest
