"""What the vault's halves use of the Vault they are mixed into, declared once.

A :class:`~trailvault.workflows.vault.vault.Vault` is its channels and recording (``vault.py``)
plus halves kept in their own modules: finding, proving, API keys, exporting and
archiving. Each half subclasses :class:`VaultParts`, which names what any half uses of
the others (the Vault API and a few internals), so a half never imports the Vault and
mypy checks that the Vault has it all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from trailvault.adapters.store.base import ChannelRecord, Store, StoredCheckpoint
from trailvault.core.batches import ArchiveSettings
from trailvault.core.event import PendingEvent, Posted
from trailvault.core.integrity.checkpoint import Checkpoint
from trailvault.core.query import EventQuery, Filter
from trailvault.core.schema import Schema
from trailvault.workflows.api import VaultAPI
from trailvault.workflows.vault.checkpointer import Checkpointer

__all__ = ["OpenChannel", "VaultParts"]


@dataclass(frozen=True)
class OpenChannel:
    """A channel as the vault keeps it open: its stored record, parsed schema and time field."""

    record: ChannelRecord
    schema: Schema
    timestamp_field: str | None


class VaultParts(VaultAPI, Protocol):
    """The Vault API and the Vault's own state and methods that its halves share (see the module docstring)."""

    archive_settings: ArchiveSettings
    _store: Store
    _checkpointer: Checkpointer | None
    _signer_record: Path | None
    # Opens another connection to the same store in a worker process (verify's jobs).
    _reopen: Callable[[], Store] | None
    _batching: list[threading.Thread]
    # The channels this view has open, by name (their schema parsed once).
    _channels: dict[str, OpenChannel]

    def _channel_state(self, name: str, *, refresh: bool = False) -> OpenChannel: ...

    def _fresher(self, channel: str, state: OpenChannel) -> OpenChannel | None: ...

    def _own_channel(self, channel: str, schema: dict[str, Any]) -> OpenChannel: ...

    def _prepare(
        self,
        state: OpenChannel,
        values: Any,
        event_id: Any,
        given_time: datetime | str | None,
        received_us: int,
        posted_by: str | None = None,
    ) -> PendingEvent: ...

    def _record(self, channel: str, schema: dict[str, Any], values: Mapping[str, Any]) -> Posted: ...

    def _query(
        self,
        channel: str | None,
        time_from: datetime | str | None,
        time_to: datetime | str | None,
        where: Mapping[str, Any] | None,
        filter: str | Filter | None,  # noqa: A002
        sort_by: str,
        sort_order: str,
        limit: int,
    ) -> EventQuery: ...

    def issue_checkpoint(self, *, adopt: bool = False) -> StoredCheckpoint: ...

    def _signed_covering(self, seq: int, *, field: str = "seq") -> Checkpoint: ...

    def sensitive_fields(self, channel: str | None = None) -> set[str]: ...
