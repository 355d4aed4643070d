"""The archive store (:class:`trailvault.adapters.store.contract.archive.ArchiveStore`) on every backend:
batching tasks, batches and their members, marks, purge and legal holds."""

from __future__ import annotations

import threading
import uuid

import pytest

from trailvault.adapters.store import Store
from trailvault.core.batches import ArchiveBatch, LegalHold, TaskStatus, seqs_digest
from trailvault.core.channel import BATCHES_CHANNEL, PURGES_CHANNEL, REDACTIONS_CHANNEL
from trailvault.core.event import PendingEvent
from trailvault.core.integrity.merkle import root_hash, subtree_nodes
from trailvault.errors import Conflict, NotFound

from .conftest import SCHEMA, StoreFactory, pending

#: Every task's heartbeat is fresh unless a test says otherwise.
FRESH = 0
EVERYTHING = (0, 10**12)
RECEIVED = 5_000_000


class Records:
    """``make_record`` for ``add_archive_batch``: a batch's record in ``trailvault.batches``; remembers its calls."""

    def __init__(self, app: str = "default") -> None:
        self.app = app
        self.calls: list[tuple[list[int], str | None]] = []

    def __call__(self, seqs: list[int], previous: str | None) -> PendingEvent:
        self.calls.append((list(seqs), previous))
        body = f'{{"count":{len(seqs)},"seqs_sha256":"{seqs_digest(seqs)}"}}'
        return pending(str(uuid.uuid4()), app=self.app, channel=BATCHES_CHANNEL, body=body, time_us=7)


@pytest.fixture
def archiving(orders: Store) -> Store:
    """The ``orders`` store with the channels archiving writes to, and a second channel ``refunds``."""
    for channel in (BATCHES_CHANNEL, PURGES_CHANNEL, REDACTIONS_CHANNEL, "refunds"):
        orders.save_channel_version("default", channel, 1, SCHEMA, [], 1)
    return orders


def make_batches(
    store: Store,
    *,
    task_id: str = "task-1",
    time_range: tuple[int, int] = EVERYTHING,
    max_events: int = 1000,
    records: Records | None = None,
) -> list[ArchiveBatch]:
    """Run one batching task over the app ``default`` to its end, as the archive workflow does."""
    records = records or Records()
    store.start_archive_task("default", task_id, *time_range, 10, FRESH)
    made: list[ArchiveBatch] = []
    after = 0
    size = store.log_size()
    while (batch := store.add_archive_batch(
        "default", task_id, str(uuid.uuid4()), *time_range, after, size, max_events, 20, records
    )) is not None:  # fmt: skip
        made.append(batch)
        after = batch.last_seq
    store.finish_archive_task(task_id, TaskStatus.COMPLETED, None, 30)
    return made


def _purge_record(archive_id: str) -> PendingEvent:
    return pending(str(uuid.uuid4()), channel=PURGES_CHANNEL, body=f'{{"archive_id":"{archive_id}"}}', time_us=9)


def _ids(found: list[ArchiveBatch]) -> list[str]:
    return [batch.archive_id for batch in found]


# -- tasks ---------------------------------------------------------------------------------


def test_one_task_of_an_app_is_open_at_a_time(archiving: Store) -> None:
    """A second start while a task is OPEN is refused naming it; another app may start; after the end, a new one may."""
    archiving.start_archive_task("default", "task-1", *EVERYTHING, 10, FRESH)
    with pytest.raises(Conflict, match="task-1") as refused:
        archiving.start_archive_task("default", "task-2", *EVERYTHING, 11, FRESH)
    assert refused.value.field == "taskId"
    archiving.start_archive_task("other", "task-3", *EVERYTHING, 12, FRESH)
    archiving.finish_archive_task("task-1", TaskStatus.COMPLETED, None, 13)
    archiving.start_archive_task("default", "task-2", *EVERYTHING, 14, FRESH)
    second = archiving.archive_task("default", "task-2", 15, FRESH)
    assert second is not None and second.status is TaskStatus.OPEN


