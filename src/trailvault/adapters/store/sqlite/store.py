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
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from trailvault.adapters.store.admission import admit
from trailvault.adapters.store.base import AppendOutcome
from trailvault.adapters.store.relational import RelationalStore
from trailvault.adapters.store.sqlite import pagereader
from trailvault.adapters.store.sqlite.migrations import MIGRATIONS
from trailvault.adapters.store.sqlite.sql import body_index_statements, compile_listing
from trailvault.adapters.store.sqlite.tree import grow_tree, leaf_hashes, tree_nodes
from trailvault.adapters.store.timelimit import timed_out
from trailvault.core.entrytable import entry_schema
from trailvault.core.event import PendingEvent
from trailvault.core.integrity.tiles import TileKey
from trailvault.core.query import EventQuery
from trailvault.errors import (
    AppendOnlyViolation,
    Conflict,
    InvalidInput,
    StoreUnavailable,
    TrailvaultError,
    VaultNotFound,
)

__all__ = ["SQLiteStore"]

_log = logging.getLogger("trailvault.store")

_BUSY_TIMEOUT_MS = 30_000
#: Virtual machine steps between checks of a limited read's deadline (about a millisecond of work).
_PROGRESS_STEPS = 10_000
#: A listing of entry pages expected to find at least this many entries is read by a
#: separate process (:mod:`~trailvault.adapters.store.sqlite.pagereader`): starting one costs
#: about half a second, which a shorter listing would not win back.
SEPARATE_READER_FROM = 200_000
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}
_INSERT = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


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


