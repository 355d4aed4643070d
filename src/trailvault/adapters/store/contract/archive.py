"""The archive store: batching tasks, archive batches and their members, marks, purge and legal holds."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from trailvault.core.batches import ArchiveBatch, ArchiveTask, LegalHold, TaskStatus
from trailvault.core.event import PendingEvent, Posted, StoredEntry

__all__ = ["ArchiveStore"]


class ArchiveStore(Protocol):
    """What :mod:`trailvault.workflows.vault.archiving` keeps in the vault, per app.

    What callers may rely on:

    - **Tasks.** At most one batching task of an app is OPEN at a time, across every
      writer of the vault: a second start, even a concurrent one, raises Conflict. A task
      goes from OPEN to COMPLETED or FAILED once; an OPEN task whose heartbeat is older
      than the caller's ``stale_before_us`` counts as abandoned and reads FAILED.
    - **Batches.** An event is in at most one batch, for good; the records trailvault keeps
      (``trailvault.redactions``, ``trailvault.purges``, ``trailvault.batches``) are in
      none. Each batch is made in one transaction with its record in the log, so the
      signed tree vouches for it. Batches of an app are in creation order, each naming
      the one before it.
    - **Marks.** A batch is marked archived once; marking again keeps the first time.
    - **Purge** removes the rows of events of marked batches only, never one a legal hold
      that is set covers, each purge in one transaction with its record in the log. The
      tree keeps the removed leaves, and :meth:`purged_seqs` and :meth:`purge_records`
      account for every removed row, so the log still verifies.
    - **Legal holds** are never deleted: a cleared one stays on record.
    - An id of another app's task or batch reads as absent. Every driver error comes out
      as a ``trailvault.errors`` error.
    """

    # -- tasks ---------------------------------------------------------------------------

    def start_archive_task(
        self, app: str, task_id: str, time_from_us: int, time_to_us: int, now_us: int, stale_before_us: int
    ) -> None:
        """Record a new OPEN batching task of the app (creating the app when needed).

        An OPEN task whose heartbeat is older than ``stale_before_us`` is first set FAILED
        (its process died). Raises Conflict, naming the running task (field ``taskId``),
        while another is OPEN; a start racing another start gets Conflict too.
        """

    def finish_archive_task(self, task_id: str, status: TaskStatus, error: str | None, now_us: int) -> None:
        """Set a task's final status (COMPLETED, or FAILED with the error's message) and its finished time."""

    def archive_task(self, app: str, task_id: str, now_us: int, stale_before_us: int) -> ArchiveTask | None:
        """Return the app's task with the batches it has made so far (in creation order), or None.

        An OPEN task whose heartbeat is older than ``stale_before_us`` is set FAILED first,
        with an error saying it was abandoned.
        """

    # -- batches -------------------------------------------------------------------------

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
        (appending nothing) when none is left.
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
        """Return up to ``limit`` of the app's batches (only unmarked ones when ``outstanding``) whose range
        overlaps the given one, in creation order, after ``after_archive_id``."""

    def archive_batch(self, app: str, archive_id: str) -> ArchiveBatch | None:
        """Return the app's batch, or None (another app's batch is as absent as a missing one)."""

    def previous_archive_batch(self, app: str, archive_id: str) -> ArchiveBatch | None:
        """Return the app's batch made just before this one (the chain of archive files), or None."""

    def archive_batch_entries(self, archive_id: str, after_seq: int, limit: int) -> list[StoredEntry]:
        """Return up to ``limit`` of the batch's entries still kept, with seq above ``after_seq``, in seq order."""

    def mark_archive_batches(self, app: str, archive_ids: Sequence[str], now_us: int) -> list[ArchiveBatch]:
        """Mark the app's batches archived (once; marking again keeps the first time), all or none;
        return them, in the order given.

        Raises NotFound (field ``archiveIds``), marking none, naming the first id that is
        not one of the app's batches.
        """

    # -- purge ---------------------------------------------------------------------------

    def purgeable(
        self, app: str, received_before_us: int, limit: int, after: tuple[int, int] = (0, 0)
    ) -> list[tuple[int, str, int]]:
        """Return up to ``limit`` (seq, archive id, batch key) of events that purge may remove now, by batch
        key then seq, after the (batch key, seq) ``after`` (the start by default).

        Such an event is in a batch marked archived, was received at or before
        ``received_before_us``, is still kept, and is covered by no legal hold that is set.
        """

    def purge(
        self, app: str, archive_id: str, seqs: list[int], received_before_us: int, record: PendingEvent
    ) -> Posted:
        """Remove the rows of ``seqs`` (ascending, one batch's) and append ``record`` naming them, in one transaction.

        Raises Conflict, removing nothing, when any of them is no longer purgeable (a hold
        was set meanwhile). The tree keeps their leaves; ``purged_seqs`` lists them since,
        and the batch's ``purged`` count grows by their number.
        """

    def purged_seqs(self, start: int, end: int) -> set[int]:
        """Return the purged seqs in ``(start, end]``."""

    def purge_records(self) -> Iterator[tuple[int, int, str]]:
        """Yield (seq of the purge record, count, :func:`~trailvault.core.batches.seqs_digest` of its seqs)
        of every purge, by record."""

    # -- legal holds ---------------------------------------------------------------------

    def set_hold(self, hold: LegalHold) -> LegalHold:
        """Keep a new legal hold (creating its app when needed); it covers the app's events of its channel
        (any when None) with time in its range (either end open when None).

        Raises Conflict (field ``name``) while a hold of that name is set in the app; a
        cleared one's name may be used again. A purge either sees the hold or committed before it.
        """

    def clear_hold(self, app: str, name: str, now_us: int) -> LegalHold | None:
        """Clear the app's hold of that name and return it (it stays on record); None when none is set."""

    def holds(self, app: str, *, include_cleared: bool) -> list[LegalHold]:
        """Return the app's holds that are set (and cleared ones too when asked), oldest first."""