def test_concurrent_starts_open_exactly_one_task(make_store: StoreFactory) -> None:
    """Starts racing from several store objects (processes) on one vault: one task opens, the others get Conflict."""
    first = make_store()
    first.save_channel_version("default", "orders", 1, SCHEMA, [], 1)
    stores = [first, *(make_store() for _ in range(3))]
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def start(store: Store, task_id: str) -> None:
        barrier.wait()
        try:
            store.start_archive_task("default", task_id, *EVERYTHING, 10, FRESH)
            outcomes.append("started")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=start, args=(store, f"task-{n}")) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["started"]
    opened = [first.archive_task("default", f"task-{n}", 20, FRESH) for n in range(len(stores))]
    assert [task.status for task in opened if task is not None] == [TaskStatus.OPEN]


def test_a_task_ends_completed_or_failed_with_its_error(archiving: Store) -> None:
    """A task reads OPEN with no end until finished, then its final status, time and error;
    another app's task is absent."""
    archiving.start_archive_task("default", "task-1", 100, 200, 10, FRESH)
    task = archiving.archive_task("default", "task-1", 11, FRESH)
    assert task is not None
    assert (task.app, task.time_from_us, task.time_to_us, task.status, task.created_us) == (
        "default", 100, 200, TaskStatus.OPEN, 10,
    )  # fmt: skip
    assert (task.finished_us, task.error, task.batches) == (None, None, ())
    archiving.finish_archive_task("task-1", TaskStatus.FAILED, "the disk is full", 12)
    ended = archiving.archive_task("default", "task-1", 13, FRESH)
    assert ended is not None and (ended.status, ended.finished_us, ended.error) == (
        TaskStatus.FAILED, 12, "the disk is full",
    )  # fmt: skip
    archiving.start_archive_task("default", "task-2", 100, 200, 14, FRESH)
    archiving.finish_archive_task("task-2", TaskStatus.COMPLETED, None, 15)
    done = archiving.archive_task("default", "task-2", 16, FRESH)
    assert done is not None and (done.status, done.finished_us, done.error) == (TaskStatus.COMPLETED, 15, None)
    assert archiving.archive_task("other", "task-1", 17, FRESH) is None
    assert archiving.archive_task("default", "no-such-task", 17, FRESH) is None


def test_an_abandoned_task_reads_failed_and_stops_blocking(archiving: Store) -> None:
    """An OPEN task whose heartbeat is older than the caller's limit reads FAILED (abandoned), and a new task may start;
    making a batch beats the heartbeat."""
    archiving.append([[pending("a", time_us=100)]])
    archiving.start_archive_task("default", "task-1", *EVERYTHING, 1_000, FRESH)
    with pytest.raises(Conflict):
        archiving.start_archive_task("default", "task-2", *EVERYTHING, 2_000, 500)
    archiving.add_archive_batch("default", "task-1", "batch-1", *EVERYTHING, 0, 1, 10, 4_000, Records())
    beating = archiving.archive_task("default", "task-1", 5_000, 3_000)
    assert beating is not None and beating.status is TaskStatus.OPEN
    archiving.start_archive_task("default", "task-2", *EVERYTHING, 6_000, 4_500)
    abandoned = archiving.archive_task("default", "task-1", 6_000, 4_500)
    assert abandoned is not None and abandoned.status is TaskStatus.FAILED
    assert abandoned.error is not None and "abandoned" in abandoned.error
    archiving.start_archive_task("other", "task-3", *EVERYTHING, 7_000, FRESH)
    stale = archiving.archive_task("other", "task-3", 9_000, 8_000)
    assert stale is not None and stale.status is TaskStatus.FAILED


# -- batches ---------------------------------------------------------------------------------


