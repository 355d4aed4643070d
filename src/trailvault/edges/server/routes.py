"""The ``/v1`` routes: each parses a request, makes one call, renders the answer.

Every route but health, metrics and the OpenAPI document needs an API key with a
scope (:mod:`trailvault.core.api_key`) and acts as the key's app. What depends on the key
beyond its scope (visible channels, masking, refused filters, recorded reads) is
applied by the key's :class:`~trailvault.workflows.keyview.KeyView`, which the routes call.
Blocking calls run in the thread pool, so the event loop keeps answering while a
post waits for the disk.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from trailvault.core.api_key import ApiKey, Scope
from trailvault.core.event import NewEvent, Posted
from trailvault.core.integrity.findings import MAX_UNCOVERED_AGE
from trailvault.core.jsontext import decode_json
from trailvault.core.query import MAX_LIMIT
from trailvault.edges.server.http import JSONResponse, check_keys, query_int, read_body, takes
from trailvault.edges.server.state import ServerState
from trailvault.errors import BatchRejected, InvalidInput, InvalidQuery, TrailvaultError
from trailvault.workflows.keyview import KeyView
from trailvault.workflows.vault.vault import Vault

__all__ = ["ROUTES", "Call", "ErrorRenderer", "Face", "Route"]


@dataclass(frozen=True)
class Call:
    """One authorized request: the request, the key that made it and its app's vault."""

    request: Request
    key: ApiKey
    vault: Vault
    state: ServerState
    #: The keys the route's JSON object body takes (None: its body is not such an object), and the route.
    body_keys: frozenset[str] | None = None
    operation: str = ""

    def param(self, name: str) -> str | None:
        value = self.request.query_params.get(name)
        return value if value not in (None, "") else None

    @functools.cached_property
    def view(self) -> KeyView:
        """The key's view of its app: every key-scoped rule (visibility, masking, recorded reads) lives there."""
        return KeyView(self.vault, self.key, record_reads=self.state.options.audit_reads)

    async def body(self) -> bytes:
        return await read_body(self.request, self.state.options.max_request_bytes)

    async def json(self) -> Any:
        return decode_json(await self.body(), field="body")

    async def parameters(self) -> dict[str, Any]:
        """The body's JSON object of named parameters ({} when empty); a key the route does not take is refused."""
        raw = await self.body()
        document = decode_json(raw, field="body") if raw.strip() else {}
        if not isinstance(document, dict):
            named = "" if self.body_keys is None else f"; {self.operation} {takes(self.body_keys)}"
            raise InvalidInput(f"body: send a JSON object{named}", field="body")
        if self.body_keys is not None:
            check_keys(document, self.body_keys, self.operation)
        return document


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    """A path, its method, the scope it needs (None: any live key) and its handler.

    ``query`` names the query parameters a face's route takes; a ``/v1`` route leaves it
    None and takes what the OpenAPI document says.
    """

    path: str
    method: str
    scope: Scope | None
    handler: Handler
    query: frozenset[str] | None = None


#: How a face answers an error: the request and the error (None: an unexpected failure, logged).
ErrorRenderer = Callable[[Request, TrailvaultError | None], Response]


@dataclass(frozen=True)
class Face:
    """Another system's wire protocol served beside ``/v1`` (:mod:`trailvault.edges.faces` makes them).

    Its routes are authorized, limited and measured as ``/v1`` routes are; every error,
    including a refused key or a rate limit, is answered by ``render_error``.
    """

    name: str
    routes: tuple[Route, ...]
    render_error: ErrorRenderer


def _posted(posted: Posted) -> dict[str, Any]:
    return {"id": posted.id, "seq": posted.seq, "duplicate": posted.duplicate}


# -- channels ------------------------------------------------------------------------------


async def list_channels(call: Call) -> Response:
    found = await run_in_threadpool(call.view.channels)
    return JSONResponse({"channels": [channel.to_dict() for channel in found]})


