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

import bisect
import hashlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeAlias, overload

from trailvault.core.integrity.merkle import node_hash

__all__ = ["LeafIndexes", "SeqRuns", "multiproof_ranges", "multiproof_root"]

Range: TypeAlias = tuple[int, int]


class _Positions(Sequence[int]):
    """A read-only sequence of ints computed by position (``_at``), without a Python int held per item."""

    @overload
    def __getitem__(self, position: int) -> int: ...

    @overload
    def __getitem__(self, position: slice) -> Sequence[int]: ...

    def __getitem__(self, position: int | slice) -> int | Sequence[int]:
        length = len(self)
        if isinstance(position, slice):
            return [self._at(index) for index in range(*position.indices(length))]
        if position < 0:
            position += length
        if not 0 <= position < length:
            raise IndexError("position out of range")
        return self._at(position)

    def _at(self, position: int) -> int:
        raise NotImplementedError


class SeqRuns(_Positions):
    """Ascending, distinct seqs held as runs of consecutive ones.

    An export of millions of entries mostly proves consecutive seqs: as runs it holds a
    few numbers per gap, not eight bytes per entry, so its memory does not grow with
    its length. ``extend`` takes seqs above the last one held (else ValueError);
    indexing, by position, costs a binary search over the runs.
    """

    def __init__(self, seqs: Iterable[int] = ()) -> None:
        self._firsts = array("q")  # each run's first seq
        self._offsets = array("q")  # how many seqs come before each run
        self._count = 0
        self._last = 0
        self.extend(seqs)

    def extend(self, seqs: Iterable[int]) -> None:
        values = seqs if isinstance(seqs, Sequence) else list(seqs)
        if not values:
            return
        if values[0] <= self._last and self._count:
            raise ValueError(f"seq {values[0]} does not follow {self._last}")
        if values[-1] - values[0] == len(values) - 1:
            # One consecutive block (the usual page): no look at each seq. Ascending and
            # distinct is the caller's contract; the block's ends checking out is all it needs.
            self._add_run(values[0], len(values))
            return
        previous = self._last if self._count else None
        for seq in values:
            if previous is not None and seq <= previous:
                raise ValueError(f"seq {seq} does not follow {previous}")
            self._add_run(seq, 1)
            previous = seq

    def _add_run(self, first: int, length: int) -> None:
        if not (self._count and first == self._last + 1):  # else it continues the last run
            self._firsts.append(first)
            self._offsets.append(self._count)
        self._count += length
        self._last = first + length - 1

    def __len__(self) -> int:
        return self._count

    def _at(self, position: int) -> int:
        run = bisect.bisect_right(self._offsets, position) - 1
        return self._firsts[run] + position - self._offsets[run]


class LeafIndexes(_Positions):
    """The leaf indexes (seq - 1) of ascending seqs, without a Python int per entry held in memory."""

    def __init__(self, seqs: Sequence[int]) -> None:
        self._seqs = seqs

    def __len__(self) -> int:
        return len(self._seqs)

    def _at(self, position: int) -> int:
        return self._seqs[position] - 1


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


def multiproof_root(
    indexes: Sequence[int],
    size: int,
    leaf: Callable[[int], bytes],
    proof: Iterator[bytes],
    *,
    leaves: Sequence[bytes] | None = None,
) -> bytes:
    """Return the root that the leaves of ``indexes`` (``leaf(position)``) and the proof's hashes make.

    ``leaves``, when the caller holds them as a sequence (``leaf`` is then its
    ``__getitem__``), lets whole subtrees be sliced out at once.
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
        if last - first == end - start:
            # Every leaf of the subtree is given: hash it level by level, with no walk.
            given = leaves[first:last] if leaves is not None else [leaf(position) for position in range(first, last)]
            results.append(_whole_subtree(list(given)))
            continue
        middle = start + _split(end - start)
        cut = _bisect(indexes, middle, first, last)
        stack.append(None)
        stack.append((middle, end, cut, last))
        stack.append((start, middle, first, cut))
    return results[0]


def _whole_subtree(leaves: list[bytes]) -> bytes:
    """The RFC 9162 root of ``leaves`` (at least one), pairing a level at a time."""
    if len(leaves) & (len(leaves) - 1):
        cut = _split(len(leaves))
        return node_hash(_whole_subtree(leaves[:cut]), _whole_subtree(leaves[cut:]))
    sha256 = hashlib.sha256
    level = leaves
    while len(level) > 1:
        level = [sha256(b"\x01" + left + right).digest() for left, right in zip(level[::2], level[1::2], strict=True)]
    return level[0]


def _bisect(indexes: Sequence[int], value: int, low: int, high: int) -> int:
    """The first position in ``indexes[low:high]`` holding ``value`` or more."""
    while low < high:
        middle = (low + high) // 2
        if indexes[middle] < value:
            low = middle + 1
        else:
            high = middle
    return low
