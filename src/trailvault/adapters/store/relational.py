"""What the SQL backends share: the tables' shape, name caches, channels, reads and checkpoints.

SQLite and PostgreSQL stores keep the same tables (their migrations differ only in
types and trigger syntax), so everything that is one SELECT or INSERT away is written
once here, with ``?`` placeholders that a backend turns into its own. A backend
supplies its connections (:meth:`_reading`, :meth:`_transaction`, both translating
driver errors) and the few statements that differ: how a new app's key comes back,
how a body index is built, how a list of ids is bound, and its listing compiler.
Appends stay in each backend, since that is where they differ: how the sequence is
locked, how rows are written in bulk, and how the tree grows.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import orjson

from trailvault.adapters.store.admission import Kept, given_ids
from trailvault.adapters.store.archive_tables import ArchiveTables
from trailvault.adapters.store.base import AppendOutcome, ChannelRecord, StoredCheckpoint, StoredEntry
from trailvault.adapters.store.listing import ENTRY_COLUMNS, EVENT_COLUMNS
from trailvault.adapters.store.timelimit import current_limit
from trailvault.core.api_key import ApiKey, Scope
from trailvault.core.entrytable import entry_table
from trailvault.core.event import Event, PendingEvent, Posted
from trailvault.core.integrity.merkle import NodeKey
from trailvault.core.integrity.tiles import PartialCache, TileKey
from trailvault.core.query import EventQuery
from trailvault.errors import ChannelNotFound, Conflict, EventNotFound, IntegrityFailure, InvalidQuery, TrailvaultError

__all__ = ["RelationalStore"]

_LATEST_VERSIONS = """
    SELECT a.name, c.name, c.created, v.version, v.schema
    FROM channels AS c
    JOIN apps AS a ON a.app_key = c.app_key
    JOIN schema_versions AS v ON v.channel_key = c.channel_key
    WHERE a.name = ? {channel_clause}
      AND v.version = (SELECT max(version) FROM schema_versions WHERE channel_key = c.channel_key)
    ORDER BY c.name
