"""The ``/v1/archive/<verb>`` routes (Cloudera CDP's verbs and JSON shapes), purge and legal holds.

Archiving acts on the whole app, so these need a key that is not limited to
channels. The archive verbs need the ``archive`` scope; setting and clearing legal
holds needs ``admin``. Archive files carry bodies exactly as the log hashed them, so
reading a batch's events needs ``unmask`` too when the app has sensitive fields.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from trailvault.core.api_key import Scope
from trailvault.edges.server.http import JSONResponse
from trailvault.edges.server.routes import Call, Route
from trailvault.errors import InvalidInput
from trailvault.workflows.archive.files import audit_events_json

__all__ = ["ARCHIVE_ROUTES"]


async def _document(call: Call) -> dict[str, Any]:
    call.view.require_whole_app()
    return await call.parameters()


def _text(document: dict[str, Any], name: str, *, required: bool = True) -> Any:
    value = document.get(name)
    if value is None and not required:
        return None
    if value is None:
        raise InvalidInput(f"{name}: missing; send it in the request's JSON object, as text", field=name)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{name}: give it as non-empty text, not {orjson.dumps(value).decode()[:40]}", field=name)
    return value


async def batch_events(call: Call) -> Response:
    document = await _document(call)
    task_id = await run_in_threadpool(
        call.vault.batch_events_for_archiving, _text(document, "fromTimestamp"), _text(document, "toTimestamp")
    )
    return JSONResponse({"taskId": task_id})


async def batch_status(call: Call) -> Response:
    document = await _document(call)
    task = await run_in_threadpool(call.vault.get_batch_events_for_archiving_status, _text(document, "taskId"))
    return JSONResponse(task.to_dict())


async def list_outstanding(call: Call) -> Response:
    document = await _document(call)
    page_size = document.get("pageSize", 100)
    if not isinstance(page_size, int) or isinstance(page_size, bool):
        raise InvalidInput("pageSize: give a number from 1 to 1000", field="pageSize")
    page = await run_in_threadpool(
        lambda: call.vault.list_outstanding_archive_batches(
            _text(document, "fromTimestamp", required=False),
            _text(document, "toTimestamp", required=False),
            page_size=page_size,
            starting_token=_text(document, "startingToken", required=False),
        )
    )
    return JSONResponse(page.to_dict())


async def list_events(call: Call) -> Response:
    document = await _document(call)
    # The key's right to the bodies first: a key refused them learns nothing from a bad request.
    await run_in_threadpool(call.view.require_archive_bodies)
    # Finding the batch happens here, so an unknown id is a 404, not a broken stream.
    lines = await run_in_threadpool(call.view.archive_lines, _text(document, "archiveId"))
    return StreamingResponse(audit_events_json(lines), media_type="application/json")


async def batch_proof(call: Call) -> Response:
    """The manifest's proving part for the batch's events still kept (a remote client writing the file)."""
    document = await _document(call)
    await run_in_threadpool(call.view.require_archive_bodies)
    archive_id, count, last = _text(document, "archiveId"), document.get("eventCount"), document.get("lastSeq")
    return JSONResponse(await run_in_threadpool(call.view.archive_proof, archive_id, count, last))


async def describe_batch(call: Call) -> Response:
    """One batch, marked or not (trailvault's own verb: a client writing a batch's file needs it)."""
    document = await _document(call)
    batch = await run_in_threadpool(call.vault.archive_batch, _text(document, "archiveId"))
    return JSONResponse(batch.to_dict())


async def mark_successful(call: Call) -> Response:
    document = await _document(call)
    ids = document.get("archiveIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(item, str) for item in ids):
        raise InvalidInput('archiveIds: give a list of archive ids, such as ["c5b57c79-..."]', field="archiveIds")
    return JSONResponse(await run_in_threadpool(call.vault.mark_archive_batches_as_successful, ids))


async def purge(call: Call) -> Response:
    await _document(call)
    report = await run_in_threadpool(call.vault.purge)
    return JSONResponse(report.to_dict())


async def list_holds(call: Call) -> Response:
    call.view.require_whole_app()
    everything = call.param("all") in ("1", "true", "yes")
    holds = await run_in_threadpool(lambda: call.vault.holds(include_cleared=everything))
    return JSONResponse({"holds": [hold.to_dict() for hold in holds]})


async def set_hold(call: Call) -> Response:
    document = await _document(call)
    hold = await run_in_threadpool(
        lambda: call.vault.set_hold(
            _text(document, "name"),
            _text(document, "reason"),
            channel=_text(document, "channel", required=False),
            time_from=_text(document, "from", required=False),
            time_to=_text(document, "to", required=False),
        )
    )
    return JSONResponse(hold.to_dict(), status_code=201)


async def clear_hold(call: Call) -> Response:
    call.view.require_whole_app()
    hold = await run_in_threadpool(call.vault.clear_hold, call.request.path_params["name"])
    return JSONResponse(hold.to_dict())


ARCHIVE_ROUTES = (
    Route("/v1/archive/batch-events-for-archiving", "POST", Scope.ARCHIVE, batch_events),
    Route("/v1/archive/get-batch-events-for-archiving-status", "POST", Scope.ARCHIVE, batch_status),
    Route("/v1/archive/list-outstanding-archive-batches", "POST", Scope.ARCHIVE, list_outstanding),
    Route("/v1/archive/list-events-in-archive-batch", "POST", Scope.ARCHIVE, list_events),
    Route("/v1/archive/describe-archive-batch", "POST", Scope.ARCHIVE, describe_batch),
    Route("/v1/archive/get-archive-batch-proof", "POST", Scope.ARCHIVE, batch_proof),
    Route("/v1/archive/mark-archive-batches-as-successful", "POST", Scope.ARCHIVE, mark_successful),
    Route("/v1/archive/purge", "POST", Scope.ARCHIVE, purge),
    Route("/v1/holds", "GET", Scope.ARCHIVE, list_holds),
    Route("/v1/holds", "POST", Scope.ADMIN, set_hold),
    Route("/v1/holds/{name}", "DELETE", Scope.ADMIN, clear_hold),
)
