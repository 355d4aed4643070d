"""Versioned migrations of the SQLite store, applied in order, each in its own transaction.

Never edit a released migration: add the next one. The ``schema_migrations``
table records what has been applied; a vault written by a newer trailvault is
refused rather than misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from trailvault.adapters.store.sqlite.tree import backfill_tiles

__all__ = ["MIGRATIONS", "Migration"]


@dataclass(frozen=True)
class Migration:
    """Statements to run in order, then an optional Python step in the same transaction."""

    version: int
    description: str
    statements: tuple[str, ...]
    after: Callable[[sqlite3.Connection], None] | None = None


def _refuse_changes(table: str, message: str) -> tuple[str, str]:
    """Triggers refusing every UPDATE and DELETE of ``table`` (names are ours, never user input)."""

    def trigger(verb: str) -> str:
        return f"""CREATE TRIGGER {table}_refuse_{verb.lower()} BEFORE {verb} ON {table}
    BEGIN SELECT RAISE(ABORT, 'trailvault: {message}'); END"""

    return trigger("UPDATE"), trigger("DELETE")


_APPEND_ONLY_MESSAGE = "trailvault: events are append-only; a body is removed only through redact or purge"

_INITIAL = (
    """CREATE TABLE vault_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE apps (
        app_key INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL
    )""",
    """CREATE TABLE channels (
        channel_key INTEGER PRIMARY KEY,
        app_key INTEGER NOT NULL REFERENCES apps (app_key),
        name TEXT NOT NULL,
        created INTEGER NOT NULL,
        UNIQUE (app_key, name)
    )""",
    """CREATE TABLE schema_versions (
        channel_key INTEGER NOT NULL REFERENCES channels (channel_key),
        version INTEGER NOT NULL,
        schema TEXT NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY (channel_key, version)
    ) WITHOUT ROWID""",
    # seq is the rowid: appends go to the right edge of the table's B-tree. Ids and
    # names live in side indexes; app and channel are small integer keys.
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        app_key INTEGER NOT NULL,
        channel_key INTEGER NOT NULL,
        time INTEGER NOT NULL,
        received INTEGER NOT NULL,
        body TEXT,
        body_sha256 BLOB NOT NULL,
        fingerprint BLOB
    )""",
    "CREATE UNIQUE INDEX events_by_id ON events (app_key, id)",
    # Every index also ends in the rowid (seq), so these serve ORDER BY time, seq.
    "CREATE INDEX events_by_channel_time ON events (channel_key, time)",
    "CREATE INDEX events_by_app_time ON events (app_key, time)",
    """CREATE TABLE body_indexes (
        path TEXT PRIMARY KEY,
        index_name TEXT NOT NULL,
        created INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # The only way a kept event may change: redact or purge writes a grant for a seq
    # range in the same transaction as its UPDATE/DELETE and removes it again.
    """CREATE TABLE erasure_grants (
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        reason TEXT NOT NULL
    )""",
    f"""CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
    WHEN NOT (
        NEW.body IS NULL AND NEW.seq IS OLD.seq AND NEW.id IS OLD.id
        AND NEW.app_key IS OLD.app_key AND NEW.channel_key IS OLD.channel_key
        AND NEW.time IS OLD.time AND NEW.received IS OLD.received
        AND NEW.body_sha256 IS OLD.body_sha256 AND NEW.fingerprint IS OLD.fingerprint
        AND EXISTS (SELECT 1 FROM erasure_grants WHERE NEW.seq BETWEEN first_seq AND last_seq)
    )
    BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END""",
    f"""CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    WHEN NOT EXISTS (SELECT 1 FROM erasure_grants WHERE OLD.seq BETWEEN first_seq AND last_seq)
    BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END""",
    *_refuse_changes("channels", "channels are append-only"),
    *_refuse_changes("schema_versions", "schema versions are append-only"),
)

_TILES = (
    # The Merkle tree, stored as tiles (trailvault.core.integrity.tiles): derived from the
    # entries, so `verify` can rebuild and compare it; rows only ever grow.
    """CREATE TABLE merkle_tiles (
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hashes BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID""",
    """CREATE TRIGGER merkle_tiles_only_grow BEFORE UPDATE ON merkle_tiles
    WHEN NEW.level IS NOT OLD.level OR NEW.idx IS NOT OLD.idx
        OR length(NEW.hashes) <= length(OLD.hashes)
        OR substr(NEW.hashes, 1, length(OLD.hashes)) IS NOT OLD.hashes
    BEGIN SELECT RAISE(ABORT, 'trailvault: Merkle tiles only grow'); END""",
    """CREATE TRIGGER merkle_tiles_refuse_delete BEFORE DELETE ON merkle_tiles
    BEGIN SELECT RAISE(ABORT, 'trailvault: Merkle tiles only grow'); END""",
)


_CHECKPOINTS = (
    # Every signed checkpoint is kept: a later verify checks each one's root and signature.
    """CREATE TABLE checkpoints (
        checkpoint_key INTEGER PRIMARY KEY,
        size INTEGER NOT NULL,
        root BLOB NOT NULL,
        timestamp INTEGER NOT NULL,
        note TEXT NOT NULL
    )""",
    "CREATE INDEX checkpoints_by_size ON checkpoints (size, timestamp)",
    *_refuse_changes("checkpoints", "checkpoints are append-only"),
)

_API_KEYS = (
    # API keys: only the secret's SHA-256 is kept. A key is never deleted, and the one
    # change it takes is being revoked, once, so the table is also a record of who held access.
    """CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY,
        app_key INTEGER NOT NULL REFERENCES apps (app_key),
        name TEXT NOT NULL,
        secret_sha256 BLOB NOT NULL,
        scopes TEXT NOT NULL,
        channels TEXT,
        created INTEGER NOT NULL,
        revoked INTEGER
    ) WITHOUT ROWID""",
    "CREATE INDEX api_keys_by_app ON api_keys (app_key, created)",
    """CREATE TRIGGER api_keys_only_revoke BEFORE UPDATE ON api_keys
    WHEN OLD.revoked IS NOT NULL OR NEW.revoked IS NULL OR NEW.key_id IS NOT OLD.key_id
        OR NEW.app_key IS NOT OLD.app_key OR NEW.name IS NOT OLD.name
        OR NEW.secret_sha256 IS NOT OLD.secret_sha256 OR NEW.scopes IS NOT OLD.scopes
        OR NEW.channels IS NOT OLD.channels OR NEW.created IS NOT OLD.created
    BEGIN SELECT RAISE(ABORT, 'trailvault: an API key is only ever revoked, once'); END""",
    """CREATE TRIGGER api_keys_refuse_delete BEFORE DELETE ON api_keys
    BEGIN SELECT RAISE(ABORT, 'trailvault: API keys are revoked, never deleted'); END""",
)


_ARCHIVING = (
    # A batching task per batch-events-for-archiving call; `heartbeat` shows it is alive,
    # so a task whose process died does not block its app's next one for ever.
    """CREATE TABLE archive_tasks (
        task_id TEXT PRIMARY KEY,
        app_key INTEGER NOT NULL REFERENCES apps (app_key),
        time_from INTEGER NOT NULL,
        time_to INTEGER NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        created INTEGER NOT NULL,
        heartbeat INTEGER NOT NULL,
        finished INTEGER
    ) WITHOUT ROWID""",
    # One batching task at a time per app: a second OPEN one is refused by the database itself.
    "CREATE UNIQUE INDEX archive_tasks_one_open ON archive_tasks (app_key) WHERE status = 'OPEN'",
    """CREATE TABLE archive_batches (
        batch_key INTEGER PRIMARY KEY,
        archive_id TEXT NOT NULL UNIQUE,
        app_key INTEGER NOT NULL REFERENCES apps (app_key),
        task_id TEXT NOT NULL,
        time_from INTEGER NOT NULL,
        time_to INTEGER NOT NULL,
        event_count INTEGER NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        checkpoint_size INTEGER NOT NULL,
        record_seq INTEGER NOT NULL,
        created INTEGER NOT NULL,
        archived INTEGER,
        purged INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX archive_batches_by_app ON archive_batches (app_key, archived, batch_key)",
    # A batch changes only by being marked archived (once) and by counting what purge removed.
    """CREATE TRIGGER archive_batches_only_mark BEFORE UPDATE ON archive_batches
    WHEN NEW.batch_key IS NOT OLD.batch_key OR NEW.archive_id IS NOT OLD.archive_id
        OR NEW.app_key IS NOT OLD.app_key OR NEW.task_id IS NOT OLD.task_id
        OR NEW.event_count IS NOT OLD.event_count OR NEW.first_seq IS NOT OLD.first_seq
        OR NEW.last_seq IS NOT OLD.last_seq OR NEW.checkpoint_size IS NOT OLD.checkpoint_size
        OR NEW.time_from IS NOT OLD.time_from OR NEW.time_to IS NOT OLD.time_to OR NEW.created IS NOT OLD.created
        OR NEW.record_seq IS NOT OLD.record_seq
        OR (NEW.archived IS NOT OLD.archived AND (OLD.archived IS NOT NULL OR NEW.archived IS NULL))
        OR NEW.purged < OLD.purged OR NEW.purged > NEW.event_count
        OR (NEW.purged > OLD.purged AND NEW.archived IS NULL)
    BEGIN SELECT RAISE(ABORT, 'trailvault: an archive batch is only marked archived, once, and purged'); END""",
    """CREATE TRIGGER archive_batches_refuse_delete BEFORE DELETE ON archive_batches
    BEGIN SELECT RAISE(ABORT, 'trailvault: archive batches are kept'); END""",
    # Which batch holds each batched event: an event is in one batch at most.
    """CREATE TABLE archive_members (
        seq INTEGER PRIMARY KEY,
        batch_key INTEGER NOT NULL
    )""",
    "CREATE INDEX archive_members_by_batch ON archive_members (batch_key, seq)",
    *_refuse_changes("archive_members", "archive batch members are kept"),
    # Each purged event, and the seq of the purge record (trailvault.purges) that names it:
    # verify accepts a missing row only when it is here and the record's digest agrees.
    """CREATE TABLE purged_events (
        seq INTEGER PRIMARY KEY,
        batch_key INTEGER NOT NULL,
        record_seq INTEGER NOT NULL
    )""",
    *_refuse_changes("purged_events", "purged events are kept on record"),
    """CREATE TABLE legal_holds (
        hold_key INTEGER PRIMARY KEY,
        app_key INTEGER NOT NULL REFERENCES apps (app_key),
        name TEXT NOT NULL,
        channel TEXT,
        time_from INTEGER,
        time_to INTEGER,
        reason TEXT NOT NULL,
        created INTEGER NOT NULL,
        cleared INTEGER
    )""",
    "CREATE UNIQUE INDEX legal_holds_set ON legal_holds (app_key, name) WHERE cleared IS NULL",
    # Clearing is the one change a hold takes, once; a cleared hold stays on record.
    """CREATE TRIGGER legal_holds_only_clear BEFORE UPDATE ON legal_holds
    WHEN OLD.cleared IS NOT NULL OR NEW.cleared IS NULL OR NEW.hold_key IS NOT OLD.hold_key
        OR NEW.app_key IS NOT OLD.app_key OR NEW.name IS NOT OLD.name OR NEW.channel IS NOT OLD.channel
        OR NEW.time_from IS NOT OLD.time_from OR NEW.time_to IS NOT OLD.time_to
        OR NEW.reason IS NOT OLD.reason OR NEW.created IS NOT OLD.created
    BEGIN SELECT RAISE(ABORT, 'trailvault: a legal hold is only ever cleared, once'); END""",
    """CREATE TRIGGER legal_holds_refuse_delete BEFORE DELETE ON legal_holds
    BEGIN SELECT RAISE(ABORT, 'trailvault: legal holds are kept on record'); END""",
)

