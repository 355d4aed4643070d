"""OCI Logging's PutLogs: ``POST /20200831/logs/{logId}/actions/push`` as ``LoggingClient.put_logs`` sends it.

The log is a channel (``[oci] logs`` in the config file maps each log OCID to
``app/channel``), opened with :data:`LOG_ENTRY_SCHEMA` on its first push. Each entry
becomes one event: the entry's ``id`` is the event id (the idempotency key: pushing the
same entry again stores it once), its ``time``, else the batch's
``defaultlogentrytime``, the event's time, and its body is ``{"data", "source",
"type", "subject"}``. The whole request is stored or none of it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trailvault.core.event import NewEvent, Posted
from trailvault.edges.faces.oci.errors import request_id
from trailvault.edges.faces.oci.settings import OciSettings
from trailvault.edges.server.routes import Call
from trailvault.errors import BatchRejected, ChannelNotFound, InvalidInput, NotFound, TrailvaultError
from trailvault.workflows.keyview import KeyView

__all__ = ["LOG_ENTRY_SCHEMA", "MAX_ENTRY_BYTES", "put_logs"]

#: The largest entry OCI Logging takes: its ``data`` in bytes of UTF-8 (1 MB).
MAX_ENTRY_BYTES = 1_000_000
#: The schema a log's channel is opened with: one event per log entry.
LOG_ENTRY_SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "data", "type": "STRING", "mode": "REQUIRED", "description": "the entry's data, as sent"},
        {"name": "source", "type": "STRING", "mode": "REQUIRED", "description": "the batch's source"},
        {"name": "type", "type": "STRING", "mode": "REQUIRED", "description": "the batch's type"},
        {"name": "subject", "type": "STRING", "description": "the batch's subject, when it has one"},
    ],
    "additional_fields": False,
}
_DOCUMENT_KEYS = ("specversion", "logEntryBatches")
_BATCH_KEYS = ("entries", "source", "type", "subject", "defaultlogentrytime")
_ENTRY_KEYS = ("data", "id", "time")


async def put_logs(call: Call, settings: OciSettings) -> Response:
    """Store every entry of a PutLogsDetails in the log's channel, all or nothing; 200 with an empty body."""
    target = settings.log(call.request.path_params["logId"])
    if target.app != call.key.app:
        raise NotFound(
            f"logId: this log is not in app {call.key.app!r}; use a key of app {target.app!r}", field="logId"
        )
    channel = call.view.visible(target.channel)
    events, where = log_entries(await call.json())
    if events:
        await run_in_threadpool(_open_log, call.view, channel)
        try:
            posted: list[Posted] = await asyncio.wrap_future(call.view.post_nowait(channel, events))
        except BatchRejected as exc:
            raise _named(exc, where) from None
        call.state.count_posted(posted)
    return Response(status_code=200, headers={"opc-request-id": request_id(call.request)})


def _open_log(view: KeyView, channel: str) -> None:
    """Open the log's channel with :data:`LOG_ENTRY_SCHEMA` on its first push (a channel already open stays)."""
    try:
        view.channel(channel)
    except ChannelNotFound:
        view.open(channel, LOG_ENTRY_SCHEMA)


def log_entries(document: Any) -> tuple[list[NewEvent], list[str]]:
    """Read a PutLogsDetails into events, with each one's place (``logEntryBatches[0].entries[1]``).

    Checks what OCI requires (``specversion`` "1.0", batches with ``entries``, ``source``,
    ``type`` and ``defaultlogentrytime``, entries with ``data`` and ``id``, ``data`` of at
    most :data:`MAX_ENTRY_BYTES`); raises InvalidInput naming the first field that is not.
    """
    _check_object(document, "body", _DOCUMENT_KEYS, required=_DOCUMENT_KEYS)
    if document["specversion"] != "1.0":
        raise InvalidInput('specversion: use "1.0", the only version of PutLogsDetails', field="specversion")
    batches = _list(document["logEntryBatches"], "logEntryBatches")
    events: list[NewEvent] = []
    where: list[str] = []
    for number, batch in enumerate(batches):
        place = f"logEntryBatches[{number}]"
        _check_object(batch, place, _BATCH_KEYS, required=("entries", "source", "type", "defaultlogentrytime"))
        body = {name: batch[name] for name in ("source", "type", "subject") if batch.get(name) is not None}
        for name in body:
            _text(batch[name], f"{place}.{name}")
        default_time = _text(batch["defaultlogentrytime"], f"{place}.defaultlogentrytime")
        for index, entry in enumerate(_list(batch["entries"], f"{place}.entries")):
            at = f"{place}.entries[{index}]"
            _check_object(entry, at, _ENTRY_KEYS, required=("data", "id"))
            data = _text(entry["data"], f"{at}.data")
            if len(data.encode()) > MAX_ENTRY_BYTES:
                raise InvalidInput(
                    f"{at}.data: {len(data.encode()):,} bytes, over the {MAX_ENTRY_BYTES:,} bytes (1 MB) of an entry; "
                    "split it into several entries",
                    field=f"{at}.data",
                )
            time = default_time if entry.get("time") is None else _text(entry["time"], f"{at}.time")
            events.append(NewEvent({**body, "data": data}, _text(entry["id"], f"{at}.id"), time))
            where.append(at)
    return events, where


def _check_object(value: Any, place: str, keys: tuple[str, ...], *, required: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        raise InvalidInput(f"{place}: send a JSON object with {', '.join(keys)}", field=place)
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise InvalidInput(f"{place}.{unknown[0][:40]}: unknown; {place} takes {', '.join(keys)}", field=place)
    for name in required:
        if value.get(name) is None:
            named = name if place == "body" else f"{place}.{name}"
            raise InvalidInput(f"{named}: required; PutLogsDetails needs it", field=named)


def _list(value: Any, place: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"{place}: send a JSON array", field=place)
    return value


def _text(value: Any, place: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{place}: send it as text", field=place)
    return value


def _named(error: BatchRejected, where: list[str]) -> TrailvaultError:
    """The refusal with each event named by its place in the request, not its index in the batch."""
    shown = "; ".join(f"{where[index]}: {failure.message}" for index, failure in error.failures[:10])
    more = f"; and {len(error.failures) - 10} more" if len(error.failures) > 10 else ""
    refused = InvalidInput(f"{len(error.failures)} of {error.total} entries refused, nothing was stored: {shown}{more}")
    refused.status = error.status
    return refused
