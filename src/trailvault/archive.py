"""Pull-based archiving (Cloudera CDP's five verbs), purge and legal holds: the archiving half of a Vault.

The lifecycle of an event that is archived:

1. ``batch_events_for_archiving(from, to)`` starts a task that signs a checkpoint and
   groups the app's events with time in ``[from, to)`` that it covers, and that are in
   no batch yet, into batches of at most ``max_batch_events``, in seq order. One task
   per app runs at a time; a second is refused with Conflict. It runs in a background
   thread (``wait=True``: in the caller's), and its status is kept in the vault, so
   any process can ask ``get_batch_events_for_archiving_status``.
2. ``list_outstanding_archive_batches`` pages through the batches not marked yet.
3. ``list_events_in_archive_batch`` streams a batch's events; ``write_archive_batch``
   writes them as CDP's ``.json.gz`` file with a manifest that proves it
   (:mod:`trailvault.archive_files`) to a folder or any fsspec URL.
4. ``mark_archive_batches_as_successful`` marks batches archived.
5. ``purge`` then removes the rows of marked batches' events received at least
   ``retention`` ago, except those under a legal hold (``set_hold``/``clear_hold``).
   Each purge appends a record to the app's channel ``trailvault.purges`` naming the
   batch, the count and a digest of the seqs; the Merkle tree keeps every leaf, so the
   log still verifies and the purged entries stay provable from their archive files.
   Nothing that is in no marked batch is ever purged.
"""

from __future__ import annotations

import base64
import threading
import time as clock
import uuid
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from trailvault.archive_files import ArchiveFile, archive_line, shown_location, write_archive
from trailvault.batches import ArchiveBatch, ArchiveTask, LegalHold, TaskStatus, archive_file_name, seqs_digest
from trailvault.channel import BATCHES_CHANNEL, PURGES_CHANNEL
from trailvault.checkpoints import Checkpointer
from trailvault.errors import (
    BatchArchived,
    ChannelNotFound,
    Conflict,
    DestinationUnavailable,
    InvalidInput,
    InvalidQuery,
    NotFound,
    TrailvaultError,
)
from trailvault.event import PendingEvent, Posted, check_name
from trailvault.export import proof_hashes
from trailvault.integrity.checkpoint import Checkpoint
from trailvault.query import query_time
from trailvault.store import Store
from trailvault.store.base import StoredCheckpoint
from trailvault.timestamps import format_timestamp

__all__ = [
    "BATCHES_SCHEMA", "DEFAULT_MAX_BATCH_EVENTS", "DEFAULT_RETENTION", "PURGES_SCHEMA", "ArchiveSettings",
    "Archiving", "BatchPage", "PurgeReport", "open_destination", "outstanding", "shown_location",
]  # fmt: skip

DEFAULT_MAX_BATCH_EVENTS = 100_000
#: Seconds an archived event stays in the vault after it was received: 30 days.
DEFAULT_RETENTION = 30 * 86_400.0
#: A task that has not beaten for this long is taken for dead (its process stopped).
STALE_TASK_S = 300
_PAGE = 5_000
_PURGE_CHUNK = 10_000

# A batch or purge names its seqs: how many, the first and last, and their digest. Not
# indexed: a body index is evaluated on every event of the vault as it is appended.
_SEQS_FIELDS = [
    {"name": "archive_id", "type": "STRING", "mode": "REQUIRED"},
    {"name": "count", "type": "INTEGER", "mode": "REQUIRED"},
    {"name": "first_seq", "type": "INTEGER", "mode": "REQUIRED"},
    {"name": "last_seq", "type": "INTEGER", "mode": "REQUIRED"},
    {"name": "seqs_sha256", "type": "STRING", "mode": "REQUIRED"},
]
#: The schema of ``trailvault.batches``: one event per archive batch, appended with it. The
#: log's tree, and so every signed checkpoint after it, vouches for the batch's content.
BATCHES_SCHEMA = {"fields": [*_SEQS_FIELDS, {"name": "previous_archive_id", "type": "STRING", "mode": "NULLABLE"}]}
#: The schema of ``trailvault.purges``: one event per purge of (part of) a batch.
PURGES_SCHEMA = {"fields": list(_SEQS_FIELDS)}


