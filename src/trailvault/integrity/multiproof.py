"""Proving many entries of the log at once: the proof that travels with an export.

For a set of leaf indexes of a tree of ``size`` leaves, the proof is the hashes of
the largest subtrees (in RFC 9162's shape) that hold none of them, in the order a
left-to-right walk of the tree meets them. The verifier walks the tree the same
way, using its own leaf hashes for the indexes and the proof's hashes for the rest,
and compares the root it gets with the signed one. For ``m`` entries the proof holds
at most about ``m * log2(size / m) + 2 * log2(size)`` hashes; for one entry it is an
inclusion proof.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeAlias

from trailvault.integrity.merkle import node_hash

__all__ = ["multiproof_ranges", "multiproof_root"]

Range: TypeAlias = tuple[int, int]


def _split(size: int) -> int:
    return 1 << ((size - 1).bit_length() - 1)


def multiproof_ranges(indexes: Sequence[int], size: int) -> Iterator[Range]:
    """Yield the subtrees ``[start, end)`` whose hashes the proof of ``indexes`` holds, in order.

    ``indexes`` are ascending, distinct and below ``size``.
    """
    # An explicit stack of (start, end, first index position, end position) instead of
    # recursion: exports hold millions of entries.
    stack = [(0, size, 0, len(indexes))]
    while stack:
        start, end, first, last = stack.pop()
        if first == last:
            yield (start, end)
            continue
        if last - first == end - start:
            # Every entry of the subtree is proven: nothing inside needs a hash.
            continue
        middle = start + _split(end - start)
        cut = _bisect(indexes, middle, first, last)
        stack.append((middle, end, cut, last))
        stack.append((start, middle, first, cut))


def multiproof_root(indexes: Sequence[int], size: int, leaf: Callable[[int], bytes], proof: Iterator[bytes]) -> bytes:
    """Return the root that the leaves of ``indexes`` (``leaf(position)``) and the proof's hashes make.

    Raises ValueError when the proof has too few hashes; the caller checks that it
    has none left over and compares the root with the signed one.
    """
    results: list[bytes] = []
    # Post-order walk: ("visit", start, end, first, last) or ("join",).
    stack: list[tuple[int, int, int, int] | None] = [(0, size, 0, len(indexes))]
    while stack:
        item = stack.pop()
        if item is None:
            right = results.pop()
            results.append(node_hash(results.pop(), right))
            continue
        start, end, first, last = item
        if first == last:
            try:
                results.append(next(proof))
            except StopIteration:
                raise ValueError("the proof has fewer hashes than the entries need") from None
            continue
        if end - start == 1:
            results.append(leaf(first))
            continue
        middle = start + _split(end - start)
        cut = _bisect(indexes, middle, first, last)
        stack.append(None)
        stack.append((middle, end, cut, last))
        stack.append((start, middle, first, cut))
    return results[0]


def _bisect(indexes: Sequence[int], value: int, low: int, high: int) -> int:
    """The first position in ``indexes[low:high]`` holding ``value`` or more."""
    while low < high:
        middle = (low + high) // 2
        if indexes[middle] < value:
            low = middle + 1
        else:
            high = middle
    return low
