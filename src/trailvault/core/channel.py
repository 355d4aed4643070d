"""A channel as the vault shows it: a named, schema-checked stream of one app's events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trailvault.core.schema import Schema, parse_schema
from trailvault.core.timestamps import format_timestamp, parse_timestamp

__all__ = ["BATCHES_CHANNEL", "PURGES_CHANNEL", "READS_CHANNEL", "REDACTIONS_CHANNEL", "RESERVED_PREFIX", "Channel"]

#: Channels whose names start so are kept by trailvault itself; nobody else opens or posts to them.
RESERVED_PREFIX = "trailvault."
#: The channel where every redaction is recorded (``redacted_id``, ``redacted_seq``, ``reason``).
REDACTIONS_CHANNEL = "trailvault.redactions"
#: The channel where every archive batch is recorded (``archive_id``, ``count``, seqs and their digest).
BATCHES_CHANNEL = "trailvault.batches"
#: The channel where every purge is recorded (``archive_id``, ``count``, seqs and their digest).
PURGES_CHANNEL = "trailvault.purges"
#: The channel where a server records every read it answers (see trailvault.workflows.vault.api_keys).
READS_CHANNEL = "trailvault.reads"


@dataclass(frozen=True)
class Channel:
    """A channel at its latest schema version."""

    app: str
    name: str
    version: int
    created_us: int
    schema: Schema

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Channel:
        """Read the JSON form of :meth:`to_dict`."""
        created = parse_timestamp(document["created"], field="created")
        return cls(document["app"], document["name"], document["version"], created, parse_schema(document["schema"]))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form shown by ``channels show`` and the API."""
        return {
            "app": self.app,
            "name": self.name,
            "version": self.version,
            "created": format_timestamp(self.created_us),
            "schema": self.schema.to_document(),
        }
