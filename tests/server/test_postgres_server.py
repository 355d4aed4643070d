"""The server on a PostgreSQL vault: the same API, keys and durability as on SQLite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import trailvault
from tests.conftest import ACCESS, access_event
from tests.server.conftest import Server


def test_server_on_postgresql(
    own_server: Callable[..., Server], postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys, scopes, batches, listing with a filter and verify all work with PostgreSQL behind the server."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    running = own_server(postgres_url)
    reader = running.key("read")
    with trailvault.connect(running.url, token=running.admin_token) as vault:
        vault.open("access", ACCESS)
        posted = vault.post_many("access", [access_event(i) for i in range(50)])
        assert [p.seq for p in posted] == list(range(posted[0].seq, posted[0].seq + 50))
        assert vault.verify().ok
    with trailvault.connect(running.url, token=reader) as vault:
        found = vault.events("access", filter='user.email eq "USER3@example.com"', limit=1000)
        with pytest.raises(trailvault.errors.Forbidden):
            vault.post("access", access_event(1))
    assert len(found) == len([i for i in range(50) if i % 7 == 3])
