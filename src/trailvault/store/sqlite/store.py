"""The embedded store: one SQLite file in WAL mode.

One write connection, used by whichever thread holds the write lock (the group
committer makes that one leader at a time); one read connection per reading
thread, so listings never wait for a commit. Several processes may share a file:
``BEGIN IMMEDIATE`` serializes their writers and each transaction reads the next
seq inside its own lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from trailvault.errors import (
    AppendOnlyViolation,
    ChannelNotFound,
    Conflict,
    EventNotFound,
    IdConflict,
    IntegrityFailure,
    InvalidInput,
    StoreUnavailable,
    TrailvaultError,
    VaultNotFound,
)
from trailvault.event import Event, PendingEvent, Posted
from trailvault.integrity.log import entry_leaf
from trailvault.integrity.merkle import NodeKey
from trailvault.query import EventQuery
from trailvault.store.base import AppendOutcome, ChannelRecord, StoredCheckpoint, StoredEntry
from trailvault.store.sqlite.migrations import MIGRATIONS
from trailvault.store.sqlite.sql import body_expression, compile_listing
from trailvault.store.sqlite.tree import grow_tree, leaf_hashes, tree_nodes

__all__ = ["SQLiteStore"]

_BUSY_TIMEOUT_MS = 30_000
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}
_INSERT = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT_EVENT = "SELECT seq, id, channel_key, time, received, body FROM events"
_LATEST_VERSIONS = """
    SELECT a.name, c.name, c.created, v.version, v.schema
    FROM channels AS c
    JOIN apps AS a ON a.app_key = c.app_key
    JOIN schema_versions AS v ON v.channel_key = c.channel_key
    WHERE a.name = ? {channel_clause}
      AND v.version = (SELECT max(version) FROM schema_versions WHERE channel_key = c.channel_key)
    ORDER BY c.name
