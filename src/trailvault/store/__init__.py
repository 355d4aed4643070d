"""Store backends behind one contract (:class:`trailvault.store.base.Store`)."""

from __future__ import annotations

from pathlib import Path

from trailvault.errors import InvalidInput
from trailvault.store.base import AppendOutcome, ChannelRecord, Store

__all__ = ["AppendOutcome", "ChannelRecord", "Store", "open_store", "resolve_location"]

DEFAULT_LOCATION = "trailvault-data"
_DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
DATABASE_FILE = "vault.sqlite3"


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
        if scheme in ("postgresql", "postgres"):
            raise InvalidInput(
                "vault: PostgreSQL vaults are not available in this version; use a folder or sqlite:/// URL",
                field="vault",
            )
        raise InvalidInput(
            f"vault: unknown vault URL scheme {scheme!r}; use a folder path or sqlite:///path/vault.sqlite3",
            field="vault",
        )
    path = Path(text).expanduser()
    return path if path.suffix in _DATABASE_SUFFIXES else path / DATABASE_FILE


def open_store(path_or_url: str | Path, *, create: bool, durability: str = "full") -> Store:
    """Open the store a vault path or URL points at, creating it when ``create``."""
    from trailvault.store.sqlite import SQLiteStore

    return SQLiteStore(resolve_location(path_or_url), create=create, durability=durability)
