"""Versioned migrations of the PostgreSQL store, with the same shape and numbers as SQLite's.

Never edit a released migration: add the next one. Migrations run as the role that
owns the tables (see docs/storage.md, "PostgreSQL roles"); the application role
needs only the privileges :data:`APP_GRANTS` lists: SELECT and INSERT, and EXECUTE
on the functions below, which are the only ways a row ever changes:

- ``trailvault_put_tiles`` grows Merkle tiles (a tile only ever gets longer);
- ``trailvault_erase`` removes one body for ``redact``, leaving the grant it used;
- ``trailvault_body_index`` builds the expression index of an ``"index": true`` field.

They are ``SECURITY DEFINER``: they run with the owner's rights, so the application
role holds no UPDATE or DELETE privilege at all, and the triggers still refuse
every change that is not one of these.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["APP_GRANTS", "MIGRATIONS", "Migration"]


@dataclass(frozen=True)
class Migration:
    """Statements run in order, in one transaction."""

    version: int
    description: str
    statements: tuple[str, ...]


_APPEND_ONLY = "trailvault: events are append-only; a body is removed only through redact or purge"


def _refuse_changes(table: str, message: str) -> tuple[str, str]:
    """A trigger function and trigger refusing every UPDATE and DELETE of ``table`` (our names only)."""
    return (
        f"""CREATE FUNCTION {table}_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'trailvault: {message}' USING ERRCODE = 'TV001'; END $$""",
        f"""CREATE TRIGGER {table}_refuse_change BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {table}_refuse_change()""",
    )


_INITIAL = (
    """CREATE TABLE vault_meta (
        key text PRIMARY KEY,
        value text NOT NULL
    )""",
    """CREATE TABLE apps (
        app_key integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL UNIQUE,
        created bigint NOT NULL
    )""",
    """CREATE TABLE channels (
        channel_key integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        app_key integer NOT NULL REFERENCES apps (app_key),
        name text NOT NULL,
        created bigint NOT NULL,
        UNIQUE (app_key, name)
    )""",
    """CREATE TABLE schema_versions (
        channel_key integer NOT NULL REFERENCES channels (channel_key),
        version integer NOT NULL,
        schema text NOT NULL,
        created bigint NOT NULL,
        PRIMARY KEY (channel_key, version)
    )""",
    # body is the canonical text that body_sha256 hashes (jsonb would reorder keys and
    # renormalise numbers, so it cannot be hashed); body_json is the same document as
    # jsonb, for filters and expression indexes. PostgreSQL parses it from body while a
    # batch is staged, before the sequence lock (see store.py), so it is a plain column.
    """CREATE TABLE events (
        seq bigint PRIMARY KEY,
        id text NOT NULL,
        app_key integer NOT NULL,
        channel_key integer NOT NULL,
        time bigint NOT NULL,
        received bigint NOT NULL,
        body text,
        body_sha256 bytea NOT NULL,
        fingerprint bytea,
        body_json jsonb
    )""",
    "CREATE UNIQUE INDEX events_by_id ON events (app_key, id)",
    "CREATE INDEX events_by_channel_time ON events (channel_key, time, seq)",
    "CREATE INDEX events_by_app_time ON events (app_key, time, seq)",
    """CREATE TABLE body_indexes (
        path text PRIMARY KEY,
        index_name text NOT NULL,
        created bigint NOT NULL
    )""",
    # A grant names the seq range one redact or purge may change; it is kept, so the
    # database itself records every sanctioned change.
    """CREATE TABLE erasure_grants (
        first_seq bigint NOT NULL,
        last_seq bigint NOT NULL,
        reason text NOT NULL,
        txid bigint NOT NULL DEFAULT txid_current()
    )""",
    f"""CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM erasure_grants
                   WHERE OLD.seq BETWEEN first_seq AND last_seq AND txid = txid_current()) THEN
            IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
            IF NEW.body IS NULL AND NEW.body_json IS NULL AND NEW.seq = OLD.seq AND NEW.id = OLD.id
               AND NEW.app_key = OLD.app_key AND NEW.channel_key = OLD.channel_key
               AND NEW.time = OLD.time AND NEW.received = OLD.received
               AND NEW.body_sha256 = OLD.body_sha256
               AND NEW.fingerprint IS NOT DISTINCT FROM OLD.fingerprint THEN
                RETURN NEW;
            END IF;
        END IF;
        RAISE EXCEPTION '{_APPEND_ONLY}' USING ERRCODE = 'TV001';
    END $$""",
    """CREATE TRIGGER events_refuse_change BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change()""",
    *_refuse_changes("channels", "channels are append-only"),
    *_refuse_changes("schema_versions", "schema versions are append-only"),
    *_refuse_changes("erasure_grants", "erasure grants are append-only"),
    """CREATE FUNCTION trailvault_erase(p_seq bigint, p_reason text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO erasure_grants (first_seq, last_seq, reason) VALUES (p_seq, p_seq, p_reason);
        UPDATE events SET body = NULL, body_json = NULL WHERE seq = p_seq;
    END $$""",
    # Paths reach here already checked by trailvault.core.query.body_path; the function checks
    # them again so that the application role cannot use it to run other DDL.
    """CREATE FUNCTION trailvault_body_index(p_path text[], p_created bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    DECLARE
        dotted text := array_to_string(p_path, '.');
        index_name text := 'body_' || left(encode(sha256(convert_to(dotted, 'UTF8')), 'hex'), 16);
        segment text;
    BEGIN
        IF EXISTS (SELECT 1 FROM body_indexes WHERE path = dotted) THEN RETURN; END IF;
        FOREACH segment IN ARRAY p_path LOOP
            IF segment !~ '^[A-Za-z_@][A-Za-z0-9_@-]*$' THEN
                RAISE EXCEPTION 'trailvault: % is not a body path', dotted USING ERRCODE = '22023';
            END IF;
        END LOOP;
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON events (channel_key, (body_json #> %L), time, seq) '
                       'WHERE (body_json #> %L) IS NOT NULL', index_name, p_path, p_path);
        INSERT INTO body_indexes VALUES (dotted, index_name, p_created);
    END $$""",
    "REVOKE EXECUTE ON FUNCTION trailvault_erase(bigint, text), trailvault_body_index(text[], bigint) FROM PUBLIC",
)

_TILES = (
    """CREATE TABLE merkle_tiles (
        level integer NOT NULL,
        idx bigint NOT NULL,
        hashes bytea NOT NULL,
        PRIMARY KEY (level, idx)
    )""",
    """CREATE FUNCTION merkle_tiles_only_grow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.level = OLD.level AND NEW.idx = OLD.idx
           AND length(NEW.hashes) > length(OLD.hashes)
           AND substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) = OLD.hashes THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'trailvault: Merkle tiles only grow' USING ERRCODE = 'TV001';
    END $$""",
    """CREATE TRIGGER merkle_tiles_only_grow BEFORE UPDATE OR DELETE ON merkle_tiles
    FOR EACH ROW EXECUTE FUNCTION merkle_tiles_only_grow()""",
    """CREATE FUNCTION trailvault_put_tiles(p_levels integer[], p_idxs bigint[], p_hashes bytea[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        INSERT INTO merkle_tiles (level, idx, hashes)
        SELECT * FROM unnest(p_levels, p_idxs, p_hashes)
        ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes
    $$""",
    # PostgreSQL lets PUBLIC execute new functions; only the roles granted below may.
    "REVOKE EXECUTE ON FUNCTION trailvault_put_tiles(integer[], bigint[], bytea[]) FROM PUBLIC",
)

_CHECKPOINTS = (
    """CREATE TABLE checkpoints (
        checkpoint_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        size bigint NOT NULL,
        root bytea NOT NULL,
        timestamp bigint NOT NULL,
        note text NOT NULL
    )""",
    "CREATE INDEX checkpoints_by_size ON checkpoints (size, timestamp)",
    *_refuse_changes("checkpoints", "checkpoints are append-only"),
)

_API_KEYS = (
    """CREATE TABLE api_keys (
        key_id text PRIMARY KEY,
        app_key integer NOT NULL REFERENCES apps (app_key),
        name text NOT NULL,
        secret_sha256 bytea NOT NULL,
        scopes text NOT NULL,
        channels text,
        created bigint NOT NULL,
        revoked bigint
    )""",
    "CREATE INDEX api_keys_by_app ON api_keys (app_key, created)",
    """CREATE FUNCTION api_keys_only_revoke() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'trailvault: API keys are revoked, never deleted' USING ERRCODE = 'TV001';
        END IF;
        IF OLD.revoked IS NOT NULL OR NEW.revoked IS NULL
            OR (NEW.key_id, NEW.app_key, NEW.name, NEW.secret_sha256, NEW.scopes, NEW.created)
               IS DISTINCT FROM (OLD.key_id, OLD.app_key, OLD.name, OLD.secret_sha256, OLD.scopes, OLD.created)
            OR NEW.channels IS DISTINCT FROM OLD.channels THEN
            RAISE EXCEPTION 'trailvault: an API key is only ever revoked, once' USING ERRCODE = 'TV001';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER api_keys_only_revoke BEFORE UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_only_revoke()""",
)

_BODY_INDEX_CI = (
    # `eq` on text ignores case (SCIM); each indexed field also gets an index on its lower-case text.
    """CREATE FUNCTION trailvault_body_index_ci(p_path text[], p_index_name text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    BEGIN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON events (channel_key, lower(body_json #>> %L), time, seq) '
                       'WHERE jsonb_typeof(body_json #> %L) = %L',
                       p_index_name || '_ci', p_path, p_path, 'string');
    END $$""",
    "REVOKE EXECUTE ON FUNCTION trailvault_body_index_ci(text[], text) FROM PUBLIC",
    """CREATE OR REPLACE FUNCTION trailvault_body_index(p_path text[], p_created bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    DECLARE
        dotted text := array_to_string(p_path, '.');
        index_name text := 'body_' || left(encode(sha256(convert_to(dotted, 'UTF8')), 'hex'), 16);
        segment text;
    BEGIN
        IF EXISTS (SELECT 1 FROM body_indexes WHERE path = dotted) THEN RETURN; END IF;
        FOREACH segment IN ARRAY p_path LOOP
            IF segment !~ '^[A-Za-z_@][A-Za-z0-9_@-]*$' THEN
                RAISE EXCEPTION 'trailvault: % is not a body path', dotted USING ERRCODE = '22023';
            END IF;
        END LOOP;
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON events (channel_key, (body_json #> %L), time, seq) '
                       'WHERE (body_json #> %L) IS NOT NULL', index_name, p_path, p_path);
        PERFORM trailvault_body_index_ci(p_path, index_name);
        INSERT INTO body_indexes VALUES (dotted, index_name, p_created);
    END $$""",
    """DO $$ DECLARE indexed record; BEGIN
        FOR indexed IN SELECT path, index_name FROM body_indexes LOOP
            PERFORM trailvault_body_index_ci(string_to_array(indexed.path, '.'), indexed.index_name);
        END LOOP;
    END $$""",
)

_ARCHIVING = (
    """CREATE TABLE archive_tasks (
        task_id text PRIMARY KEY,
        app_key integer NOT NULL REFERENCES apps (app_key),
        time_from bigint NOT NULL,
        time_to bigint NOT NULL,
        status text NOT NULL,
        error text,
        created bigint NOT NULL,
        heartbeat bigint NOT NULL,
        finished bigint
    )""",
    # One batching task at a time per app: a second OPEN one is refused by the database itself.
    "CREATE UNIQUE INDEX archive_tasks_one_open ON archive_tasks (app_key) WHERE status = 'OPEN'",
    """CREATE TABLE archive_batches (
        batch_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        archive_id text NOT NULL UNIQUE,
        app_key integer NOT NULL REFERENCES apps (app_key),
        task_id text NOT NULL,
        time_from bigint NOT NULL,
        time_to bigint NOT NULL,
        event_count bigint NOT NULL,
        first_seq bigint NOT NULL,
        last_seq bigint NOT NULL,
        checkpoint_size bigint NOT NULL,
        record_seq bigint NOT NULL,
        created bigint NOT NULL,
        archived bigint,
        purged bigint NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX archive_batches_by_app ON archive_batches (app_key, archived, batch_key)",
    """CREATE FUNCTION archive_batches_only_mark() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE'
           AND (NEW.archived IS NOT DISTINCT FROM OLD.archived OR (OLD.archived IS NULL AND NEW.archived IS NOT NULL))
           AND NEW.purged >= OLD.purged AND NEW.purged <= NEW.event_count
           AND (NEW.purged = OLD.purged OR NEW.archived IS NOT NULL)
           AND (NEW.batch_key, NEW.archive_id, NEW.app_key, NEW.task_id, NEW.time_from, NEW.time_to,
                NEW.event_count, NEW.first_seq, NEW.last_seq, NEW.checkpoint_size, NEW.record_seq, NEW.created)
               IS NOT DISTINCT FROM
               (OLD.batch_key, OLD.archive_id, OLD.app_key, OLD.task_id, OLD.time_from, OLD.time_to,
                OLD.event_count, OLD.first_seq, OLD.last_seq, OLD.checkpoint_size, OLD.record_seq, OLD.created) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'trailvault: an archive batch is only marked archived, once, and purged'
            USING ERRCODE = 'TV001';
    END $$""",
    """CREATE TRIGGER archive_batches_only_mark BEFORE UPDATE OR DELETE ON archive_batches
    FOR EACH ROW EXECUTE FUNCTION archive_batches_only_mark()""",
    """CREATE TABLE archive_members (
        seq bigint PRIMARY KEY,
        batch_key bigint NOT NULL
    )""",
    "CREATE INDEX archive_members_by_batch ON archive_members (batch_key, seq)",
    *_refuse_changes("archive_members", "archive batch members are kept"),
    """CREATE TABLE purged_events (
        seq bigint PRIMARY KEY,
        batch_key bigint NOT NULL,
        record_seq bigint NOT NULL,
        txid bigint NOT NULL DEFAULT txid_current()
    )""",
    *_refuse_changes("purged_events", "purged events are kept on record"),
    """CREATE TABLE legal_holds (
        hold_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        app_key integer NOT NULL REFERENCES apps (app_key),
        name text NOT NULL,
        channel text,
        time_from bigint,
        time_to bigint,
        reason text NOT NULL,
        created bigint NOT NULL,
        cleared bigint
    )""",
    "CREATE UNIQUE INDEX legal_holds_set ON legal_holds (app_key, name) WHERE cleared IS NULL",
    """CREATE FUNCTION legal_holds_only_clear() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.cleared IS NULL AND NEW.cleared IS NOT NULL
           AND (NEW.hold_key, NEW.app_key, NEW.name, NEW.channel, NEW.time_from, NEW.time_to, NEW.reason, NEW.created)
               IS NOT DISTINCT FROM
               (OLD.hold_key, OLD.app_key, OLD.name, OLD.channel, OLD.time_from, OLD.time_to, OLD.reason, OLD.created)
        THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'trailvault: a legal hold is only ever cleared, once' USING ERRCODE = 'TV001';
    END $$""",
    """CREATE TRIGGER legal_holds_only_clear BEFORE UPDATE OR DELETE ON legal_holds
    FOR EACH ROW EXECUTE FUNCTION legal_holds_only_clear()""",
    # Purge: the rows of archived events go, with the owner's rights and a kept grant, only for
    # seqs recorded in purged_events in this same transaction, members of a batch marked
    # archived, and under no legal hold that is set.
    """CREATE FUNCTION trailvault_purge(p_seqs bigint[], p_reason text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    BEGIN
        IF EXISTS (
            SELECT 1 FROM unnest(p_seqs) AS s (seq)
            WHERE NOT EXISTS (
                SELECT 1 FROM purged_events AS p
                JOIN archive_members AS m ON m.seq = p.seq AND m.batch_key = p.batch_key
                JOIN archive_batches AS b ON b.batch_key = p.batch_key
                WHERE p.seq = s.seq AND p.txid = txid_current() AND b.archived IS NOT NULL))
        THEN
            RAISE EXCEPTION 'trailvault: only recorded purges of archived batches remove events'
                USING ERRCODE = 'TV001';
        END IF;
        IF EXISTS (
            SELECT 1 FROM unnest(p_seqs) AS s (seq)
            JOIN events AS e ON e.seq = s.seq
            JOIN channels AS c ON c.channel_key = e.channel_key
            JOIN legal_holds AS h ON h.app_key = e.app_key AND h.cleared IS NULL
                AND (h.channel IS NULL OR h.channel = c.name)
                AND (h.time_from IS NULL OR e.time >= h.time_from) AND (h.time_to IS NULL OR e.time < h.time_to))
        THEN
            RAISE EXCEPTION 'trailvault: a legal hold covers events of this purge' USING ERRCODE = 'TV001';
        END IF;
        INSERT INTO erasure_grants (first_seq, last_seq, reason)
        SELECT min(seq), max(seq), p_reason FROM unnest(p_seqs) AS s (seq);
        DELETE FROM events WHERE seq = ANY (p_seqs);
    END $$""",
    "REVOKE EXECUTE ON FUNCTION trailvault_purge(bigint[], text) FROM PUBLIC",
)
_OCI_KEYS = (
    # The RSA public key an API key's holder signs OCI requests with (issue 17); its
    # fingerprint finds the key, so it is unique across the vault. Set once, at creation.
    "ALTER TABLE api_keys ADD COLUMN oci_public_key text, ADD COLUMN oci_fingerprint text",
    "CREATE UNIQUE INDEX api_keys_by_oci_fingerprint ON api_keys (oci_fingerprint) WHERE oci_fingerprint IS NOT NULL",
    """CREATE FUNCTION api_keys_oci_key_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF (NEW.oci_public_key, NEW.oci_fingerprint) IS DISTINCT FROM (OLD.oci_public_key, OLD.oci_fingerprint) THEN
            RAISE EXCEPTION 'trailvault: an API key is only ever revoked, once' USING ERRCODE = 'TV001';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER api_keys_oci_key_fixed BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_oci_key_fixed()""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, channels, schema versions, append-only triggers", _INITIAL),
    Migration(2, "Merkle tree tiles", _TILES),
    Migration(3, "signed checkpoints", _CHECKPOINTS),
    Migration(4, "API keys", _API_KEYS),
    Migration(5, "lower-case indexes of indexed body fields", _BODY_INDEX_CI),
    Migration(6, "archive tasks, batches, purged events and legal holds", _ARCHIVING),
    Migration(7, "OCI public keys of API keys", _OCI_KEYS),
)

#: What the application role needs, for docs/storage.md and the role test: no UPDATE, no DELETE.
APP_GRANTS = (
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "GRANT INSERT ON vault_meta, apps, channels, schema_versions, events, checkpoints, api_keys, "
    "archive_tasks, archive_batches, archive_members, purged_events, legal_holds TO {role}",
    "GRANT UPDATE (revoked) ON api_keys TO {role}",
    "GRANT UPDATE (status, error, heartbeat, finished) ON archive_tasks TO {role}",
    "GRANT UPDATE (archived, purged) ON archive_batches TO {role}",
    "GRANT UPDATE (cleared) ON legal_holds TO {role}",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    "GRANT EXECUTE ON FUNCTION trailvault_put_tiles(integer[], bigint[], bytea[]), "
    "trailvault_erase(bigint, text), trailvault_body_index(text[], bigint), trailvault_purge(bigint[], text) TO {role}",
)
