"""Loading exported events into database tables (``trailvault export --to-db URL``).

One table per channel, named after it, created when missing, with the CSV export's
columns: the envelope, ``body_sha256``, ``body_nulls`` and one column per body field
with its dotted name (REPEATED fields as JSON text). ``seq`` is the primary key and a
row whose seq is there already is skipped, so loading the same events again (a rerun)
adds nothing twice. URLs: ``sqlite:///path/to/file.db`` or ``postgresql://...`` (the
``postgres`` extra). Table and column names are always quoted identifiers, never
spliced into SQL as they are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trailvault.adapters.formats.tables import CsvWriter, empty_table, flatten, is_timestamp
from trailvault.core.schema import Schema
from trailvault.core.timestamps import format_timestamp, from_datetime
from trailvault.errors import InvalidInput, StoreUnavailable

__all__ = ["DatabaseLoader"]

_SQLITE_TYPES = {"string": "TEXT", "int64": "INTEGER", "double": "REAL", "bool": "INTEGER"}
_POSTGRES_TYPES = {"string": "text", "int64": "bigint", "double": "double precision", "bool": "boolean"}


def _sqlite_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DatabaseLoader:
    """A connection to the target database, and a table loader per channel."""

    def __init__(self, url: str, *, field: str = "to_db") -> None:
        """Connect to ``url``; errors name ``field``, the setting the URL came from."""
        parts = urlsplit(url)
        self.url, self.field = url, field
        self.kind = parts.scheme.split("+")[0]
        #: What the target's driver raises; a load that fails with it is reported naming ``field``.
        self.errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        if self.kind == "sqlite":
            # SQLAlchemy's convention, as --vault reads it: sqlite:///relative/file.db and
            # sqlite:////absolute/file.db (the third slash ends the empty host).
            if parts.netloc or not parts.path[1:]:
                raise InvalidInput(
                    f"{field}: give a file, sqlite:///relative/file.db or sqlite:////absolute/file.db", field=field
                )
            path = Path(parts.path[1:]).expanduser()
            try:
                # Used by the export's one writing thread only, after this thread made it.
                self._conn: Any = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                self._conn.execute("PRAGMA schema_version").fetchone()  # a file that is no database fails here
            except sqlite3.Error as exc:
                raise InvalidInput(
                    f"{field}: cannot use {path} as an SQLite database ({exc}); check the path and its folder",
                    field=field,
                ) from None
        elif self.kind in ("postgresql", "postgres"):
            try:
                import psycopg
            except ImportError:
                message = f"{field}: PostgreSQL needs pip install 'trailvault[postgres]'"
                raise InvalidInput(message, field=field) from None
            self.errors = (psycopg.Error,)
            try:
                self._conn = psycopg.connect(url, autocommit=True)
            except psycopg.Error as exc:
                raise StoreUnavailable(f"{field}: cannot connect ({type(exc).__name__}); check the URL") from None
        else:
            raise InvalidInput(f"{field}: use sqlite:///FILE or postgresql://...", field=field)

    def table(self, channel: str, schema: Schema) -> _TableLoader:
        return _TableLoader(self, channel, schema)

    def close(self) -> None:
        self._conn.close()


class _TableLoader(CsvWriter):
    """The CSV export's flattened rows, inserted into the channel's table (``path`` only names it)."""

    def __init__(self, loader: DatabaseLoader, channel: str, schema: Schema) -> None:
        super().__init__(Path(channel), schema)
        self._loader = loader
        self._channel = channel
        self._created = False
        self.rows = 0

    def _shape(self, table: Any) -> Any:
        return table  # timestamps stay typed: each database gets them in its own form

    def _write(self, table: Any) -> None:
        flat = flatten(table)
        with self._reported("loading it into its table"):
            if not self._created:
                self._create(flat.schema)
                self._created = True
            self._load(flat)

    @contextmanager
    def _reported(self, doing: str) -> Iterator[None]:
        """Turn the driver's error into StoreUnavailable naming the setting (never the URL,
        which may hold a password); what failed was rolled back, so a rerun adds it."""
        try:
            yield
        except self._loader.errors as exc:
            field = self._loader.field
            raise StoreUnavailable(
                f"{field}: channel {self._channel!r}: {doing} failed ({exc}); nothing of it was kept, "
                "and a rerun adds what is missing"
            ) from None

    def _load(self, flat: Any) -> None:
        columns = flat.column_names
        rows = [tuple(row[name] for name in columns) for row in flat.to_pylist()]
        if not rows:
            return
        conn = self._loader._conn
        if self._loader.kind == "sqlite":
            names = ", ".join(_sqlite_name(name) for name in columns)
            marks = ", ".join("?" for _ in columns)
            insert = f"INSERT OR IGNORE INTO {_sqlite_name(self._channel)} ({names}) VALUES ({marks})"
            conn.execute("BEGIN")
            try:
                conn.executemany(insert, [tuple(_sqlite_value(v) for v in row) for row in rows])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        else:
            from psycopg import sql

            statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (seq) DO NOTHING").format(
                sql.Identifier(self._channel),
                sql.SQL(", ").join(sql.Identifier(name) for name in columns),
                sql.SQL(", ").join(sql.Placeholder() for _ in columns),
            )
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(statement, rows)
        self.rows += len(rows)

    def _create(self, arrow_schema: Any) -> None:
        """Create the channel's table, or add the columns of fields the channel gained since the
        table was made (a schema may add NULLABLE fields; their columns are null in older rows)."""
        conn = self._loader._conn
        if self._loader.kind == "sqlite":
            table = _sqlite_name(self._channel)
            wanted = [(f.name, _column_type(f.type, _SQLITE_TYPES, "TEXT")) for f in arrow_schema]
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if not have:
                columns = ", ".join(f"{_sqlite_name(name)} {kind}" for name, kind in wanted)
                conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns}, PRIMARY KEY ({_sqlite_name('seq')}))")
            for name, kind in wanted:
                if have and name not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {_sqlite_name(name)} {kind}")
            return
        from psycopg import sql

        typed = [(f.name, sql.SQL(_column_type(f.type, _POSTGRES_TYPES, "timestamptz"))) for f in arrow_schema]
        definitions = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), t) for n, t in typed)
        with conn.transaction():
            conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY (seq))").format(
                    sql.Identifier(self._channel), definitions
                )
            )
            for column, column_type in typed:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        sql.Identifier(self._channel), sql.Identifier(column), column_type
                    )
                )

    def close(self) -> None:
        if not self._created:
            with self._reported("creating its table"):
                self._create(flatten(empty_table(self._final)).schema)
            self._created = True


def _column_type(arrow_type: Any, names: dict[str, str], timestamp: str) -> str:
    if is_timestamp(arrow_type):
        return timestamp
    return names.get(str(arrow_type), names["string"])


def _sqlite_value(value: Any) -> Any:
    # SQLite has no timestamp type: the canonical text, which sorts in time order.
    if isinstance(value, datetime):
        return format_timestamp(from_datetime(value))
    return value
