"""Rebuilding a Merkle tree root by root, in constant memory, as leaves stream past.

Used by ``verify``: it recomputes every leaf from the stored entries, feeds them here in
order, and compares :meth:`TreeBuilder.root` with each signed checkpoint when the
builder reaches that checkpoint's size. The builder keeps only the *frontier*, the
roots of the perfect subtrees along the right edge (at most one per level, largest
first), so memory does not grow with the log.

Frontiers also let verify split the log into aligned segments checked in parallel: a
segment of ``2**k`` leaves starting at a multiple of ``2**k`` is one perfect subtree,
so its builder's frontier can be :meth:`absorbed <TreeBuilder.absorb>` into the
builder of everything before it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from trailvault.core.integrity.merkle import EMPTY_ROOT, node_hash

__all__ = ["Frontier", "TreeBuilder", "fold_frontier"]

#: (level, root) of perfect subtrees along the right edge of a tree, largest first.
Frontier = tuple[tuple[int, bytes], ...]

_GROUP_LEVEL = 4
_GROUP = 1 << _GROUP_LEVEL


def fold_frontier(frontier: Iterable[tuple[int, bytes]]) -> bytes:
    """Return the RFC 9162 root of the tree whose frontier this is."""
    value = None
    for _, left in reversed(tuple(frontier)):
        value = left if value is None else node_hash(left, value)
    return EMPTY_ROOT if value is None else value


class TreeBuilder:
    """Append leaf hashes (or aligned perfect subtrees); ask for the root of everything so far."""

    def __init__(self) -> None:
        self.size = 0
        self._frontier: list[tuple[int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        self.append_subtree(0, leaf)

    def append_subtree(self, level: int, value: bytes) -> None:
        """Append the root of a perfect subtree of ``2**level`` leaves.

        The caller keeps it aligned: ``size`` must be a multiple of ``2**level``.
        """
        if self.size % (1 << level):
            raise ValueError(f"a subtree of level {level} cannot start at leaf {self.size}")
        self.size += 1 << level
        frontier = self._frontier
        while frontier and frontier[-1][0] == level:
            value = node_hash(frontier.pop()[1], value)
            level += 1
        frontier.append((level, value))

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append leaf hashes, folding each aligned run of 16 in one go (the hot path of verify)."""
        sha256 = hashlib.sha256
        position, count = 0, len(leaves)
        while position < count:
            if self.size % _GROUP == 0 and count - position >= _GROUP:
                level = list(leaves[position : position + _GROUP])
                while len(level) > 1:
                    # node_hash written out: this runs once for every 16 entries verified.
                    level = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
                self.append_subtree(_GROUP_LEVEL, level[0])
                position += _GROUP
            else:
                self.append_subtree(0, leaves[position])
                position += 1

    def absorb(self, frontier: Frontier) -> None:
        """Append a whole aligned segment, given by its own builder's frontier."""
        for level, value in frontier:
            self.append_subtree(level, value)

    def frontier(self) -> Frontier:
        """Return the current frontier (roots of the right edge's perfect subtrees)."""
        return tuple(self._frontier)

    def root(self) -> bytes:
        """Return the RFC 9162 root of the leaves appended so far."""
        return fold_frontier(self._frontier)
