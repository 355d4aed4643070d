"""The Vault API over HTTP: ``trailvault.connect(url, token=...)``.

::

    import trailvault
    with trailvault.connect("https://audit.example.com", token=os.environ["TRAILVAULT_TOKEN"]) as vault:
        vault.post("myindex", {"company": "Amalto", "amount": 101.12})
        for event in vault.iter_events("myindex"):
            ...
        with vault.sender(spool="/var/spool/myapp") as sender:   # busy producers: never blocks
            sender.send("myindex", {"company": "Amalto"})

:class:`RemoteVault` has the methods of :class:`~trailvault.workflows.vault.vault.Vault` with the
same names, arguments and answers, and raises the same errors (rebuilt from the
server's error body). A server that cannot be reached raises ServerUnavailable.
The token travels only in the ``Authorization`` header, never in a URL or a message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal, overload

import httpx
import orjson

from trailvault.adapters.sources import read_schema_document
from trailvault.adapters.store.base import StoredCheckpoint
from trailvault.core.api_key import ApiKey, Scope
from trailvault.core.channel import Channel
from trailvault.core.event import Event, EventPage, NewEvent, Posted
from trailvault.core.integrity.findings import MAX_UNCOVERED_AGE, VerifyReport
from trailvault.core.query import MAX_LIMIT, Filter
from trailvault.errors import InvalidQuery, RateLimited, ServerUnavailable, from_wire
from trailvault.workflows.api import SchemaSource, VaultAPI
from trailvault.workflows.client.archiving import RemoteArchiving
from trailvault.workflows.client.sender import Sender, tls_verify
from trailvault.workflows.client.wire import byte_lines, error_of, segment, time_text
from trailvault.workflows.export.source import Progress
from trailvault.workflows.export.stream import StreamSource
from trailvault.workflows.export.write import export_from
from trailvault.workflows.proofs import ConsistencyProof, InclusionProof

__all__ = ["RemoteVault", "Sender", "connect"]

# A verification's status is asked for after 0.1 s, then at doubling intervals up to 2 s.
_FIRST_POLL_SECONDS = 0.1
_LAST_POLL_SECONDS = 2.0


def connect(url: str, token: str, *, timeout: float = 30.0, verify: bool | str = True) -> RemoteVault:
    """Return the Vault API of the server at ``url`` acting with API key ``token``.

    ``verify`` is True (check TLS against the system's CAs), False, or a CA bundle
    path (a self-signed server's certificate). Checks the key at once: a wrong or
    revoked token raises Unauthorized here rather than at the first post.
    """
    return RemoteVault(url, token, timeout=timeout, verify=verify)


class RemoteVault(RemoteArchiving, VaultAPI):
    """A vault on a trailvault server, with :class:`~trailvault.workflows.vault.vault.Vault`'s methods. Thread-safe."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, verify: bool | str = True) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._verify = verify
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"trailvault/{version('trailvault')}"},
            timeout=timeout,
            verify=tls_verify(verify),
        )
        try:
            #: The API key this client acts with (its app is :attr:`app`).
            self.key = ApiKey.from_dict(self._call("GET", "/v1/keys/current"))
        except BaseException:
            self._http.close()
            raise
        self.app = self.key.app

    @property
    def location(self) -> str:
        return self.url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteVault:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        if json is not None:
            content = orjson.dumps(json)
        shown = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            response = self._http.request(
                method, path, params=shown, content=content, headers={"Content-Type": content_type}
            )
        except httpx.TransportError as exc:
            raise ServerUnavailable(
                f"server: cannot reach {self.url} ({type(exc).__name__}); check the URL and that the server runs"
            ) from None
        if response.status_code >= 400:
            raise error_of(response)
        return response.json()

    # -- channels ----------------------------------------------------------------------

    def open(self, channel: str, schema: SchemaSource | None = None) -> bool:
        if schema is None:
            self.channel(channel)
            return True
        document = read_schema_document(schema) if isinstance(schema, (str, Path)) else schema
        self._call("PUT", f"/v1/channels/{segment(channel)}", json=document)
        return True

    def channels(self) -> list[Channel]:
        return [Channel.from_dict(item) for item in self._call("GET", "/v1/channels")["channels"]]

    def channel(self, name: str) -> Channel:
        return Channel.from_dict(self._call("GET", f"/v1/channels/{segment(name)}"))

    # -- posting ---------------------------------------------------------------------------

    @overload
    def post(
        self,
        channel: str,
        values: Mapping[str, Any] | str | bytes,
        *,
        id: str | None = None,
        time: datetime | str | None = None,
        wait: Literal[False] = False,
    ) -> Posted: ...

    @overload
    def post(
        self,
        channel: str,
        values: Mapping[str, Any] | str | bytes,
        *,
        id: str | None = None,
        time: datetime | str | None = None,
        wait: Literal[True],
    ) -> dict[str, Any]: ...

    def post(
        self,
        channel: str,
        values: Mapping[str, Any] | str | bytes,
        *,
        id: str | None = None,  # noqa: A002 - the envelope's own word
        time: datetime | str | None = None,
        wait: bool = False,
    ) -> Posted | dict[str, Any]:
        content = values.encode() if isinstance(values, str) else values if isinstance(values, bytes) else None
        answer = self._call(
            "POST",
            f"/v1/channels/{segment(channel)}/events",
            params={"id": id, "time": time_text(time)},
            json=None if content is not None else dict(values),  # type: ignore[arg-type]
            content=content,
        )
        posted = Posted(answer["id"], answer["seq"], answer["duplicate"])
        return self.receipt(posted.id) if wait else posted

    def post_many(self, channel: str, items: Iterable[Mapping[str, Any] | str | bytes | NewEvent]) -> list[Posted]:
        # Sent as envelope NDJSON: each line keeps its id and time.
        lines = [_envelope_line(item) for item in items]
        if not lines:
            return []
        answer = self._call(
            "POST",
            f"/v1/channels/{segment(channel)}/events",
            params={"envelope": "true"},
            content=b"\n".join(lines),
            content_type="application/x-ndjson",
        )
        return [Posted(item["id"], item["seq"], item["duplicate"]) for item in answer["events"]]

    def export(
        self,
        out: str | Path | None = None,
        *,
        channel: str | None = None,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
        filter: str | None = None,  # noqa: A002 - the listing parameter's name everywhere
        formats: str | tuple[str, ...] = ("parquet", "csv", "jsonl.gz"),
        progress: Progress | None = None,
        to_db: str | None = None,
    ) -> dict[str, Any]:
        if out is None or to_db is not None:
            raise InvalidQuery("out: over HTTP, export into a folder (--to-db works on a local vault)", field="out")
        params = {"channel": channel, "from": time_text(time_from), "to": time_text(time_to), "filter": filter}
        shown = {name: value for name, value in params.items() if value is not None}
        try:
            with self._http.stream("GET", "/v1/export", params=shown, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_of(response)
                source = StreamSource(byte_lines(response.iter_bytes()))
                return export_from(source, out, formats, progress)
        except httpx.TransportError as exc:
            raise ServerUnavailable(
                f"server: the export stream from {self.url} broke ({type(exc).__name__}); export again"
            ) from None

    def sender(self, spool: str | Path | None = None, **options: Any) -> Sender:
        """Return a started background :class:`Sender` to this server (:mod:`~trailvault.workflows.client.sender`)."""
        return Sender(self.url, self._token, spool=spool, verify=self._verify, **options)

    # -- reading -----------------------------------------------------------------------------

    def get(self, event_id: str) -> Event:
        return Event.from_dict(self._call("GET", f"/v1/events/{segment(str(event_id))}"))

    def redact(self, event_id: str, reason: str) -> Posted:
        answer = self._call("POST", f"/v1/events/{segment(str(event_id))}/redact", json={"reason": reason})
        return Posted(answer["id"], answer["seq"], answer["duplicate"])

    def events(
        self,
        channel: str | None = None,
        *,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
        filter: str | Filter | None = None,  # noqa: A002 - the listing parameter's name everywhere
        sort_by: str = "time",
        sort_order: str = "asc",
        limit: int = 100,
        page: str | None = None,
    ) -> EventPage:
        answer = self._call(
            "GET",
            "/v1/events",
            params={
                "channel": channel,
                "from": time_text(time_from),
                "to": time_text(time_to),
                "filter": _filter_text(where, filter),
                "sort_by": None if sort_by == "time" else sort_by,
                "sort_order": sort_order,
                "limit": limit,
                "page": page,
            },
        )
        return EventPage([Event.from_dict(item) for item in answer["items"]], answer["next_page"])

    def iter_events(
        self,
        channel: str | None = None,
        *,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
        filter: str | Filter | None = None,  # noqa: A002
        sort_by: str = "time",
        sort_order: str = "asc",
    ) -> Iterator[Event]:
        page: str | None = None
        while True:
            found = self.events(
                channel, time_from=time_from, time_to=time_to, where=where, filter=filter,
                sort_by=sort_by, sort_order=sort_order, limit=MAX_LIMIT, page=page,
            )  # fmt: skip
            yield from found
            if found.next_page is None:
                return
            page = found.next_page

    # -- proving -------------------------------------------------------------------------------

    def log_size(self) -> int:
        return int(self._call("GET", "/healthz")["log_size"])

    def verifier_key(self) -> str:
        return str(self._call("GET", "/v1/key")["verifier_key"])

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint:
        answer = self._call("GET", "/v1/checkpoint", params={"size": size})
        return StoredCheckpoint(answer["size"], bytes.fromhex(answer["root"]), answer["timestamp"], answer["note"])

    def prove_inclusion(self, event: str | int, size: int | None = None) -> InclusionProof:
        params = {"seq": event} if isinstance(event, int) else {"event": event}
        return InclusionProof.from_dict(self._call("GET", "/v1/proofs/inclusion", params={**params, "size": size}))

    def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        answer = self._call("GET", "/v1/proofs/consistency", params={"old_size": old_size, "new_size": new_size})
        return ConsistencyProof.from_dict(answer)

    def receipt(self, event: str | int) -> dict[str, Any]:
        if not isinstance(event, str):
            raise InvalidQuery("event: over HTTP a receipt is asked for by event id, not by seq", field="event")
        return dict(self._call("GET", f"/v1/events/{segment(event)}/receipt"))

    def verify(
        self,
        trusted_checkpoint: str | None = None,
        key: str | None = None,
        *,
        jobs: int = 1,
        max_uncovered_age: float = MAX_UNCOVERED_AGE,
    ) -> VerifyReport:
        document = {"trusted_checkpoint": trusted_checkpoint, "key": key, "max_uncovered_age": max_uncovered_age}
        answer = self._call("POST", "/v1/verify", json=document)
        if "status" not in answer:  # a server older than the status resource answers the report itself
            return VerifyReport.from_dict(answer)
        pause = _FIRST_POLL_SECONDS
        while answer["status"] == "running":
            time.sleep(pause)
            pause = min(pause * 2, _LAST_POLL_SECONDS)
            try:
                answer = self._call("GET", f"/v1/verify/{segment(answer['id'])}")
            except RateLimited as busy:  # the app's other requests fill its turns: ask again later
                pause = max(pause, busy.retry_after)
        if answer["status"] != "done":
            raise from_wire(answer.get("error") or {}, 500)
        return VerifyReport.from_dict(answer["report"])

    # -- keys ------------------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        scopes: Iterable[str | Scope],
        channels: Iterable[str] | None = None,
        oci_public_key: str | None = None,
    ) -> tuple[ApiKey, str]:
        scope_names = [str(scope) for scope in scopes]
        document: dict[str, Any] = {"name": name, "scopes": scope_names, "channels": _list(channels)}
        if oci_public_key is not None:
            document["oci_public_key"] = oci_public_key
        answer = self._call("POST", "/v1/keys", json=document)
        return ApiKey.from_dict(answer["key"]), str(answer["token"])

    def keys(self) -> list[ApiKey]:
        return [ApiKey.from_dict(item) for item in self._call("GET", "/v1/keys")["keys"]]

    def revoke_key(self, key_id: str) -> ApiKey:
        return ApiKey.from_dict(self._call("DELETE", f"/v1/keys/{segment(key_id)}"))


def _list(values: Iterable[str] | None) -> list[str] | None:
    return None if values is None else list(values)


def _envelope_line(item: Mapping[str, Any] | str | bytes | NewEvent) -> bytes:
    if isinstance(item, NewEvent):
        body, event_id, time = item.body, item.id, time_text(item.time)
    else:
        body, event_id, time = item, None, None
    head = orjson.dumps({key: value for key, value in (("id", event_id), ("time", time)) if value is not None})
    raw = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else orjson.dumps(dict(body))
    # The body's own text goes in as it is: the server checks it like any other.
    return head[:-1] + (b"," if len(head) > 2 else b"") + b'"body":' + raw.strip() + b"}"


def _filter_text(where: Mapping[str, Any] | None, filter: str | Filter | None) -> str | None:  # noqa: A002
    if filter is not None and not isinstance(filter, str):
        raise InvalidQuery("filter: over HTTP, give the filter as SCIM text", field="filter")
    parts = [f"({filter})"] if filter else []
    for path, value in (where or {}).items():
        operator = "eq_cs" if isinstance(value, str) else "eq"
        parts.append(f"({path} {operator} {orjson.dumps(value).decode()})")
    return " and ".join(parts) or None
