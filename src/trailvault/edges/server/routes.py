"""The ``/v1`` routes: each parses a request, makes one Vault call, renders the answer.

Every route but health, metrics and the OpenAPI document needs an API key with a
scope (:mod:`trailvault.core.api_key`) and acts as the key's app. A channel or event of
another app, or of a channel the key is not limited to, is answered exactly like
one that does not exist. Blocking vault calls run in the thread pool, so the event
loop keeps answering while a post waits for the disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from trailvault.core.api_key import ApiKey, Scope, parse_scopes
from trailvault.core.event import Event, NewEvent, Posted
from trailvault.core.integrity.findings import MAX_UNCOVERED_AGE
from trailvault.core.jsontext import decode_json
from trailvault.core.query import MAX_LIMIT, And, Compare, Filter, Not, Op, Present, overlaps
from trailvault.core.scim import parse_filter
from trailvault.edges.server.http import JSONResponse, check_keys, query_int, read_body, takes
from trailvault.edges.server.state import ServerState
from trailvault.errors import (
    BatchRejected,
    ChannelNotFound,
    EventNotFound,
    Forbidden,
    InvalidInput,
    InvalidQuery,
    NotFound,
    TrailvaultError,
)
from trailvault.workflows.vault.exporting import export_stream
from trailvault.workflows.vault.vault import Vault

__all__ = ["ROUTES", "Call", "Route"]


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

    def channel(self, name: str) -> str:
        """Return ``name`` when the key may use that channel; otherwise answer as if it did not exist."""
        if not self.key.sees(name):
            raise ChannelNotFound(f"channel: {name[:128]!r} was never opened", field="channel")
        return name

    def event(self, event_id: str) -> Event:
        """Return the app's event when the key may see its channel; otherwise EventNotFound."""
        event = self.vault.get(event_id)
        if not self.key.sees(event.channel):
            raise EventNotFound(f"id: no event with id {event_id[:128]!r} in app {self.vault.app!r}", field="id")
        return event

    def shown(self, event: Event) -> dict[str, Any]:
        """The event as this key may see it: sensitive values masked unless it holds ``unmask``."""
        return (event if self.key.allows(Scope.UNMASK) else self.vault.mask(event)).to_dict()

    def masked_fields(self, channel: str | None = None) -> set[str]:
        """What this key reads masked (in ``channel`` only, when given): nothing with ``unmask``, else the
        sensitive fields, and ``time`` where it comes from one."""
        return set() if self.key.allows(Scope.UNMASK) else self.vault.sensitive_fields(channel)

    def check_filter(self, filter_tree: Filter | None, masked: set[str]) -> None:
        """Refuse a filter on a masked field: its matches would reveal the values."""
        if filter_tree is not None:
            self.check_attributes(list(_attributes(filter_tree)), "filter", masked)

    def check_attributes(self, attributes: list[str], field: str, masked: set[str]) -> None:
        """Refuse a filter, sort or bound on a masked field, on anything below one, or on a record holding one."""
        for attribute in attributes:
            for path in masked:
                if overlaps(attribute, path):
                    held = "comes from" if attribute == "time" else "is or holds"
                    raise Forbidden(
                        f"{field}: {attribute} {held} a sensitive field; filtering or sorting on it needs a key "
                        "with the unmask scope",
                        field=field,
                    )

    def check_log_hashes(self, what: str) -> None:
        """Refuse hashes of the log to a key without ``unmask`` that sees a channel with sensitive fields.

        Leaves, proof nodes and roots are hashes over bodies as posted: with the rest of an
        entry in view (its masked body), each one would test guesses at a sensitive value
        offline. docs/integrity.md, "Masking and proofs", has why this is refused, not salted.
        """
        if self.key.allows(Scope.UNMASK):
            return
        for channel in self.vault.channels():
            if self.key.sees(channel.name) and channel.schema.sensitive_paths():
                raise Forbidden(
                    f"scopes: {what} holds hashes of the log, which would test guesses at the sensitive fields "
                    f"of channel {channel.name!r}; use a key that also holds the unmask scope "
                    "(or one limited to channels without sensitive fields)",
                    field="scopes",
                )

    def record_read(self, action: str, request: dict[str, Any], results: int | None) -> None:
        if self.state.options.audit_reads:
            self.vault.record_read(self.key, action, request, results)

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
    """A path, its method, the scope it needs (None: any live key) and its handler."""

    path: str
    method: str
    scope: Scope | None
    handler: Handler


def _posted(posted: Posted) -> dict[str, Any]:
    return {"id": posted.id, "seq": posted.seq, "duplicate": posted.duplicate}


