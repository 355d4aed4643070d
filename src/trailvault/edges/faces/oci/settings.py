"""What the OCI face is configured with: where OCI's compartments and logs live in trailvault.

The ``[oci]`` section of the config file (docs/configuration.md) maps compartment OCIDs
to apps (``app``, or ``app/channel`` to read another channel than ``listing_channel``)
and log OCIDs to ``app/channel``. A compartmentId that is mapped to nothing is read as an
app's own name, so ``compartment_id="billing"`` works without configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trailvault.errors import InvalidInput, NotFound

__all__ = ["OciSettings", "Target"]


@dataclass(frozen=True)
class Target:
    """An app and one of its channels."""

    app: str
    channel: str


@dataclass(frozen=True)
class OciSettings:
    """The ``[oci]`` section, read (see the module docstring)."""

    prefix: str = ""
    listing_channel: str = "datasafe"
    compartments: Mapping[str, Target] = field(default_factory=dict)
    logs: Mapping[str, Target] = field(default_factory=dict)

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> OciSettings:
        """Read the section (checked for kinds by edges/config.py); raise InvalidInput naming a bad entry."""
        prefix = str(section.get("prefix") or "").rstrip("/")
        if prefix and (not prefix.startswith("/") or prefix.split("/")[1] in ("v1", "healthz", "metrics")):
            raise InvalidInput(
                f"oci.prefix: {prefix[:80]!r} is not a path of its own; start it with /, as /oci, outside /v1",
                field="oci.prefix",
            )
        channel = str(section.get("listing_channel") or "datasafe")
        compartments = {
            ocid: _target(value, channel, f"oci.compartments.{ocid}", need_channel=False)
            for ocid, value in dict(section.get("compartments") or {}).items()
        }
        logs = {
            ocid: _target(value, channel, f"oci.logs.{ocid}", need_channel=True)
            for ocid, value in dict(section.get("logs") or {}).items()
        }
        return cls(prefix, channel, compartments, logs)

    def compartment(self, compartment_id: str) -> Target:
        """The app and channel a compartmentId lists: its mapping, else the app of that name."""
        found = self.compartments.get(compartment_id)
        return found if found is not None else Target(compartment_id, self.listing_channel)

    def log(self, log_id: str) -> Target:
        """The app and channel a logId writes to; NotFound naming ``logId`` when it is mapped to none."""
        found = self.logs.get(log_id)
        if found is None:
            raise NotFound(
                f"logId: {log_id[:128]!r} maps to no channel; map it in the [oci] logs table of the server's "
                'config file ("<log OCID>" = "app/channel")',
                field="logId",
            )
        return found


def _target(value: str, default_channel: str, where: str, *, need_channel: bool) -> Target:
    app, slash, channel = str(value).partition("/")
    if not app or (slash and not channel) or (need_channel and not slash) or "/" in channel:
        shape = "app/channel" if need_channel else "app or app/channel"
        raise InvalidInput(f"{where}: {str(value)[:80]!r} is not {shape}", field=where)
    return Target(app, channel or default_channel)