_OCI_KEYS = (
    # The RSA public key an API key's holder signs OCI requests with (issue 17); its
    # fingerprint finds the key, so it is unique across the vault. Set once, at creation.
    "ALTER TABLE api_keys ADD COLUMN oci_public_key TEXT",
    "ALTER TABLE api_keys ADD COLUMN oci_fingerprint TEXT",
    "CREATE UNIQUE INDEX api_keys_by_oci_fingerprint ON api_keys (oci_fingerprint) WHERE oci_fingerprint IS NOT NULL",
    """CREATE TRIGGER api_keys_oci_key_fixed BEFORE UPDATE ON api_keys
    WHEN NEW.oci_public_key IS NOT OLD.oci_public_key OR NEW.oci_fingerprint IS NOT OLD.oci_fingerprint
    BEGIN SELECT RAISE(ABORT, 'trailvault: an API key is only ever revoked, once'); END""",
)


def _case_insensitive_indexes(conn: sqlite3.Connection) -> None:
    """Give every indexed body field built before migration 5 its lower-case index too."""
    from trailvault.adapters.store.sqlite.sql import body_index_statements

    for path, index_name in conn.execute("SELECT path, index_name FROM body_indexes").fetchall():
        conn.execute(body_index_statements(index_name, tuple(path.split(".")))[1])


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, channels, schema versions, append-only triggers", _INITIAL),
    # A vault from before the tree existed gets its existing entries hashed in.
    Migration(2, "Merkle tree tiles", _TILES, after=backfill_tiles),
    Migration(3, "signed checkpoints", _CHECKPOINTS),
    Migration(4, "API keys", _API_KEYS),
    # `eq` on text ignores case (SCIM); each indexed field gets an index it can use.
    Migration(5, "lower-case indexes of indexed body fields", (), after=_case_insensitive_indexes),
    Migration(6, "archive tasks, batches, purged events and legal holds", _ARCHIVING),
    Migration(7, "OCI public keys of API keys", _OCI_KEYS),
)
