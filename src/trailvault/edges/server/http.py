"""What every route shares: the error body, JSON answers, bounded request bodies, parameters.

Every error answer has the body ``{"error": {"code", "message", "field"}}`` and the
status of the :mod:`trailvault.errors` class raised; a refused batch adds
``failures`` (one per refused event, with its ``line`` for NDJSON or ``index`` for a
JSON array). Under the OCI faces' paths (:data:`OCI_PATH_PREFIXES`) a refused key or
signature is answered in OCI's shape instead (:func:`not_authenticated`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from trailvault.errors import BatchRejected, InvalidInput, InvalidQuery, RateLimited, RequestTooLarge, TrailvaultError

__all__ = [
    "JSONResponse",
    "check_keys",
    "check_query",
    "error_response",
    "query_int",
    "read_body",
    "takes",
]

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


def check_query(request: Request, accepted: frozenset[str], operation: str) -> None:
    """Refuse a query parameter ``operation`` does not take, or one given twice, naming it.

    Ignoring an unknown one would answer as if it were not there: ``?filtre=...``
    would list every event.
    """
    names = [name for name, _ in request.query_params.multi_items()]
    _refuse_unknown(names, accepted, ("an unknown query parameter", "unknown query parameters"), f"of {operation}",
                    InvalidQuery)  # fmt: skip
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidQuery(f"{repeated[0]}: given more than once; give it once", field=repeated[0])


def check_keys(document: dict[str, Any], accepted: frozenset[str], operation: str) -> None:
    """Refuse a key of a request's JSON object that ``operation`` does not take, naming it."""
    _refuse_unknown(document, accepted, ("an unknown key", "unknown keys"), f"in the body of {operation}", InvalidInput)


def _refuse_unknown(
    names: Iterable[str], accepted: frozenset[str], noun: tuple[str, str], where: str, error: type[InvalidInput]
) -> None:
    """Raise ``error`` naming the first five of ``names`` not in ``accepted`` (``noun``: one, several)."""
    unknown = sorted({str(name) for name in names if name not in accepted})
    if unknown:
        shown = ", ".join(name[:40] for name in unknown[:5])
        raise error(
            f"{shown}: {noun[0] if len(unknown) == 1 else noun[1]} {where}; {takes(accepted)}", field=unknown[0][:40]
        )


def takes(accepted: frozenset[str]) -> str:
    """Say which names an operation takes, for an error message."""
    return f"it takes {', '.join(sorted(accepted))}" if accepted else "it takes none"