@dataclass(frozen=True)
class ArchiveSettings:
    """How a vault archives: the largest batch, and how long archived events stay before purge."""

    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS
    retention: float = DEFAULT_RETENTION

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_events <= 10_000_000:
            raise InvalidInput(
                f"max_batch_events: use 1 to 10,000,000 events, not {self.max_batch_events}", field="max_batch_events"
            )
        if not 0 <= self.retention < float("inf"):
            raise InvalidInput(f"retention: use 0 or more seconds, not {self.retention}", field="retention")


@dataclass(frozen=True)
class BatchPage:
    """A page of ``list_outstanding_archive_batches``; ``next_page_token`` continues it."""

    event_batches: list[ArchiveBatch]
    next_page_token: str | None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"eventBatches": [batch.to_dict() for batch in self.event_batches]}
        if self.next_page_token is not None:
            document["nextPageToken"] = self.next_page_token
        return document


@dataclass
class PurgeReport:
    """What a purge removed: events per archive batch."""

    purged: int = 0
    batches: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"purged": self.purged, "archiveIds": self.batches}


def open_destination(destination: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """Return (fsspec filesystem, root path) of a folder or fsspec URL, with a clear error if it cannot open."""
    import fsspec  # type: ignore[import-untyped, unused-ignore]

    try:
        fs, root = fsspec.core.url_to_fs(destination, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise InvalidInput(
            f"destination: cannot open {shown_location(destination)!r} ({type(exc).__name__}); "
            "check the URL (for s3:// install 'trailvault[s3]')",
            field="destination",
        ) from None
    except Exception as exc:  # fsspec backends connect on opening and raise their own error types
        raise DestinationUnavailable(
            f"destination: cannot reach {shown_location(destination)!r} ({type(exc).__name__}); "
            "check the destination and its credentials"
        ) from None
    return fs, str(root)


def outstanding(batch: ArchiveBatch) -> ArchiveBatch:
    """The batch, when it is not marked archived yet; else raise BatchArchived naming it and when.

    CDP serves a batch's events only until it is marked: from then on its archive file is
    the copy, and listing (or writing) it again is refused rather than answered from rows
    that purge is about to remove.
    """
    if batch.archived_us is None:
        return batch
    # To the millisecond, as the batch's archiveTimestamp has it: a remote client, which knows
    # the batch only in CDP's shape, then names the same time as the server.
    archived_at = format_timestamp(batch.archived_us - batch.archived_us % 1000)
    raise BatchArchived(
        f"archiveId: batch {batch.archive_id!r} was marked archived at {archived_at}; its events are no longer "
        "listed or written: read them from its archive file",
        field="archiveId",
        archive_id=batch.archive_id,
        archived_at=archived_at,
    )


class Archiving:
    """Batches, archive files, marking, purge and legal holds of one app; mixed into the Vault."""

    app: str
    _store: Store
    _checkpointer: Checkpointer | None
    archive_settings: ArchiveSettings
    _batching: list[threading.Thread]

    if TYPE_CHECKING:

        def _own_channel(self, channel: str, schema: dict[str, Any]) -> Any: ...

        def _prepare(self, state: Any, values: Any, event_id: Any, time: Any, received_us: int) -> PendingEvent: ...

        def issue_checkpoint(self) -> StoredCheckpoint: ...

        def _signed_covering(self, seq: int, *, field: str = "seq") -> Checkpoint: ...

        def checkpoint(self, size: int | None = None) -> StoredCheckpoint: ...

        def prove_consistency(self, old_size: int, new_size: int) -> Any: ...

    # -- 1. batch-events-for-archiving ---------------------------------------------------

    def batch_events_for_archiving(
        self, from_timestamp: datetime | str, to_timestamp: datetime | str, *, wait: bool = False
    ) -> str:
        """Start grouping the app's events of ``[from_timestamp, to_timestamp)`` into batches; return the task id.

        Raises Conflict while another batching task of the app is OPEN. The task runs in
        a background thread, or in this one with ``wait=True``.
        """
        time_from = query_time(from_timestamp, "fromTimestamp")
        time_to = query_time(to_timestamp, "toTimestamp")
        if time_from >= time_to:
            raise InvalidQuery(
                "toTimestamp: must be after fromTimestamp (the range is [from, to))", field="toTimestamp"
            )
        task_id = str(uuid.uuid4())
        now = _now_us()
        self._store.start_archive_task(self.app, task_id, time_from, time_to, now, now - STALE_TASK_S * 1_000_000)
        if wait:
            self._run_batching(task_id, time_from, time_to, raise_errors=True)
        else:
            worker = threading.Thread(
                target=self._run_batching, args=(task_id, time_from, time_to), name="trailvault-batching", daemon=True
            )
            self._batching.append(worker)
            worker.start()
        return task_id

    def _run_batching(self, task_id: str, time_from: int, time_to: int, *, raise_errors: bool = False) -> None:
        try:
            checkpoint = self._batching_checkpoint()
            state = self._own_channel(BATCHES_CHANNEL, BATCHES_SCHEMA)

            def record(archive_id: str) -> Callable[[list[int], str | None], PendingEvent]:
                def make(seqs: list[int], previous: str | None) -> PendingEvent:
                    values = {
                        "archive_id": archive_id, "count": len(seqs), "first_seq": seqs[0], "last_seq": seqs[-1],
                        "seqs_sha256": seqs_digest(seqs), "previous_archive_id": previous,
                    }  # fmt: skip
                    return self._prepare(state, values, None, None, _now_us())

                return make

            after = 0
            while True:
                archive_id = str(uuid.uuid4())
                batch = self._store.add_archive_batch(
                    self.app, task_id, archive_id, time_from, time_to, after, checkpoint.size,
                    self.archive_settings.max_batch_events, _now_us(), record(archive_id),
                )  # fmt: skip
                if batch is None:
                    break
                after = batch.last_seq
            if self._checkpointer is not None:
                self._checkpointer.issue()  # so the batches' records are signed now, not a moment later
        except Exception as exc:
            message = exc.message if isinstance(exc, TrailvaultError) else f"{type(exc).__name__}: {exc}"
            self._store.finish_archive_task(task_id, TaskStatus.FAILED, message[:500], _now_us())
            if raise_errors:
                raise
            return
        self._store.finish_archive_task(task_id, TaskStatus.COMPLETED, None, _now_us())

    def _batching_checkpoint(self) -> StoredCheckpoint:
        """A checkpoint covering the log now: batches stop at its size, and their files prove against it."""
        if self._checkpointer is not None:
            return self.issue_checkpoint()
        try:
            return self.checkpoint()
        except NotFound:
            message = "signing_key: no checkpoint yet and no signing key to issue one"
            raise NotFound(message, field="signing_key") from None

    def wait_for_batching(self, timeout: float | None = None) -> None:
        """Wait for this vault's background batching tasks to finish (``close`` does too)."""
        for worker in list(self._batching):
            worker.join(timeout)
            if not worker.is_alive():
                self._batching.remove(worker)

    # -- 2. get-batch-events-for-archiving-status ------------------------------------------

    def get_batch_events_for_archiving_status(self, task_id: str) -> ArchiveTask:
        """Return the task's status and, once COMPLETED, its batches. Raises NotFound for another app's task."""
        now = _now_us()
        task = self._store.archive_task(self.app, str(task_id)[:64], now, now - STALE_TASK_S * 1_000_000)
        if task is None:
            raise NotFound(f"taskId: no batching task {str(task_id)[:64]!r} in app {self.app!r}", field="taskId")
        return task

    # -- 3. list-outstanding-archive-batches -------------------------------------------------

    def list_outstanding_archive_batches(
        self,
        from_timestamp: datetime | str | None = None,
        to_timestamp: datetime | str | None = None,
        *,
        page_size: int = 100,
        starting_token: str | None = None,
    ) -> BatchPage:
        """Return a page of the app's batches not marked archived yet, oldest first, overlapping the range."""
        if not 1 <= page_size <= 1000:
            raise InvalidQuery(f"pageSize: use 1 to 1000, not {page_size}", field="pageSize")
        if starting_token is not None and self._store.archive_batch(self.app, str(starting_token)[:64]) is None:
            raise InvalidQuery(
                "startingToken: not a page token of this listing; start without it", field="startingToken"
            )
        batches = self._store.archive_batches(
            self.app,
            outstanding=True,
            time_from_us=None if from_timestamp is None else query_time(from_timestamp, "fromTimestamp"),
            time_to_us=None if to_timestamp is None else query_time(to_timestamp, "toTimestamp"),
            after_archive_id=starting_token,
            limit=page_size + 1,
        )
        more = len(batches) > page_size
        batches = batches[:page_size]
        return BatchPage(batches, batches[-1].archive_id if more else None)

    def archive_batch(self, archive_id: str) -> ArchiveBatch:
        """Return one of the app's batches, marked or not; NotFound otherwise."""
        batch = self._store.archive_batch(self.app, str(archive_id)[:64])
        if batch is None:
            raise NotFound(
                f"archiveId: no archive batch {str(archive_id)[:64]!r} in app {self.app!r}", field="archiveId"
            )
        return batch

    # -- 4. list-events-in-archive-batch -------------------------------------------------------

    def list_events_in_archive_batch(self, archive_id: str) -> Iterator[dict[str, Any]]:
        """Stream the outstanding batch's events, in seq order, as the archive file's JSON objects.

        Raises NotFound for an unknown batch and BatchArchived for one marked archived.
        """
        lines = self.archive_lines(archive_id)
        return (orjson.loads(line) for _, line in lines)

    def archive_lines(self, archive_id: str) -> Iterator[tuple[int, bytes]]:
        """Stream (seq, JSON line) of the outstanding batch's events; raises NotFound or BatchArchived now,
        not when iterated."""
        batch = outstanding(self.archive_batch(archive_id))
        return self._lines(batch.archive_id)

    def _lines(self, archive_id: str) -> Iterator[tuple[int, bytes]]:
        after = 0
        while True:
            entries = self._store.archive_batch_entries(archive_id, after, _PAGE)
            for entry in entries:
                yield entry.seq, archive_line(entry)
            if len(entries) < _PAGE:
                return
            after = entries[-1].seq

    def archive_proof(self, archive_id: str, seqs: array[int]) -> dict[str, Any]:
        """The manifest's proving part for ``seqs`` of a batch: its record, checkpoint, proof, previous, consistency.

        The proof covers the events and the batch's record together, against the earliest
        checkpoint that covers the record (signed now if there is none yet).
        """
        batch = self.archive_batch(archive_id)
        record = self._store.entries(batch.record_seq - 1, 1)
        if not record or record[0].seq != batch.record_seq:
            raise NotFound(f"archiveId: the vault lost the record of batch {archive_id!r}", field="archiveId")
        checkpoint = self._covering(batch.record_seq)
        proven: array[int] = array("q", seqs)
        proven.append(batch.record_seq)
        previous = self._store.previous_archive_batch(self.app, batch.archive_id)
        document: dict[str, Any] = {
            "record": archive_line(record[0]).decode(),
            "checkpoint": checkpoint.note,
            "proof": base64.b64encode(b"".join(proof_hashes(self._store, proven, checkpoint.size))).decode(),
            "previous": None,
            "consistency": [],
        }
        if previous is not None:
            before = self._covering(previous.record_seq)
            document["previous"] = {"archiveId": previous.archive_id, "checkpoint": before.note}
            if before.size < checkpoint.size:
                hashes = self.prove_consistency(before.size, checkpoint.size).hashes
                document["consistency"] = [base64.b64encode(item).decode() for item in hashes]
        return document

    def _covering(self, seq: int) -> Checkpoint:
        """The earliest signed checkpoint covering ``seq`` (always the same one, once there is one)."""
        return self._signed_covering(seq, field="archiveId")

    def write_archive_batch(
        self,
        archive_id: str,
        destination: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        dated: bool = False,
    ) -> ArchiveFile:
        """Write the batch as ``<accountId>_<YYYYmmddTHHMM>Z_<archiveId>.json.gz`` plus manifest.

        ``destination`` is a folder or any fsspec URL (``s3://bucket/prefix`` with
        ``storage_options``); ``dated`` puts the files under ``<app>/yyyy/MM/dd/`` (UTC
        date of writing), as automated archiving does. A batch marked archived is
        refused (BatchArchived), as listing it is; so is one partly purged, which only a
        marked batch can be, so no file is ever written incomplete.
        """
        batch = outstanding(self.archive_batch(archive_id))
        fs, root = open_destination(destination, storage_options)
        now = _now_us()
        folder = root
        if dated:
            stamp = format_timestamp(now)
            folder = f"{root.rstrip('/')}/{self.app}/{stamp[0:4]}/{stamp[5:7]}/{stamp[8:10]}"
        return write_archive(
            self._lines(batch.archive_id),
            lambda seqs: self.archive_proof(batch.archive_id, seqs),
            batch.to_dict(),
            fs,
            folder,
            archive_file_name(batch, now),
            format_timestamp(now),
        )

    # -- 5. mark-archive-batches-as-successful -------------------------------------------------

    def mark_archive_batches_as_successful(self, archive_ids: list[str]) -> dict[str, Any]:
        """Mark batches archived (all or none), so that purge may remove their events after ``retention``.

        Returns CDP's answer: ``archiveIds`` and ``archiveTimestamp`` (RFC 3339). Marking
        a batch again keeps its first time.
        """
        if not archive_ids:
            raise InvalidInput("archiveIds: give at least one archive id", field="archiveIds")
        ids = [str(archive_id)[:64] for archive_id in archive_ids]
        marked = self._store.mark_archive_batches(self.app, ids, _now_us())
        # The time they were marked: now, or the first time when all of them were marked before.
        kept = max(batch.archived_us or 0 for batch in marked)
        return {"archiveIds": ids, "archiveTimestamp": format_timestamp(kept)}

    # -- purge ---------------------------------------------------------------------------------

    def purge(self, *, now: datetime | str | None = None) -> PurgeReport:
        """Remove the rows of the app's events that are archived, past retention and under no hold.

        Each batch's purge is one transaction with its record in ``trailvault.purges``.
        Safe to run at any time, from any number of processes.
        """
        now_us = _now_us() if now is None else query_time(now, "now")
        cutoff = now_us - int(self.archive_settings.retention * 1_000_000)
        report = PurgeReport()
        refused = 0
        # Pages continue past the last one, so events left (held, or refused meanwhile) are not read again.
        position = (0, 0)
        while True:
            found = self._store.purgeable(self.app, cutoff, _PURGE_CHUNK, position)
            if not found:
                return report
            position = (found[-1][2], found[-1][0])
            by_batch: dict[str, list[int]] = {}
            for seq, archive_id, _ in found:
                by_batch.setdefault(archive_id, []).append(seq)
            for archive_id, seqs in by_batch.items():
                try:
                    self._purge_batch(archive_id, seqs, cutoff)
                except Conflict:
                    # A hold was set meanwhile: those stay; the next purge looks at them again.
                    refused += 1
                    if refused > 5:
                        raise
                    continue
                report.purged += len(seqs)
                report.batches[archive_id] = report.batches.get(archive_id, 0) + len(seqs)

    def _purge_batch(self, archive_id: str, seqs: list[int], cutoff: int) -> Posted:
        state = self._own_channel(PURGES_CHANNEL, PURGES_SCHEMA)
        record = {
            "archive_id": archive_id,
            "count": len(seqs),
            "first_seq": seqs[0],
            "last_seq": seqs[-1],
            "seqs_sha256": seqs_digest(seqs),
        }
        return self._store.purge(
            self.app, archive_id, seqs, cutoff, self._prepare(state, record, None, None, _now_us())
        )

    # -- legal holds -----------------------------------------------------------------------------

    def set_hold(
        self,
        name: str,
        reason: str,
        *,
        channel: str | None = None,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
    ) -> LegalHold:
        """Set a legal hold: purge keeps the app's events (of ``channel``, in the time range) until it is cleared."""
        if not reason.strip():
            raise InvalidInput("reason: say why the events are held (kept on record)", field="reason")
        hold = LegalHold(
            check_name(name, field="name"),
            self.app,
            reason,
            _now_us(),
            None if channel is None else check_name(channel, field="channel"),
            None if time_from is None else query_time(time_from, "from"),
            None if time_to is None else query_time(time_to, "to"),
        )
        if hold.time_from_us is not None and hold.time_to_us is not None and hold.time_from_us >= hold.time_to_us:
            raise InvalidQuery("to: must be after from (the range is [from, to))", field="to")
        if hold.channel is not None and self._store.get_channel(self.app, hold.channel) is None:
            # A misspelt channel would hold nothing, and purge would take the events meant to be held.
            raise ChannelNotFound(
                f"channel: {hold.channel!r} was never opened in app {self.app!r}, so a hold on it would keep "
                "nothing; check the name (trailvault channels list)",
                field="channel",
            )
        return self._store.set_hold(hold)

    def clear_hold(self, name: str) -> LegalHold:
        """Clear the app's legal hold ``name``; it stays on record with the time it was cleared."""
        cleared = self._store.clear_hold(self.app, str(name)[:128], _now_us())
        if cleared is None:
            raise NotFound(f"name: no legal hold {str(name)[:128]!r} is set in app {self.app!r}", field="name")
        return cleared

    def holds(self, *, include_cleared: bool = False) -> list[LegalHold]:
        """Return the app's legal holds that are set (and the cleared ones with ``include_cleared``)."""
        return self._store.holds(self.app, include_cleared=include_cleared)


def _now_us() -> int:
    return clock.time_ns() // 1000
