"""The Merkle tree of a SQLite vault: reading and growing its tiles inside the store's transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence

from trailvault.core.event import Event
from trailvault.core.integrity.log import entry_leaf
from trailvault.core.integrity.merkle import NodeKey
from trailvault.core.integrity.tiles import TileKey, grow, leaf_run, leaf_tile_range, read_nodes

__all__ = ["backfill_tiles", "grow_tree", "leaf_hashes", "read_tiles", "tree_nodes"]

_UPSERT = "INSERT INTO merkle_tiles VALUES (?, ?, ?) ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes"
_BACKFILL_CHUNK = 10_000


def read_tiles(conn: sqlite3.Connection, keys: Iterable[TileKey]) -> dict[TileKey, bytes]:
    """Return the stored tiles among ``keys`` (absent ones are left out), in one statement.

    One ``level = ? AND idx IN (...)`` term per tile level, so each is a primary-key
    lookup; a row-value ``IN (VALUES ...)`` made SQLite scan the whole table.
    """
    by_level: dict[int, list[int]] = {}
    for level, index in keys:
        by_level.setdefault(level, []).append(index)
    if not by_level:
        return {}
    parts, params = [], []
    for level, indexes in by_level.items():
        marks = ", ".join("?" for _ in indexes)
        parts.append(f"SELECT level, idx, hashes FROM merkle_tiles WHERE level = ? AND idx IN ({marks})")
        params.extend([level, *indexes])
    rows = conn.execute(" UNION ALL ".join(parts), params)
    return {(level, idx): hashes for level, idx, hashes in rows}


def grow_tree(
    conn: sqlite3.Connection, size: int, leaves: Sequence[bytes], known: Mapping[TileKey, bytes] | None = None
) -> dict[TileKey, bytes]:
    """Append leaf hashes to the tree of ``size`` leaves, in the caller's transaction.

    ``known`` is the tree's partial tiles at ``size`` when the caller has them (see
    :class:`~trailvault.core.integrity.tiles.PartialCache`); returns those of the grown tree.
    """
    return grow(size, leaves, known, lambda keys: read_tiles(conn, keys), lambda written: _put_tiles(conn, written))


def _put_tiles(conn: sqlite3.Connection, written: Mapping[TileKey, bytes]) -> None:
    conn.executemany(_UPSERT, [(level, idx, hashes) for (level, idx), hashes in written.items()])


def tree_nodes(conn: sqlite3.Connection, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    """Return the given complete nodes of the tree, reading each needed tile once."""
    return read_nodes(keys, lambda tiles: read_tiles(conn, tiles))


def leaf_hashes(conn: sqlite3.Connection, start: int, end: int) -> bytes:
    """Return the leaf hashes of ``[start, end)`` from the level-0 tiles, stopping at the first gap."""
    if end <= start:
        return b""
    rows = conn.execute(
        "SELECT idx, hashes FROM merkle_tiles WHERE level = 0 AND idx BETWEEN ? AND ? ORDER BY idx",
        leaf_tile_range(start, end),
    )
    return leaf_run(rows, start, end)


def backfill_tiles(conn: sqlite3.Connection) -> None:
    """Build the tiles of every entry already in the log (a vault from before the tree existed)."""
    size = 0
    last = 0
    while True:
        rows = conn.execute(
            "SELECT e.seq, e.id, a.name, c.name, e.time, e.received, e.body_sha256 FROM events AS e "
            "JOIN channels AS c ON c.channel_key = e.channel_key JOIN apps AS a ON a.app_key = e.app_key "
            "WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
            (last, _BACKFILL_CHUNK),
        ).fetchall()
        if not rows:
            return
        leaves: list[bytes] = []
        for seq, event_id, app, channel, time_us, received_us, body_sha256 in rows:
            if seq != size + len(leaves) + 1:
                raise sqlite3.DatabaseError(f"the log has a gap before seq {seq}; it cannot be hashed into a tree")
            event = Event(event_id, time_us, received_us, app, channel, seq, None)
            leaves.append(entry_leaf(event, seq, body_sha256))
        grow_tree(conn, size, leaves)
        size += len(leaves)
        last = rows[-1][0]
