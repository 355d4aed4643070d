"""The multi-entry proof of exports: any set of entries proves against the root, and nothing else does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailvault.core.integrity.merkle import leaf_hash, subtree_hash, subtree_nodes
from trailvault.core.integrity.multiproof import LeafIndexes, SeqRuns, multiproof_ranges, multiproof_root

from .test_merkle import Tree


def _proof(tree: Tree, indexes: list[int], size: int) -> list[bytes]:
    return [
        subtree_hash(start, end, tree.read(subtree_nodes(start, end)))
        for start, end in multiproof_ranges(indexes, size)
    ]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=70).flatmap(
    lambda size: st.tuples(st.just(size), st.sets(st.integers(min_value=0, max_value=size - 1)))
))  # fmt: skip
def test_any_set_of_entries_proves_against_the_root(case: tuple[int, set[int]]) -> None:
    """For every tree size and set of indexes, leaves plus proof rebuild the signed root, using every hash."""
    size, chosen = case
    leaves = [leaf_hash(bytes([n % 256, n // 256])) for n in range(size)]
    tree = Tree(leaves)
    indexes = sorted(chosen)
    proof = iter(_proof(tree, indexes, size))
    assert multiproof_root(indexes, size, lambda position: leaves[indexes[position]], proof) == tree.root(size)
    assert next(proof, None) is None


def test_an_altered_or_moved_entry_does_not_prove() -> None:
    """Changing one leaf, or claiming an entry sits at another index, gives another root."""
    size = 37
    leaves = [leaf_hash(bytes([n])) for n in range(size)]
    tree = Tree(leaves)
    indexes = [3, 4, 20, 36]
    proof = _proof(tree, indexes, size)
    altered = {20: leaf_hash(b"forged")}
    assert multiproof_root(
        indexes, size, lambda p: altered.get(indexes[p], leaves[indexes[p]]), iter(proof)
    ) != tree.root(size)
    moved = [3, 5, 20, 36]
    assert multiproof_root(moved, size, lambda p: leaves[indexes[p]], iter(proof)) != tree.root(size)


def test_proof_size_stays_logarithmic_for_a_contiguous_run() -> None:
    """A run of 1,000 consecutive entries in a tree of a million needs only a few dozen hashes."""
    ranges = list(multiproof_ranges(list(range(300_000, 301_000)), 1_000_000))
    assert len(ranges) <= 2 * 20 + 2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=300), unique=True).map(sorted),
    st.lists(st.integers(min_value=1, max_value=40), max_size=12),
)
def test_seq_runs_hold_exactly_the_seqs_given(seqs: list[int], cuts: list[int]) -> None:
    """However the seqs arrive (pages of any length, consecutive or not), runs give them back by position."""
    runs = SeqRuns()
    start = 0
    for cut in [*cuts, len(seqs)]:
        runs.extend(seqs[start : start + cut])
        start += cut
    runs.extend(seqs[start:])
    assert len(runs) == len(seqs)
    assert list(runs) == seqs
    assert list(runs[1:-1]) == seqs[1:-1]
    if seqs:
        assert runs[-1] == seqs[-1] and runs[0] == seqs[0]
    size = (seqs[-1] if seqs else 0) + 3
    assert list(multiproof_ranges(LeafIndexes(runs), size)) == list(multiproof_ranges([s - 1 for s in seqs], size))


def test_seq_runs_of_an_export_stay_small_and_refuse_disorder() -> None:
    runs = SeqRuns()
    for first in range(1, 1_000_001, 10_000):
        runs.extend(range(first, first + 10_000))
    runs.extend([2_000_000, 2_000_002])
    assert len(runs) == 1_000_002 and runs[999_999] == 1_000_000 and runs[-2] == 2_000_000
    assert len(runs._firsts) == 3  # one run for the million, one for each straggler
    with pytest.raises(ValueError, match="does not follow"):
        runs.extend([2_000_002])
    with pytest.raises(ValueError, match="does not follow"):
        SeqRuns([5, 7, 6])
    with pytest.raises(IndexError):
        runs[1_000_002]