def test_batches_take_the_apps_unbatched_events_in_range_in_seq_order(archiving: Store) -> None:
    """A batch takes, in seq order and at most the maximum, the app's events of [from, to) up to the checkpoint
    size, never another app's, a kept record or an event already batched; its record is appended with it."""
    archiving.save_channel_version("other", "orders", 1, SCHEMA, [], 1)
    archiving.append([[
        pending("o1", time_us=100), pending("x1", app="other", time_us=100), pending("o2", time_us=200),
        pending("r1", channel="refunds", time_us=150), pending("o3", time_us=500), pending("o4", time_us=99),
        pending("k1", channel=REDACTIONS_CHANNEL, time_us=300), pending("k2", channel=PURGES_CHANNEL, time_us=300),
        pending("k3", channel=BATCHES_CHANNEL, time_us=300), pending("o5", time_us=499), pending("o6", time_us=400),
    ]])  # fmt: skip
    records = Records()
    archiving.start_archive_task("default", "task-1", 100, 500, 10, FRESH)

    def batch(archive_id: str, after: int) -> ArchiveBatch | None:
        return archiving.add_archive_batch("default", "task-1", archive_id, 100, 500, after, 10, 2, 20, records)

    first, second = batch("batch-1", 0), batch("batch-2", 3)
    assert first is not None and second is not None
    assert (first.first_seq, first.last_seq, first.event_count, first.record_seq) == (1, 3, 2, 12)
    assert (second.first_seq, second.last_seq, second.event_count, second.record_seq) == (4, 10, 2, 13)
    assert (first.app, first.time_from_us, first.time_to_us, first.checkpoint_size, first.created_us) == (
        "default", 100, 500, 10, 20,
    )  # fmt: skip
    assert (first.archived_us, first.purged) == (None, 0)
    assert records.calls == [([1, 3], None), ([4, 10], "batch-1")]
    kept = archiving.entries(11, 10)
    assert [(entry.seq, entry.channel) for entry in kept] == [(12, BATCHES_CHANNEL), (13, BATCHES_CHANNEL)]
    size = archiving.log_size()
    assert batch("batch-3", 10) is None and archiving.log_size() == size  # o6 lies beyond the checkpoint size
    assert [entry.seq for entry in archiving.archive_batch_entries("batch-1", 0, 10)] == [1, 3]
    assert [entry.id for entry in archiving.archive_batch_entries("batch-2", 4, 10)] == ["o5"]
    assert [entry.seq for entry in archiving.archive_batch_entries("batch-1", 0, 1)] == [1]
    task = archiving.archive_task("default", "task-1", 30, FRESH)
    assert task is not None and _ids(list(task.batches)) == ["batch-1", "batch-2"]
    archiving.finish_archive_task("task-1", TaskStatus.COMPLETED, None, 30)
    # A later task over the same range finds only what no batch holds yet (not its own records either).
    again = make_batches(archiving, task_id="task-2", time_range=(100, 500))
    assert [(batch.first_seq, batch.last_seq, batch.event_count) for batch in again] == [(11, 11, 1)]


def test_batches_list_in_creation_order_by_overlap_and_chain(archiving: Store) -> None:
    """Listing pages in creation order and keeps batches whose range overlaps; each names the one before;
    another app's batch is absent."""
    archiving.append([[pending(f"e{time}", time_us=time) for time in (100, 150, 200, 250)]])
    early = make_batches(archiving, task_id="task-1", time_range=(100, 200))
    late = make_batches(archiving, task_id="task-2", time_range=(200, 300), max_events=1)
    a, b, c = early[0], late[0], late[1]

    def listed(
        time_from_us: int | None = None, time_to_us: int | None = None, after: str | None = None, limit: int = 10
    ) -> list[str]:
        found = archiving.archive_batches(
            "default", outstanding=True, time_from_us=time_from_us, time_to_us=time_to_us,
            after_archive_id=after, limit=limit,
        )  # fmt: skip
        return _ids(found)

    assert listed() == _ids([a, b, c])
    assert listed(limit=2) == _ids([a, b]) and listed(after=b.archive_id) == _ids([c])
    assert listed(time_from_us=200) == _ids([b, c]) and listed(time_to_us=200) == _ids([a])
    assert listed(time_from_us=150, time_to_us=201) == _ids([a, b, c])
    assert archiving.previous_archive_batch("default", c.archive_id) == b
    assert archiving.previous_archive_batch("default", b.archive_id) == a
    assert archiving.previous_archive_batch("default", a.archive_id) is None
    assert archiving.archive_batch("default", a.archive_id) == a
    assert archiving.archive_batch("other", a.archive_id) is None
    assert (
        archiving.archive_batches(
            "other", outstanding=False, time_from_us=None, time_to_us=None, after_archive_id=None, limit=10
        )
        == []
    )


# -- marks -----------------------------------------------------------------------------------


