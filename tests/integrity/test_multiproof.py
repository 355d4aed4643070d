"""The multi-entry proof of exports: any set of entries proves against the root, and nothing else does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trailvault.integrity.merkle import leaf_hash, subtree_hash, subtree_nodes
from trailvault.integrity.multiproof import multiproof_ranges, multiproof_root

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
