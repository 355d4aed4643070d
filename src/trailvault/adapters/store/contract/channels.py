"""The channel store: apps, channels and every version of their schemas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["ChannelRecord", "ChannelStore"]


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """A channel as stored: its latest schema version and that version's document."""

    app: str
    name: str
    created_us: int
    version: int
    schema_document: dict[str, Any]


class ChannelStore(Protocol):
    """Apps and their channels, each with every schema version ever saved.

    The store keeps schema documents as given and builds the expression indexes it is
    asked for; it never validates a document or an event against one (that happens
    before an event reaches the store). Channels are per app: one app never sees
    another's. Nothing here is ever deleted. Safe to call from several threads, and
    from several store objects (processes) on one vault.
    """

    def app_names(self) -> list[str]:
        """Return the names of every app of the vault (that ever opened a channel or held a key), sorted."""

    def get_channel(self, app: str, name: str) -> ChannelRecord | None:
        """Return the channel's latest version, or None when it was never opened (in this app)."""

    def list_channels(self, app: str) -> list[ChannelRecord]:
        """Return the app's channels, each at its latest version, ordered by name; [] for an unknown app."""

    def channel_versions(self) -> list[ChannelRecord]:
        """Return every version of every channel of every app, in the order they were saved.

        ``created_us`` is the version's own time. For ``trailvault migrate``.
        """

    def save_channel_version(
        self,
        app: str,
        name: str,
        version: int,
        schema_document: dict[str, Any],
        index_paths: Sequence[tuple[str, ...]],
        created_us: int,
    ) -> ChannelRecord:
        """Record ``version`` of a channel's schema (version 1 creates the channel, and its app when needed).

        One transaction: the version, the channel and the expression index of every path
        in ``index_paths`` that has none are all kept, or none is. Returns the channel at
        its latest version. Raises Conflict when that version already exists, which
        happens when another writer changed the schema first; the caller reloads and retries.
        """
