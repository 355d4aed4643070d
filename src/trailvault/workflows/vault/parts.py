"""What the vault's halves use of the Vault they are mixed into, declared once.

A :class:`~trailvault.workflows.vault.vault.Vault` is its recording and finding core
(``vault.py``) plus halves kept in their own modules: proving, API keys, exporting and
archiving. Each half subclasses :class:`VaultParts`, which names what any half uses of
the others, so a half never imports the Vault and mypy checks that the Vault has it all.
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
from trailvault.core.channel import Channel
from trailvault.core.event import Event, PendingEvent, Posted
from trailvault.core.integrity.checkpoint import Checkpoint
from trailvault.core.query import EventQuery, Filter
from trailvault.core.schema import Schema
from trailvault.workflows.proofs import ConsistencyProof
from trailvault.workflows.vault.checkpointer import Checkpointer

__all__ = ["OpenChannel", "VaultParts"]


@dataclass(frozen=True)
class OpenChannel:
    """A channel as the vault keeps it open: its stored record, parsed schema and time field."""

    record: ChannelRecord
    schema: Schema
    timestamp_field: str | None


class VaultParts(Protocol):
    """The Vault's state and methods that its halves share (see the module docstring)."""

    app: str
    archive_settings: ArchiveSettings
    _store: Store
    _checkpointer: Checkpointer | None
    _signer_record: Path | None
    # Opens another connection to the same store in a worker process (verify's jobs).
    _reopen: Callable[[], Store] | None
    _batching: list[threading.Thread]

    def channels(self) -> list[Channel]: ...

    def channel(self, name: str) -> Channel: ...

    def get(self, event_id: str) -> Event: ...

    def _channel_state(self, name: str, *, refresh: bool = False) -> OpenChannel: ...

    def _own_channel(self, channel: str, schema: dict[str, Any]) -> OpenChannel:
        """One of trailvault's own channels, opened on first use."""
        ...

    def _prepare(
        self,
        state: OpenChannel,
        values: Any,
        event_id: Any,
        given_time: datetime | str | None,
        received_us: int,
        posted_by: str | None = None,
    ) -> PendingEvent: ...

    def _record(self, channel: str, schema: dict[str, Any], values: Mapping[str, Any]) -> Posted:
        """Post to one of trailvault's own channels (which ``post`` refuses)."""
        ...

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

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint: ...

    def _signed_covering(self, seq: int, *, field: str = "seq") -> Checkpoint: ...

    def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof: ...

    def sensitive_fields(self, channel: str | None = None) -> set[str]: ...