"""
_SELECT_EVENT = "SELECT seq, id, channel_key, time, received, body FROM events"
_SELECT_CHECKPOINT = "SELECT size, root, timestamp, note FROM checkpoints "
_SELECT_API_KEY = (
    "SELECT k.key_id, a.name, k.name, k.scopes, k.channels, k.created, k.revoked, k.oci_fingerprint, "
    "k.secret_sha256, k.oci_public_key "
    "FROM api_keys AS k JOIN apps AS a ON a.app_key = k.app_key "
)

#: Compiles a listing for one app: (query, app_key, channel name -> key, columns) -> (sql, params).
ListingCompiler = Callable[[EventQuery, int, Callable[[str], int | None], str], tuple[str, list[Any]]]


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a page of rows becomes columns.

    Its ten thousand row tuples would trigger collections that scan the whole heap (a
    third of the page's time) and find nothing: rows hold no cycles. Collection resumes
    after (only if it was on, so a caller that turned it off keeps it off).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class RelationalStore(ArchiveTables):
    """The shared half of a SQL store; see the module docstring for what a backend adds."""

    location: str
    #: The driver's placeholder; shared SQL is written with ``?``.
    _placeholder = "?"
    _compile_listing: ListingCompiler

    def __init__(self) -> None:
        self._app_keys: dict[str, int] = {}
        self._channel_keys: dict[tuple[str, str], int] = {}
        self._channel_names: dict[int, tuple[str, str]] = {}
        self._names_lock = threading.Lock()
        self._partials = PartialCache()

    # -- what a backend supplies ---------------------------------------------------

    def _reading(self, limit: float | None = None) -> AbstractContextManager[Any]:
        """A connection for reads (driver errors translated).

        With ``limit``, statements run in the block are cancelled once it has lasted that
        many seconds, raising QueryTimeout (:mod:`trailvault.adapters.store.timelimit`).
        """
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Any]:
        """A connection inside one write transaction, committed when the block succeeds."""
        raise NotImplementedError

    def _insert_app(self, tx: Any, app: str, created_us: int) -> int:
        """Insert an app and return its key."""
        raise NotImplementedError

    def _ensure_body_index(self, tx: Any, path: tuple[str, ...], created_us: int) -> None:
        """Build the expression index of a body path, once."""
        raise NotImplementedError

    def _bind_ids(self, ids: list[str]) -> tuple[str, Any]:
        """Return a condition on ``id`` matching any of ``ids``, and its one parameter."""
        raise NotImplementedError

    def _append_in(self, tx: Any, batches: Sequence[Sequence[PendingEvent]]) -> list[AppendOutcome]:
        """Append inside the caller's transaction (sequence locked, rows, then the tree)."""
        raise NotImplementedError

    def _remember(self, grown: list[tuple[int, dict[TileKey, bytes]]]) -> None:
        """After a commit succeeded: keep the partial tiles of the size it reached, for the next append."""
        if grown:
            self._partials.put(*grown[-1])

    def _erase(self, tx: Any, seq: int, reason: str) -> None:
        """Remove one body through the store's sanctioned path, recording the grant."""
        raise NotImplementedError

    def _lock_log(self, tx: Any) -> None:
        """Serialize with every other writer of the vault (a no-op where the transaction already does)."""

    #: The tree readers of the backend's dialect: (conn, keys) and (conn, start, end).
    _read_tree_nodes: Callable[[Any, Iterable[NodeKey]], dict[NodeKey, bytes]]
    _read_leaf_hashes: Callable[[Any, int, int], bytes]

    # -- migrations ------------------------------------------------------------------

    def _apply_migration(self, tx: Any, migration: Any, latest: int) -> None:
        """Inside the caller's transaction: apply ``migration`` unless it was, refusing a newer vault.

        ``migration`` has ``version``, ``description``, ``statements`` and may have an
        ``after(tx)`` step (SQLite's backfill). Migration 1 gives the vault its id.
        """
        applied = int(self._execute(tx, "SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])
        if applied > latest:
            raise TrailvaultError(
                f"the vault at {self.location} was written by a newer trailvault "
                f"(migration {applied}, this one knows {latest}); upgrade trailvault"
            )
        if self._execute(tx, "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)).fetchone():
            return
        for statement in migration.statements:
            tx.execute(statement)
        after = getattr(migration, "after", None)
        if after is not None:
            after(tx)
        if migration.version == 1:
            self._execute(tx, "INSERT INTO vault_meta VALUES ('vault_id', ?)", (str(uuid.uuid4()),))
        self._execute(
            tx,
            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
            (migration.version, migration.description, time.time_ns() // 1000),
        )

    # -- statements ----------------------------------------------------------------

    def _sql(self, text: str) -> str:
        return text if self._placeholder == "?" else text.replace("?", self._placeholder)

    def _execute(self, conn: Any, text: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self._sql(text), params)

    def _rows(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._reading() as conn:
            return list(self._execute(conn, text, params).fetchall())

    def _value(self, text: str, params: Sequence[Any] = ()) -> Any:
        rows = self._rows(text, params)
        return rows[0][0] if rows else None

    # -- names and keys --------------------------------------------------------------

    def _app_key(self, conn: Any, app: str) -> int | None:
        key = self._app_keys.get(app)
        if key is None:
            row = self._execute(conn, "SELECT app_key FROM apps WHERE name = ?", (app,)).fetchone()
            if row is None:
                return None
            key = self._app_keys[app] = int(row[0])
        return key

    def _channel_key(self, conn: Any, app: str, name: str) -> int | None:
        key = self._channel_keys.get((app, name))
        if key is None:
            row = self._execute(
                conn,
                "SELECT c.channel_key FROM channels AS c JOIN apps AS a ON a.app_key = c.app_key "
                "WHERE a.name = ? AND c.name = ?",
                (app, name),
            ).fetchone()
            if row is None:
                return None
            key = int(row[0])
            with self._names_lock:
                self._channel_keys[(app, name)] = key
                self._channel_names[key] = (app, name)
        return key

    def _channel_name(self, conn: Any, key: int) -> tuple[str, str]:
        names = self._channel_names.get(key)
        if names is None:
            row = self._execute(
                conn,
                "SELECT a.name, c.name FROM channels AS c JOIN apps AS a ON a.app_key = c.app_key "
                "WHERE c.channel_key = ?",
                (key,),
            ).fetchone()
            names = self._channel_names[key] = (str(row[0]), str(row[1]))
        return names

    def _forget(self, app: str, name: str) -> None:
        """Drop cached keys that a rolled-back transaction may have filled in."""
        with self._names_lock:
            self._app_keys.pop(app, None)
            key = self._channel_keys.pop((app, name), None)
            if key is not None:
                self._channel_names.pop(key, None)

    def _keys_for(self, tx: Any, event: PendingEvent) -> tuple[int, int]:
        app_key = self._app_key(tx, event.app)
        channel_key = self._channel_key(tx, event.app, event.channel)
        if app_key is None or channel_key is None:
            raise ChannelNotFound(f"channel: {event.channel!r} was never opened", field="channel")
        return app_key, channel_key

    def _kept_ids(self, tx: Any, batch: Sequence[PendingEvent]) -> dict[tuple[int, str], Kept]:
        """Look up, in one statement per app, the producer-given ids of a batch."""
        kept: dict[tuple[int, str], Kept] = {}
        for app, ids in given_ids(batch).items():
            app_key = self._app_key(tx, app)
            if app_key is None:
                continue
            condition, bound = self._bind_ids(ids)
            for row in self._execute(
                tx,
                f"SELECT id, seq, channel_key, body_sha256, fingerprint FROM events WHERE app_key = ? AND {condition}",
                (app_key, bound),
            ):
                kept[(app_key, row[0])] = Kept(row[1], row[2], row[3], row[4])
        return kept

    def app_names(self) -> list[str]:
        return [str(row[0]) for row in self._rows("SELECT name FROM apps ORDER BY name")]

    def vault_id(self) -> str:
        return str(self._value("SELECT value FROM vault_meta WHERE key = 'vault_id'"))

    # -- channels ----------------------------------------------------------------------

    def get_channel(self, app: str, name: str) -> ChannelRecord | None:
        rows = self._rows(_LATEST_VERSIONS.format(channel_clause="AND c.name = ?"), (app, name))
        return _channel_record(rows[0]) if rows else None

    def list_channels(self, app: str) -> list[ChannelRecord]:
        return [_channel_record(row) for row in self._rows(_LATEST_VERSIONS.format(channel_clause=""), (app,))]

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
                    app_key = self._insert_app(tx, app, created_us)
                if version == 1:
                    self._execute(
                        tx,
                        "INSERT INTO channels (app_key, name, created) VALUES (?, ?, ?)",
                        (app_key, name, created_us),
                    )
                channel_key = self._channel_key(tx, app, name)
                self._execute(
                    tx,
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

    def channel_versions(self) -> list[ChannelRecord]:
        rows = self._rows(
            "SELECT a.name, c.name, v.created, v.version, v.schema FROM schema_versions AS v "
            "JOIN channels AS c ON c.channel_key = v.channel_key JOIN apps AS a ON a.app_key = c.app_key "
            "ORDER BY v.created, c.channel_key, v.version"
        )
        return [_channel_record(row) for row in rows]

    def adopt_vault_id(self, vault_id: str) -> None:
        with self._transaction() as tx:
            self._lock_log(tx)
            for table in ("events", "channels", "checkpoints"):
                if self._execute(tx, f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                    raise Conflict(f"vault: {self.location} already holds {table}; copy into a new, empty vault")
            self._execute(tx, "UPDATE vault_meta SET value = ? WHERE key = 'vault_id'", (vault_id,))

    # -- reading events ----------------------------------------------------------------

    def get_event(self, app: str, event_id: str) -> Event | None:
        with self._reading() as conn:
            app_key = self._app_key(conn, app)
            if app_key is None:
                return None
            row = self._execute(conn, _SELECT_EVENT + " WHERE app_key = ? AND id = ?", (app_key, event_id)).fetchone()
            return None if row is None else self._event(conn, row)

    def find_events(self, query: EventQuery) -> list[Event]:
        with self._reading(current_limit()) as conn:
            app_key = self._app_key(conn, query.app)
            if app_key is None:
                return []
            sql, params = self._compile_listing(
                query, app_key, lambda name: self._channel_key(conn, query.app, name), EVENT_COLUMNS
            )
            return [self._event(conn, row) for row in conn.execute(sql, params).fetchall()]

    def find_entries(self, query: EventQuery) -> list[StoredEntry]:
        with self._reading(current_limit()) as conn:
            found = []
            for seq, event_id, channel_key, time_us, received_us, body, body_sha256, mark in self._entry_rows(
                conn, query
            ):
                app, channel = self._channel_name(conn, channel_key)
                found.append(
                    StoredEntry(seq, event_id, app, channel, time_us, received_us, body, bytes(body_sha256), mark)
                )
            return found

    def entry_columns(self, query: EventQuery) -> Any:
        with self._reading(current_limit()) as conn, _collection_paused():
            rows = self._entry_rows(conn, query)
            # Column by column, so each converts in one call rather than an object per event.
            seqs, ids, keys, times, received, bodies, digests, _ = zip(*rows, strict=True) if rows else ((),) * 8
            # Freed while collection is paused: ten thousand young row tuples alive when it
            # resumes would be scanned by the next collections, up to a full one.
            del rows
            names = {key: self._channel_name(conn, key) for key in set(keys)}
            apps = [names[key][0] for key in keys]
            channels = [names[key][1] for key in keys]
            return entry_table(seqs, ids, apps, channels, times, received, bodies, digests)

    def entry_pages(self, query: EventQuery, *, expected: int = 0) -> Iterator[Any]:
        if query.sort_by != "seq" or query.descending:
            raise InvalidQuery("sort_by: entry pages are in ascending seq order", field="sort_by")
        return self._entry_pages(query, expected)

    def _entry_pages(self, query: EventQuery, expected: int) -> Iterator[Any]:
        """:meth:`entry_pages` of a checked query: here, ``entry_columns`` page after page."""
        while True:
            table = self.entry_columns(query)
            yield table
            if table.num_rows < query.limit:
                return
            last = table.column("seq")[-1].as_py()
            query = query.starting_after((last, last))

    def _entry_rows(self, conn: Any, query: EventQuery) -> list[Any]:
        """The stored rows (:data:`ENTRY_COLUMNS`) the query finds; none for an unknown app."""
        app_key = self._app_key(conn, query.app)
        if app_key is None:
            return []
        sql, params = self._compile_listing(
            query, app_key, lambda name: self._channel_key(conn, query.app, name), ENTRY_COLUMNS
        )
        return list(conn.execute(sql, params).fetchall())

    def _event(self, conn: Any, row: tuple[Any, ...]) -> Event:
        seq, event_id, channel_key, time_us, received_us, body = row
        app, channel = self._channel_name(conn, channel_key)
        return Event(event_id, time_us, received_us, app, channel, seq, None if body is None else orjson.loads(body))

    def entries(self, after_seq: int, limit: int) -> list[StoredEntry]:
        rows = self._rows(
            "SELECT e.seq, e.id, a.name, c.name, e.time, e.received, e.body, e.body_sha256, e.fingerprint "
            "FROM events AS e "
            "JOIN channels AS c ON c.channel_key = e.channel_key JOIN apps AS a ON a.app_key = e.app_key "
            "WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
            (after_seq, limit),
        )
        return [StoredEntry(*row) for row in rows]

    def log_size(self) -> int:
        return int(self._value("SELECT coalesce(max(seq), 0) FROM events") or 0)

    def redact(self, app: str, seq: int, reason: str, record: PendingEvent) -> Posted:
        with self._transaction() as tx:
            app_key = self._app_key(tx, app)
            row = self._execute(tx, "SELECT app_key FROM events WHERE seq = ?", (seq,)).fetchone()
            if app_key is None or row is None or row[0] != app_key:
                raise EventNotFound(f"seq: no entry {seq} in app {app!r}", field="seq")
            self._erase(tx, seq, reason)
            outcome = self._append_in(tx, [[record]])[0]
        assert isinstance(outcome, list)
        return outcome[0]

    # -- the tree ------------------------------------------------------------------------

    def tree_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        try:
            with self._reading() as conn:
                return self._read_tree_nodes(conn, keys)
        except (KeyError, ValueError):
            raise IntegrityFailure(
                "the vault's Merkle tree lacks nodes the log needs; run `trailvault verify` to find where"
            ) from None

    def leaf_hashes(self, start: int, end: int) -> bytes:
        with self._reading() as conn:
            return self._read_leaf_hashes(conn, start, end)

    # -- API keys ----------------------------------------------------------------------

    def save_api_key(self, key: ApiKey, secret_sha256: bytes, oci_public_key: str | None = None) -> None:
        with self._transaction() as tx:
            if key.oci_fingerprint is not None:
                taken = "SELECT key_id FROM api_keys WHERE oci_fingerprint = ?"
                if self._execute(tx, taken, (key.oci_fingerprint,)).fetchone() is not None:
                    raise Conflict(
                        f"oci_public_key: another API key has this public key ({key.oci_fingerprint}); "
                        "make a new key pair for each API key",
                        field="oci_public_key",
                    )
            app_key = self._app_key(tx, key.app)
            if app_key is None:
                app_key = self._insert_app(tx, key.app, key.created_us)
            self._execute(
                tx,
                "INSERT INTO api_keys (key_id, app_key, name, secret_sha256, scopes, channels, created, revoked, "
                "oci_public_key, oci_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (
                    key.id,
                    app_key,
                    key.name,
                    secret_sha256,
                    " ".join(sorted(key.scopes)),
                    None if key.channels is None else orjson.dumps(list(key.channels)).decode(),
                    key.created_us,
                    oci_public_key,
                    key.oci_fingerprint,
                ),
            )

    def api_key(self, key_id: str) -> tuple[ApiKey, bytes] | None:
        rows = self._rows(_SELECT_API_KEY + "WHERE k.key_id = ?", (key_id,))
        return (_api_key(rows[0]), bytes(rows[0][8])) if rows else None

    def api_key_by_fingerprint(self, fingerprint: str) -> tuple[ApiKey, str] | None:
        rows = self._rows(_SELECT_API_KEY + "WHERE k.oci_fingerprint = ?", (fingerprint,))
        return (_api_key(rows[0]), str(rows[0][9])) if rows else None

    def oci_public_key(self, key_id: str) -> str | None:
        value = self._value("SELECT oci_public_key FROM api_keys WHERE key_id = ?", (key_id,))
        return None if value is None else str(value)

    def all_api_keys(self) -> list[tuple[ApiKey, bytes]]:
        rows = self._rows(_SELECT_API_KEY + "ORDER BY k.created, k.key_id")
        return [(_api_key(row), bytes(row[8])) for row in rows]

    def list_api_keys(self, app: str) -> list[ApiKey]:
        rows = self._rows(_SELECT_API_KEY + "WHERE a.name = ? ORDER BY k.created, k.key_id", (app,))
        return [_api_key(row) for row in rows]

    def revoke_api_key(self, app: str, key_id: str, revoked_us: int) -> ApiKey | None:
        with self._transaction() as tx:
            app_key = self._app_key(tx, app)
            if app_key is not None:
                self._execute(
                    tx,
                    "UPDATE api_keys SET revoked = ? WHERE key_id = ? AND app_key = ? AND revoked IS NULL",
                    (revoked_us, key_id, app_key),
                )
        found = self.api_key(key_id)
        return found[0] if found is not None and found[0].app == app else None

    # -- vault-wide values and checkpoints ---------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as tx:
            self._lock_log(tx)
            row = self._execute(tx, "SELECT value FROM vault_meta WHERE key = ?", (key,)).fetchone()
            if row is None:
                self._execute(tx, "INSERT INTO vault_meta VALUES (?, ?)", (key, value))
            elif row[0] != value:
                raise Conflict(f"{key} is already set to another value for this vault")

    def save_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._transaction() as tx:
            self._execute(
                tx,
                "INSERT INTO checkpoints (size, root, timestamp, note) VALUES (?, ?, ?, ?)",
                (checkpoint.size, checkpoint.root, checkpoint.timestamp, checkpoint.note),
            )

    def meta(self, key: str) -> str | None:
        value = self._value("SELECT value FROM vault_meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self._checkpoint("ORDER BY size DESC, timestamp DESC LIMIT 1", ())

    def checkpoint_covering(self, size: int) -> StoredCheckpoint | None:
        return self._checkpoint("WHERE size >= ? ORDER BY size, timestamp LIMIT 1", (size,))

    def checkpoint_of_size(self, size: int) -> StoredCheckpoint | None:
        return self._checkpoint("WHERE size = ? ORDER BY timestamp DESC LIMIT 1", (size,))

    def all_checkpoints(self) -> list[StoredCheckpoint]:
        return [StoredCheckpoint(*row) for row in self._rows(_SELECT_CHECKPOINT + "ORDER BY size, timestamp")]

    def _checkpoint(self, clause: str, params: tuple[int, ...]) -> StoredCheckpoint | None:
        rows = self._rows(_SELECT_CHECKPOINT + clause, params)
        return StoredCheckpoint(*rows[0]) if rows else None


def _channel_record(row: tuple[Any, ...]) -> ChannelRecord:
    app, name, created, version, schema = row
    return ChannelRecord(app, name, created, version, orjson.loads(schema))


def _api_key(row: tuple[Any, ...]) -> ApiKey:
    key_id, app, name, scopes, channels, created, revoked, oci_fingerprint = row[:8]
    return ApiKey(
        key_id,
        app,
        name,
        frozenset(Scope(word) for word in scopes.split()),
        None if channels is None else tuple(orjson.loads(channels)),
        created,
        revoked,
        oci_fingerprint,
    )
