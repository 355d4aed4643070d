"""What only the SQLite store does: its file, pragmas, migrations and database-level guards."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import trailvault
from trailvault.adapters.store import resolve_location
from trailvault.adapters.store.sqlite import SQLiteStore
from trailvault.adapters.store.sqlite.migrations import MIGRATIONS
from trailvault.errors import InvalidInput, TrailvaultError, VaultNotFound

from ..conftest import ACCESS, MYINDEX, access_event


@pytest.fixture
def filled(vault_dir: Path) -> Path:
    with trailvault.open_vault(vault_dir) as vault:
        vault.open("myindex", MYINDEX)
        vault.post_many("myindex", [{"company": "A"}, {"company": "B"}])
    return vault_dir / "vault.sqlite3"


def test_default_layout(tmp_path: Path) -> None:
    """A folder path holds vault.sqlite3; a .sqlite3 path and sqlite:/// URLs are the file itself."""
    assert resolve_location(tmp_path / "v") == tmp_path / "v" / "vault.sqlite3"
    assert resolve_location(tmp_path / "x.sqlite3") == tmp_path / "x.sqlite3"
    assert resolve_location(f"sqlite:///{tmp_path}/y.db") == tmp_path / "y.db"


def test_unknown_url_scheme(tmp_path: Path) -> None:
    """An unknown URL scheme is refused naming vault."""
    with pytest.raises(InvalidInput, match="vault"):
        resolve_location("mysql://host/db")


def test_wal_mode_and_full_sync(filled: Path) -> None:
    """The file is in WAL mode; the default store syncs every commit (synchronous FULL = 2)."""
    conn = sqlite3.connect(filled)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store = SQLiteStore(filled, create=False)
    assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2
    store.close()


def test_seq_is_integer_primary_key(filled: Path) -> None:
    """seq is the table's rowid: an INTEGER PRIMARY KEY."""
    conn = sqlite3.connect(filled)
    columns = {row[1]: row for row in conn.execute("PRAGMA table_info(events)")}
    assert columns["seq"][2] == "INTEGER" and columns["seq"][5] == 1


def test_raw_update_is_refused(filled: Path) -> None:
    """Going around trailvault, an UPDATE of a kept event fails inside the database."""
    conn = sqlite3.connect(filled)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute('UPDATE events SET body = \'{"company":"X"}\' WHERE seq = 1')


def test_raw_body_removal_without_grant_is_refused(filled: Path) -> None:
    """Even setting a body to NULL needs an erasure grant."""
    conn = sqlite3.connect(filled)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET body = NULL WHERE seq = 1")


def test_raw_delete_is_refused(filled: Path) -> None:
    """Going around trailvault, a DELETE of a kept event fails inside the database."""
    conn = sqlite3.connect(filled)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events WHERE seq = 2")
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 2


def test_granted_body_removal_is_the_only_change_allowed(filled: Path) -> None:
    """With a grant (the redact/purge path), a body may be removed, but nothing else changed."""
    conn = sqlite3.connect(filled, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO erasure_grants VALUES (1, 1, 'test')")
    conn.execute("UPDATE events SET body = NULL WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE events SET time = 0 WHERE seq = 1")
    conn.execute("ROLLBACK")


def test_schema_versions_are_append_only(filled: Path) -> None:
    """Channels and schema versions cannot be changed or removed either."""
    conn = sqlite3.connect(filled)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM schema_versions")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE channels SET name = 'x'")


def test_migrations_recorded(filled: Path) -> None:
    """Every migration is recorded once in schema_migrations."""
    conn = sqlite3.connect(filled)
    versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [migration.version for migration in MIGRATIONS]


def test_newer_vault_is_refused(filled: Path) -> None:
    """A vault with a migration this trailvault does not know is refused, not misread."""
    conn = sqlite3.connect(filled)
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    conn.commit()
    with pytest.raises(TrailvaultError, match="newer trailvault"):
        SQLiteStore(filled, create=False)


def test_not_a_database(tmp_path: Path) -> None:
    """A file that is not SQLite is refused with a message, not a driver error."""
    bogus = tmp_path / "bogus.sqlite3"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InvalidInput, match="not a trailvault vault"):
        SQLiteStore(bogus, create=False)


def test_missing_vault_not_created_without_create(tmp_path: Path) -> None:
    """create=False does not create a file."""
    with pytest.raises(VaultNotFound):
        SQLiteStore(tmp_path / "none.sqlite3", create=False)
    assert not (tmp_path / "none.sqlite3").exists()


def test_indexed_field_gets_expression_indexes_that_listings_use(vault_dir: Path) -> None:
    """An "index": true field gets an index on its value (eq_cs, ranges) and one on its lower-case
    text (eq, which ignores case), and the compiled listings search them."""
    from trailvault.adapters.store.sqlite.sql import compile_listing
    from trailvault.core.query import Compare, EventQuery, Op

    with trailvault.open_vault(vault_dir) as vault:
        vault.open("access", ACCESS)
        vault.post("access", access_event(1))
    store = SQLiteStore(vault_dir / "vault.sqlite3", create=False)
    names = sorted(
        row[0]
        for row in store._writer.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name GLOB 'body_[0-9a-f]*'"
        )
    )
    assert len(names) == 2 and names[1] == names[0] + "_ci"
    plans = {}
    for op in (Op.EQ, Op.EQ_CS):
        query = EventQuery(app="default", channel="access", filter=Compare("user.email", op, "U1@example.com"))
        sql, params = compile_listing(query, 1, lambda _: 1)
        plans[op] = " ".join(row[3] for row in store._writer.execute("EXPLAIN QUERY PLAN " + sql, params))
    store.close()
    assert f"INDEX {names[1]} " in plans[Op.EQ]
    assert f"INDEX {names[0]} " in plans[Op.EQ_CS]


