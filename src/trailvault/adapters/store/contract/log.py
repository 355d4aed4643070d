"""The log store: the one append-only log of events, its Merkle tree, checkpoints and the vault's own values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from trailvault.core.event import Event, PendingEvent, Posted, StoredEntry
from trailvault.core.integrity.checkpoint import Checkpoint
from trailvault.core.integrity.merkle import NodeKey
from trailvault.core.query import EventQuery
from trailvault.errors import IdConflict

__all__ = ["AppendOutcome", "LogStore", "StoredCheckpoint"]

#: For each batch given to :meth:`LogStore.append`: its events' outcomes, or the
#: conflict that kept the whole batch out.
AppendOutcome = list[Posted] | IdConflict


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A signed checkpoint as kept: the log's size and root, its signed time and its note."""

    size: int
    root: bytes
    timestamp: int
    note: str

    def agrees_with(self, signed: Checkpoint) -> bool:
        """Whether the unsigned size, root and time kept beside the note say what the opened note says."""
        return (self.size, self.root, self.timestamp) == (signed.size, signed.root, signed.timestamp or 0)


class LogStore(Protocol):
    """The vault's single log: events of every app in one seq order, the tree over them, and checkpoints.

    What callers may rely on:

    - Seqs start at 1 and are consecutive and gap-free across every writer of the vault
      (threads, store objects, processes); an entry, once appended, keeps its seq, id,
      time and hash for good. Only :meth:`redact` (a body) and the archive store's
      purge (a row) remove anything, and each appends its own record in the same
      transaction.
    - The Merkle tree grows in the same transaction as every append, so it always covers
      exactly the log, and keeps the leaves of removed bodies and rows.
    - Reads are per app: an id or seq of another app reads as absent. Only
      :meth:`entries`, :meth:`log_size` and the tree span every app.
    - Every driver error comes out as a ``trailvault.errors`` error.
    """

    # -- the vault's own values --------------------------------------------------------

    def vault_id(self) -> str:
        """Return the vault's permanent random id, set when it was created: part of every checkpoint's origin."""

    def adopt_vault_id(self, vault_id: str) -> None:
        """Give this empty vault the id of the vault it becomes a copy of (``trailvault migrate``).

        The id is part of every checkpoint's origin, so a copy keeps it to keep its proofs.
        Raises Conflict when the vault holds any event, channel or checkpoint.
        """

    def meta(self, key: str) -> str | None:
        """Return a vault-wide value (such as the checkpoints' verifier key), or None."""

    def set_meta(self, key: str, value: str) -> None:
        """Record a vault-wide value once (setting the same value again is a no-op);
        raise Conflict when it is set to something else."""

    # -- appending -----------------------------------------------------------------------

    def append(self, batches: Sequence[Sequence[PendingEvent]]) -> list[AppendOutcome]:
        """Append several batches in one durable transaction and return an outcome per batch.

        Each batch is all or nothing: an event id that exists (or repeats within the
        transaction) with another fingerprint keeps its whole batch out with an
        IdConflict, while the other batches still commit. An id that exists with the
        same fingerprint is not appended again; its outcome is the kept seq with
        ``duplicate=True``. Seqs are consecutive, gap-free and follow batch order.
        Raises ChannelNotFound, appending nothing, for an event of a channel never saved.
        When this returns, the appended events survive a crash or power loss
        (unless the store was opened with relaxed durability).
        """

    def redact(self, app: str, seq: int, reason: str, record: PendingEvent) -> Posted:
        """Remove the body of the app's entry ``seq`` and append ``record`` (the redaction's own event).

        One transaction: the body goes (its hash, and so the tree, stay), the record is
        appended like any event. Raises EventNotFound for another app's or a missing seq.
        """

    # -- reading events ------------------------------------------------------------------

    def get_event(self, app: str, event_id: str) -> Event | None:
        """Return the app's event with this id, or None (also for another app's id or a purged row)."""

    def find_events(self, query: EventQuery) -> list[Event]:
        """Return at most ``query.limit`` events matching ``query``, in its order (time then seq, or seq).

        Raises InvalidQuery for a filter the store cannot run (such as a body path
        outside the field-name rule), and QueryTimeout when a time limit is set
        (:mod:`trailvault.adapters.store.timelimit`) and passed.
        """

    def find_entries(self, query: EventQuery) -> list[StoredEntry]:
        """As :meth:`find_events`, but the entries as stored: the body's text and its hash (for export)."""

    def entry_columns(self, query: EventQuery) -> Any:
        """As :meth:`find_entries`, but as one Arrow table (needs pyarrow), for exports to typed files:
        :func:`trailvault.core.entrytable.entry_table`'s layout."""

    def entry_pages(self, query: EventQuery, *, expected: int = 0) -> Iterator[Any]:
        """Every page of a ``sort_by="seq"`` ascending query, from ``query.after`` on, as
        :meth:`entry_columns` tables of at most ``query.limit`` rows, in seq order.

        ``expected`` is about how many entries the query may find: a backend may read a
        long listing another way (SQLite: in a separate process, as one snapshot), with
        the same rows in the same order. Raises InvalidQuery, when called, for any other order.
        """

    def entries(self, after_seq: int, limit: int) -> list[StoredEntry]:
        """Return up to ``limit`` kept entries of every app with seq above ``after_seq``, in seq order
        (a purged row is skipped; a redacted one comes with no body)."""

    def log_size(self) -> int:
        """Return the number of entries in the log (the highest seq)."""

    # -- the tree ------------------------------------------------------------------------

    def tree_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """Return complete nodes of the log's Merkle tree (level 0 = leaf hashes).

        The tree grows in the same transaction as every append, so it always covers
        exactly the log. Reads are consistent with one another only for sizes up to a
        size read before the call. Raises IntegrityFailure when the tree lacks a node
        the log needs (only a damaged vault does).
        """

    def leaf_hashes(self, start: int, end: int) -> bytes:
        """Return the leaf hashes of indexes ``[start, end)``, concatenated (32 bytes each).

        Stops early at the first leaf the tree lacks (only a damaged vault lacks one), so
        a short answer tells the caller where the tree ends. For ``verify``, which reads
        every leaf: one range read instead of a node lookup per entry.
        """

    # -- checkpoints ---------------------------------------------------------------------

    def save_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Keep a signed checkpoint (all are kept, never changed)."""

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """Return the checkpoint of the largest size (the latest signed of those), or None."""

    def checkpoint_covering(self, size: int) -> StoredCheckpoint | None:
        """Return the earliest checkpoint whose size is at least ``size``, or None."""

    def checkpoint_of_size(self, size: int) -> StoredCheckpoint | None:
        """Return the latest checkpoint of exactly ``size`` entries, or None."""

    def all_checkpoints(self) -> list[StoredCheckpoint]:
        """Return every kept checkpoint, by size then signed time."""
