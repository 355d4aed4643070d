"""The PostgreSQL store: one vault per database (or per schema, through ``search_path``).

A connection pool serves reads and writes. Every append takes a transaction-scoped
advisory lock before it reads the next seq, so any number of processes on any
number of hosts append to one vault with gap-free seqs, one Merkle tree and exact
checkpoints; inside one process the group committer already makes one leader at
a time, so the lock is contended only across processes.

A commit acknowledged by PostgreSQL is durable (``synchronous_commit`` on, unless the
store is opened with ``durability="normal"``). A connection lost inside a batch rolls
the whole batch back; one lost while committing is resolved by asking a fresh
connection for the transaction's status (``pg_xact_status``), so the caller learns
whether it was kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote

import psycopg
import psycopg.sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from trailvault.adapters.store.admission import admit
from trailvault.adapters.store.base import AppendOutcome
from trailvault.adapters.store.postgres.migrations import MIGRATIONS
from trailvault.adapters.store.postgres.sql import compile_listing
from trailvault.adapters.store.postgres.tree import Conn, grow_tree, leaf_hashes, tree_nodes
from trailvault.adapters.store.relational import RelationalStore
from trailvault.adapters.store.timelimit import timed_out
from trailvault.core.event import PendingEvent
from trailvault.core.integrity.log import LeafParts, leaf_parts
from trailvault.core.integrity.tiles import TileKey
from trailvault.errors import (
    AppendOnlyViolation,
    Conflict,
    InvalidInput,
    StoreUnavailable,
    TrailvaultError,
    VaultNotFound,
)

__all__ = ["PostgresStore", "masked_url"]

_DURABILITY = {"full": "on", "normal": "off"}
_SECRET_PARAMETERS = ("password", "sslpassword")
_CONNECT_TIMEOUT_S = 10
_POOL_TIMEOUT_S = 30.0
# pg_advisory_xact_lock keys (any fixed 64-bit numbers; "tvseq" and "tvmig" in ASCII).
_SEQ_LOCK = 0x7476736571
_MIGRATION_LOCK = 0x74766D6967
# Each connection stages a batch in a temporary table before it takes the sequence lock:
# PostgreSQL parses the bodies into jsonb there, in parallel across writers, and the
# locked part only moves the parsed rows into the log.
_STAGING = """CREATE TEMPORARY TABLE trailvault_incoming (
    ord integer NOT NULL, id text NOT NULL, app_key integer NOT NULL, channel_key integer NOT NULL,
    time bigint NOT NULL, received bigint NOT NULL, body text, body_sha256 bytea NOT NULL, fingerprint bytea,
    body_json jsonb GENERATED ALWAYS AS (body::jsonb) STORED
) ON COMMIT DELETE ROWS"""
_STAGE = (
    "COPY trailvault_incoming (ord, id, app_key, channel_key, time, received, body, body_sha256, fingerprint) "
    "FROM STDIN"
)
_MOVE = """INSERT INTO events (seq, id, app_key, channel_key, time, received, body, body_sha256, fingerprint, body_json)
    SELECT a.seq, s.id, s.app_key, s.channel_key, s.time, s.received, s.body, s.body_sha256, s.fingerprint, s.body_json
    FROM unnest(%s::integer[], %s::bigint[]) AS a (ord, seq) JOIN trailvault_incoming AS s ON s.ord = a.ord
    ORDER BY a.seq"""


def masked_url(url: str) -> str:
    """Return the URL with any password replaced by ``***``, fit for messages and logs.

    A password may hold ``@``, ``/``, ``?`` or ``#`` unencoded, so the user part is
    taken to run to the URL's last ``@`` (a query value holding one masks more of the
    URL, never less); ``password`` and ``sslpassword`` query parameters are masked;
    and any secret that libpq or a person could read in the URL (:func:`_passwords`)
    is scrubbed from what is left.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "***"
    user_part = ""
    if "@" in rest:
        credentials, rest = rest.rsplit("@", 1)
        user, colon, _ = credentials.partition(":")
        user_part = f"{user}:***@" if colon else f"{credentials}@"
    before_query, mark, query = rest.partition("?")
    if mark:
        query = "&".join(
            part.split("=", 1)[0] + "=***" if part.split("=", 1)[0] in _SECRET_PARAMETERS else part
            for part in query.split("&")
        )
    shown = f"{user_part}{before_query}{mark}{query}"
    # A few characters would be found in the host and words too; the masking above has them.
    for secret in sorted((found for found in _passwords(url) if len(found) > 3), key=len, reverse=True):
        shown = shown.replace(secret, "***")
    return f"{scheme}://{shown}"


