"""What every route shares: the error body, JSON answers, bounded request bodies, parameters.

Every error answer has the body ``{"error": {"code", "message", "field"}}`` and the
status of the :mod:`trailvault.errors` class raised; a refused batch adds
``failures`` (one per refused event, with its ``line`` for NDJSON or ``index`` for a
JSON array).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from trailvault.errors import BatchRejected, InvalidInput, RateLimited, RequestTooLarge, TrailvaultError

__all__ = ["JSONResponse", "error_response", "query_int", "read_body"]

_INT64_MAX = (1 << 63) - 1


class JSONResponse(Response):
    """A JSON answer rendered by orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: TrailvaultError) -> JSONResponse:
    """Render ``error`` as the error body (a refused batch's failures carry their request lines)."""
    body: dict[str, Any] = error.to_dict()
    line = getattr(error, "line", None)
    if line is not None:
        body["line"] = line
    if isinstance(error, BatchRejected):
        lines = error.lines
        body["failures"] = [
            {
                "index": index,
                **({"line": lines[index]} if lines is not None else {}),
                "code": failure.code,
                "field": failure.field,
                "message": failure.message,
            }
            for index, failure in error.failures
        ]
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(max(1, int(error.retry_after + 0.999)))
    return JSONResponse({"error": body}, status_code=error.status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """Return the request body; raise RequestTooLarge as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput("content-length: not a number of bytes", field="content-length")
        if int(declared) > limit:
            raise _too_large(int(declared), limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"body: the request is {size:,}+ bytes, over max_request_bytes = {limit:,}; send smaller batches",
        field="body",
    )


def query_int(request: Request, name: str, *, low: int, high: int | None = None) -> int | None:
    """Return an integer query parameter (None when absent); raise InvalidQuery-style errors naming it."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"{name}: {text[:40]!r} is not a whole number", field=name) from None
    # Stores keep 64-bit integers; anything larger is out of range, not a database error.
    high = _INT64_MAX if high is None else high
    if not low <= value <= high:
        bound = f"from {low} to {high}"
        raise InvalidInput(f"{name}: {value} is out of range; use {bound}", field=name)
    return value