def test_marking_is_all_or_none_and_keeps_the_first_time(archiving: Store) -> None:
    """An unknown or another app's id marks nothing and is named; marking again keeps the first time;
    marked batches leave the outstanding list."""
    archiving.append([[pending(f"e{n}", time_us=100 + n) for n in range(2)]])
    a, b = make_batches(archiving, max_events=1)
    with pytest.raises(NotFound, match="missing") as refused:
        archiving.mark_archive_batches("default", [a.archive_id, "missing"], 50)
    assert refused.value.field == "archiveIds"
    with pytest.raises(NotFound):
        archiving.mark_archive_batches("other", [a.archive_id], 50)
    assert archiving.archive_batch("default", a.archive_id) == a
    marked = archiving.mark_archive_batches("default", [a.archive_id], 50)
    assert [(batch.archive_id, batch.archived_us) for batch in marked] == [(a.archive_id, 50)]
    again = archiving.mark_archive_batches("default", [b.archive_id, a.archive_id], 60)
    assert [(batch.archive_id, batch.archived_us) for batch in again] == [(b.archive_id, 60), (a.archive_id, 50)]
    outstanding = archiving.archive_batches(
        "default", outstanding=True, time_from_us=None, time_to_us=None, after_archive_id=None, limit=10
    )
    every = archiving.archive_batches(
        "default", outstanding=False, time_from_us=None, time_to_us=None, after_archive_id=None, limit=10
    )
    assert outstanding == [] and _ids(every) == _ids([a, b])


# -- purge -------------------------------------------------------------------------------------


def _root(store: Store, size: int) -> bytes:
    return root_hash(size, store.tree_nodes(subtree_nodes(0, size)))


def test_purge_removes_exactly_the_marked_batchs_events_and_keeps_the_leaves(archiving: Store) -> None:
    """Only a marked batch's events received by the cutoff are purgeable; purge removes those rows, appends its
    record, and keeps every leaf, the tree and the accounting verify reads."""
    archiving.append([[pending(f"e{n}", time_us=100 + n) for n in range(1, 5)]])
    a, b = make_batches(archiving, max_events=2)
    assert archiving.purgeable("default", RECEIVED, 100) == []
    archiving.mark_archive_batches("default", [a.archive_id], 50)
    assert archiving.purgeable("default", RECEIVED - 1, 100) == []
    found = archiving.purgeable("default", RECEIVED, 100)
    assert [(seq, archive_id) for seq, archive_id, _ in found] == [(1, a.archive_id), (2, a.archive_id)]
    assert archiving.purgeable("default", RECEIVED, 100, (found[0][2], 1)) == found[1:]
    assert archiving.purgeable("other", RECEIVED, 100) == []
    size = archiving.log_size()
    leaves, root = archiving.leaf_hashes(0, size), _root(archiving, size)

    posted = archiving.purge("default", a.archive_id, [1, 2], RECEIVED, _purge_record(a.archive_id))

    assert posted.seq == size + 1 == archiving.log_size()
    assert archiving.get_event("default", "e1") is None and archiving.get_event("default", "e2") is None
    assert archiving.get_event("default", "e3") is not None and archiving.get_event("default", "e4") is not None
    assert [entry.seq for entry in archiving.entries(0, 100)] == [3, 4, 5, 6, posted.seq]
    assert archiving.leaf_hashes(0, size) == leaves and _root(archiving, size) == root
    assert len(archiving.leaf_hashes(0, posted.seq)) == 32 * posted.seq
    assert archiving.purged_seqs(0, posted.seq) == {1, 2} and archiving.purged_seqs(1, posted.seq) == {2}
    assert list(archiving.purge_records()) == [(posted.seq, 2, seqs_digest([1, 2]))]
    purged = archiving.archive_batch("default", a.archive_id)
    assert purged is not None and purged.purged == 2
    assert archiving.archive_batch_entries(a.archive_id, 0, 10) == []
    assert [entry.seq for entry in archiving.archive_batch_entries(b.archive_id, 0, 10)] == [3, 4]
    assert archiving.purgeable("default", RECEIVED, 100) == []


