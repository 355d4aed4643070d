"""The store contract: what every backend (SQLite, PostgreSQL) provides to the vault.

A store keeps channels with their schema versions, and the single append-only
log of events. It knows nothing about schemas beyond storing their documents and
building the expression indexes it is asked for; validation happens before an
event reaches it. Each backend translates its own driver errors into
``trailvault.errors`` (``raise ... from exc``) so no driver exception escapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from trailvault.core.api_key import ApiKey
from trailvault.core.batches import ArchiveBatch, ArchiveTask, LegalHold, TaskStatus
from trailvault.core.event import Event, PendingEvent, Posted, StoredEntry
from trailvault.core.integrity.checkpoint import Checkpoint
from trailvault.core.integrity.merkle import NodeKey
from trailvault.core.query import EventQuery
from trailvault.errors import IdConflict

__all__ = ["AppendOutcome", "ChannelRecord", "Store", "StoredCheckpoint", "StoredEntry"]

#: For each batch given to :meth:`Store.append`: its events' outcomes, or the
#: conflict that kept the whole batch out.
AppendOutcome = list[Posted] | IdConflict


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """A channel as stored: its latest schema version and that version's document."""

    app: str
    name: str
    created_us: int
    version: int
    schema_document: dict[str, Any]


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


class Store(Protocol):
    """One vault's storage. Methods are safe to call from several threads."""

    #: Where the store lives, fit to show to people (never holds a password).
    location: str

    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    def vault_id(self) -> str:
        """Return the vault's permanent random id (set when the vault was created)."""

    def app_names(self) -> list[str]:
        """Return the names of every app of the vault (that ever opened a channel or held a key), sorted."""

    def get_channel(self, app: str, name: str) -> ChannelRecord | None:
        """Return the channel's latest version, or None when it was never opened."""

    def list_channels(self, app: str) -> list[ChannelRecord]:
        """Return the app's channels, each at its latest version, ordered by name."""

    def channel_versions(self) -> list[ChannelRecord]:
        """Return every version of every channel of every app, in the order they were saved.

        ``created_us`` is the version's own time. For ``trailvault migrate``.
        """

    def adopt_vault_id(self, vault_id: str) -> None:
        """Give this empty vault the id of the vault it becomes a copy of (``trailvault migrate``).

        The id is part of every checkpoint's origin, so a copy keeps it to keep its proofs.
        Raises Conflict when the vault holds any event, channel or checkpoint.
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
        """Record ``version`` of a channel's schema (version 1 creates the channel).

        Builds an expression index for every path in ``index_paths`` that has none.
        Raises Conflict when that version already exists, which happens when
        another writer changed the schema first; the caller reloads and retries.
        """

    def append(self, batches: Sequence[Sequence[PendingEvent]]) -> list[AppendOutcome]:
        """Append several batches in one durable transaction and return an outcome per batch.

        Each batch is all or nothing: an event id that exists (or repeats within the
        transaction) with another fingerprint keeps its whole batch out with an
        IdConflict, while the other batches still commit. An id that exists with the
        same fingerprint is not appended again; its outcome is the kept seq with
        ``duplicate=True``. Seqs are consecutive, gap-free and follow batch order.
        When this returns, the appended events survive a crash or power loss
        (unless the store was opened with relaxed durability).
        """

    def redact(self, app: str, seq: int, reason: str, record: PendingEvent) -> Posted:
        """Remove the body of the app's entry ``seq`` and append ``record`` (the redaction's own event).

        One transaction: the body goes (its hash, and so the tree, stay), the record is
        appended like any event. Raises EventNotFound for another app's or a missing seq.
        """

    def get_event(self, app: str, event_id: str) -> Event | None:
        """Return the app's event with this id, or None."""

    def find_events(self, query: EventQuery) -> list[Event]:
        """Return at most ``query.limit`` events matching ``query``, in its order."""

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
        the same rows in the same order.
        """

    def log_size(self) -> int:
        """Return the number of entries in the log (the highest seq)."""

    def meta(self, key: str) -> str | None:
        """Return a vault-wide value (such as the public key), or None."""

    def set_meta(self, key: str, value: str) -> None:
        """Record a vault-wide value once; raise Conflict when it is set to something else."""

    def save_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Keep a signed checkpoint (all are kept)."""

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """Return the checkpoint of the largest size (the latest signed of those), or None."""

    def checkpoint_covering(self, size: int) -> StoredCheckpoint | None:
        """Return the earliest checkpoint whose size is at least ``size``, or None."""

    def checkpoint_of_size(self, size: int) -> StoredCheckpoint | None:
        """Return the latest checkpoint of exactly ``size`` entries, or None."""

    def entries(self, after_seq: int, limit: int) -> list[StoredEntry]:
        """Return up to ``limit`` entries of every app with seq above ``after_seq``, in seq order."""

    def all_checkpoints(self) -> list[StoredCheckpoint]:
        """Return every kept checkpoint, by size then signed time."""

    def tree_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """Return complete nodes of the log's Merkle tree (level 0 = leaf hashes).

        The tree grows in the same transaction as every append, so it always covers
        exactly the log. Reads are consistent with one another only for sizes up to a
        size read before the call.
        """

    def save_api_key(self, key: ApiKey, secret_sha256: bytes) -> None:
        """Keep a new API key (creating its app when needed) with the digest of its secret."""

    def api_key(self, key_id: str) -> tuple[ApiKey, bytes] | None:
        """Return a key of any app with its secret's digest, or None."""

    def all_api_keys(self) -> list[tuple[ApiKey, bytes]]:
        """Return every app's keys with their secrets' digests, oldest first (for ``trailvault migrate``)."""

    def list_api_keys(self, app: str) -> list[ApiKey]:
        """Return the app's keys, revoked ones included, oldest first."""

    def revoke_api_key(self, app: str, key_id: str, revoked_us: int) -> ApiKey | None:
        """Revoke the app's key (once: a second revoke keeps the first time); None when the app has no such key."""

    def leaf_hashes(self, start: int, end: int) -> bytes:
        """Return the leaf hashes of indexes ``[start, end)``, concatenated (32 bytes each).

        Stops early at the first leaf the tree lacks (only a damaged vault lacks one), so
        a short answer tells the caller where the tree ends. For ``verify``, which reads
        every leaf: one range read instead of a node lookup per entry.
        """

    # -- archiving (see trailvault.workflows.vault.archiving)-----------------------------------------

    def start_archive_task(
        self, app: str, task_id: str, time_from_us: int, time_to_us: int, now_us: int, stale_before_us: int
    ) -> None:
        """Record a new OPEN batching task of the app.

        An OPEN task whose heartbeat is older than ``stale_before_us`` is first set FAILED
        (its process died). Raises Conflict, naming the running task, while another is OPEN.
        """

    def finish_archive_task(self, task_id: str, status: TaskStatus, error: str | None, now_us: int) -> None:
        """Set a task's final status (COMPLETED or FAILED, with the error's message)."""

    def archive_task(self, app: str, task_id: str, now_us: int, stale_before_us: int) -> ArchiveTask | None:
        """Return the app's task with the batches it has made so far, or None.

        An OPEN task whose heartbeat is older than ``stale_before_us`` is set FAILED first.
        """

    def add_archive_batch(
        self,
        app: str,
        task_id: str,
        archive_id: str,
        time_from_us: int,
        time_to_us: int,
        after_seq: int,
        checkpoint_size: int,
        max_events: int,
        now_us: int,
        make_record: Callable[[list[int], str | None], PendingEvent],
    ) -> ArchiveBatch | None:
        """Make one batch of at most ``max_events`` of the app's events, in one transaction.

        With the batch, appends ``make_record(seqs, previous archive id)`` (its record in
        ``trailvault.batches``), called under the write lock: it must not touch the store.

        It takes, in seq order, events with time in ``[time_from_us, time_to_us)``, seq
        above ``after_seq`` and at most ``checkpoint_size``, in no batch yet, and not in
        ``trailvault.redactions``, ``trailvault.purges`` or ``trailvault.batches``. Returns None
        when none is left.
        Also beats the task's heartbeat.
        """

    def archive_batches(
        self,
        app: str,
        *,
        outstanding: bool,
        time_from_us: int | None,
        time_to_us: int | None,
        after_archive_id: str | None,
        limit: int,
    ) -> list[ArchiveBatch]:
        """Return the app's batches (only unmarked ones when ``outstanding``) whose range overlaps
        the given one, in creation order, after ``after_archive_id``."""

    def archive_batch(self, app: str, archive_id: str) -> ArchiveBatch | None:
        """Return the app's batch, or None (another app's batch is as absent as a missing one)."""

    def previous_archive_batch(self, app: str, archive_id: str) -> ArchiveBatch | None:
        """Return the app's batch made just before this one (the chain of archive files), or None."""

    def archive_batch_entries(self, archive_id: str, after_seq: int, limit: int) -> list[StoredEntry]:
        """Return up to ``limit`` of the batch's entries still kept, with seq above ``after_seq``, in seq order."""

    def mark_archive_batches(self, app: str, archive_ids: Sequence[str], now_us: int) -> list[ArchiveBatch]:
        """Mark the app's batches archived (once; marking again keeps the first time), all or none.

        Raises NotFound naming the first id that is not one of the app's batches.
        """

    def purgeable(
        self, app: str, received_before_us: int, limit: int, after: tuple[int, int] = (0, 0)
    ) -> list[tuple[int, str, int]]:
        """Return up to ``limit`` (seq, archive id, batch key) of events that purge may remove now, by batch
        key then seq, after the (batch key, seq) ``after`` (the start by default).

        Such an event is in a batch marked archived, was received at or before
        ``received_before_us``, and is covered by no legal hold that is set.
        """

    def purge(
        self, app: str, archive_id: str, seqs: list[int], received_before_us: int, record: PendingEvent
    ) -> Posted:
        """Remove the rows of ``seqs`` (ascending, one batch's) and append ``record`` naming them, in one transaction.

        Raises Conflict, removing nothing, when any of them is no longer purgeable (a hold
        was set meanwhile). The tree keeps their leaves; ``purged_seqs`` lists them since.
        """

    def purged_seqs(self, start: int, end: int) -> set[int]:
        """Return the purged seqs in ``(start, end]``."""

    def purge_records(self) -> Iterator[tuple[int, int, str]]:
        """Yield (seq of the purge record, count, :func:`seqs_digest` of its seqs) of every purge, by record."""

    def set_hold(self, hold: LegalHold) -> LegalHold:
        """Keep a new legal hold; raises Conflict while a hold of that name is set in the app."""

    def clear_hold(self, app: str, name: str, now_us: int) -> LegalHold | None:
        """Clear the app's hold of that name (it stays on record); None when none is set."""

    def holds(self, app: str, *, include_cleared: bool) -> list[LegalHold]:
        """Return the app's holds that are set (and cleared ones too when asked), oldest first."""