def test_migration_5_indexes_fields_indexed_before_it(vault_dir: Path) -> None:
    """A vault from before migration 5 gets the lower-case index of each indexed field when opened."""
    with trailvault.open_vault(vault_dir) as vault:
        vault.open("access", ACCESS)
    conn = sqlite3.connect(vault_dir / "vault.sqlite3")
    (ci,) = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'body_%_ci'").fetchone()
    conn.execute(f"DROP INDEX {ci}")
    conn.execute("DELETE FROM schema_migrations WHERE version = 5")
    conn.commit()
    conn.close()
    with trailvault.open_vault(vault_dir) as vault:
        vault.post("access", access_event(1))
        assert [event.body["user"]["email"] for event in vault.events(filter='user.email eq "USER1@EXAMPLE.COM"')] == [
            "user1@example.com"
        ]
    conn = sqlite3.connect(vault_dir / "vault.sqlite3")
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = ?", (ci,)).fetchone() == (ci,)


def test_listing_uses_channel_time_index(filled: Path) -> None:
    """A channel + time range listing searches the (channel, time) index, without a sort step."""
    store = SQLiteStore(filled, create=False)
    from trailvault.adapters.store.sqlite.sql import compile_listing
    from trailvault.core.query import EventQuery

    sql, params = compile_listing(EventQuery(app="default", channel="myindex", time_from=0, time_to=10), 1, lambda _: 1)
    plan = " ".join(row[3] for row in store._writer.execute("EXPLAIN QUERY PLAN " + sql, params))
    store.close()
    assert "events_by_channel_time" in plan and "TEMP B-TREE" not in plan


@pytest.mark.system
def test_two_processes_append_to_one_file(vault_dir: Path) -> None:
    """Two OS processes posting to one vault file keep seqs gap-free."""
    with trailvault.open_vault(vault_dir) as vault:
        vault.open("myindex", MYINDEX)
    script = (
        "import sys, trailvault\n"
        "with trailvault.open_vault(sys.argv[1]) as v:\n"
        "    for i in range(200): v.post('myindex', {'company': str(i)})\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script, str(vault_dir)]) for _ in range(2)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    conn = sqlite3.connect(vault_dir / "vault.sqlite3")
    assert conn.execute("SELECT count(*), min(seq), max(seq) FROM events").fetchone() == (400, 1, 400)


def test_tiles_cannot_be_rewritten(filled: Path) -> None:
    """Going around trailvault, a tile cannot be changed or removed, only grown."""
    conn = sqlite3.connect(filled)
    with pytest.raises(sqlite3.IntegrityError, match="only grow"):
        conn.execute("UPDATE merkle_tiles SET hashes = zeroblob(64) WHERE level = 0")
    with pytest.raises(sqlite3.IntegrityError, match="only grow"):
        conn.execute("DELETE FROM merkle_tiles")


def test_vault_from_before_the_tree_gets_its_tiles(tmp_path: Path) -> None:
    """Opening a vault written before the tree existed hashes its entries into tiles (migration 2)."""
    from trailvault.core.integrity.log import entry_leaf
    from trailvault.core.integrity.merkle import root_hash, subtree_nodes
    from trailvault.core.integrity.tiles import append_leaves, nodes_from_tiles

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_migrations "
        "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied INTEGER NOT NULL)"
    )
    for statement in MIGRATIONS[0].statements:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'initial', 0)")
    conn.execute("INSERT INTO vault_meta VALUES ('vault_id', 'old')")
    conn.execute("INSERT INTO apps VALUES (1, 'default', 0)")
    conn.execute("INSERT INTO channels VALUES (1, 1, 'myindex', 0)")
    for seq in range(1, 41):
        conn.execute(
            "INSERT INTO events VALUES (?, ?, 1, 1, ?, ?, '{}', ?, NULL)", (seq, f"id{seq}", seq, seq, bytes(32))
        )
    conn.close()
    store = SQLiteStore(path, create=False)
    from trailvault.core.event import Event

    leaves = [entry_leaf(Event(f"id{s}", s, s, "default", "myindex", s, None), s, bytes(32)) for s in range(1, 41)]
    expected = append_leaves(0, leaves, {})
    keys = subtree_nodes(0, 40)
    assert root_hash(40, store.tree_nodes(keys)) == root_hash(40, nodes_from_tiles(keys, expected))
    conn = sqlite3.connect(path)
    stored = {
        (level, idx): hashes for level, idx, hashes in conn.execute("SELECT level, idx, hashes FROM merkle_tiles")
    }
    assert stored == expected
    store.close()


def test_a_new_vault_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """Under umask 000, a new vault's folder is 0700 and its database, WAL, shm, key and signer record files 0600."""
    folder = tmp_path / "deep" / "vault"
    previous = os.umask(0)
    try:
        with trailvault.open_vault(folder) as vault:
            vault.open("access", ACCESS)
            vault.post("access", access_event(1))
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
            modes["."] = stat.S_IMODE(folder.stat().st_mode)
    finally:
        os.umask(previous)
    records = [name for name in modes if name.startswith("vault.key.") and name.endswith(".checkpoint")]
    assert len(records) == 1  # the signer's record of its last checkpoint, beside the key
    assert modes == {
        ".": 0o700, "vault.sqlite3": 0o600, "vault.sqlite3-wal": 0o600, "vault.sqlite3-shm": 0o600, "vault.key": 0o600,
        records[0]: 0o600,
    }  # fmt: skip
