"""Group commit: concurrent batches share transactions and keep their own outcomes."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from trailvault.adapters.store.base import AppendOutcome
from trailvault.core.event import PendingEvent, Posted
from trailvault.errors import IdConflict, StoreUnavailable
from trailvault.workflows.vault.commit import GroupCommitter


def _event(event_id: str) -> PendingEvent:
    return PendingEvent(event_id, "a", "c", 0, 0, "{}", b"", None)


class SlowStore:
    """A stand-in for a store's append whose commit takes as long as a disk sync."""

    def __init__(self) -> None:
        self.transactions: list[int] = []
        self.seq = 0

    def append(self, batches: Sequence[Sequence[PendingEvent]]) -> list[AppendOutcome]:
        time.sleep(0.005)
        self.transactions.append(len(batches))
        outcomes: list[AppendOutcome] = []
        for batch in batches:
            if any(event.id == "conflict" for event in batch):
                outcomes.append(IdConflict("id: conflict", field="id"))
                continue
            posted = []
            for event in batch:
                self.seq += 1
                posted.append(Posted(event.id, self.seq))
            outcomes.append(posted)
        return outcomes


def test_concurrent_batches_share_transactions() -> None:
    """Sixteen threads posting 20 times each need far fewer than 320 transactions."""
    store = SlowStore()
    committer = GroupCommitter(store.append)
    results: list[Posted] = []

    def work(n: int) -> None:
        for i in range(20):
            results.extend(committer.submit([_event(f"{n}-{i}")]))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p.seq for p in results) == list(range(1, 321))
    assert len(store.transactions) < 160
    assert max(store.transactions) > 1


def test_conflict_goes_only_to_its_batch() -> None:
    """A conflicting batch raises for its caller alone."""
    committer = GroupCommitter(SlowStore().append)
    with pytest.raises(IdConflict):
        committer.submit([_event("conflict")])
    assert committer.submit([_event("fine")]) == [Posted("fine", 1)]


def test_store_failure_reaches_every_waiting_caller() -> None:
    """When the shared transaction fails, every caller in it gets the error."""

    def failing(batches: Sequence[Sequence[PendingEvent]]) -> list[AppendOutcome]:
        time.sleep(0.01)
        raise StoreUnavailable("disk full")

    committer = GroupCommitter(failing)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            committer.submit([_event("x")])
        except StoreUnavailable as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 5


def test_nowait_batches_share_transactions_with_blocking_ones() -> None:
    """Futures from submit_nowait and blocking submits from threads commit together, each with its own answer."""
    store = SlowStore()
    committer = GroupCommitter(store.append)
    futures = [committer.submit_nowait([_event(f"f{n}")]) for n in range(50)]
    answers: dict[str, list[Posted]] = {}

    def blocking(n: int) -> None:
        answers[f"t{n}"] = committer.submit([_event(f"t{n}")])

    threads = [threading.Thread(target=blocking, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = [future.result(timeout=10) for future in futures]
    seqs = sorted(result[0].seq for result in results) + sorted(answer[0].seq for answer in answers.values())
    assert sorted(seqs) == list(range(1, 59))
    assert [result[0].id for result in results] == [f"f{n}" for n in range(50)]
    assert len(store.transactions) < 58


def test_nowait_future_carries_the_batchs_error() -> None:
    """A conflicting batch's future raises its IdConflict; the others in the same group succeed."""
    committer = GroupCommitter(SlowStore().append)
    bad = committer.submit_nowait([_event("conflict")])
    good = committer.submit_nowait([_event("fine")])
    with pytest.raises(IdConflict):
        bad.result(timeout=10)
    assert good.result(timeout=10)[0].id == "fine"


def test_a_caller_that_stops_waiting_cannot_cancel_a_commit() -> None:
    """cancel() on a nowait future is refused, so the commit and its group's answers go on."""
    committer = GroupCommitter(SlowStore().append)
    first = committer.submit_nowait([_event("a")])
    second = committer.submit_nowait([_event("b")])
    assert first.cancel() is False
    assert [first.result(timeout=10)[0].id, second.result(timeout=10)[0].id] == ["a", "b"]
