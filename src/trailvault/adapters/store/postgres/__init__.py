"""The PostgreSQL store (``postgresql://`` vault URLs); needs the ``postgres`` extra (psycopg 3)."""

from trailvault.adapters.store.postgres.store import PostgresStore, masked_url

__all__ = ["PostgresStore", "masked_url"]
