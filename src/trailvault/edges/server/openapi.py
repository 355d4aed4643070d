"""The OpenAPI 3.1 document of the ``/v1`` API, served at ``/v1/openapi.json``.

Written out rather than generated, so it says exactly what the routes accept; a
test checks that it lists every route and a schemathesis run checks the server
against it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

__all__ = ["Accepted", "accepted", "openapi_document"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
                "line": {"type": "integer"},
                "failures": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
_EVENT = {
    "type": "object",
    "required": ["id", "time", "received", "app", "channel", "seq", "body"],
    "properties": {
        "id": {"type": "string"},
        # [masked] where time comes from a sensitive field and the key lacks unmask.
        "time": {"anyOf": [{"type": "string", "format": "date-time"}, {"const": "[masked]"}]},
        "received": {"type": "string", "format": "date-time"},
        "app": {"type": "string"},
        "channel": {"type": "string"},
        "seq": {"type": "integer"},
        "body": {"type": ["object", "null"]},
    },
}
_POSTED = {
    "type": "object",
    "required": ["id", "seq", "duplicate"],
    "properties": {"id": {"type": "string"}, "seq": {"type": "integer"}, "duplicate": {"type": "boolean"}},
}
_KEY = {
    "type": "object",
    "required": ["id", "app", "name", "scopes", "channels", "created", "revoked"],
    "properties": {
        "id": {"type": "string"},
        "app": {"type": "string"},
        "name": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "channels": {"type": ["array", "null"], "items": {"type": "string"}},
        "created": {"type": "string"},
        "revoked": {"type": ["string", "null"]},
        "oci_fingerprint": {"type": ["string", "null"], "description": "The registered OCI public key's fingerprint."},
    },
}
_OBJECT = {"type": "object"}
_VERIFY = {
    "type": "object",
    "required": ["id", "status"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["running", "done", "failed"]},
        "started": {"type": "string"},
        "finished": {"type": ["string", "null"]},
        "report": {"type": ["object", "null"]},
        "error": {"type": ["object", "null"], "description": "As an error body's error: code, message, field."},
    },
}
_NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,127}$"}


def _answer(description: str, schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


#: Routes answering hashes of the log say whom they refuse (docs/integrity.md, "Masking and proofs").
_HASHES = "Needs the `read` scope; refused (403) to a key without unmask that sees a channel with sensitive fields."


def _errors(*statuses: int) -> dict[str, Any]:
    described = {
        400: "Bad input: the error names the field (and line, for NDJSON).",
        401: "No API key, or an unknown or revoked one.",
        403: "The key lacks the scope (or unmask, for what would reveal a sensitive value).",
        404: "No such channel or event for this key (another app's are answered the same way).",
        409: "Conflict: an id taken by another post, a refused schema change, a batching task already running.",
        413: "The request body or an event is over its limit.",
        422: "An event does not match its channel's schema; the error names the field.",
        429: "The key's request rate, or its app's requests at once, over the limit; see Retry-After.",
        503: "The store is unavailable or the request timed out (retrying may help), or a listing ran over "
        "statement_timeout (code query_timeout: narrow it).",
    }
    chosen = {401, 403, 429, 503, *statuses}
    return {
        str(status): {
            "description": described[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in sorted(chosen)
    }


def _query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def _operation(summary: str, scope: str | None, answers: dict[str, Any], *errors: int, **extra: Any) -> dict[str, Any]:
    operation = {
        "summary": summary,
        "description": f"Needs the `{scope}` scope." if scope else "Needs any live API key.",
        "responses": {**answers, **_errors(*errors)},
        **extra,
    }
    return operation


def _listing_parameters() -> list[dict[str, Any]]:
    return [
        _query("channel", _NAME, "Only this channel."),
        _query("from", {"type": "string"}, "Start of the time range, inclusive (RFC 3339)."),
        _query("to", {"type": "string"}, "End of the time range, exclusive (RFC 3339)."),
        _query("filter", {"type": "string"}, 'A SCIM filter, e.g. `user.email eq "a@example.com"`.'),
        _query("sort_by", {"type": "string"}, "time (default; seq where time is masked), received, seq, or a body "
               "field of the channel (with channel)."),
        _query("sort_order", {"type": "string", "enum": ["asc", "desc"]}, "Sort order."),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Events per page (default 100)."),
        _query("page", {"type": "string"}, "The next_page token of the previous page of the same query."),
    ]


def _verb(summary: str, scope: str, properties: dict[str, Any], required: list[str], *errors: int) -> dict[str, Any]:
    """A CDP verb: POST with a JSON object of its parameters."""
    body = {"type": "object", "required": required, "properties": properties, "additionalProperties": False}
    return {"post": _operation(summary, scope, _answer("CDP's answer.", _OBJECT), 400, 413, *errors,
                               requestBody={"required": bool(required),
                                            "content": {"application/json": {"schema": body}}})}  # fmt: skip


def _archive_paths() -> dict[str, Any]:
    text, stamp = {"type": "string"}, {"type": "string", "description": "RFC 3339"}
    hold = {"type": "object", "required": ["name", "reason"], "additionalProperties": False, "properties": {
        "name": _NAME, "reason": text, "channel": _NAME, "from": stamp, "to": stamp}}
    return {
        "/v1/archive/batch-events-for-archiving": _verb(
            "Start grouping the app's events of [from, to) into archive batches.", "archive",
            {"fromTimestamp": stamp, "toTimestamp": stamp}, ["fromTimestamp", "toTimestamp"], 409),
        "/v1/archive/get-batch-events-for-archiving-status": _verb(
            "A batching task's status and batches.", "archive", {"taskId": text}, ["taskId"], 404),
        "/v1/archive/list-outstanding-archive-batches": _verb(
            "Batches not marked archived yet.", "archive",
            {"fromTimestamp": stamp, "toTimestamp": stamp, "pageSize": {"type": "integer", "minimum": 1,
             "maximum": 1000}, "startingToken": text}, []),
        "/v1/archive/list-events-in-archive-batch": _verb(
            'An outstanding batch\'s events, streamed as {"auditEvents": [...]}; 404 once it is marked archived.',
            "archive", {"archiveId": text}, ["archiveId"],
            404),
        "/v1/archive/describe-archive-batch": _verb(
            "One archive batch, marked or not.", "archive", {"archiveId": text}, ["archiveId"], 404),
        "/v1/archive/get-archive-batch-proof": _verb(
            "The archive manifest's proving part for a batch.", "archive",
            {"archiveId": text, "eventCount": {"type": "integer"}, "lastSeq": {"type": "integer"}}, ["archiveId"],
            404, 409),
        "/v1/archive/mark-archive-batches-as-successful": _verb(
            "Mark batches archived, all or none.", "archive",
            {"archiveIds": {"type": "array", "items": text, "minItems": 1}}, ["archiveIds"], 404),
        "/v1/archive/purge": _verb("Purge what is archived, past retention and not held.", "archive", {}, []),
        "/v1/holds": {
            "get": _operation("The app's legal holds.", "archive", _answer("Holds.", _OBJECT),
                              parameters=[_query("all", {"type": "string", "enum": ["true", "false"]},
                                                 "Cleared holds too.")]),
            "post": _operation("Set a legal hold.", "admin", _answer("The hold.", _OBJECT, "201"), 400, 409, 413,
                               requestBody={"required": True, "content": {"application/json": {"schema": hold}}}),
        },
        "/v1/holds/{name}": {
            "parameters": [_path("name")],
            "delete": _operation("Clear a legal hold (it stays on record).", "admin", _answer("The hold.", _OBJECT),
                                 404),
        },
    }  # fmt: skip


@functools.cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document (built once)."""
    event_body = {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [_OBJECT, {"type": "array", "items": _OBJECT}]}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
    paths: dict[str, Any] = {
        "/v1/channels": {"get": _operation("List the app's channels.", "read", _answer("Channels.", _OBJECT))},
        "/v1/channels/{channel}": {
            "parameters": [_path("channel", _NAME)],
            "get": _operation("Show a channel and its schema.", "read", _answer("The channel.", _OBJECT), 404),
            "put": _operation(
                "Open a channel: create it, or add NULLABLE fields to its schema.",
                "ingest",
                _answer("The channel.", _OBJECT),
                400, 404, 409, 413,
                requestBody={"required": True, "content": {"application/json": {"schema": _OBJECT}}},
            ),
        },
        "/v1/channels/{channel}/events": {
            "parameters": [_path("channel", _NAME)],
            "post": _operation(
                "Post one event (a JSON object) or many, all or nothing (a JSON array, or NDJSON). "
                "A 2xx answer means durable.",
                "ingest",
                {
                    **_answer("New events stored.", _OBJECT, "201"),
                    **_answer("Every event was already kept (same id, content and key).", _OBJECT),
                },
                400, 404, 409, 413, 422,
                parameters=[
                    _query("envelope", {"type": "boolean"}, 'Each item is {"id", "time", "body"}.'),
                    _query("id", {"type": "string"}, "One event: its id (the idempotency key)."),
                    _query("time", {"type": "string"}, "One event: when it happened (RFC 3339)."),
                ],
                requestBody=event_body,
            ),
        },
        "/v1/events": {
            "get": _operation(
                "List events, one page at a time.",
                "read",
                _answer("One page.", {"type": "object", "required": ["items", "next_page"], "properties": {
                    "items": {"type": "array", "items": _EVENT}, "next_page": {"type": ["string", "null"]}}}),
                400, 404,
                parameters=_listing_parameters(),
            )
        },
        "/v1/events/{id}": {
            "parameters": [_path("id")],
            "get": _operation("Get one event.", "read", _answer("The event.", _EVENT), 404),
        },
        "/v1/events/{id}/receipt": {
            "parameters": [_path("id")],
            "get": _operation("A receipt: the entry, its proof and a signed checkpoint.", "read",
                              _answer("The receipt.", _OBJECT), 404, description=_HASHES),
        },
        "/v1/events/{id}/redact": {
            "parameters": [_path("id")],
            "post": _operation(
                "Remove an event's body, recording why.", "admin", _answer("The redaction record.", _POSTED, "201"),
                400, 404, 409, 413,
                requestBody={"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["reason"], "additionalProperties": False,
                    "properties": {"reason": {"type": "string"}}}}}},
            ),
        },
        "/v1/export": {
            "get": _operation(
                "Stream an export: a header, each entry's JSON line, a trailer with the proof.", "archive",
                {"200": {"description": "NDJSON.",
                         "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
                400, 404,
                parameters=[p for p in _listing_parameters() if p["name"] in ("channel", "from", "to", "filter")],
            )
        },
        **_archive_paths(),
        "/v1/checkpoint": {
            "get": _operation("The latest signed checkpoint, or the latest of one size.", "read",
                              _answer("The checkpoint.", _OBJECT), 400, 404, description=_HASHES,
                              parameters=[_query("size", {"type": "integer", "minimum": 0}, "Log size.")]),
        },
        "/v1/key": {"get": _operation("The vault's verifier key.", "read", _answer("The key.", _OBJECT), 404)},
        "/v1/proofs/inclusion": {
            "get": _operation("Prove an event is in the log.", "read", _answer("The proof.", _OBJECT), 400, 404,
                              description=_HASHES,
                              parameters=[_query("event", {"type": "string"}, "Event id (or seq)."),
                                          _query("seq", {"type": "integer", "minimum": 1}, "Event seq (or event)."),
                                          _query("size", {"type": "integer", "minimum": 1}, "Tree size.")]),
        },
        "/v1/proofs/consistency": {
            "get": _operation("Prove a larger log extends a smaller one.", "read", _answer("The proof.", _OBJECT),
                              400, 404, description=_HASHES,
                              parameters=[_query("old_size", {"type": "integer", "minimum": 1}, "", required=True),
                                          _query("new_size", {"type": "integer", "minimum": 1}, "", required=True)]),
        },
        "/v1/verify": {"post": _operation(
            "Start verifying the whole vault in the background (one at a time; the same request joins the "
            "running one).", "admin", _answer("The verification's status; Location: /v1/verify/{id}.", _VERIFY, "202"),
            400, 404, 409, 413,
            requestBody={"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {"key": {"type": "string"}, "trusted_checkpoint": {"type": "string"},
                               "max_uncovered_age": {"type": "number", "minimum": 0}}}}}})},
        "/v1/verify/{id}": {
            "parameters": [_path("id")],
            "get": _operation("A verification's status: running, done (with its report) or failed (with its error).",
                              "admin", _answer("The status.", _VERIFY), 404),
        },
        "/v1/keys": {
            "get": _operation("List the app's API keys.", "admin", _answer("Keys.", _OBJECT)),
            "post": _operation(
                "Create an API key; the token is in this answer only.", "admin",
                _answer("The key and its token.", _OBJECT, "201"), 400, 409, 413,
                requestBody={"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["name", "scopes"], "additionalProperties": False, "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
                        "scopes": {"type": "array", "items": {"type": "string", "enum": [
                            "ingest", "read", "archive", "admin", "unmask"]}},
                        "channels": {"type": ["array", "null"], "items": _NAME},
                        "oci_public_key": {"type": ["string", "null"], "description":
                            "PEM of an RSA public key (2048+ bits) to verify OCI request signatures with"}}}}}},
            ),
        },
        "/v1/keys/current": {"get": _operation("The key making this request.", None, _answer("The key.", _KEY))},
        "/v1/keys/{id}": {
            "parameters": [_path("id")],
            "delete": _operation("Revoke an API key.", "admin", _answer("The revoked key.", _KEY), 404),
        },
        "/healthz": {"get": {"summary": "Liveness; with a key that may read (read, archive or admin), the log's size.",
                             "security": [{}, {"bearer": []}],
                             "responses": {**_answer("Healthy.", _OBJECT), **_errors()}}},
        "/metrics": {"get": {"summary": "Prometheus metrics.", "security": [], "responses": {
            "200": {"description": "Prometheus text.", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/v1/openapi.json": {"get": {"summary": "This document.", "security": [],
                                     "responses": _answer("OpenAPI 3.1.", _OBJECT)}},
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "trailvault", "version": version("trailvault"), "description": "Audit-trail vault API."},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR},
        },
    }


@dataclass(frozen=True)
class Accepted:
    """The names an operation takes: its query parameters, and its JSON body's keys.

    ``body`` is None when the body is not an object of named parameters (an event, a schema).
    """

    query: frozenset[str]
    body: frozenset[str] | None


def accepted(method: str, path: str) -> Accepted:
    """What the document says ``method path`` takes; the server refuses any other name.

    Reading it from the document keeps the two from drifting apart. A body's keys are
    closed where its schema says ``additionalProperties: false``. Raises KeyError for
    an operation the document does not describe.
    """
    operation = openapi_document()["paths"][path][method.lower()]
    query = frozenset(item["name"] for item in operation.get("parameters", ()) if item["in"] == "query")
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    closed = schema.get("additionalProperties") is False
    return Accepted(query, frozenset(schema["properties"]) if closed else None)
