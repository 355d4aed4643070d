"""What only the PostgreSQL store does: URLs and credentials, the database's own append-only rules,
a restricted application role, lost connections, and several writer processes on one vault.

All against the real test server (``make test`` starts it); raw ``psycopg`` connections
play the intruder or the database administrator.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

import trailvault
from trailvault.adapters.store.postgres import PostgresStore, masked_url
from trailvault.adapters.store.postgres.migrations import APP_GRANTS
from trailvault.core.batches import ArchiveSettings
from trailvault.errors import AppendOnlyViolation, InvalidInput, StoreUnavailable, TrailvaultError, VaultNotFound

from ..conftest import MYINDEX, run_cli


def _with_password(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, parts.fragment))


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return tmp_path / "vault.key"


@pytest.fixture
def pg_vault(postgres_url: str, key: Path) -> str:
    """A PostgreSQL vault with the myindex channel and 30 events."""
    with trailvault.open_vault(postgres_url, signing_key=key) as vault:
        vault.open("myindex", MYINDEX)
        vault.post_many("myindex", [{"company": f"c{i}", "amount": float(i)} for i in range(30)])
    return postgres_url


def test_masked_url_hides_every_password() -> None:
    """Passwords in the user part or the query never reach a message."""
    assert masked_url("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert "s3cret" not in masked_url("postgresql://u@h/db?password=s3cret&sslmode=require")
    assert masked_url("postgresql://h/db") == "postgresql://h/db"
    for raw in ("postgresql://u:ab/cd@h/db", "postgresql://u:ab#cd@h/db", "postgresql://u:a@b@h/db?sslpassword=zz9"):
        assert "cd" not in masked_url(raw) and "a@b" not in masked_url(raw) and "zz9" not in masked_url(raw)


def test_wrong_password_is_clear_and_never_shows_it(postgres_url: str, key: Path) -> None:
    """A refused login names the user and the fix, and neither the message nor the CLI prints the password."""
    wrong = _with_password(postgres_url, "postgres", "not-the-Password-42")
    with pytest.raises(InvalidInput) as caught:
        trailvault.open_vault(wrong, signing_key=key)
    assert "password authentication failed" in caught.value.message and caught.value.field == "vault"
    assert "not-the-Password-42" not in str(caught.value)
    result = run_cli("events", "list", env={"TRAILVAULT_VAULT": wrong, "TRAILVAULT_SIGNING_KEY": str(key)})
    assert result.returncode == 1 and "refused the login" in result.stderr
    assert "not-the-Password-42" not in result.stderr + result.stdout


@pytest.mark.parametrize("password", ["wr?ng-Secret-42", "a?b@c/d#Secret-42", "Secret-42?sslmode=disable"])
def test_a_password_holding_url_marks_never_shows(postgres_url: str, key: Path, password: str) -> None:
    """A password with ?, @, / or # unencoded is masked whole in the location, the refused login's message
    and the CLI's output."""
    wrong = _with_password(postgres_url, "postgres", password)
    fragments = {password, *password.replace("?", " ").replace("@", " ").replace("/", " ").split()}
    assert not any(fragment in masked_url(wrong) for fragment in fragments if len(fragment) > 3)
    with pytest.raises(TrailvaultError) as caught:
        trailvault.open_vault(wrong, signing_key=key)
    assert not any(fragment in str(caught.value) for fragment in fragments if len(fragment) > 3), str(caught.value)
    result = run_cli("events", "list", env={"TRAILVAULT_VAULT": wrong, "TRAILVAULT_SIGNING_KEY": str(key)})
    assert result.returncode == 1
    assert not any(fragment in result.stderr + result.stdout for fragment in fragments if len(fragment) > 3)


def test_missing_database_and_missing_vault(postgres_url: str, key: Path) -> None:
    """A database that does not exist, or one without a vault, is named with what to run."""
    absent = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(VaultNotFound, match="createdb"):
        trailvault.open_vault(absent, signing_key=key)
    with pytest.raises(VaultNotFound, match="trailvault init"):
        trailvault.open_vault(postgres_url, create=False, signing_key=key)


