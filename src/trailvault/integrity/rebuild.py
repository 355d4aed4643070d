"""Rebuilding a Merkle tree root by root, in constant memory, as leaves stream past.

Used by ``verify``: it recomputes every leaf from the stored entries, feeds them here in
order, and compares :meth:`TreeBuilder.root` with each signed checkpoint when the
builder reaches that checkpoint's size. The builder keeps only the roots of the perfect
subtrees along the right edge (at most one per level), so memory does not grow with
the log.
"""

from __future__ import annotations

from trailvault.integrity.merkle import EMPTY_ROOT, node_hash

__all__ = ["TreeBuilder"]


class TreeBuilder:
    """Append leaf hashes one by one; ask for the root of everything appended so far."""

    def __init__(self) -> None:
        self.size = 0
        # frontier[i] is the root of a perfect subtree of 2**level leaves, largest first.
        self._frontier: list[tuple[int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        level, value = 0, leaf
        while self._frontier and self._frontier[-1][0] == level:
            _, left = self._frontier.pop()
            value = node_hash(left, value)
            level += 1
        self._frontier.append((level, value))
        self.size += 1

    def root(self) -> bytes:
        """Return the RFC 9162 root of the leaves appended so far."""
        if not self._frontier:
            return EMPTY_ROOT
        value = self._frontier[-1][1]
        for _, left in reversed(self._frontier[:-1]):
            value = node_hash(left, value)
        return value
