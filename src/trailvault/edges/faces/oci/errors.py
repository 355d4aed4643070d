"""OCI's error shape: ``{"code": "...", "message": "..."}`` with OCI's codes, and ``opc-request-id``.

The codes are those of OCI's common API errors, chosen by the trailvault error's kind
and status, so the SDK raises a ``ServiceError`` whose ``status``, ``code`` and
``message`` read as OCI's would (and retries what OCI's would be retried: 429, 5xx).
The message names the OCI parameter (``scimQuery``, ``sortBy``), not trailvault's.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from trailvault.edges.server.http import JSONResponse
from trailvault.errors import MalformedJSON, RateLimited, TrailvaultError

__all__ = ["oci_error", "request_id"]

#: OCI's code for each status trailvault answers (422, a body its schema refuses, is OCI's 400).
_CODES = {
    400: (400, "InvalidParameter"),
    401: (401, "NotAuthenticated"),
    403: (403, "NotAuthorized"),
    404: (404, "NotAuthorizedOrNotFound"),
    405: (405, "MethodNotAllowed"),
    409: (409, "Conflict"),
    413: (413, "PayloadTooLarge"),
    422: (400, "InvalidParameter"),
    429: (429, "TooManyRequests"),
    500: (500, "InternalServerError"),
    503: (503, "ServiceUnavailable"),
}
#: trailvault's parameter names in messages, as OCI's listing calls them.
_PARAMETERS = {"filter": "scimQuery", "sort_by": "sortBy", "sort_order": "sortOrder"}


def request_id(request: Request) -> str:
    """The caller's ``opc-request-id``, or a new one: every answer carries it."""
    return request.headers.get("opc-request-id") or uuid.uuid4().hex.upper()


def oci_error(request: Request, error: TrailvaultError | None) -> Response:
    """Answer ``error`` in OCI's shape (None: an unexpected failure, whose details are in the server log)."""
    if error is None:
        status, code, message = 500, "InternalServerError", "internal error; the server log has details"
    else:
        status, code = _CODES.get(error.status, (error.status, "InternalServerError"))
        if isinstance(error, MalformedJSON):
            code = "CannotParseRequest"
        message = _oci_names(error)
    headers = {"opc-request-id": request_id(request)}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(max(1, int(error.retry_after + 0.999)))
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _oci_names(error: TrailvaultError) -> str:
    """The message with its leading parameter named as OCI names it (``filter:`` -> ``scimQuery:``)."""
    message = error.message
    for ours, theirs in _PARAMETERS.items():
        if message.startswith(f"{ours}:"):
            return theirs + message[len(ours) :]
    return message