def test_unreachable_server_is_retryable(key: Path) -> None:
    """Nothing listening: a StoreUnavailable (retry) naming the server, not a driver exception."""
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        PostgresStore("postgresql://u:pw@127.0.0.1:9/db?connect_timeout=2", create=True)


def test_database_refuses_changes_to_kept_rows(pg_vault: str, postgres_server: str) -> None:
    """Even a superuser's UPDATE or DELETE hits the triggers: events, tiles, checkpoints, channels."""
    with psycopg.connect(pg_vault, autocommit=True) as conn:
        for statement in (
            "UPDATE events SET body = '{}' WHERE seq = 3",
            "DELETE FROM events WHERE seq = 3",
            "UPDATE merkle_tiles SET hashes = '' WHERE level = 0 AND idx = 0",
            "DELETE FROM merkle_tiles",
            "DELETE FROM checkpoints",
            "UPDATE channels SET name = 'other'",
        ):
            with pytest.raises(psycopg.Error, match=r"trailvault: .*(append-only|only grow)"):
                conn.execute(statement)  # type: ignore[call-overload]
        # Erasing outside trailvault_erase's transaction-bound grant is refused too.
        conn.execute("INSERT INTO erasure_grants (first_seq, last_seq, reason) VALUES (1, 30, 'old grant')")
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("UPDATE events SET body = NULL WHERE seq = 4")