def test_purge_refuses_what_a_hold_set_meanwhile_covers(archiving: Store) -> None:
    """A hold set between choosing and purging wins: purge raises Conflict and removes nothing; cleared, it purges."""
    archiving.append([[pending(f"e{n}", time_us=100 + n) for n in range(1, 4)]])
    (batch,) = make_batches(archiving)
    archiving.mark_archive_batches("default", [batch.archive_id], 50)
    seqs = [seq for seq, _, _ in archiving.purgeable("default", RECEIVED, 100)]
    archiving.set_hold(LegalHold("inquiry", "default", "court order", 60, time_from_us=102, time_to_us=103))
    size = archiving.log_size()
    with pytest.raises(Conflict):
        archiving.purge("default", batch.archive_id, seqs, RECEIVED, _purge_record(batch.archive_id))
    assert archiving.log_size() == size and archiving.purged_seqs(0, size) == set()
    assert [entry.seq for entry in archiving.archive_batch_entries(batch.archive_id, 0, 10)] == seqs
    assert list(archiving.purge_records()) == []
    assert [seq for seq, _, _ in archiving.purgeable("default", RECEIVED, 100)] == [1, 3]
    archiving.clear_hold("default", "inquiry", 70)
    archiving.purge("default", batch.archive_id, seqs, RECEIVED, _purge_record(batch.archive_id))
    assert archiving.purged_seqs(0, archiving.log_size()) == set(seqs)


# -- legal holds -------------------------------------------------------------------------------


def test_holds_keep_what_their_app_channel_and_time_range_cover(archiving: Store) -> None:
    """A hold covers its app's events of its channel (or any) with time in [from, to) (either end open);
    another app's hold covers nothing here; a cleared hold covers nothing."""
    archiving.save_channel_version("other", "orders", 1, SCHEMA, [], 1)
    archiving.append([[
        pending("o100", time_us=100), pending("o200", time_us=200), pending("o300", time_us=300),
        pending("r200", channel="refunds", time_us=200),
    ]])  # fmt: skip
    (batch,) = make_batches(archiving)
    archiving.mark_archive_batches("default", [batch.archive_id], 50)

    def purgeable() -> list[int]:
        return [seq for seq, _, _ in archiving.purgeable("default", RECEIVED, 100)]

    assert purgeable() == [1, 2, 3, 4]
    holds = [
        LegalHold("elsewhere", "other", "another app's case", 60),
        LegalHold("window", "default", "case 1", 61, channel="orders", time_from_us=150, time_to_us=300),
    ]
    for hold in holds:
        archiving.set_hold(hold)
    assert purgeable() == [1, 3, 4]
    archiving.set_hold(LegalHold("until", "default", "case 2", 62, time_to_us=150))
    archiving.set_hold(LegalHold("from", "default", "case 3", 63, channel="refunds", time_from_us=200))
    assert purgeable() == [3]
    archiving.set_hold(LegalHold("all", "default", "case 4", 64))
    assert purgeable() == []
    for name in ("all", "from", "until", "window"):
        archiving.clear_hold("default", name, 70)
    assert purgeable() == [1, 2, 3, 4]


def test_holds_are_set_listed_and_cleared_on_record(archiving: Store) -> None:
    """A set hold is listed until cleared; its name is refused while set and free after; a cleared one stays
    on record; another app neither sees nor clears it; a new app is created for its hold."""
    hold = LegalHold("inquiry", "default", "court order 7", 60, "orders", 100, 200)
    assert archiving.set_hold(hold) == hold
    with pytest.raises(Conflict, match="inquiry") as refused:
        archiving.set_hold(LegalHold("inquiry", "default", "again", 61))
    assert refused.value.field == "name"
    assert archiving.holds("default", include_cleared=False) == [hold]
    assert archiving.clear_hold("other", "inquiry", 62) is None and archiving.holds("other", include_cleared=True) == []
    cleared = archiving.clear_hold("default", "inquiry", 63)
    assert cleared == LegalHold("inquiry", "default", "court order 7", 60, "orders", 100, 200, 63)
    assert archiving.clear_hold("default", "inquiry", 64) is None
    assert archiving.holds("default", include_cleared=False) == []
    renewed = archiving.set_hold(LegalHold("inquiry", "default", "court order 8", 65))
    assert archiving.holds("default", include_cleared=False) == [renewed]
    assert archiving.holds("default", include_cleared=True) == [cleared, renewed]
    archiving.set_hold(LegalHold("first", "newcomer", "before any channel", 66))
    assert "newcomer" in archiving.app_names()
