"""Limits that keep one app from taking the whole server: concurrent requests per app, and time per listing.

Every ``/v1`` request but posting and opening channels (which the group committer
already shares out) passes :meth:`AppRequests.admitted`: at most ``app_concurrency``
requests of one app run at once, so another app always finds threads and database
connections free. A request over the limit waits up to
:data:`QUEUE_WAIT_SECONDS` for a slot, then is answered 429 with ``Retry-After``.
While it runs, its listing statements are limited to ``statement_timeout``
(:mod:`trailvault.store.timelimit`): the database cancels a slower one, which is
answered 503 ``query_timeout``, and the slot is free again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from trailvault.errors import RateLimited
from trailvault.store.timelimit import statement_limit

__all__ = ["QUEUE_WAIT_SECONDS", "AppRequests"]

#: How long a read over its app's limit waits for a slot before it is answered 429.
QUEUE_WAIT_SECONDS = 1.0


class AppRequests:
    """Per app, at most ``concurrency`` requests at once (0: no limit), each listing within ``statement_timeout`` s.

    Used from the server's event loop only (no locks needed).
    """

    def __init__(self, concurrency: int, statement_timeout: float, *, wait: float = QUEUE_WAIT_SECONDS) -> None:
        self._concurrency = concurrency
        self._statement_timeout = statement_timeout
        self._wait = wait
        self._slots: dict[str, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def admitted(self, app: str) -> AsyncIterator[None]:
        """Hold one of ``app``'s slots (raise RateLimited after the wait) with the statement limit set."""
        if self._concurrency <= 0:
            with statement_limit(self._statement_timeout):
                yield
            return
        slots = self._slots.get(app)
        if slots is None:
            slots = self._slots[app] = asyncio.Semaphore(self._concurrency)
        try:
            async with asyncio.timeout(self._wait):
                await slots.acquire()
        except TimeoutError:
            raise RateLimited(
                f"app_concurrency: app {app!r} already has {self._concurrency} requests running; retry after "
                f"{self._wait:g} s, or send fewer at once",
                retry_after=self._wait,
            ) from None
        try:
            with statement_limit(self._statement_timeout):
                yield
        finally:
            slots.release()
