"""Limits that keep one app from taking the whole server: concurrent requests per app, and time per listing.

Every ``/v1`` request but posting and opening channels (which the group committer
already shares out) is answered through :meth:`AppRequests.respond`: at most ``app_concurrency``
requests of one app run at once, so another app always finds threads and database
connections free. A request over the limit waits up to
:data:`QUEUE_WAIT_SECONDS` for a slot, then is answered 429 with ``Retry-After``.
While it runs, its listing statements are limited to ``statement_timeout``
(:mod:`trailvault.adapters.store.timelimit`): the database cancels a slower one, which is
answered 503 ``query_timeout``, and the slot is free again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.background import BackgroundTasks
from starlette.responses import Response, StreamingResponse

from trailvault.adapters.store.timelimit import statement_limit
from trailvault.errors import RateLimited

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

    async def respond(self, app: str, respond: Callable[[], Awaitable[Response]]) -> Response:
        """Answer with ``respond()`` in one of ``app``'s slots (RateLimited after the wait), its listings limited.

        A streamed answer (an export, an archive batch's events) reads the vault while it
        is sent, so it keeps the slot, and its reads the statement limit, until its last
        chunk is out or the client is gone.
        """
        release = _once(await self._slot(app))
        try:
            with statement_limit(self._statement_timeout):
                response = await respond()
        except BaseException:
            release()
            raise
        if not isinstance(response, StreamingResponse):
            release()
            return response
        response.body_iterator = _limited(response.body_iterator, self._statement_timeout, release)
        # Also after the response, for a stream the client left before its first chunk was read.
        tasks = BackgroundTasks([response.background] if response.background is not None else [])
        tasks.add_task(release)
        response.background = tasks
        return response

    async def _slot(self, app: str) -> Callable[[], None]:
        """Take one of ``app``'s slots, waiting up to the wait; return what gives it back."""
        if self._concurrency <= 0:
            return lambda: None
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
        return slots.release


async def _limited(body: AsyncIterable[Any], seconds: float, release: Callable[[], None]) -> AsyncIterator[Any]:
    """``body``'s chunks, each read under the statement limit; the slot given back at its end."""
    try:
        with statement_limit(seconds):
            async for chunk in body:
                yield chunk
    finally:
        release()


def _once(release: Callable[[], None]) -> Callable[[], None]:
    """``release``, callable any number of times, acting once (a stream ends one way or the other, or both)."""
    done = False

    def call() -> None:
        nonlocal done
        if not done:
            done = True
            release()

    return call
