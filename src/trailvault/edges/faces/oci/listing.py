"""Data Safe's audit-event listing: ``GET /20181201/auditEvents`` as the ``oci`` SDK and CLI call it.

The request's compartment names an app and one of its channels
(:class:`~.settings.OciSettings`); the events are listed through the key's
:class:`~trailvault.workflows.keyview.KeyView`, so visibility, masking and recorded reads
are exactly those of ``GET /v1/events``. Field names are AuditEventSummary's REST
spelling (camelCase): ``auditEventTime`` is the event's ``time``, ``timeCollected`` its
``received``, ``id`` its id; every other name is a body field of the same name.
"""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trailvault.core.event import Event
from trailvault.core.query import MAX_LIMIT, Compare, Filter, Present, map_conditions
from trailvault.core.schema.model import MASKED
from trailvault.core.scim import parse_filter, render_filter
from trailvault.core.timestamps import format_timestamp, parse_timestamp
from trailvault.edges.faces.oci.errors import request_id
from trailvault.edges.faces.oci.settings import OciSettings
from trailvault.edges.server.http import JSONResponse, query_int
from trailvault.edges.server.routes import Call
from trailvault.errors import InvalidInput, InvalidQuery, NotFound

__all__ = ["LISTING_QUERY", "SORT_FIELDS", "list_audit_events"]

#: The query parameters ListAuditEvents takes.
LISTING_QUERY = frozenset(
    {"compartmentId", "compartmentIdInSubtree", "accessLevel", "limit", "page", "scimQuery", "sortOrder", "sortBy"}
)
#: sortBy's allowed values, exactly as the SDK's ``DataSafeClient.list_audit_events`` lists them.
SORT_FIELDS = (
    "dbUserName", "targetName", "databaseType", "targetClass", "auditEventTime", "timeCollected", "osUserName",
    "operation", "operationStatus", "eventName", "errorCode", "errorMessage", "objectType", "objectName",
    "objectOwner", "clientHostname", "clientIp", "isAlerted", "actionTaken", "clientProgram", "commandText",
    "commandParam", "extendedEventAttributes", "auditLocation", "osTerminal", "clientId", "auditPolicies",
    "auditType", "externalUserId",
)  # fmt: skip
#: AuditEventSummary's names that are envelope fields.
_ENVELOPE = {"auditEventTime": "time", "timeCollected": "received"}
#: AuditEventSummary's fields that are not text: a masked value of one reads null, which the SDK can read.
_NOT_TEXT = frozenset({"auditEventTime", "timeCollected", "isAlerted", "peerTargetDatabaseKey", "freeformTags",
                       "definedTags"})  # fmt: skip


async def list_audit_events(call: Call, settings: OciSettings) -> Response:
    """One page of the compartment's audit events as an AuditEventCollection; ``opc-next-page`` while more."""
    compartment = call.param("compartmentId")
    if compartment is None:
        raise InvalidInput(
            "compartmentId: required; give the compartment OCID or the app's name", field="compartmentId"
        )
    target = settings.compartment(compartment)
    if target.app != call.key.app:
        raise NotFound(
            f"compartmentId: {compartment[:128]!r} is not this key's compartment; use a key of app {target.app!r}",
            field="compartmentId",
        )
    _choice(call, "compartmentIdInSubtree", ("true", "false"))  # apps have no sub-apps: the answer is the same
    _choice(call, "accessLevel", ("RESTRICTED", "ACCESSIBLE"))  # the key's own rules decide what it sees
    sort_order = _choice(call, "sortOrder", ("ASC", "DESC"))
    sort_by = _choice(call, "sortBy", SORT_FIELDS)
    limit = query_int(call.request, "limit", low=1, high=MAX_LIMIT)
    scim = call.param("scimQuery")
    filter_text = None if scim is None else _filter_text(scim)
    page = await run_in_threadpool(
        lambda: call.view.events(
            target.channel,
            filter=filter_text,
            sort_by=None if sort_by is None else _ENVELOPE.get(sort_by, sort_by),
            sort_order=None if sort_order is None else sort_order.lower(),
            limit=limit,
            page=call.param("page"),
        )
    )
    headers = {"opc-request-id": request_id(call.request)}
    if page.next_page is not None:
        headers["opc-next-page"] = page.next_page
    return JSONResponse({"items": [audit_event_summary(event, compartment) for event in page]}, headers=headers)


def _choice(call: Call, name: str, allowed: tuple[str, ...]) -> str | None:
    value = call.param(name)
    if value is not None and value not in allowed:
        raise InvalidQuery(f"{name}: {value[:80]!r} is not allowed; use one of {', '.join(allowed)}", field=name)
    return value


def _filter_text(scim: str) -> str:
    """The scimQuery over trailvault's names (``auditEventTime`` is ``time``); errors name scimQuery."""
    try:
        tree = parse_filter(scim)
    except InvalidQuery as exc:
        raise InvalidQuery("scimQuery" + exc.message.removeprefix("filter"), field="scimQuery") from None

    def renamed(node: Compare | Present) -> Filter:
        attribute = _ENVELOPE.get(node.attribute)
        if attribute is None:
            return node
        return Present(attribute) if isinstance(node, Present) else Compare(attribute, node.op, node.value)

    return render_filter(map_conditions(tree, renamed))


def audit_event_summary(event: Event, compartment: str) -> dict[str, Any]:
    """The event as an AuditEventSummary: its body's fields, with ``id``, ``compartmentId`` (the body's,
    else the compartment asked for), ``timeCollected`` and ``auditEventTime`` from the envelope, times in
    OCI's RFC 3339 form (milliseconds unless finer)."""
    item: dict[str, Any] = {
        name: None if value == MASKED and name in _NOT_TEXT else value for name, value in (event.body or {}).items()
    }
    item["id"] = event.id
    item["compartmentId"] = item.get("compartmentId") or compartment
    item["timeCollected"] = oci_time(event.received_us)
    written = item.get("auditEventTime")
    if written is None:
        item["auditEventTime"] = None if event.time_masked else oci_time(event.time_us)
    else:
        with contextlib.suppress(InvalidInput):  # a channel that keeps it as free text shows it as written
            item["auditEventTime"] = oci_time(parse_timestamp(written, field="auditEventTime"))
    return item


def oci_time(micros: int) -> str:
    """RFC 3339 as OCI writes it, ``2023-01-16T18:40:26.087Z``, with microseconds when they are not zero."""
    text = format_timestamp(micros)
    return text[:-4] + "Z" if micros % 1000 == 0 else text
