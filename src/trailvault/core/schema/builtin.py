"""The built-in channel schemas, by name: one table, name -> schema document.

A built-in schema is opened by name (``vault.open("audit", "datasafe")``, see
:func:`trailvault.adapters.sources.read_schema_document` for the exact rule) and is
an ordinary schema document: what ``Schema.to_document`` would write, so it
evolves like any other.

``datasafe`` holds every field of OCI Data Safe's ``AuditEventSummary`` in its
REST spelling (camelCase), except ``id``, which becomes the event's id. Its enums
are the SDK's allowed values; ``auditEventTime`` is the event's time. The fields
the API marks required and that describe the audited event (``targetId``,
``targetName``, ``databaseType``, ``auditEventTime``, ``isAlerted``) are REQUIRED;
``compartmentId`` and ``timeCollected`` (where and when Data Safe collected the
record) are NULLABLE: an import keeps what Data Safe said, and a face answering
as Data Safe fills them from the app and the envelope's ``received`` when absent.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BUILTIN_PREFIX", "BUILTIN_SCHEMAS"]

#: A schema source starting with this names a built-in schema, whatever files exist.
BUILTIN_PREFIX = "builtin:"


def _field(name: str, kind: str = "STRING", mode: str = "NULLABLE", **more: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "mode": mode, **more}


_AUDIT_TYPES = [
    "STANDARD", "FINE_GRAINED", "XS", "DATABASE_VAULT", "LABEL_SECURITY", "RMAN", "DATAPUMP", "DIRECT_PATH_API",
]  # fmt: skip

_DATASAFE_FIELDS = [
    _field("compartmentId", description="OCID of the compartment Data Safe collected the event in"),
    _field("dbUserName"),
    _field("targetId", mode="REQUIRED", index=True),
    _field("targetName", mode="REQUIRED", index=True),
    _field(
        "databaseType",
        mode="REQUIRED",
        enum=["DATABASE_CLOUD_SERVICE", "AUTONOMOUS_DATABASE", "INSTALLED_DATABASE"],
    ),
    _field("targetClass", enum=["DATABASE"]),
    _field("auditEventTime", "TIMESTAMP", "REQUIRED", event_time=True),
    _field("timeCollected", "TIMESTAMP", description="when Data Safe collected the event"),
    _field("osUserName"),
    _field("operation"),
    _field("operationStatus", enum=["SUCCESS", "FAILURE"]),
    _field("eventName"),
    _field("errorCode"),
    _field("errorMessage"),
    _field("objectType"),
    _field("objectName"),
    _field("objectOwner"),
    _field("clientHostname"),
    _field("clientIp"),
    _field("auditTrailId"),
    _field("isAlerted", "BOOLEAN", "REQUIRED"),
    _field("actionTaken"),
    _field("clientProgram"),
    _field("commandText"),
    _field("commandParam"),
    _field("extendedEventAttributes"),
    _field("auditLocation", enum=["AUDIT_TABLE"]),
    _field("osTerminal"),
    _field("clientId"),
    _field("auditPolicies"),
    _field("auditType", enum=_AUDIT_TYPES),
    _field("externalUserId"),
    _field("targetUser"),
    _field("peerTargetDatabaseKey", "INTEGER"),
    _field("trailSource", enum=["TABLE", "FILE"]),
    _field("databaseUniqueName"),
    _field("applicationContexts"),
    _field("fgaPolicyName"),
    _field("freeformTags", "JSON", description="OCI free-form tags: an object of text values"),
    _field("definedTags", "JSON", description="OCI defined tags: an object of namespaces, each an object"),
]

#: Every built-in schema, name -> schema document.
BUILTIN_SCHEMAS: dict[str, dict[str, Any]] = {
    "datasafe": {"fields": _DATASAFE_FIELDS, "additional_fields": False},
}
