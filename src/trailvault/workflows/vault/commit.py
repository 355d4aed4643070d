"""Group commit: concurrent posts share one durable transaction.

Leader/follower: a caller queues its batch; when no leader is committing it becomes
the leader and commits everything queued so far in one store transaction, otherwise
it waits until a leader has committed its batch or leadership is free. While one
leader waits for the disk, the next posts pile up and go together, so eight posting
threads pay for far fewer than eight syncs.

:meth:`GroupCommitter.submit_nowait` is the same for callers that must not block (the
server's event loop): it answers a future, and one helper thread leads whenever
queued batches have no leader of their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from trailvault.adapters.store.base import AppendOutcome
from trailvault.core.event import PendingEvent, Posted

__all__ = ["GroupCommitter"]

Append = Callable[[Sequence[Sequence[PendingEvent]]], list[AppendOutcome]]


class _Request:
    __slots__ = ("batch", "done", "error", "future", "outcome")

    def __init__(self, batch: Sequence[PendingEvent], future: Future[list[Posted]] | None = None) -> None:
        self.batch = batch
        self.done = False
        self.outcome: AppendOutcome | None = None
        self.error: BaseException | None = None
        self.future = future

    def finish(self) -> None:
        self.done = True
        if self.future is not None:
            if self.error is not None:
                self.future.set_exception(self.error)
            else:
                self.future.set_result(self.result())

    def result(self) -> list[Posted]:
        if self.error is not None:
            raise self.error
        assert isinstance(self.outcome, list)
        return self.outcome


class GroupCommitter:
    """Funnel batches from many threads into as few store transactions as possible."""

    #: The longest a leader waits for posters of the previous group (seconds).
    MAX_DELAY = 0.002

    def __init__(self, append: Append) -> None:
        self._append = append
        self._queue: list[_Request] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._arrived = threading.Condition(self._lock)
        self._leading = False
        self._helper_running = False
        self._last_group = 1
        self._commit_seconds = 0.0
        #: Counters for metrics: transactions committed and the batches they carried.
        self.transactions = 0
        self.batches = 0

    @property
    def queue_depth(self) -> int:
        """Batches waiting for a leader to commit them (read without the lock: a gauge, not a decision)."""
        return len(self._queue)

    def submit_nowait(self, batch: Sequence[PendingEvent]) -> Future[list[Posted]]:
        """Queue ``batch`` and return at once a future of what :meth:`submit` would return."""
        future: Future[list[Posted]] = Future()
        # Running futures cannot be cancelled: a caller that stops waiting (a request
        # timeout) must not stop the commit, or the answer to its neighbours in the group.
        future.set_running_or_notify_cancel()
        request = _Request(batch, future)
        with self._lock:
            self._queue.append(request)
            self._arrived.notify()
            if not self._helper_running:
                self._helper_running = True
                threading.Thread(target=self._help, name="trailvault-commit", daemon=True).start()
        assert request.future is not None
        return request.future

    def _help(self) -> None:
        """Lead for queued batches whose posters do not block, until none is left; then end."""
        while True:
            with self._lock:
                while self._leading:
                    self._changed.wait()
                if not any(request.future is not None for request in self._queue):
                    self._helper_running = False
                    return
                taken = self._take_lead()
            self._lead(taken)

    def submit(self, batch: Sequence[PendingEvent]) -> list[Posted]:
        """Append ``batch`` all or nothing; return when it is durable.

        Raises the batch's IdConflict, or the store's error when the shared
        transaction failed (then no batch of that transaction was stored).
        """
        request = _Request(batch)
        with self._lock:
            self._queue.append(request)
            self._arrived.notify()
            # Followers wait here rather than on a lock, so that all of them see
            # their batch done at once when a leader finishes.
            while self._leading and not request.done:
                self._changed.wait()
            if request.done:
                return request.result()
            taken = self._take_lead()
        self._lead(taken)
        return request.result()

    def _take_lead(self) -> list[_Request]:
        """Under the lock: become the leader and take what is queued (after a short gather)."""
        self._leading = True
        self._gather()
        taken, self._queue = self._queue, []
        return taken

    def _lead(self, taken: list[_Request]) -> None:
        """Outside the lock: commit the taken batches, then hand leadership back."""
        try:
            self._commit(taken)
        finally:
            with self._lock:
                self._leading = False
                self._last_group = len(taken)
                self.transactions += 1
                self.batches += len(taken)
                self._changed.notify_all()

    def _gather(self) -> None:
        """Wait briefly for the posters of the last group, who are likely preparing their next batch.

        Without this, groups alternate between one batch (whoever returned first)
        and the rest. The wait is bounded by half a recent commit, so a lone
        poster never waits at all and a thinning crowd costs little.
        """
        if len(self._queue) >= self._last_group:
            return
        deadline = time.monotonic() + min(self.MAX_DELAY, self._commit_seconds / 2)
        while len(self._queue) < self._last_group:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.wait(remaining)

    def _commit(self, taken: list[_Request]) -> None:
        started = time.monotonic()
        try:
            outcomes = self._append([request.batch for request in taken])
        except BaseException as exc:
            for request in taken:
                request.error = exc
                request.finish()
            return
        finally:
            self._commit_seconds = 0.8 * self._commit_seconds + 0.2 * (time.monotonic() - started)
        for request, outcome in zip(taken, outcomes, strict=True):
            if isinstance(outcome, list):
                request.outcome = outcome
            else:
                request.error = outcome
            request.finish()
