"""The store conformance suite runs every test here once per backend.

One module per role of the store contract (:mod:`trailvault.adapters.store.contract`):
``test_channels``, ``test_log``, ``test_api_keys`` and ``test_archive_store``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trailvault.adapters.store import Store
from trailvault.adapters.store.postgres import PostgresStore
from trailvault.adapters.store.sqlite import SQLiteStore
from trailvault.core.event import PendingEvent

from ..conftest import BACKENDS

StoreFactory = Callable[[], Store]

SCHEMA = {"fields": [{"name": "company", "type": "STRING"}], "additional_fields": True}


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Return a factory of stores that all open the same fresh vault."""
    opened: list[Store] = []
    database: list[str] = []

    def factory() -> Store:
        if request.param == "sqlite":
            store: Store = SQLiteStore(tmp_path / "vault.sqlite3", create=True)
        else:
            if not database:
                database.append(request.getfixturevalue("postgres_url"))
            store = PostgresStore(database[0], create=True)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    return make_store()


def pending(
    event_id: str,
    *,
    time_us: int = 1_000_000,
    body: str = '{"company":"A"}',
    given: bool = False,
    channel: str = "orders",
    app: str = "default",
    received_us: int = 5_000_000,
) -> PendingEvent:
    """An event ready to append, as the vault prepares one (its body's hash; a fingerprint when ``given``)."""
    digest = hashlib.sha256(body.encode()).digest()
    return PendingEvent(event_id, app, channel, time_us, received_us, body, digest, digest[:16] if given else None)


@pytest.fixture
def orders(store: Store) -> Store:
    """A store whose app ``default`` has the channel ``orders`` (``company`` indexed)."""
    store.save_channel_version("default", "orders", 1, SCHEMA, [("company",)], 1)
    return store
