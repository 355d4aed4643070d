"""Merkle tree storage in tiles: small blobs of node hashes that only ever grow.

A tile of tile level ``T`` and index ``I`` holds the hashes of the tree's nodes at
level ``HEIGHT * T`` with indexes ``[I * WIDTH, (I + 1) * WIDTH)``, concatenated
(32 bytes each). Only the rightmost tile of each tile level is partial, and it only
grows: an append extends it or starts new tiles, and when a tile fills up, its root
becomes the next hash one tile level up. Any other node is folded from at most
``2**(HEIGHT - 1)`` hashes of one tile.

With ``HEIGHT = 4`` a tile is at most 512 bytes, so it fits in a database page; a
batch of 1,000 events writes about 70 tile rows, a single event one or two; and any
proof reads one or two tiles per tile level (six levels for 16 million entries).
This follows the shape of C2SP ``tlog-tiles`` (which uses height 8 for files served
over HTTP), sized for rows instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

from trailvault.core.integrity.merkle import NodeKey

__all__ = [
    "HEIGHT",
    "WIDTH",
    "PartialCache",
    "TileKey",
    "append_leaves",
    "grow",
    "leaf_run",
    "leaf_tile_range",
    "next_partials",
    "nodes_from_tiles",
    "partial_tiles",
    "read_nodes",
    "tiles_for_nodes",
]

HEIGHT = 4
WIDTH = 1 << HEIGHT
_HASH = 32

#: A tile: (tile level, tile index).
TileKey = tuple[int, int]


def partial_tiles(size: int) -> list[TileKey]:
    """Return the partial (rightmost, not yet full) tiles of a tree of ``size`` leaves."""
    keys = []
    level, count = 0, size
    while count:
        if count % WIDTH:
            keys.append((level, count // WIDTH))
        level, count = level + 1, count // WIDTH
    return keys


def _perfect_root(hashes: bytes) -> bytes:
    """Fold a power-of-two run of concatenated hashes into its subtree root."""
    level = [hashes[offset : offset + _HASH] for offset in range(0, len(hashes), _HASH)]
    sha256 = hashlib.sha256
    while len(level) > 1:
        # node_hash written out: this runs for every 16 entries appended.
        level = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def append_leaves(size: int, leaves: Sequence[bytes], partial: Mapping[TileKey, bytes]) -> dict[TileKey, bytes]:
    """Return every tile that appending ``leaves`` (leaf hashes) to a tree of ``size`` creates or grows.

    ``partial`` holds the current contents of the tiles :func:`partial_tiles` names.
    Raises ValueError when one is missing or has the wrong length (a damaged store).
    """
    written: dict[TileKey, bytes] = {}
    level, first, hashes = 0, size, list(leaves)
    while hashes:
        completed: list[bytes] = []
        position, taken = first, 0
        while taken < len(hashes):
            key, offset = (level, position // WIDTH), position % WIDTH
            existing = written.get(key, partial.get(key, b"")) if offset else b""
            if len(existing) != offset * _HASH:
                raise ValueError(f"tile {key} holds {len(existing) // _HASH} hashes, expected {offset}")
            count = min(WIDTH - offset, len(hashes) - taken)
            blob = existing + b"".join(hashes[taken : taken + count])
            written[key] = blob
            if len(blob) == WIDTH * _HASH:
                completed.append(_perfect_root(blob))
            position, taken = position + count, taken + count
        level, first, hashes = level + 1, first // WIDTH, completed
    return written


def _locate(key: NodeKey) -> tuple[TileKey, int, int]:
    """Return the tile holding the hashes a node folds from, the first hash's offset, and their count."""
    level, index = key
    tile_level, sub = divmod(level, HEIGHT)
    first = index << sub
    return (tile_level, first // WIDTH), first % WIDTH, 1 << sub


def tiles_for_nodes(keys: Iterable[NodeKey]) -> set[TileKey]:
    """Return the tiles needed to compute the given (complete) nodes."""
    return {_locate(key)[0] for key in keys}


def nodes_from_tiles(keys: Iterable[NodeKey], tiles: Mapping[TileKey, bytes]) -> dict[NodeKey, bytes]:
    """Compute the given complete nodes from their tiles.

    Raises KeyError when a tile is missing and ValueError when a tile is too short,
    both meaning the store does not hold the tree it should.
    """
    found: dict[NodeKey, bytes] = {}
    for key in keys:
        tile, offset, count = _locate(key)
        blob = tiles[tile]
        run = blob[offset * _HASH : (offset + count) * _HASH]
        if len(run) != count * _HASH:
            raise ValueError(f"tile {tile} is too short for node {key}")
        found[key] = _perfect_root(run)
    return found


def leaf_tile_range(start: int, end: int) -> tuple[int, int]:
    """Return the first and last index of the level-0 tiles holding leaves ``[start, end)``."""
    return start // WIDTH, max(start, end - 1) // WIDTH


def leaf_run(tiles: Iterable[tuple[int, bytes]], start: int, end: int) -> bytes:
    """Cut leaves ``[start, end)`` out of level-0 tiles given in index order from :func:`leaf_tile_range`.

    Stops at the first missing or short tile (only the rightmost may be short), so a
    damaged tree yields fewer leaves rather than wrong ones.
    """
    first = start // WIDTH
    parts = []
    for expected, (index, hashes) in enumerate(tiles, first):
        if index != expected:
            break
        parts.append(hashes)
        if len(hashes) != WIDTH * _HASH:
            break
    offset = (start - first * WIDTH) * _HASH
    return b"".join(parts)[offset : offset + max(0, end - start) * _HASH]


def next_partials(
    size: int, count: int, partial: Mapping[TileKey, bytes], written: Mapping[TileKey, bytes]
) -> dict[TileKey, bytes]:
    """Return the partial tiles of the tree after appending ``count`` leaves to one of ``size``.

    Each is either a tile the append wrote or one that was already partial and did not change.
    """
    return {key: written.get(key, partial.get(key, b"")) for key in partial_tiles(size + count)}


class PartialCache:
    """The partial tiles of the last tree size this process committed, to skip reading them back.

    Tiles at a committed size never change (the log only grows), so an entry stays true
    for its size forever, whoever appends next; a store puts one only after its commit
    succeeded and uses it only when the log still has exactly that size.
    """

    def __init__(self) -> None:
        self._entry: tuple[int, dict[TileKey, bytes]] | None = None

    def get(self, size: int) -> dict[TileKey, bytes] | None:
        entry = self._entry
        return entry[1] if entry is not None and entry[0] == size else None

    def put(self, size: int, tiles: dict[TileKey, bytes]) -> None:
        self._entry = (size, tiles)


#: A store's tile reader (absent tiles left out) and writer (insert or grow), in its transaction.
ReadTiles = Callable[[Iterable[TileKey]], Mapping[TileKey, bytes]]
WriteTiles = Callable[[Mapping[TileKey, bytes]], None]


def grow(
    size: int, leaves: Sequence[bytes], known: Mapping[TileKey, bytes] | None, read: ReadTiles, write: WriteTiles
) -> dict[TileKey, bytes]:
    """Append leaf hashes to the stored tree of ``size`` leaves; return the grown tree's partial tiles.

    ``known`` holds the partial tiles at ``size`` when the caller kept them
    (:class:`PartialCache`); otherwise they are read.
    """
    partial = dict(known if known is not None else read(partial_tiles(size)))
    if not leaves:
        return partial
    written = append_leaves(size, leaves, partial)
    write(written)
    return next_partials(size, len(leaves), partial, written)


def read_nodes(keys: Iterable[NodeKey], read: ReadTiles) -> dict[NodeKey, bytes]:
    """Return the given complete nodes of a stored tree, reading each needed tile once."""
    wanted = list(keys)
    return nodes_from_tiles(wanted, read(tiles_for_nodes(wanted)))
