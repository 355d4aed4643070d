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
   (:mod:`trailvault.workflows.archive.files`) to a folder or any fsspec URL.
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
from datetime import datetime
from typing import Any

import orjson

from trailvault.adapters.store.base import StoredCheckpoint
from trailvault.core.batches import (
    BATCHES_SCHEMA,
    PURGES_SCHEMA,
    ArchiveBatch,
    ArchiveFile,
    ArchiveTask,
    BatchPage,
    LegalHold,
    PurgeReport,
    TaskStatus,
    archive_file_name,
    outstanding,
    seqs_digest,
)
from trailvault.core.channel import BATCHES_CHANNEL, PURGES_CHANNEL
from trailvault.core.event import PendingEvent, Posted, check_name
from trailvault.core.integrity.checkpoint import Checkpoint
from trailvault.core.query import query_time
from trailvault.core.timestamps import format_timestamp
from trailvault.errors import (
    ChannelNotFound,
    Conflict,
    InvalidInput,
    InvalidQuery,
    NotFound,
    TrailvaultError,
)
from trailvault.workflows.archive.files import archive_line, open_destination, write_archive
from trailvault.workflows.proofs import proof_hashes
from trailvault.workflows.vault.parts import VaultParts

__all__ = ["STALE_TASK_S", "Archiving"]

#: A task that has not beaten for this long is taken for dead (its process stopped).
STALE_TASK_S = 300
_PAGE = 5_000
_PURGE_CHUNK = 10_000

class Archiving(VaultParts):
    """Batches, archive files, marking, purge and legal holds of one app; mixed into the Vault."""

    # -- 1. batch-events-for-archiving ---------------------------------------------------

    def batch_events_for_archiving(
        self, from_timestamp: datetime | str, to_timestamp: datetime | str, *, wait: bool = False
    ) -> str:
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
        batch = self._store.archive_batch(self.app, str(archive_id)[:64])
        if batch is None:
            raise NotFound(
                f"archiveId: no archive batch {str(archive_id)[:64]!r} in app {self.app!r}", field="archiveId"
            )
        return batch

    # -- 4. list-events-in-archive-batch -------------------------------------------------------

    def list_events_in_archive_batch(self, archive_id: str) -> Iterator[dict[str, Any]]:
        lines = self.archive_lines(archive_id)
        return (orjson.loads(line) for _, line in lines)

    def archive_lines(self, archive_id: str) -> Iterator[tuple[int, bytes]]:
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
        if not archive_ids:
            raise InvalidInput("archiveIds: give at least one archive id", field="archiveIds")
        ids = [str(archive_id)[:64] for archive_id in archive_ids]
        marked = self._store.mark_archive_batches(self.app, ids, _now_us())
        # The time they were marked: now, or the first time when all of them were marked before.
        kept = max(batch.archived_us or 0 for batch in marked)
        return {"archiveIds": ids, "archiveTimestamp": format_timestamp(kept)}

    # -- purge ---------------------------------------------------------------------------------

    def purge(self, *, now: datetime | str | None = None) -> PurgeReport:
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
        cleared = self._store.clear_hold(self.app, str(name)[:128], _now_us())
        if cleared is None:
            raise NotFound(f"name: no legal hold {str(name)[:128]!r} is set in app {self.app!r}", field="name")
        return cleared

    def holds(self, *, include_cleared: bool = False) -> list[LegalHold]:
        return self._store.holds(self.app, include_cleared=include_cleared)


def _now_us() -> int:
    return clock.time_ns() // 1000
