"""The time limit on listing statements (``statement_limit``), on every backend."""

from __future__ import annotations

import time

import pytest

from tests.conftest import ACCESS, access_event
from trailvault import Vault
from trailvault.adapters.store.timelimit import statement_limit
from trailvault.errors import QueryTimeout

#: A filter every row must be tested against 400 times: seconds over 10,000 events on either backend.
SLOW_FILTER = " or ".join(f'message co "zq{index}"' for index in range(400))


def fill(vault: Vault, events: int) -> None:
    """Give ``vault``'s app the access channel with ``events`` events."""
    vault.open("access", ACCESS)
    for start in range(0, events, 2000):
        vault.post_many("access", [access_event(index) for index in range(start, min(events, start + 2000))])


def test_a_listing_over_the_limit_is_stopped_and_the_connection_serves_the_next(vault: Vault) -> None:
    """A slow filter raises QueryTimeout naming statement_timeout soon after the limit; later reads, limited
    or not, and posts made under a limit work as before."""
    fill(vault, 10_000)
    started = time.monotonic()
    with statement_limit(0.3), pytest.raises(QueryTimeout) as caught:
        vault.events("access", filter=SLOW_FILTER, limit=10)
    assert time.monotonic() - started < 5  # stopped, not run to its end (over a second)
    assert caught.value.status == 503 and caught.value.field == "statement_timeout"
    assert "0.3 s" in caught.value.message and "narrow" in caught.value.message
    assert len(vault.events("access", limit=5)) == 5
    with statement_limit(0.3):
        assert len(vault.events("access", filter='user.email eq "user3@example.com"', limit=5)) == 5
        assert not vault.post("access", access_event(1)).duplicate


def test_no_limit_is_set_outside_the_context(vault: Vault) -> None:
    """statement_limit(0) and no context at all leave listings unlimited (the library's default)."""
    fill(vault, 50)
    with statement_limit(0):
        assert len(vault.events("access", filter=SLOW_FILTER, limit=10)) == 0