def test_app_role_without_update_or_delete(pg_vault: str, postgres_server: str, key: Path) -> None:
    """The documented role set-up: the application role posts, opens indexed channels, redacts and
    manages API keys, yet holds no UPDATE or DELETE privilege but on a key's revoked time."""
    database = urlsplit(pg_vault).path.lstrip("/")
    role = f"app_{database}"
    with psycopg.connect(pg_vault, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'app-pw-1'")  # type: ignore[call-overload]
        for grant in APP_GRANTS:
            admin.execute(grant.format(schema="public", role=role))  # type: ignore[call-overload]
    app_url = _with_password(pg_vault, role, "app-pw-1")
    try:
        with trailvault.open_vault(
            app_url, create=False, signing_key=key, archive=ArchiveSettings(retention=0)
        ) as vault:
            vault.open("access", {"fields": [{"name": "who", "type": "STRING", "index": True}]})
            posted = vault.post("access", {"who": "alice"})
            vault.redact(posted.id, "erasure request")
            assert vault.get(posted.id).body is None
            assert vault.events("access", where={"who": "alice"}).events == []
            assert vault.verify().ok
            api_key, _ = vault.create_key("producer", ["ingest"])
            assert vault.revoke_key(api_key.id).revoked_us is not None
            # Archiving: tasks, batches, marks, holds and purge, all within the role's grants.
            vault.post_many("access", [{"who": f"user{index}"} for index in range(5)])
            task = vault.batch_events_for_archiving("2000-01-01T00:00Z", "2100-01-01T00:00Z", wait=True)
            ids = [batch.archive_id for batch in vault.get_batch_events_for_archiving_status(task).batches]
            vault.mark_archive_batches_as_successful(ids)
            vault.set_hold("brief", "held a moment")
            assert vault.purge().purged == 0
            vault.clear_hold("brief")
            assert vault.purge().purged > 0
            assert vault.verify().ok
            unbatched = vault.post("access", {"who": "late"}).seq
        with psycopg.connect(app_url, autocommit=True) as conn:
            # A temporary table cannot stand in for the vault's own inside the owner-rights
            # functions: their search_path puts pg_temp last.
            conn.execute("CREATE TEMPORARY TABLE erasure_grants (first_seq bigint, last_seq bigint, reason text)")
            conn.execute("CREATE TEMPORARY TABLE events (seq bigint, body text, body_json jsonb)")
            conn.execute("SELECT trailvault_erase(%s, 'through a decoy')", (unbatched,))
            grants = conn.execute("SELECT count(*) FROM public.erasure_grants WHERE reason = 'through a decoy'")
            assert grants.fetchone() == (1,)
            assert conn.execute("SELECT body FROM public.events WHERE seq = %s", (unbatched,)).fetchone() == (None,)
            conn.execute("DROP TABLE pg_temp.events, pg_temp.erasure_grants")
            # The purge function removes only seqs already recorded as purged.
            with pytest.raises(psycopg.Error, match="only recorded purges of archived batches"):
                conn.execute("SELECT trailvault_purge(%s::bigint[], 'not archived')", ([unbatched],))
            # Even listed in purged_events by hand, an event in no marked batch is not removed.
            with pytest.raises(psycopg.Error, match="only recorded purges of archived batches"), conn.transaction():
                conn.execute("INSERT INTO purged_events (seq, batch_key, record_seq) VALUES (%s, 1, 1)", (unbatched,))
                conn.execute("SELECT trailvault_purge(%s::bigint[], 'by hand')", ([unbatched],))
            for statement in (
                "DELETE FROM purged_events",
                "UPDATE archive_batches SET event_count = 0",
                "UPDATE events SET time = 0",
                "DELETE FROM events",
                "DELETE FROM merkle_tiles",
                "UPDATE api_keys SET scopes = 'admin unmask'",
                "DELETE FROM api_keys",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)  # type: ignore[call-overload]
            # The tile function it may call still only lets a tile grow.
            with pytest.raises(psycopg.Error, match="only grow"):
                conn.execute("SELECT trailvault_put_tiles('{0}', '{0}', ARRAY['\\x00'::bytea])")
    finally:
        with psycopg.connect(pg_vault, autocommit=True) as admin:
            admin.execute(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"  # type: ignore[call-overload]
            )
            admin.execute(f"DROP OWNED BY {role}")  # type: ignore[call-overload]
            admin.execute(f"DROP ROLE {role}")  # type: ignore[call-overload]


def test_connection_lost_mid_batch_keeps_nothing(pg_vault: str, key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server drops the connection while a batch is being written: nothing of it is kept,
    the caller gets a retryable error, and the next post (on a fresh connection) works."""
    import trailvault.adapters.store.postgres.store as module

    real = module.grow_tree

    def dropped(conn: psycopg.Connection[Any], *args: Any) -> Any:
        grown = real(conn, *args)
        with psycopg.connect(pg_vault, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        conn.execute("SELECT 1")
        return grown

    with trailvault.open_vault(pg_vault, create=False, signing_key=key) as vault:
        monkeypatch.setattr(module, "grow_tree", dropped)
        with pytest.raises(StoreUnavailable, match="retry"):
            vault.post_many("myindex", [{"company": f"lost{i}"} for i in range(50)])
        monkeypatch.setattr(module, "grow_tree", real)
        assert vault.post("myindex", {"company": "after"}).seq == 31
        assert [e.body["company"] for e in vault.events("myindex", sort_order="desc", limit=1)] == ["after"]
        assert vault.verify().ok


def test_commit_answer_lost_is_resolved(pg_vault: str, key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the commit happened but its answer was lost, the store finds the batch and reports success."""
    store_class = PostgresStore
    real = store_class._transaction

    def commit_then_fail(self: PostgresStore) -> Any:
        context = real(self)

        class Lost:
            def __enter__(self) -> Any:
                return context.__enter__()

            def __exit__(self, *info: Any) -> None:
                context.__exit__(*info)
                if info[0] is None:
                    raise StoreUnavailable("the server dropped the connection")

        return Lost()

    with trailvault.open_vault(pg_vault, create=False, signing_key=key) as vault:
        monkeypatch.setattr(store_class, "_transaction", commit_then_fail)
        posted = vault.post_many("myindex", [{"company": "kept"}, {"company": "too"}])
        monkeypatch.setattr(store_class, "_transaction", real)
        assert [p.seq for p in posted] == [31, 32]
        assert vault.get(posted[1].id).body == {"company": "too"}


def _writer(url: str, key: str, config: str, start: Any, index: int, count: int) -> None:
    os.environ["XDG_CONFIG_HOME"] = config
    with trailvault.open_vault(url, create=False, signing_key=key) as vault:
        start.wait()
        for first in range(0, count, 250):
            vault.post_many("myindex", [{"company": f"w{index}-{i}"} for i in range(first, first + 250)])
        for i in range(5):
            vault.post("myindex", {"company": f"w{index}-single{i}"})


@pytest.mark.system
def test_four_writer_processes(postgres_url: str, key: Path, tmp_path: Path) -> None:
    """4 processes x 25,000 events at once into one vault: no gap in seq, every event there once,
    and verify passes (tree and every checkpoint exact)."""
    with trailvault.open_vault(postgres_url, signing_key=key) as vault:
        vault.open("myindex", MYINDEX)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    writers = [
        context.Process(target=_writer, args=(postgres_url, str(key), str(tmp_path), start, index, 25_000))
        for index in range(4)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=600)
        assert writer.exitcode == 0
    with psycopg.connect(postgres_url) as conn:
        count, low, high, distinct = conn.execute(  # type: ignore[misc]
            "SELECT count(*), min(seq), max(seq), count(DISTINCT id) FROM events"
        ).fetchone()
    assert (count, low, high, distinct) == (100_020, 1, 100_020, 100_020)
    with trailvault.open_vault(postgres_url, create=False, signing_key=key) as vault:
        report = vault.verify(jobs=2)
        assert report.ok and report.entries == 100_020 and report.checkpoints >= 1, report


def test_tampering_found_on_postgres(pg_vault: str, key: Path) -> None:
    """verify on PostgreSQL names the seq of a body changed by someone who disabled the triggers."""
    with trailvault.open_vault(pg_vault, create=False, signing_key=key) as vault:
        vault.issue_checkpoint()
        trusted = vault.checkpoint().note
    with psycopg.connect(pg_vault, autocommit=True) as conn:
        conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        conn.execute("""UPDATE events SET body = '{"amount":1.0,"company":"forged"}' WHERE seq = 12""")
    with trailvault.open_vault(pg_vault, create=False, signing_key=key) as vault:
        report = vault.verify()
        assert report.seq == 12 and "body was changed" in (report.problem or "")
    with psycopg.connect(pg_vault, autocommit=True) as conn:
        conn.execute("DELETE FROM events WHERE seq > 20")
    with trailvault.open_vault(pg_vault, create=False, signing_key=key) as vault:
        report = vault.verify(trusted)
        assert not report.ok and report.seq == 12


def test_rewrite_without_key_found_on_postgres(pg_vault: str, key: Path, tmp_path: Path) -> None:
    """A body and its hash rewritten, the tree rebuilt and the checkpoints' root columns rewritten is
    caught on PostgreSQL: verify compares the signed roots; the key holder signs nothing on top."""
    import hashlib

    from trailvault.adapters.store.postgres.tree import grow_tree
    from trailvault.core.integrity.log import entry_leaf
    from trailvault.workflows.vault.checkpointer import tree_root

    with trailvault.open_vault(pg_vault, create=False, signing_key=key) as vault:
        vault.post_many("myindex", [{"company": f"d{i}", "amount": 1.0} for i in range(10)])
    store = PostgresStore(pg_vault, create=False)
    try:
        with psycopg.connect(pg_vault, autocommit=True) as conn:
            for table in ("events", "merkle_tiles", "checkpoints"):
                conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")  # type: ignore[arg-type]
            conn.execute("""UPDATE events SET body = '{"amount":1.0,"company":"forged"}' WHERE seq = 12""")
            (forged,) = store.entries(11, 1)
            digest = hashlib.sha256((forged.body_json or "").encode()).digest()
            conn.execute("UPDATE events SET body_sha256 = %s WHERE seq = 12", (digest,))
            conn.execute("DELETE FROM merkle_tiles")
            grow_tree(conn, 0, [entry_leaf(entry, entry.seq, entry.body_sha256) for entry in store.entries(0, 40)])
            for (size,) in conn.execute("SELECT DISTINCT size FROM checkpoints").fetchall():
                conn.execute("UPDATE checkpoints SET root = %s WHERE size = %s", (tree_root(store, size), size))
    finally:
        store.close()
    with (
        trailvault.open_vault(pg_vault, create=False, signing_key=key) as vault,
        pytest.raises(trailvault.errors.IntegrityFailure, match="checkpoint of size"),
    ):
        vault.issue_checkpoint()
    with trailvault.open_vault(pg_vault, create=False, signing_key=tmp_path / "absent.key") as vault:
        report = vault.verify()
        assert not report.ok and "checkpoint of size 30" in (report.problem or ""), report


def test_errors_are_trailvault_errors(pg_vault: str, key: Path) -> None:
    """No psycopg exception escapes the store: a privilege or SQL failure arrives as a TrailvaultError."""
    store = PostgresStore(pg_vault, create=False)
    try:
        with pytest.raises(TrailvaultError) as caught, store._transaction() as tx:
            tx.execute("SELECT no_such_function()")
        assert not isinstance(caught.value, psycopg.Error)
        with pytest.raises(AppendOnlyViolation), store._transaction() as tx:
            tx.execute("DELETE FROM checkpoints")
    finally:
        store.close()


def test_cli_against_postgres(postgres_url: str, tmp_path: Path) -> None:
    """The README's commands work unchanged with --vault postgresql://..."""
    env = {"TRAILVAULT_VAULT": postgres_url, "XDG_CONFIG_HOME": str(tmp_path)}
    assert run_cli("init", env=env).returncode == 0
    schema = Path(__file__).resolve().parents[2] / "examples" / "platform6" / "myindex.json"
    assert run_cli("channels", "open", "myindex", "--schema", str(schema), env=env).returncode == 0
    posted = run_cli("post", "myindex", '{"company": "Amalto", "amount": 101.12}', env=env)
    assert posted.returncode == 0, posted.stderr
    listed = run_cli("events", "list", "--channel", "myindex", "--output", "json", env=env)
    assert "Amalto" in listed.stdout
    verified = run_cli("verify", env=env)
    assert verified.returncode == 0 and "ok: 1 entries" in verified.stdout


def test_eq_on_an_indexed_field_searches_its_lower_case_index(pg_vault: str, key: Path) -> None:
    """eq (case-insensitive) on an "index": true field searches the field's _ci index; eq_cs its value index."""
    from trailvault.adapters.store.postgres.sql import compile_listing
    from trailvault.core.query import Compare, EventQuery, Op

    with trailvault.open_vault(pg_vault, signing_key=key) as vault:
        vault.open("access", {"fields": [{"name": "user", "type": "RECORD", "fields": [
            {"name": "email", "type": "STRING", "index": True}]}]})  # fmt: skip
        vault.post_many("access", [{"user": {"email": f"u{n}@example.com"}} for n in range(200)])
        found = vault.events("access", filter='user.email eq "U7@EXAMPLE.COM"')
    assert [event.body["user"]["email"] for event in found] == ["u7@example.com"]
    with psycopg.connect(pg_vault, autocommit=True) as conn:
        conn.execute("ANALYZE events")
        conn.execute("SET enable_seqscan = off")
        names = sorted(
            row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE indexname ~ '^body_[0-9a-f]{16}'")
        )
        assert len(names) == 2 and names[1] == names[0] + "_ci"
        for op, index in ((Op.EQ, names[1]), (Op.EQ_CS, names[0])):
            query = EventQuery(app="default", channel="access", filter=Compare("user.email", op, "u7@example.com"))
            sql, params = compile_listing(query, 1, lambda _: 1)
            plan = " ".join(row[0] for row in conn.execute("EXPLAIN " + sql, params))  # type: ignore[call-overload]
            assert index in plan, (op, plan)
