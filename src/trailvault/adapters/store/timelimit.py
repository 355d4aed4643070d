"""The time limit on listing statements: set by a caller for what it runs, kept by every SQL store.

::

    with statement_limit(10.0):
        vault.events(filter=...)   # its query is cancelled after 10 s: QueryTimeout

The server sets it around each request, so a slow filter stops using the database
when its limit passes instead of running on after the client was answered. It is a
context variable rather than an argument: it travels with the request into the
thread pool that runs the read (which copies the context), while the group
committer's thread and background work (verify, archiving) start with an empty
context and are never limited. Only listings are limited (the statements whose cost
a caller's filter decides); lookups by key are not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from trailvault.errors import QueryTimeout

__all__ = ["current_limit", "statement_limit", "timed_out"]

_LIMIT: ContextVar[float | None] = ContextVar("trailvault_statement_limit", default=None)


@contextmanager
def statement_limit(seconds: float | None) -> Iterator[None]:
    """Limit every listing statement run in this context to ``seconds`` (None or 0: no limit)."""
    token = _LIMIT.set(seconds if seconds and seconds > 0 else None)
    try:
        yield
    finally:
        _LIMIT.reset(token)


def current_limit() -> float | None:
    """The seconds a listing statement may run here, or None."""
    return _LIMIT.get()


def timed_out(seconds: float | None) -> QueryTimeout:
    """The error of a listing stopped at its limit (``seconds``; None when something else cancelled it)."""
    after = f"ran over statement_timeout = {seconds:g} s" if seconds else "was cancelled"
    return QueryTimeout(
        f"statement_timeout: the listing's query {after} and was stopped; narrow it with from/to, a channel, "
        "or fewer filter terms (a body field the schema indexes is fastest)",
        field="statement_timeout",
    )
