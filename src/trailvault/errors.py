"""Every error trailvault raises, as one small tree.

::

    TrailvaultError                  base; carries ``code``, ``status`` and ``field``
    ├── InvalidInput                 400  the caller sent something unusable
    │   ├── MalformedJSON            400  a JSON text does not parse (message gives the position)
    │   ├── InvalidSchema            400  a channel schema is not valid
    │   ├── InvalidQuery             400  a listing's parameters or page token are not valid
    │   ├── EventTooLarge            413  an event is over ``max_event_bytes``
    │   ├── RequestTooLarge          413  an HTTP request body is over ``max_request_bytes``
    │   └── ValidationFailed         422  an event does not match its channel's schema
    │       └── TimeSkew             422  ``time`` is further in the future than allowed
    ├── BatchRejected                4xx  some events of an all-or-nothing batch were refused
    ├── Unauthorized                 401  no API key, or one that is unknown or revoked
    │   └── SignatureRefused              an OCI request signature that does not verify (see its message)
    ├── Forbidden                    403  the API key lacks the scope the operation needs
    ├── RateLimited                  429  the API key's request rate is over ``rate_limit``
    ├── NotFound                     404
    │   ├── VaultNotFound                 no vault at the given path or URL
    │   ├── ChannelNotFound               the channel was never opened
    │   ├── EventNotFound
    │   └── BatchArchived                 an archive batch marked archived: its events are served no more
    ├── Conflict                     409
    │   ├── IdConflict                    an event id is taken by another post
    │   └── SchemaChangeRefused           a schema change other than adding NULLABLE fields
    ├── AppendOnlyViolation          409  something tried to change or remove a kept event
    ├── IntegrityFailure             500  the stored Merkle tree does not cover the log (run verify)
    ├── StoreUnavailable             503  the store cannot be reached or is busy; retrying may help
    ├── QueryTimeout                 503  a read ran over ``statement_timeout`` and was stopped; narrow it
    ├── DestinationUnavailable       503  an archive destination (folder, bucket) cannot be written or read
    └── ServerUnavailable            503  a remote server cannot be reached or timed out; retrying may help

Messages name the field (``taxes[1].taxrate``) and, where there is one, the fix.
Errors that reach HTTP carry their status; ``to_dict`` is the wire form
``{"code", "message", "field"}``.
"""

from __future__ import annotations

__all__ = [
    "AppendOnlyViolation",
    "BatchArchived",
    "BatchRejected",
    "ChannelNotFound",
    "Conflict",
    "DestinationUnavailable",
    "EventNotFound",
    "EventTooLarge",
    "Forbidden",
    "IdConflict",
    "IntegrityFailure",
    "InvalidInput",
    "InvalidQuery",
    "InvalidSchema",
    "MalformedJSON",
    "NotFound",
    "QueryTimeout",
    "RateLimited",
    "RequestTooLarge",
    "SchemaChangeRefused",
    "ServerUnavailable",
    "SignatureRefused",
    "StoreUnavailable",
    "TimeSkew",
    "TrailvaultError",
    "Unauthorized",
    "ValidationFailed",
    "VaultNotFound",
    "from_wire",
]


class TrailvaultError(Exception):
    """Base of every trailvault error.

    ``field`` names the offending input (a dotted body path such as
    ``taxes[1].taxrate``, an envelope field, or an option name) when there is one.
    """

    code = "error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        """Return the wire form used by the CLI's JSON output and the HTTP API."""
        return {"code": self.code, "message": self.message, "field": self.field}


class InvalidInput(TrailvaultError):
    code = "invalid_input"
    status = 400


class MalformedJSON(InvalidInput):
    code = "malformed_json"


class InvalidSchema(InvalidInput):
    code = "invalid_schema"


class InvalidQuery(InvalidInput):
    code = "invalid_query"


class EventTooLarge(InvalidInput):
    code = "event_too_large"
    status = 413


class RequestTooLarge(InvalidInput):
    code = "request_too_large"
    status = 413


