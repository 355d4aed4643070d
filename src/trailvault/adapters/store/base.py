"""The store contract: what every backend (SQLite, PostgreSQL) provides to the vault.

A store keeps apps and channels with their schema versions, the single append-only
log of events with its Merkle tree and checkpoints, API keys, and what archiving
needs. It knows nothing about schemas beyond storing their documents and building
the expression indexes it is asked for; validation happens before an event reaches
it. Each backend translates its own driver errors into ``trailvault.errors``
(``raise ... from exc``) so no driver exception escapes.

The contract is split by role (:mod:`trailvault.adapters.store.contract`), so a caller can
name the one it needs; :class:`Store` is all of them on one open vault.
"""

from __future__ import annotations

from typing import Protocol

from trailvault.adapters.store.contract.api_keys import KeyStore
from trailvault.adapters.store.contract.archive import ArchiveStore
from trailvault.adapters.store.contract.channels import ChannelRecord, ChannelStore
from trailvault.adapters.store.contract.log import AppendOutcome, LogStore, StoredCheckpoint
from trailvault.core.event import StoredEntry

__all__ = [
    "AppendOutcome", "ArchiveStore", "ChannelRecord", "ChannelStore", "KeyStore", "LogStore", "Store",
    "StoredCheckpoint", "StoredEntry",
]  # fmt: skip


class Store(ChannelStore, LogStore, KeyStore, ArchiveStore, Protocol):
    """One vault's storage: every role on one open vault. Methods are safe to call from several threads,
    and several store objects (processes) may open one vault at once."""

    #: Where the store lives, fit to show to people (never holds a password).
    location: str

    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
