"""TreeBuilder: the streaming root verify uses, leaf by leaf, in runs of 16, and by aligned segments."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailvault.core.integrity.merkle import EMPTY_ROOT, leaf_hash, root_hash, subtree_nodes
from trailvault.core.integrity.rebuild import TreeBuilder, fold_frontier
from trailvault.core.integrity.tiles import nodes_from_tiles

from .test_merkle import LEAVES, ROOTS, Tree

MANY = [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(300)]
TREE = Tree(MANY, batch=13)


def _root(size: int) -> bytes:
    wanted = subtree_nodes(0, size)
    return root_hash(size, nodes_from_tiles(wanted, TREE.tiles)) if size else EMPTY_ROOT


def test_published_roots_leaf_by_leaf() -> None:
    """Appending the RFC 6962 test leaves one by one gives the published root at every size."""
    builder = TreeBuilder()
    assert builder.root().hex() == ROOTS[0]
    for size, leaf in enumerate(LEAVES, 1):
        builder.append(leaf)
        assert builder.size == size and builder.root().hex() == ROOTS[size]


@settings(max_examples=150, deadline=None)
@given(cuts=st.lists(st.integers(0, 300), max_size=8))
def test_extend_in_any_pieces_matches_the_reference(cuts: list[int]) -> None:
    """extend() folds runs of 16 only when aligned; any way of cutting the leaves gives the same roots."""
    builder, done = TreeBuilder(), 0
    for cut in [*sorted(cuts), 300]:
        builder.extend(MANY[done:cut])
        done = max(done, cut)
        assert builder.size == done and builder.root() == _root(done)


@pytest.mark.parametrize("segment", [1, 2, 8, 16, 64])
def test_segments_absorbed_in_order_match_the_reference(segment: int) -> None:
    """Builders of aligned segments, absorbed in order, rebuild the whole tree; mid-segment roots fold too."""
    whole = TreeBuilder()
    for start in range(0, 300, segment):
        part = TreeBuilder()
        part.extend(MANY[start : start + segment // 2])
        middle = start + min(segment // 2, 300 - start)
        assert fold_frontier(whole.frontier() + part.frontier()) == _root(middle)
        part.extend(MANY[start + segment // 2 : start + segment])
        whole.absorb(part.frontier())
        assert whole.root() == _root(min(start + segment, 300))


def test_misaligned_subtree_is_refused() -> None:
    """A perfect subtree appended where it cannot start is a caller bug, not a silent wrong root."""
    builder = TreeBuilder()
    builder.append(MANY[0])
    with pytest.raises(ValueError, match="level 1 cannot start at leaf 1"):
        builder.append_subtree(1, MANY[1])