class PostgresStore(RelationalStore):
    """A vault's store in a PostgreSQL database (see :class:`trailvault.adapters.store.base.Store`)."""

    def __init__(self, url: str, *, create: bool, durability: str = "full", pool_size: int = 8) -> None:
        if durability not in _DURABILITY:
            raise InvalidInput(f"durability: use 'full' or 'normal', not {durability!r}", field="durability")
        super().__init__()
        self.location = masked_url(url)
        self._url = url
        self._secrets = _passwords(url)
        self._synchronous_commit = _DURABILITY[durability]
        # One direct connection first: a wrong host, database or password gets its own
        # clear message here, where a pool would only time out.
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S) as conn:
                self._migrate(conn, create=create)
        except psycopg.Error as exc:
            raise self._translate(exc) from exc
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": _CONNECT_TIMEOUT_S},
            configure=self._configure,
            timeout=_POOL_TIMEOUT_S,
            name="trailvault",
            open=True,
        )

    # -- connections -------------------------------------------------------------

    def _configure(self, conn: Conn) -> None:
        # The sequence read after the lock must see the last writer's commit, whatever
        # the role's default isolation: READ COMMITTED takes a snapshot per statement.
        conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        conn.execute(f"SET synchronous_commit = {self._synchronous_commit}")
        conn.execute(_STAGING)

    def close(self) -> None:
        self._pool.close()

    _placeholder = "%s"
    _compile_listing = staticmethod(compile_listing)
    _read_tree_nodes = staticmethod(tree_nodes)
    _read_leaf_hashes = staticmethod(leaf_hashes)

    def _erase(self, tx: Conn, seq: int, reason: str) -> None:
        # trailvault_erase records the grant and removes the body with the owner's rights.
        tx.execute("SELECT trailvault_erase(%s, %s)", (seq, reason))

    def _lock_log(self, tx: Conn) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(%s)", (_SEQ_LOCK,))

    def _insert_app(self, tx: Conn, app: str, created_us: int) -> int:
        row = tx.execute(
            "INSERT INTO apps (name, created) VALUES (%s, %s) RETURNING app_key", (app, created_us)
        ).fetchone()
        assert row is not None
        return int(row[0])

    def _purge_rows(self, tx: Conn, seqs: list[int], reason: str) -> None:
        # trailvault_purge deletes, with the owner's rights, only seqs recorded in purged_events.
        tx.execute("SELECT trailvault_purge(%s::bigint[], %s)", (seqs, reason))

    def _bind_seqs(self, column: str, seqs: list[int]) -> tuple[str, Any]:
        return f"{column} = ANY(?::bigint[])", seqs

    def _bind_ids(self, ids: list[str]) -> tuple[str, Any]:
        return "id = ANY(?)", ids

    def _ensure_body_index(self, tx: Conn, path: tuple[str, ...], created_us: int) -> None:
        # trailvault_body_index checks the path again and runs with the owner's rights.
        tx.execute("SELECT trailvault_body_index(%s, %s)", (list(path), created_us))

    @contextmanager
    def _connection(self) -> Iterator[Conn]:
        """A pooled connection in autocommit mode (each statement its own transaction)."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise self._translate(exc) from exc
        except PoolTimeout as exc:
            raise StoreUnavailable(
                f"no connection to the PostgreSQL server at {self.location} within {_POOL_TIMEOUT_S:.0f} s; retry"
            ) from exc

    @contextmanager
    def _reading(self, limit: float | None = None) -> Iterator[Conn]:
        """A pooled connection; with ``limit``, inside a transaction whose statements the server cancels after it."""
        with self._connection() as conn:
            if limit is None:
                yield conn
                return
            try:
                with conn.transaction():
                    # SET takes no parameters; the value is a number this code computed.
                    conn.execute(f"SET LOCAL statement_timeout = {max(1, round(limit * 1000))}")
                    yield conn
            except psycopg.errors.QueryCanceled as exc:
                raise timed_out(limit) from exc

    @contextmanager
    def _transaction(self) -> Iterator[Conn]:
        """One transaction on a pooled connection, committed when the block succeeds."""
        with self._connection() as conn:
            try:
                with conn.transaction():
                    yield conn
            except psycopg.Error as exc:
                raise self._translate(exc) from exc

    def _migrate(self, conn: Conn, *, create: bool) -> None:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            if not create:
                raise VaultNotFound(
                    f"no vault at {self.location}; create one with `trailvault init --vault URL` or open_vault()"
                )
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version integer PRIMARY KEY, description text NOT NULL, applied bigint NOT NULL)"
                )
        latest = MIGRATIONS[-1].version
        schema = conn.execute("SELECT current_schema()").fetchone()
        if schema is None or schema[0] is None:
            raise InvalidInput("vault: the connection has no schema to create the vault in; check search_path")
        for migration in MIGRATIONS:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                # The owner-rights functions capture this path (SET search_path FROM CURRENT):
                # pg_catalog first (implicitly), the vault's schema, and pg_temp last, so no
                # table or function a caller creates can stand in for the vault's own.
                conn.execute(
                    psycopg.sql.SQL("SET LOCAL search_path = {}, pg_temp").format(psycopg.sql.Identifier(schema[0]))
                )
                self._apply_migration(conn, migration, latest)

    # -- events ------------------------------------------------------------------

    def append(self, batches: Sequence[Sequence[PendingEvent]]) -> list[AppendOutcome]:
        xact: list[str] = []
        grown: list[tuple[int, dict[TileKey, bytes]]] = []
        outcomes: list[AppendOutcome] = []
        try:
            with self._transaction() as tx:
                outcomes = self._append_in(tx, batches, xact, grown)
        except StoreUnavailable as lost:
            if not grown or not xact:
                raise  # lost before the commit: the transaction rolled back
            try:
                committed = self._committed(xact[0])
            except StoreUnavailable:
                raise StoreUnavailable(
                    f"the connection to {self.location} was lost while committing and the server cannot be asked "
                    "whether the batch was kept; look its events up by id before posting them again"
                ) from lost
            if not committed:
                raise
            self._remember(grown)
            return outcomes
        self._remember(grown)
        return outcomes

    def _committed(self, xact: str) -> bool:
        """After the connection was lost around a commit: did that transaction commit? Ask a fresh connection.

        A transaction still in progress holds the sequence lock; waiting for the lock
        waits for it to end. Raises StoreUnavailable when the server cannot say.
        """
        with self._reading() as conn:
            status = conn.execute("SELECT pg_xact_status(%s::xid8)", (xact,)).fetchone()
            if status is not None and status[0] == "in progress":
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SEQ_LOCK,))
                status = conn.execute("SELECT pg_xact_status(%s::xid8)", (xact,)).fetchone()
        return status is not None and status[0] == "committed"

    def _append_in(
        self,
        tx: Conn,
        batches: Sequence[Sequence[PendingEvent]],
        xact: list[str] | None = None,
        grown: list[tuple[int, dict[TileKey, bytes]]] | None = None,
    ) -> list[AppendOutcome]:
        """Append inside the caller's transaction: stage the rows, lock the sequence, move them, grow the tree.

        The transaction's id goes to ``xact``, so that a commit whose answer was lost can be
        looked up afterwards; the grown tree's size and partial tiles to ``grown``.
        Everything that does not need the seq (parsing bodies, most of each leaf's
        bytes) happens before the lock, so writers overlap on it.
        """
        parts = self._stage(tx, batches)
        self._lock_log(tx)
        row = tx.execute("SELECT coalesce(max(seq), 0) + 1, pg_current_xact_id()::text FROM events").fetchone()
        if xact is not None and row is not None:
            xact.append(str(row[1]))
        outcomes, rows, leaves, origins = admit(
            batches,
            int(row[0]) if row else 1,
            lambda event: self._keys_for(tx, event),
            lambda batch: self._kept_ids(tx, batch),
            parts,
        )
        if rows:
            # Admission keeps out conflicting batches and repeated ids: move only the rows it gave seqs.
            tx.execute(_MOVE, (origins, [row[0] for row in rows]))
            size = rows[0][0] - 1
            tiles = grow_tree(tx, size, leaves, self._partials.get(size))
            if grown is not None:
                grown.append((size + len(leaves), tiles))
        return outcomes

    def _stage(self, tx: Conn, batches: Sequence[Sequence[PendingEvent]]) -> list[list[LeafParts]]:
        """COPY every event into the connection's staging table, numbered in order across the batches.

        Returns every event's leaf parts, shaped like ``batches``.
        """
        parts = [[leaf_parts(event, event.body_sha256) for event in batch] for batch in batches]
        # Keys first: the connection can run no other statement while a COPY is open.
        events = [event for batch in batches for event in batch]
        keys = [self._keys_for(tx, event) for event in events]
        with tx.cursor().copy(_STAGE) as copy:
            for number, (event, (app_key, channel_key)) in enumerate(zip(events, keys, strict=True)):
                copy.write_row((number, event.id, app_key, channel_key, *event[3:]))
        return parts

    # -- helpers -----------------------------------------------------------------

    def _translate(self, exc: psycopg.Error) -> TrailvaultError:
        """Turn a driver error into the library's; no password ever reaches the message."""
        text = str(exc).strip().split("\n")[0]
        for secret in self._secrets:
            text = text.replace(secret, "***")
        state = exc.sqlstate
        if state == "TV001":
            return AppendOnlyViolation(text.removeprefix("trailvault: "))
        if isinstance(exc, psycopg.errors.UniqueViolation):
            return Conflict("another writer changed the same record first; retry")
        if state in ("28P01", "28000") or "password authentication failed" in text:
            return InvalidInput(
                f"vault: the PostgreSQL server refused the login ({text}); check the user and password "
                f"of {self.location}",
                field="vault",
            )
        if state == "3D000" or (state is None and "does not exist" in text):
            return VaultNotFound(f"vault: {text}; create the database first (createdb), then `trailvault init`")
        if state == "42501":
            return TrailvaultError(
                f"the database role lacks a privilege trailvault needs ({text}); see docs/storage.md, PostgreSQL roles"
            )
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return StoreUnavailable(
                f"the PostgreSQL server at {self.location} cannot be reached or dropped the connection ({text}); "
                "nothing of the interrupted call was kept; retry"
            )
        return StoreUnavailable(f"the vault database failed ({text}); retry, and check the server log if it repeats")


def _passwords(url: str) -> list[str]:
    """Every secret the URL may hold, raw and decoded, to scrub from messages.

    What libpq reads from it, and every other reading of a malformed one: the user
    part up to the first or the last ``@``, the query after the first ``?`` or after
    the host.
    """
    found: list[str] = []
    with contextlib.suppress(psycopg.Error):  # a URL libpq cannot read: the readings below still count
        found += [str(value) for name, value in conninfo_to_dict(url).items() if name in _SECRET_PARAMETERS and value]
    _, _, rest = url.partition("://")
    if "@" in rest:
        for credentials in (rest.split("@", 1)[0], rest.rsplit("@", 1)[0]):
            if ":" in credentials:
                found.append(credentials.split(":", 1)[1])
    for query in (rest.partition("?")[2], rest.rsplit("@", 1)[-1].partition("?")[2]):
        found += [value for name, value in parse_qsl(query) if name in _SECRET_PARAMETERS and value]
        found += [part.split("=", 1)[1] for part in query.split("&") if part.split("=", 1)[0] in _SECRET_PARAMETERS]
    return sorted({secret for value in found for secret in (value, unquote(value)) if secret})
