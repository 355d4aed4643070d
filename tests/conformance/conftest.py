"""The store conformance suite runs every test here once per backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trailvault.adapters.store import Store
from trailvault.adapters.store.postgres import PostgresStore
from trailvault.adapters.store.sqlite import SQLiteStore

from ..conftest import BACKENDS

StoreFactory = Callable[[], Store]


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
