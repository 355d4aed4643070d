"""The embedded SQLite store."""

from trailvault.adapters.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