class ValidationFailed(InvalidInput):
    """An event does not match its channel's schema.

    ``problems`` lists every ``(field path, message)`` found, first one in ``field``.
    """

    code = "validation_failed"
    status = 422

    def __init__(
        self, message: str, *, field: str | None = None, problems: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.problems = problems if problems is not None else [(field or "", message)]


class TimeSkew(ValidationFailed):
    code = "time_skew"


class BatchRejected(InvalidInput):
    """Some events of an all-or-nothing batch were refused, so none was stored.

    ``failures`` lists ``(index in the batch, error)`` for every refused event
    (up to a limit); the status is that of the first failure. With ``lines``
    (the input line of each index) the message names lines instead of indexes.
    """

    code = "batch_rejected"

    def __init__(
        self, failures: list[tuple[int, TrailvaultError]], total: int, *, lines: list[int] | None = None
    ) -> None:
        def where(index: int) -> str:
            return f"line {lines[index]}" if lines is not None else f"event {index}"

        shown = "; ".join(f"{where(index)}: {error.message}" for index, error in failures[:10])
        more = f"; and {len(failures) - 10} more" if len(failures) > 10 else ""
        super().__init__(
            f"{len(failures)} of {total} events refused, nothing was stored: {shown}{more}",
            field=failures[0][1].field,
        )
        self.failures = failures
        self.total = total
        #: For each index of the batch, its line in the request (NDJSON), when known.
        self.lines = lines
        self.status = failures[0][1].status


class Unauthorized(TrailvaultError):
    code = "unauthorized"
    status = 401


class SignatureRefused(Unauthorized):
    """An OCI-signed request (:mod:`trailvault.core.ocisignature`) that does not verify.

    Answered 401 like any refused key; an OCI face renders it in OCI's shape
    (``{"code": "NotAuthenticated", "message": ...}``). The message names what is
    wrong and never holds the signature or the ``Authorization`` header.
    """


class Forbidden(TrailvaultError):
    code = "forbidden"
    status = 403


class RateLimited(TrailvaultError):
    """Too many requests for one API key; ``retry_after`` is the seconds to wait."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, field=None)
        self.retry_after = retry_after


class NotFound(TrailvaultError):
    code = "not_found"
    status = 404


class VaultNotFound(NotFound):
    code = "vault_not_found"


class ChannelNotFound(NotFound):
    code = "channel_not_found"


class EventNotFound(NotFound):
    code = "event_not_found"


class BatchArchived(NotFound):
    """An archive batch was marked archived, so its events are no longer listed or written (as CDP
    refuses them); its archive file holds them. ``archive_id`` and ``archived_at`` (RFC 3339, to the
    millisecond as ``archiveTimestamp``) say which and when, also on the wire as ``archiveId`` and
    ``archivedAt``."""

    code = "batch_archived"

    def __init__(
        self, message: str, *, field: str | None = None, archive_id: str | None = None, archived_at: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.archive_id = archive_id
        self.archived_at = archived_at

    def to_dict(self) -> dict[str, str | None]:
        return {**super().to_dict(), "archiveId": self.archive_id, "archivedAt": self.archived_at}


class Conflict(TrailvaultError):
    code = "conflict"
    status = 409


class IdConflict(Conflict):
    code = "id_conflict"


class SchemaChangeRefused(Conflict):
    code = "schema_change_refused"


class AppendOnlyViolation(TrailvaultError):
    code = "append_only"
    status = 409


class IntegrityFailure(TrailvaultError):
    code = "integrity_failure"
    status = 500


class StoreUnavailable(TrailvaultError):
    code = "store_unavailable"
    status = 503


class QueryTimeout(TrailvaultError):
    """A read ran over its time limit (``statement_timeout``) and the database stopped it.

    Retrying the same read fails the same way on the same data; narrowing it (a time
    range, a channel, fewer or indexed filter terms) is the fix.
    """

    code = "query_timeout"
    status = 503


class DestinationUnavailable(TrailvaultError):
    code = "destination_unavailable"
    status = 503


class ServerUnavailable(TrailvaultError):
    code = "server_unavailable"
    status = 503


def _by_code() -> dict[str, type[TrailvaultError]]:
    found: dict[str, type[TrailvaultError]] = {}
    pending: list[type[TrailvaultError]] = [TrailvaultError]
    while pending:
        kind = pending.pop()
        found.setdefault(kind.code, kind)
        pending.extend(kind.__subclasses__())
    return found


def from_wire(document: dict[str, object], status: int, *, retry_after: float | None = None) -> TrailvaultError:
    """Rebuild the error a server answered (``{"code", "message", "field", ...}``) as its class.

    An unknown code becomes a TrailvaultError carrying the answer's status, so a
    newer server's errors still read as errors with their message.
    """
    code = str(document.get("code", "error"))
    message = str(document.get("message", f"HTTP {status}"))
    field = document.get("field")
    field = None if field is None else str(field)
    kind = _by_code().get(code)
    error: TrailvaultError
    if kind is BatchRejected:
        failures = document.get("failures")
        rebuilt = [
            (int(item["index"]), from_wire(item, status))
            for item in (failures if isinstance(failures, list) else [])
            if isinstance(item, dict)
        ]
        error = BatchRejected(rebuilt or [(0, TrailvaultError(message, field=field))], len(rebuilt) or 1)
        error.message = message
        error.args = (message,)
    elif kind is RateLimited:
        error = RateLimited(message, retry_after=retry_after or 1.0)
    elif kind is BatchArchived:
        archive_id, archived_at = document.get("archiveId"), document.get("archivedAt")
        error = BatchArchived(
            message,
            field=field,
            archive_id=None if archive_id is None else str(archive_id),
            archived_at=None if archived_at is None else str(archived_at),
        )
    elif kind is None:
        error = TrailvaultError(message, field=field)
    else:
        error = kind(message, field=field)
    error.status = status
    return error