async def show_channel(call: Call) -> Response:
    name = call.request.path_params["channel"]
    return JSONResponse((await run_in_threadpool(call.view.channel, name)).to_dict())


async def open_channel(call: Call) -> Response:
    # A channel the key may not use is refused before its body is read.
    name = call.view.visible(call.request.path_params["channel"])
    schema = await call.json()
    if not isinstance(schema, (dict, list)):
        raise InvalidInput('body: send the schema, {"fields": [...]} or a BigQuery-style list', field="body")
    return JSONResponse((await run_in_threadpool(call.view.open, name, schema)).to_dict())


# -- events ------------------------------------------------------------------------------


def _ndjson(raw: bytes, envelope: bool) -> tuple[list[Any], list[int]]:
    """Split NDJSON into items (raw lines, or envelopes read here) and their line numbers.

    The vault checks raw lines itself; an envelope that does not read is refused here,
    with every other one that does not, as a refused batch naming their lines.
    """
    items: list[Any] = []
    lines: list[int] = []
    failures: list[tuple[int, TrailvaultError]] = []
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        if envelope:
            where = f"line {number}"
            try:
                items.append(NewEvent.from_envelope(decode_json(line, field=where), where=where))
            except TrailvaultError as exc:
                failures.append((len(lines), exc))
                items.append(None)
        else:
            items.append(line)
        lines.append(number)
    if failures:
        raise BatchRejected(failures, len(items), lines=lines)
    return items, lines


def _envelopes(document: list[Any]) -> list[NewEvent]:
    """Read a JSON array of envelopes; refuse every item that is not one, by index."""
    items: list[NewEvent] = []
    failures: list[tuple[int, TrailvaultError]] = []
    for index, item in enumerate(document):
        try:
            items.append(NewEvent.from_envelope(item, where=f"[{index}]"))
        except TrailvaultError as exc:
            failures.append((index, exc))
    if failures:
        raise BatchRejected(failures, len(document))
    return items


async def post_events(call: Call) -> Response:
    # A channel the key may not use is refused before its body is read.
    channel = call.view.visible(call.request.path_params["channel"])
    envelope = (call.param("envelope") or "false").lower() in ("1", "true", "yes")
    raw = await call.body()
    content_type = call.request.headers.get("content-type", "application/json").lower()
    if "ndjson" in content_type or "jsonl" in content_type or "json-seq" in content_type:
        items, lines = _ndjson(raw, envelope)
        if not items:
            raise InvalidInput("body: no events; send one JSON object per line", field="body")
        return await _post_many(call, channel, items, lines)
    document = decode_json(raw, field="body")
    if isinstance(document, list):
        if not document:
            raise InvalidInput("body: the array holds no events", field="body")
        return await _post_many(call, channel, _envelopes(document) if envelope else document, None)
    if not isinstance(document, dict):
        raise InvalidInput("body: send a JSON object (one event), a JSON array or NDJSON", field="body")
    single = NewEvent.from_envelope(document, where="body") if envelope else NewEvent(document)
    item = NewEvent(single.body, call.param("id") or single.id, call.param("time") or single.time)
    try:
        (posted,) = await _commit(call, channel, [item])
    except BatchRejected as exc:
        raise exc.failures[0][1] from None
    call.state.count_posted([posted])
    return JSONResponse(_posted(posted), status_code=200 if posted.duplicate else 201)


async def _commit(call: Call, channel: str, items: list[Any]) -> list[Posted]:
    """Check the events on the event loop, then wait for their commit without holding a thread.

    Checking is CPU work that a thread would not speed up (one interpreter lock); the
    commit's wait for the disk is shared by every request queued meanwhile.
    """
    return await asyncio.wrap_future(call.view.post_nowait(channel, items))


