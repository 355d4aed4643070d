"""Store backends behind one contract (:class:`trailvault.adapters.store.base.Store`), split by role
(:mod:`trailvault.adapters.store.contract`: channels, the log, API keys, archiving)."""

from __future__ import annotations

from pathlib import Path

from trailvault.adapters.store.base import (
    AppendOutcome,
    ArchiveStore,
    ChannelRecord,
    ChannelStore,
    KeyStore,
    LogStore,
    Store,
)
from trailvault.errors import InvalidInput

__all__ = [
    "AppendOutcome", "ArchiveStore", "ChannelRecord", "ChannelStore", "KeyStore", "LogStore", "Store",
    "is_server_url", "open_store", "resolve_location",
]  # fmt: skip

_DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
DATABASE_FILE = "vault.sqlite3"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def resolve_location(path_or_url: str | Path) -> Path:
    """Return the SQLite database file for a vault path or ``sqlite:///`` URL.

    A path ending in ``.db``, ``.sqlite`` or ``.sqlite3`` is the database file
    itself; any other path is the vault's folder, holding ``vault.sqlite3``.
    """
    text = str(path_or_url)
    if text.startswith("sqlite:///"):
        # SQLAlchemy's convention: sqlite:///relative/path and sqlite:////absolute/path
        text = text[len("sqlite:///") :]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise InvalidInput(
            f"vault: unknown vault URL scheme {scheme!r}; use a folder path, sqlite:///path/vault.sqlite3 "
            "or postgresql://user:password@host:5432/database",
            field="vault",
        )
    path = Path(text).expanduser()
    return path if path.suffix in _DATABASE_SUFFIXES else path / DATABASE_FILE


def is_server_url(path_or_url: str | Path) -> bool:
    """Tell whether a vault location is a PostgreSQL URL (``postgresql://`` or ``postgres://``)."""
    return str(path_or_url).startswith(_POSTGRES_SCHEMES)


def open_store(path_or_url: str | Path, *, create: bool, durability: str = "full") -> Store:
    """Open the store a vault path or URL points at, creating it when ``create``.

    A folder, a database file or a ``sqlite:///`` URL opens the embedded SQLite store;
    ``postgresql://user:password@host:port/database`` opens the PostgreSQL store
    (the ``postgres`` extra).
    """
    if is_server_url(path_or_url):
        try:
            from trailvault.adapters.store.postgres import PostgresStore
        except ImportError:
            raise InvalidInput(
                "vault: PostgreSQL vaults need psycopg 3: pip install 'trailvault[postgres]'", field="vault"
            ) from None
        return PostgresStore(str(path_or_url), create=create, durability=durability)
    from trailvault.adapters.store.sqlite import SQLiteStore

    return SQLiteStore(resolve_location(path_or_url), create=create, durability=durability)
