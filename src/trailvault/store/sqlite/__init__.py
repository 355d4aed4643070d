"""The embedded SQLite store."""

from trailvault.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