async def _post_many(call: Call, channel: str, items: list[Any], lines: list[int] | None) -> Response:
    try:
        posted = await _commit(call, channel, items)
    except BatchRejected as exc:
        if lines is None:
            raise
        raise BatchRejected(exc.failures, exc.total, lines=lines) from None
    call.state.count_posted(posted)
    new = sum(1 for item in posted if not item.duplicate)
    return JSONResponse(
        {"posted": new, "duplicates": len(posted) - new, "events": [_posted(item) for item in posted]},
        status_code=201 if new else 200,
    )


async def list_events(call: Call) -> Response:
    channel = call.param("channel")
    if channel is not None:
        call.view.visible(channel)  # before the limit, as every channel the key may not use
    limit = query_int(call.request, "limit", low=1, high=MAX_LIMIT)
    page = await run_in_threadpool(
        lambda: call.view.events(
            channel,
            time_from=call.param("from"),
            time_to=call.param("to"),
            filter=call.param("filter"),
            sort_by=call.param("sort_by"),
            sort_order=call.param("sort_order"),
            limit=limit,
            page=call.param("page"),
        )
    )
    return JSONResponse({"items": [event.to_dict() for event in page], "next_page": page.next_page})


async def get_event(call: Call) -> Response:
    event = await run_in_threadpool(call.view.get, call.request.path_params["id"])
    return JSONResponse(event.to_dict())


async def event_receipt(call: Call) -> Response:
    return JSONResponse(await run_in_threadpool(call.view.receipt, call.request.path_params["id"]))


async def redact_event(call: Call) -> Response:
    event_id = call.request.path_params["id"]
    reason = (await call.parameters()).get("reason")
    if not isinstance(reason, str):
        raise InvalidInput('reason: send {"reason": "why the body is removed"}', field="reason")
    return JSONResponse(_posted(await run_in_threadpool(call.view.redact, event_id, reason)), status_code=201)


async def stream_export(call: Call) -> Response:
    # Checking the query and reading its first page happen here, so bad input is a 4xx, not a broken stream.
    lines = await run_in_threadpool(
        call.view.export_lines, call.param("channel"), call.param("from"), call.param("to"), call.param("filter")
    )
    # Reading the store happens as the client reads the stream, in the thread pool.
    return StreamingResponse(lines, media_type="application/x-ndjson")


# -- integrity -----------------------------------------------------------------------------


async def show_checkpoint(call: Call) -> Response:
    size = query_int(call.request, "size", low=0)
    found = await run_in_threadpool(call.view.checkpoint, size)
    return JSONResponse(
        {"size": found.size, "root": found.root.hex(), "timestamp": found.timestamp, "note": found.note}
    )


async def show_key(call: Call) -> Response:
    return JSONResponse({"verifier_key": await run_in_threadpool(call.vault.verifier_key)})


async def prove_inclusion(call: Call) -> Response:
    event_id = call.param("event")
    seq = query_int(call.request, "seq", low=1)
    if (event_id is None) == (seq is None):
        raise InvalidQuery("event: give the event's id (event=) or its seq (seq=), one of them", field="event")
    call.view.require_seq_allowed(seq)
    size = query_int(call.request, "size", low=1)
    proof = await run_in_threadpool(call.view.inclusion_proof, event_id, seq, size)
    return JSONResponse(proof.to_dict())


async def prove_consistency(call: Call) -> Response:
    old_size = query_int(call.request, "old_size", low=1)
    new_size = query_int(call.request, "new_size", low=1)
    if old_size is None or new_size is None:
        raise InvalidQuery(
            "old_size: give both old_size and new_size", field="old_size" if old_size is None else "new_size"
        )
    proof = await run_in_threadpool(call.view.consistency_proof, old_size, new_size)
    return JSONResponse(proof.to_dict())