"""


class _Kept(NamedTuple):
    """What an idempotency check needs to know about an event already in the log."""

    seq: int
    channel_key: int
    body_sha256: bytes
    fingerprint: bytes | None


class _WriteTransaction:
    """The write lock plus one IMMEDIATE transaction, committed on success.

    A class rather than a generator context manager: every post goes through it,
    and this costs a fraction of the generator's overhead.
    """

    __slots__ = ("_conn", "_lock")

    def __init__(self, lock: threading.Lock, conn: sqlite3.Connection) -> None:
        self._lock = lock
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise _translate(exc) from exc
        except BaseException:
            self._lock.release()
            raise
        return self._conn

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        conn = self._conn
        try:
            if kind is None:
                conn.execute("COMMIT")
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            # A failed COMMIT leaves the transaction open; a failed ROLLBACK has nothing left to undo.
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise _translate(exc) from exc
        finally:
            self._lock.release()
        if isinstance(error, sqlite3.Error):
            raise _translate(error) from error


class SQLiteStore:
    """A vault's store in one SQLite file (see :class:`trailvault.store.base.Store`)."""

    def __init__(self, path: Path, *, create: bool, durability: str = "full") -> None:
        if durability not in _SYNCHRONOUS:
            raise InvalidInput(f"durability: use 'full' or 'normal', not {durability!r}", field="durability")
        if not path.exists():
            if not create:
                raise VaultNotFound(f"no vault at {path}; create one with `trailvault init` or open_vault()")
            path.parent.mkdir(parents=True, exist_ok=True)
        self.location = str(path)
        self._path = path
        self._synchronous = _SYNCHRONOUS[durability]
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._app_keys: dict[str, int] = {}
        self._channel_keys: dict[tuple[str, str], int] = {}
        self._channel_names: dict[int, tuple[str, str]] = {}
        self._writer = self._connect()
        self._migrate()

    # -- connections -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000
            )
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise InvalidInput(
                f"vault: {self._path} is not a trailvault vault ({exc}); point --vault at a vault folder",
                field="vault",
            ) from exc
        if mode != "wal":
            conn.close()
            raise StoreUnavailable(f"the vault at {self._path} cannot use write-ahead logging (journal mode {mode})")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            with self._readers_lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._write_lock, self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._writer.close()

    def _transaction(self) -> _WriteTransaction:
        """Hold the write lock and one IMMEDIATE transaction; translate driver errors."""
        return _WriteTransaction(self._write_lock, self._writer)

    def _migrate(self) -> None:
        conn = self._writer
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied INTEGER NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        latest = MIGRATIONS[-1].version
        for migration in MIGRATIONS:
            with self._transaction() as tx:
                applied = tx.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
                if applied > latest:
                    raise TrailvaultError(
                        f"the vault at {self._path} was written by a newer trailvault "
                        f"(migration {applied}, this one knows {latest}); upgrade trailvault"
                    )
                if migration.version <= applied:
                    continue
                for statement in migration.statements:
                    tx.execute(statement)
                if migration.after is not None:
                    migration.after(tx)
                if migration.version == 1:
                    tx.execute("INSERT INTO vault_meta VALUES ('vault_id', ?)", (str(uuid.uuid4()),))
                tx.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.description, time.time_ns() // 1000),
                )

    # -- names and keys ----------------------------------------------------------

    def _app_key(self, conn: sqlite3.Connection, app: str) -> int | None:
        key = self._app_keys.get(app)
        if key is None:
            row = conn.execute("SELECT app_key FROM apps WHERE name = ?", (app,)).fetchone()
            if row is None:
                return None
            key = self._app_keys[app] = row[0]
        return key

    def _channel_key(self, conn: sqlite3.Connection, app: str, name: str) -> int | None:
        key = self._channel_keys.get((app, name))
        if key is None:
            row = conn.execute(
                "SELECT c.channel_key FROM channels AS c JOIN apps AS a ON a.app_key = c.app_key "
                "WHERE a.name = ? AND c.name = ?",
                (app, name),
            ).fetchone()
            if row is None:
                return None
            key = self._channel_keys[(app, name)] = row[0]
            self._channel_names[key] = (app, name)
        return key

    def _channel_name(self, conn: sqlite3.Connection, key: int) -> tuple[str, str]:
        names = self._channel_names.get(key)
        if names is None:
            row = conn.execute(
                "SELECT a.name, c.name FROM channels AS c JOIN apps AS a ON a.app_key = c.app_key "
                "WHERE c.channel_key = ?",
                (key,),
            ).fetchone()
            names = self._channel_names[key] = (row[0], row[1])
        return names

    def vault_id(self) -> str:
        row = self._read("SELECT value FROM vault_meta WHERE key = 'vault_id'").fetchone()
        return str(row[0])

    # -- channels ----------------------------------------------------------------

    def get_channel(self, app: str, name: str) -> ChannelRecord | None:
        rows = self._read(_LATEST_VERSIONS.format(channel_clause="AND c.name = ?"), (app, name)).fetchall()
        return _channel_record(rows[0]) if rows else None

    def list_channels(self, app: str) -> list[ChannelRecord]:
        rows = self._read(_LATEST_VERSIONS.format(channel_clause=""), (app,)).fetchall()
        return [_channel_record(row) for row in rows]

    def save_channel_version(
        self,
        app: str,
        name: str,
        version: int,
        schema_document: dict[str, Any],
        index_paths: Sequence[tuple[str, ...]],
        created_us: int,
    ) -> ChannelRecord:
        try:
            with self._transaction() as tx:
                app_key = self._app_key(tx, app)
                if app_key is None:
                    app_key = tx.execute("INSERT INTO apps (name, created) VALUES (?, ?)", (app, created_us)).lastrowid
                if version == 1:
                    tx.execute(
                        "INSERT INTO channels (app_key, name, created) VALUES (?, ?, ?)", (app_key, name, created_us)
                    )
                channel_key = self._channel_key(tx, app, name)
                tx.execute(
                    "INSERT INTO schema_versions VALUES (?, ?, ?, ?)",
                    (channel_key, version, orjson.dumps(schema_document).decode(), created_us),
                )
                for path in index_paths:
                    self._ensure_body_index(tx, path, created_us)
        except Conflict as exc:
            self._forget(app, name)
            raise Conflict(f"channel {name!r} changed while its schema was being saved; retry") from exc
        except BaseException:
            self._forget(app, name)
            raise
        record = self.get_channel(app, name)
        assert record is not None
        return record

    def _forget(self, app: str, name: str) -> None:
        """Drop cached keys that a rolled-back transaction may have filled in."""
        self._app_keys.pop(app, None)
        key = self._channel_keys.pop((app, name), None)
        if key is not None:
            self._channel_names.pop(key, None)

    def _ensure_body_index(self, tx: sqlite3.Connection, path: tuple[str, ...], created_us: int) -> None:
        dotted = ".".join(path)
        if tx.execute("SELECT 1 FROM body_indexes WHERE path = ?", (dotted,)).fetchone():
            return
        index_name = "body_" + hashlib.sha256(dotted.encode()).hexdigest()[:16]
        expression = body_expression(path)
        # Partial on IS NOT NULL: only events that carry the field pay for the index,
        # and SQLite knows that `expr = ?` implies it.
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name} ON events (channel_key, {expression}, time) "
            f"WHERE {expression} IS NOT NULL"
        )
        tx.execute("INSERT INTO body_indexes VALUES (?, ?, ?)", (dotted, index_name, created_us))

    # -- events ------------------------------------------------------------------

    def append(self, batches: Sequence[Sequence[PendingEvent]]) -> list[AppendOutcome]:
        with self._transaction() as tx:
            return self._append_in(tx, batches)

    def _append_in(self, tx: sqlite3.Connection, batches: Sequence[Sequence[PendingEvent]]) -> list[AppendOutcome]:
        """Append inside the caller's transaction: rows, then the tree, so the tree always matches the log."""
        outcomes, rows, leaves = self._admit(tx, batches)
        if rows:
            tx.executemany(_INSERT, rows)
            grow_tree(tx, rows[0][0] - 1, leaves)
        return outcomes

    def redact(self, app: str, seq: int, reason: str, record: PendingEvent) -> Posted:
        with self._transaction() as tx:
            app_key = self._app_key(tx, app)
            row = tx.execute("SELECT app_key FROM events WHERE seq = ?", (seq,)).fetchone()
            if app_key is None or row is None or row[0] != app_key:
                raise EventNotFound(f"seq: no entry {seq} in app {app!r}", field="seq")
            # The one sanctioned change of a kept event: a grant for exactly this seq,
            # used and withdrawn inside this transaction (see the events_refuse_update trigger).
            tx.execute("INSERT INTO erasure_grants VALUES (?, ?, ?)", (seq, seq, reason))
            tx.execute("UPDATE events SET body = NULL WHERE seq = ?", (seq,))
            tx.execute("DELETE FROM erasure_grants")
            outcome = self._append_in(tx, [[record]])[0]
        assert isinstance(outcome, list)
        return outcome[0]

    def _admit(
        self, tx: sqlite3.Connection, batches: Sequence[Sequence[PendingEvent]]
    ) -> tuple[list[AppendOutcome], list[tuple[Any, ...]], list[bytes]]:
        """Give each batch's new events their seqs and leaf hashes; keep out the batches that conflict."""
        next_seq: int = tx.execute("SELECT coalesce(max(seq), 0) + 1 FROM events").fetchone()[0]
        outcomes: list[AppendOutcome] = []
        rows: list[tuple[Any, ...]] = []
        leaves: list[bytes] = []
        accepted: dict[tuple[int, str], _Kept] = {}
        for batch in batches:
            staged: list[tuple[Any, ...]] = []
            staged_leaves: list[bytes] = []
            staged_ids: dict[tuple[int, str], _Kept] = {}
            posted: list[Posted] = []
            kept = self._kept_ids(tx, batch)
            conflict: IdConflict | None = None
            last_names: tuple[str, str] | None = None
            app_key = channel_key = 0
            for event in batch:
                if (event.app, event.channel) != last_names:
                    app_key, channel_key = self._keys_for(tx, event)
                    last_names = (event.app, event.channel)
                if event.fingerprint is not None:
                    key = (app_key, event.id)
                    prior = staged_ids.get(key) or accepted.get(key) or kept.get(key)
                    if prior is not None:
                        if not _same_content(prior, channel_key, event):
                            conflict = IdConflict(
                                f"id: event {event.id!r} already exists (seq {prior.seq}) with different content; "
                                "use a new id, or repeat exactly the same post to retry it",
                                field="id",
                            )
                            break
                        posted.append(Posted(event.id, prior.seq, True))
                        continue
                    staged_ids[key] = _Kept(next_seq + len(staged), channel_key, event.body_sha256, event.fingerprint)
                seq = next_seq + len(staged)
                # PendingEvent ends with the remaining columns, in the table's order.
                staged.append((seq, event.id, app_key, channel_key, *event[3:]))
                staged_leaves.append(entry_leaf(event, seq, event.body_sha256))
                posted.append(Posted(event.id, seq))
            if conflict is not None:
                outcomes.append(conflict)
                continue
            rows.extend(staged)
            leaves.extend(staged_leaves)
            accepted.update(staged_ids)
            next_seq += len(staged)
            outcomes.append(posted)
        return outcomes, rows, leaves

    def _keys_for(self, tx: sqlite3.Connection, event: PendingEvent) -> tuple[int, int]:
        app_key = self._app_key(tx, event.app)
        channel_key = self._channel_key(tx, event.app, event.channel)
        if app_key is None or channel_key is None:
            raise ChannelNotFound(f"channel: {event.channel!r} was never opened", field="channel")
        return app_key, channel_key

    def _kept_ids(self, tx: sqlite3.Connection, batch: Sequence[PendingEvent]) -> dict[tuple[int, str], _Kept]:
        """Look up, in one statement per app, the producer-given ids of a batch."""
        given: dict[str, list[str]] = {}
        if all(event.fingerprint is None for event in batch):
            return {}
        for event in batch:
            if event.fingerprint is not None:
                given.setdefault(event.app, []).append(event.id)
        kept: dict[tuple[int, str], _Kept] = {}
        for app, ids in given.items():
            app_key = self._app_key(tx, app)
            if app_key is None:
                continue
            for row in tx.execute(
                "SELECT id, seq, channel_key, body_sha256, fingerprint FROM events "
                "WHERE app_key = ? AND id IN (SELECT value FROM json_each(?))",
                (app_key, orjson.dumps(ids).decode()),
            ):
                kept[(app_key, row[0])] = _Kept(row[1], row[2], row[3], row[4])
        return kept

    def get_event(self, app: str, event_id: str) -> Event | None:
        conn = self._reader()
        app_key = self._app_key(conn, app)
        if app_key is None:
            return None
        row = self._read(_SELECT_EVENT + " WHERE app_key = ? AND id = ?", (app_key, event_id)).fetchone()
        return None if row is None else self._event(conn, row)

    def find_events(self, query: EventQuery) -> list[Event]:
        conn = self._reader()
        app_key = self._app_key(conn, query.app)
        if app_key is None:
            return []
        sql, params = compile_listing(query, app_key, lambda name: self._channel_key(conn, query.app, name))
        return [self._event(conn, row) for row in self._read(sql, params).fetchall()]

    def log_size(self) -> int:
        return int(self._read("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def meta(self, key: str) -> str | None:
        row = self._read("SELECT value FROM vault_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as tx:
            row = tx.execute("SELECT value FROM vault_meta WHERE key = ?", (key,)).fetchone()
            if row is None:
                tx.execute("INSERT INTO vault_meta VALUES (?, ?)", (key, value))
            elif row[0] != value:
                raise Conflict(f"{key} is already set to another value for this vault")

    def save_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._transaction() as tx:
            tx.execute(
                "INSERT INTO checkpoints (size, root, timestamp, note) VALUES (?, ?, ?, ?)",
                (checkpoint.size, checkpoint.root, checkpoint.timestamp, checkpoint.note),
            )

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self._checkpoint("ORDER BY size DESC, timestamp DESC LIMIT 1", ())

    def checkpoint_covering(self, size: int) -> StoredCheckpoint | None:
        return self._checkpoint("WHERE size >= ? ORDER BY size, timestamp LIMIT 1", (size,))

    def checkpoint_of_size(self, size: int) -> StoredCheckpoint | None:
        return self._checkpoint("WHERE size = ? ORDER BY timestamp DESC LIMIT 1", (size,))

    def all_checkpoints(self) -> list[StoredCheckpoint]:
        rows = self._read("SELECT size, root, timestamp, note FROM checkpoints ORDER BY size, timestamp").fetchall()
        return [StoredCheckpoint(*row) for row in rows]

    def entries(self, after_seq: int, limit: int) -> list[StoredEntry]:
        rows = self._read(
            "SELECT e.seq, e.id, a.name, c.name, e.time, e.received, e.body, e.body_sha256 FROM events AS e "
            "JOIN channels AS c ON c.channel_key = e.channel_key JOIN apps AS a ON a.app_key = e.app_key "
            "WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [StoredEntry(*row) for row in rows]

    def _checkpoint(self, clause: str, params: tuple[int, ...]) -> StoredCheckpoint | None:
        row = self._read("SELECT size, root, timestamp, note FROM checkpoints " + clause, params).fetchone()
        return None if row is None else StoredCheckpoint(*row)

    def tree_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        try:
            return tree_nodes(self._reader(), keys)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        except (KeyError, ValueError):
            raise IntegrityFailure(
                "the vault's Merkle tree lacks nodes the log needs; run `trailvault verify` to find where"
            ) from None

    def leaf_hashes(self, start: int, end: int) -> bytes:
        try:
            return leaf_hashes(self._reader(), start, end)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._reader().execute(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    def _event(self, conn: sqlite3.Connection, row: tuple[Any, ...]) -> Event:
        seq, event_id, channel_key, time_us, received_us, body = row
        app, channel = self._channel_name(conn, channel_key)
        return Event(event_id, time_us, received_us, app, channel, seq, None if body is None else orjson.loads(body))


def _same_content(prior: _Kept, channel_key: int, event: PendingEvent) -> bool:
    if prior.fingerprint is not None:
        return prior.fingerprint == event.fingerprint
    # The kept event's id was generated here, so only its channel and body can be compared.
    return prior.channel_key == channel_key and prior.body_sha256 == event.body_sha256


def _channel_record(row: tuple[Any, ...]) -> ChannelRecord:
    app, name, created, version, schema = row
    return ChannelRecord(app, name, created, version, orjson.loads(schema))


def _translate(exc: sqlite3.Error) -> TrailvaultError:
    """Turn a driver error into the library's, with no SQLite detail a caller must know."""
    text = str(exc)
    if "append-only" in text:
        return AppendOnlyViolation(text.removeprefix("trailvault: "))
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in text:
        return Conflict("another writer changed the same record first; retry")
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreUnavailable("the vault is busy: another writer held it for over 30 s; retry")
    return StoreUnavailable(f"the vault database failed ({text}); retry, and check the disk if it repeats")
