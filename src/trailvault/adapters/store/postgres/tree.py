"""The Merkle tree of a PostgreSQL vault: its tiles, read and grown inside the store's transactions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg

from trailvault.core.integrity.merkle import NodeKey
from trailvault.core.integrity.tiles import TileKey, grow, leaf_run, leaf_tile_range, read_nodes

__all__ = ["Conn", "grow_tree", "leaf_hashes", "read_tiles", "tree_nodes"]

#: A psycopg connection with plain tuple rows.
Conn = psycopg.Connection[Any]


def read_tiles(conn: Conn, keys: Iterable[TileKey]) -> dict[TileKey, bytes]:
    """Return the stored tiles among ``keys`` (absent ones are left out), in one statement of key lookups."""
    wanted = list(keys)
    if not wanted:
        return {}
    rows = conn.execute(
        "SELECT t.level, t.idx, t.hashes FROM unnest(%s::integer[], %s::bigint[]) AS k (level, idx) "
        "JOIN merkle_tiles AS t ON t.level = k.level AND t.idx = k.idx",
        ([level for level, _ in wanted], [idx for _, idx in wanted]),
    ).fetchall()
    return {(int(level), int(idx)): bytes(hashes) for level, idx, hashes in rows}


def grow_tree(
    conn: Conn, size: int, leaves: Sequence[bytes], known: Mapping[TileKey, bytes] | None = None
) -> dict[TileKey, bytes]:
    """Append leaf hashes to the tree of ``size`` leaves, in the caller's transaction.

    ``known`` is the tree's partial tiles at ``size`` when the caller has them (see
    :class:`~trailvault.core.integrity.tiles.PartialCache`); returns those of the grown tree.
    Tiles are written by ``trailvault_put_tiles``, which runs with the owner's rights,
    so the application role needs no UPDATE privilege.
    """
    return grow(size, leaves, known, lambda keys: read_tiles(conn, keys), lambda written: _put_tiles(conn, written))


def _put_tiles(conn: Conn, written: Mapping[TileKey, bytes]) -> None:
    conn.execute(
        "SELECT trailvault_put_tiles(%s::integer[], %s::bigint[], %s::bytea[])",
        ([level for level, _ in written], [idx for _, idx in written], list(written.values())),
    )


def tree_nodes(conn: Conn, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    """Return the given complete nodes of the tree, reading each needed tile once."""
    return read_nodes(keys, lambda tiles: read_tiles(conn, tiles))


def leaf_hashes(conn: Conn, start: int, end: int) -> bytes:
    """Return the leaf hashes of ``[start, end)`` from the level-0 tiles, stopping at the first gap."""
    if end <= start:
        return b""
    rows = conn.execute(
        "SELECT idx, hashes FROM merkle_tiles WHERE level = 0 AND idx BETWEEN %s AND %s ORDER BY idx",
        leaf_tile_range(start, end),
    )
    return leaf_run(((int(idx), bytes(hashes)) for idx, hashes in rows), start, end)