async def verify(call: Call) -> Response:
    document = await call.parameters()
    trusted, key = document.get("trusted_checkpoint"), document.get("key")
    for name, value in (("trusted_checkpoint", trusted), ("key", key)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{name}: give it as text", field=name)
    max_age = document.get("max_uncovered_age", MAX_UNCOVERED_AGE)
    if isinstance(max_age, bool) or not isinstance(max_age, int | float) or not max_age >= 0:
        raise InvalidInput("max_uncovered_age: give a number of seconds, 0 or more", field="max_uncovered_age")
    vault, request = call.vault, {"trusted_checkpoint": trusted, "key": key, "max_uncovered_age": float(max_age)}
    job = call.state.verifications.start(
        call.key.app, request, lambda: vault.verify(trusted, key, max_uncovered_age=float(max_age)).to_dict()
    )
    return JSONResponse(job.to_dict(), status_code=202, headers={"Location": f"/v1/verify/{job.id}"})


async def verify_status(call: Call) -> Response:
    return JSONResponse(call.state.verifications.get(call.key.app, call.request.path_params["id"]).to_dict())


# -- keys ------------------------------------------------------------------------------------


async def current_key(call: Call) -> Response:
    return JSONResponse(call.key.to_dict())


async def list_keys(call: Call) -> Response:
    found = await run_in_threadpool(call.view.keys)
    return JSONResponse({"keys": [key.to_dict() for key in found]})


async def create_key(call: Call) -> Response:
    document = await call.parameters()
    name, scopes, channels = document.get("name"), document.get("scopes"), document.get("channels")
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise InvalidInput('scopes: a list such as ["ingest", "read"]', field="scopes")
    if channels is not None and (not isinstance(channels, list) or not all(isinstance(c, str) for c in channels)):
        raise InvalidInput("channels: a list of channel names, or null for every channel", field="channels")
    public_key = document.get("oci_public_key")
    if public_key is not None and not isinstance(public_key, str):
        raise InvalidInput("oci_public_key: the PEM text of an RSA public key, or null", field="oci_public_key")
    named = name if isinstance(name, str) else ""
    key, token = await run_in_threadpool(call.view.create_key, named, scopes, channels, public_key)
    return JSONResponse({"key": key.to_dict(), "token": token}, status_code=201)


async def revoke_key(call: Call) -> Response:
    key = await run_in_threadpool(call.view.revoke_key, call.request.path_params["id"])
    call.state.authenticator.forget(key.id)
    return JSONResponse(key.to_dict())


ROUTES = (
    Route("/v1/channels", "GET", Scope.READ, list_channels),
    Route("/v1/channels/{channel}", "GET", Scope.READ, show_channel),
    Route("/v1/channels/{channel}", "PUT", Scope.INGEST, open_channel),
    Route("/v1/channels/{channel}/events", "POST", Scope.INGEST, post_events),
    Route("/v1/events", "GET", Scope.READ, list_events),
    Route("/v1/events/{id}", "GET", Scope.READ, get_event),
    Route("/v1/events/{id}/receipt", "GET", Scope.READ, event_receipt),
    Route("/v1/events/{id}/redact", "POST", Scope.ADMIN, redact_event),
    Route("/v1/export", "GET", Scope.ARCHIVE, stream_export),
    Route("/v1/checkpoint", "GET", Scope.READ, show_checkpoint),
    Route("/v1/key", "GET", Scope.READ, show_key),
    Route("/v1/proofs/inclusion", "GET", Scope.READ, prove_inclusion),
    Route("/v1/proofs/consistency", "GET", Scope.READ, prove_consistency),
    Route("/v1/verify", "POST", Scope.ADMIN, verify),
    Route("/v1/verify/{id}", "GET", Scope.ADMIN, verify_status),
    Route("/v1/keys", "GET", Scope.ADMIN, list_keys),
    Route("/v1/keys", "POST", Scope.ADMIN, create_key),
    Route("/v1/keys/current", "GET", None, current_key),
    Route("/v1/keys/{id}", "DELETE", Scope.ADMIN, revoke_key),
)