# -- channels ------------------------------------------------------------------------------


async def list_channels(call: Call) -> Response:
    found = await run_in_threadpool(call.vault.channels)
    return JSONResponse({"channels": [channel.to_dict() for channel in found if call.key.sees(channel.name)]})


async def show_channel(call: Call) -> Response:
    name = call.channel(call.request.path_params["channel"])
    return JSONResponse((await run_in_threadpool(call.vault.channel, name)).to_dict())


async def open_channel(call: Call) -> Response:
    name = call.channel(call.request.path_params["channel"])
    schema = await call.json()
    if not isinstance(schema, (dict, list)):
        raise InvalidInput('body: send the schema, {"fields": [...]} or a BigQuery-style list', field="body")

    def work() -> dict[str, Any]:
        call.vault.open(name, schema)
        return call.vault.channel(name).to_dict()

    return JSONResponse(await run_in_threadpool(work))


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
    channel = call.channel(call.request.path_params["channel"])
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
        items = (
            [NewEvent.from_envelope(item, where=f"[{i}]") for i, item in enumerate(document)] if envelope else document
        )
        return await _post_many(call, channel, items, None)
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
    return await asyncio.wrap_future(call.vault.post_many_nowait(channel, items, posted_by=call.key.id))


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


def _attributes(tree: Filter) -> Iterator[str]:
    if isinstance(tree, (Compare, Present)):
        yield tree.attribute
    elif isinstance(tree, Not):
        yield from _attributes(tree.item)
    else:
        for item in tree.items:
            yield from _attributes(item)


def _listing_filter(call: Call, masked: set[str]) -> Filter | None:
    parts: list[Filter] = []
    text = call.param("filter")
    if text is not None:
        parsed = parse_filter(text)
        call.check_filter(parsed, masked)
        parts.append(parsed)
    if call.key.channels is not None and call.param("channel") is None:
        parts.append(Compare("channel", Op.IN, call.key.channels))
    return None if not parts else parts[0] if len(parts) == 1 else And(tuple(parts))


async def list_events(call: Call) -> Response:
    channel = call.param("channel")
    if channel is not None:
        call.channel(channel)
    request = {
        name: call.param(name) for name in ("channel", "from", "to", "filter", "sort_by", "sort_order", "limit", "page")
    }
    limit = query_int(call.request, "limit", low=1, high=MAX_LIMIT) or 100

    def work() -> dict[str, Any]:
        masked = call.masked_fields(channel)
        # Time bounds find a masked time by halving; a page token carries the last sort value.
        for bound in ("from", "to"):
            if request[bound] is not None:
                call.check_attributes(["time"], bound, masked)
        # Where time is masked the default order is the log's own.
        sort_by = request["sort_by"] or ("seq" if "time" in masked else "time")
        if sort_by not in ("received", "seq"):
            call.check_attributes([sort_by], "sort_by", masked)
        page = call.vault.events(
            channel,
            time_from=request["from"],
            time_to=request["to"],
            filter=_listing_filter(call, masked),
            sort_by=sort_by,
            sort_order=request["sort_order"] or "asc",
            limit=limit,
            page=request["page"],
        )
        call.record_read("events.list", {**request, "page": None}, len(page))
        return {"items": [call.shown(event) for event in page], "next_page": page.next_page}

    return JSONResponse(await run_in_threadpool(work))


async def get_event(call: Call) -> Response:
    event_id = call.request.path_params["id"]

    def work() -> dict[str, Any]:
        event = call.event(event_id)
        call.record_read("events.get", {"id": event_id}, 1)
        return call.shown(event)

    return JSONResponse(await run_in_threadpool(work))


async def event_receipt(call: Call) -> Response:
    event_id = call.request.path_params["id"]

    def work() -> dict[str, Any]:
        event = call.event(event_id)
        call.check_log_hashes("a receipt")
        receipt = call.vault.receipt(event.seq)
        call.record_read("events.receipt", {"id": event_id}, 1)
        return receipt

    return JSONResponse(await run_in_threadpool(work))


async def redact_event(call: Call) -> Response:
    event_id = call.request.path_params["id"]
    reason = (await call.parameters()).get("reason")
    if not isinstance(reason, str):
        raise InvalidInput('reason: send {"reason": "why the body is removed"}', field="reason")

    def work() -> Posted:
        call.event(event_id)
        return call.vault.redact(event_id, reason)

    return JSONResponse(_posted(await run_in_threadpool(work)), status_code=201)