class SQLiteStore(RelationalStore):
    """A vault's store in one SQLite file (see :class:`trailvault.adapters.store.base.Store`)."""

    def __init__(self, path: Path, *, create: bool, durability: str = "full") -> None:
        if durability not in _SYNCHRONOUS:
            raise InvalidInput(f"durability: use 'full' or 'normal', not {durability!r}", field="durability")
        if not path.exists():
            if not create:
                raise VaultNotFound(f"no vault at {path}; create one with `trailvault init` or open_vault()")
            _create_private(path)
        super().__init__()
        self.location = str(path)
        self._path = path
        self._synchronous = _SYNCHRONOUS[durability]
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
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

    def _entry_pages(self, query: EventQuery, expected: int) -> Iterator[Any]:
        if expected < SEPARATE_READER_FROM or not pagereader.available():
            return super()._entry_pages(query, expected)
        return self._pages_read_apart(query)

    def _pages_read_apart(self, query: EventQuery) -> Iterator[Any]:
        """:meth:`entry_pages` through the page reader: one statement, one snapshot, no Python per row."""
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.compute as pc  # type: ignore[import-untyped]

        with self._reading() as conn:
            app_key = self._app_key(conn, query.app)
            if app_key is None:
                return
            # Without a limit: the child streams the whole listing, query.limit rows a batch.
            sql, params = self._compile_listing(
                replace(query, limit=2**62),
                app_key,
                lambda name: self._channel_key(conn, query.app, name),
                pagereader.ENTRY_SELECT,
            )
        try:
            tables = pagereader.read_pages(self._path, sql, params, query.limit)
            first = next(tables, None)
        except (OSError, StoreUnavailable) as exc:
            # No child process here (a sandbox), or one that failed before its first page
            # (a driver that does not load): this process reads, as for a short listing. A
            # fault of the vault itself shows there too, as the error it is.
            _log.warning("export: reading pages in this process: %s", getattr(exc, "message", exc))
            yield from super()._entry_pages(query, 0)
            return
        if first is None:
            return
        schema = entry_schema()
        for table in itertools.chain([first], tables):
            keys = table.column("channel_key")
            known = pc.unique(keys).to_pylist()
            with self._reading() as conn:
                names = [self._channel_name(conn, key) for key in known]
            where = pc.index_in(keys, value_set=pa.array(known, pa.int64()))
            apps = pc.take(pa.array([app for app, _ in names], pa.string()), where)
            channels = pc.take(pa.array([channel for _, channel in names], pa.string()), where)
            yield pa.Table.from_arrays(
                [
                    table.column("seq"), table.column("id"), apps, channels, table.column("time"),
                    table.column("received"), table.column("body"), table.column("body_sha256"),
                ],
                schema=schema,
            )  # fmt: skip

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

    @contextlib.contextmanager
    def _reading(self, limit: float | None = None) -> Iterator[sqlite3.Connection]:
        conn = self._reader()
        # SQLite has no statement timeout: a progress handler called every few thousand
        # steps of the statement interrupts it once the deadline has passed.
        limited = limit is not None and not getattr(self._local, "limited", False)
        if limited:
            assert limit is not None
            deadline = time.monotonic() + limit
            conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
            self._local.limited = True
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            if limited and str(exc) == "interrupted":
                raise timed_out(limit) from exc
            raise _translate(exc) from exc
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        finally:
            if limited:
                conn.set_progress_handler(None, 0)
                self._local.limited = False

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
                self._apply_migration(tx, migration, latest)

    _compile_listing = staticmethod(compile_listing)
    _read_tree_nodes = staticmethod(tree_nodes)
    _read_leaf_hashes = staticmethod(leaf_hashes)

    def _erase(self, tx: sqlite3.Connection, seq: int, reason: str) -> None:
        # The one sanctioned change of a kept event: a grant for exactly this seq,
        # used and withdrawn inside this transaction (see the events_refuse_update trigger).
        tx.execute("INSERT INTO erasure_grants VALUES (?, ?, ?)", (seq, seq, reason))
        tx.execute("UPDATE events SET body = NULL WHERE seq = ?", (seq,))
        tx.execute("DELETE FROM erasure_grants")

    def _purge_rows(self, tx: sqlite3.Connection, seqs: list[int], reason: str) -> None:
        # As _erase: grants for exactly these seqs' span, used and withdrawn in this transaction;
        # only seqs recorded in purged_events are deleted.
        tx.execute("INSERT INTO erasure_grants VALUES (?, ?, ?)", (seqs[0], seqs[-1], reason))
        tx.execute(
            "DELETE FROM events WHERE seq IN (SELECT value FROM json_each(?)) "
            "AND seq IN (SELECT seq FROM purged_events WHERE seq BETWEEN ? AND ?)",
            (orjson.dumps(seqs).decode(), seqs[0], seqs[-1]),
        )
        tx.execute("DELETE FROM erasure_grants")

    def _bind_seqs(self, column: str, seqs: list[int]) -> tuple[str, Any]:
        return f"{column} IN (SELECT value FROM json_each(?))", orjson.dumps(seqs).decode()

    def _insert_app(self, tx: sqlite3.Connection, app: str, created_us: int) -> int:
        return int(tx.execute("INSERT INTO apps (name, created) VALUES (?, ?)", (app, created_us)).lastrowid or 0)

    def _bind_ids(self, ids: list[str]) -> tuple[str, Any]:
        return "id IN (SELECT value FROM json_each(?))", orjson.dumps(ids).decode()

    def _ensure_body_index(self, tx: sqlite3.Connection, path: tuple[str, ...], created_us: int) -> None:
        dotted = ".".join(path)
        if tx.execute("SELECT 1 FROM body_indexes WHERE path = ?", (dotted,)).fetchone():
            return
        index_name = "body_" + hashlib.sha256(dotted.encode()).hexdigest()[:16]
        for statement in body_index_statements(index_name, path):
            tx.execute(statement)
        tx.execute("INSERT INTO body_indexes VALUES (?, ?, ?)", (dotted, index_name, created_us))

    # -- events ------------------------------------------------------------------

    def append(self, batches: Sequence[Sequence[PendingEvent]]) -> list[AppendOutcome]:
        grown: list[tuple[int, dict[TileKey, bytes]]] = []
        with self._transaction() as tx:
            outcomes = self._append_in(tx, batches, grown)
        self._remember(grown)
        return outcomes

    def _append_in(
        self,
        tx: sqlite3.Connection,
        batches: Sequence[Sequence[PendingEvent]],
        grown: list[tuple[int, dict[TileKey, bytes]]] | None = None,
    ) -> list[AppendOutcome]:
        """Append inside the caller's transaction: rows, then the tree, so the tree always matches the log.

        The grown tree's size and partial tiles are added to ``grown``, for after the commit.
        """
        next_seq: int = tx.execute("SELECT coalesce(max(seq), 0) + 1 FROM events").fetchone()[0]
        outcomes, rows, leaves, _ = admit(
            batches, next_seq, lambda event: self._keys_for(tx, event), lambda batch: self._kept_ids(tx, batch)
        )
        if rows:
            tx.executemany(_INSERT, rows)
            size = rows[0][0] - 1
            tiles = grow_tree(tx, size, leaves, self._partials.get(size))
            if grown is not None:
                grown.append((size + len(leaves), tiles))
        return outcomes


def _create_private(path: Path) -> None:
    """Create an empty database file only its owner may read or write (0600), whatever the umask.

    A folder created for it is 0700. SQLite gives the ``-wal`` and ``-shm`` files it
    creates beside the database the database file's mode, so they are 0600 too.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode passes through the umask; chmod's does not
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:  # another process created it meanwhile: its mode is its creator's
        return
    os.chmod(path, 0o600)


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
