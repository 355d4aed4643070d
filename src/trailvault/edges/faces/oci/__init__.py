"""The OCI face: Data Safe's audit-event listing and OCI Logging's PutLogs (docs/compat/oci.md).

The ``oci`` SDK and CLI work against ``trailvault serve`` with only their endpoint (and
the key they authenticate with) changed: the routes sit at OCI's paths, and again under
``[oci] prefix`` when one is set, and answer errors in OCI's shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from trailvault.core.api_key import Scope
from trailvault.edges.faces.oci.errors import oci_error
from trailvault.edges.faces.oci.listing import LISTING_QUERY, list_audit_events
from trailvault.edges.faces.oci.putlogs import put_logs
from trailvault.edges.faces.oci.settings import OciSettings
from trailvault.edges.server.routes import Call, Face, Route

__all__ = ["face"]


def face(section: Mapping[str, Any]) -> Face:
    """The OCI face configured by the ``[oci]`` section; InvalidInput names a bad entry of it."""
    settings = OciSettings.from_section(section)

    async def listing(call: Call) -> Response:
        return await list_audit_events(call, settings)

    async def push(call: Call) -> Response:
        return await put_logs(call, settings)

    routes = []
    for prefix in dict.fromkeys(("", settings.prefix)):
        routes += [
            Route(f"{prefix}/20181201/auditEvents", "GET", Scope.READ, listing, LISTING_QUERY),
            Route(f"{prefix}/20200831/logs/{{logId}}/actions/push", "POST", Scope.INGEST, push, frozenset()),
        ]
    return Face("oci", tuple(routes), oci_error)