async def stream_export(call: Call) -> Response:
    channel = call.param("channel")
    if channel is not None:
        call.channel(channel)
    if not call.key.allows(Scope.UNMASK) and await run_in_threadpool(lambda: bool(call.vault.sensitive_fields())):
        raise Forbidden(
            "scopes: an export carries bodies exactly as the log hashed them; with sensitive fields in the app "
            "it needs a key that also holds unmask",
            field="scopes",
        )
    text = call.param("filter")
    if text is not None:
        parse_filter(text)
    if call.key.channels is not None and channel is None:
        listed = ", ".join(f'"{name}"' for name in call.key.channels)
        text = f"(channel in [{listed}])" + (f" and ({text})" if text else "")
    request = {"channel": channel, "from": call.param("from"), "to": call.param("to"), "filter": call.param("filter")}
    await run_in_threadpool(call.record_read, "export", request, None)
    # Checking the query and reading its first page happen here, so bad input is a 4xx, not a broken stream.
    lines = await run_in_threadpool(
        export_stream, call.vault, channel, request["from"], request["to"], text, call.key.channels
    )
    # Reading the store happens as the client reads the stream, in the thread pool.
    return StreamingResponse(lines, media_type="application/x-ndjson")


# -- integrity -----------------------------------------------------------------------------


async def show_checkpoint(call: Call) -> Response:
    size = query_int(call.request, "size", low=0)
    await run_in_threadpool(call.check_log_hashes, "a checkpoint")
    found = await run_in_threadpool(call.vault.checkpoint, size)
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
    if seq is not None and call.key.channels is not None:
        raise InvalidQuery("seq: a key limited to channels asks by event id", field="seq")
    size = query_int(call.request, "size", low=1)

    def work() -> dict[str, Any]:
        found = call.event(event_id).seq if event_id is not None else seq or 0
        call.check_log_hashes("an inclusion proof")
        proof = call.vault.prove_inclusion(found, size)
        call.record_read("proofs.inclusion", {"event": event_id, "seq": seq, "size": size}, 1)
        return proof.to_dict()

    return JSONResponse(await run_in_threadpool(work))


async def prove_consistency(call: Call) -> Response:
    old_size = query_int(call.request, "old_size", low=1)
    new_size = query_int(call.request, "new_size", low=1)
    if old_size is None or new_size is None:
        raise InvalidQuery(
            "old_size: give both old_size and new_size", field="old_size" if old_size is None else "new_size"
        )
    await run_in_threadpool(call.check_log_hashes, "a consistency proof")
    proof = await run_in_threadpool(call.vault.prove_consistency, old_size, new_size)
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


def _manages(caller: ApiKey, key: ApiKey) -> bool:
    """A key limited to channels manages only keys limited to (some of) the same channels."""
    return caller.channels is None or (key.channels is not None and set(key.channels) <= set(caller.channels))


async def list_keys(call: Call) -> Response:
    found = await run_in_threadpool(call.vault.keys)
    return JSONResponse({"keys": [key.to_dict() for key in found if _manages(call.key, key)]})


async def create_key(call: Call) -> Response:
    document = await call.parameters()
    name, scopes, channels = document.get("name"), document.get("scopes"), document.get("channels")
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise InvalidInput('scopes: a list such as ["ingest", "read"]', field="scopes")
    if channels is not None and (not isinstance(channels, list) or not all(isinstance(c, str) for c in channels)):
        raise InvalidInput("channels: a list of channel names, or null for every channel", field="channels")
    if call.key.channels is not None and (channels is None or not set(channels) <= set(call.key.channels)):
        raise Forbidden("channels: a key limited to some channels may only create keys limited to those channels")
    granted = parse_scopes(scopes)
    # A key gives no scope it lacks itself (admin holds ingest, read and archive; unmask only explicitly).
    missing = sorted(scope.value for scope in granted if not call.key.allows(scope))
    if missing:
        raise Forbidden(f"scopes: this key cannot give {', '.join(missing)}, which it does not hold", field="scopes")
    key, token = await run_in_threadpool(call.vault.create_key, name if isinstance(name, str) else "", scopes, channels)
    return JSONResponse({"key": key.to_dict(), "token": token}, status_code=201)


async def revoke_key(call: Call) -> Response:
    key_id = call.request.path_params["id"]

    def work() -> ApiKey:
        target = next((key for key in call.vault.keys() if key.id == key_id), None)
        if target is None or not _manages(call.key, target):
            raise NotFound(f"id: app {call.vault.app!r} has no API key {key_id[:40]!r}", field="id")
        return call.vault.revoke_key(key_id)

    key = await run_in_threadpool(work)
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
