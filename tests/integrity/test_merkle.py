"""The RFC 9162 Merkle tree: published test vectors, and proofs that verify and fail as they must."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailvault.core.integrity.merkle import (
    EMPTY_ROOT,
    NodeKey,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    subtree_nodes,
    verify_consistency,
    verify_inclusion,
)
from trailvault.core.integrity.tiles import TileKey, append_leaves, nodes_from_tiles, partial_tiles, tiles_for_nodes

# The Certificate Transparency reference data (RFC 6962 test vectors, also valid for RFC 9162).
DATA = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, proof)
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


class Tree:
    """A tree stored the way a store keeps it: in tiles, appended in uneven batches."""

    def __init__(self, leaves: list[bytes], batch: int = 7) -> None:
        self.tiles: dict[TileKey, bytes] = {}
        for start in range(0, len(leaves), batch):
            partial = {key: self.tiles[key] for key in partial_tiles(start)}
            self.tiles.update(append_leaves(start, leaves[start : start + batch], partial))
        self.size = len(leaves)
        self.reads: list[int] = []

    def read(self, keys: Iterable[NodeKey]) -> Mapping[NodeKey, bytes]:
        wanted = list(keys)
        self.reads.append(len(tiles_for_nodes(wanted)))
        return nodes_from_tiles(wanted, self.tiles)

    def root(self, size: int) -> bytes:
        return root_hash(size, self.read(subtree_nodes(0, size)))

    def leaf(self, index: int) -> bytes:
        return self.read([(0, index)])[(0, index)]


LEAVES = [leaf_hash(bytes.fromhex(item)) for item in DATA]
REFERENCE = Tree(LEAVES)


def test_empty_root() -> None:
    """The empty tree's root is SHA-256 of nothing."""
    assert EMPTY_ROOT.hex() == ROOTS[0]


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_roots(size: int) -> None:
    """Roots of the reference tree at every size match the published ones."""
    assert REFERENCE.root(size).hex() == ROOTS[size]


@pytest.mark.parametrize("batch", [1, 3, 16, 17, 1000])
def test_batch_size_does_not_change_the_tiles(batch: int) -> None:
    """Appending in batches of any size builds the same tiles as one leaf at a time."""
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(600)]
    assert Tree(leaves, batch).tiles == Tree(leaves, 1).tiles


def test_tiles_only_grow() -> None:
    """Every tile written by an append extends what the tile held before."""
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(300)]
    tiles: dict[TileKey, bytes] = {}
    for start in range(0, 300, 5):
        written = append_leaves(start, leaves[start : start + 5], {key: tiles[key] for key in partial_tiles(start)})
        for key, blob in written.items():
            assert blob.startswith(tiles.get(key, b""))
        tiles.update(written)


def test_missing_partial_tile_is_detected() -> None:
    """Appending without the partial tile the tree needs is refused, not guessed."""
    with pytest.raises(ValueError):
        append_leaves(5, [leaf_hash(b"x")], {})


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, expected: list[str]) -> None:
    """Inclusion proofs equal the published ones and verify against the published root."""
    proof = inclusion_proof(index, size, REFERENCE.read)
    assert [item.hex() for item in proof] == expected
    assert verify_inclusion(index, size, LEAVES[index], proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY)
def test_consistency_vectors(old: int, new: int, expected: list[str]) -> None:
    """Consistency proofs equal the published ones and verify."""
    proof = consistency_proof(old, new, REFERENCE.read)
    assert [item.hex() for item in proof] == expected
    assert verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), proof)


def test_proof_reads_are_logarithmic() -> None:
    """A proof in a tree of 100,000 leaves reads at most two tiles per tile level, in one call."""
    size = 100_000
    tree = Tree([leaf_hash(i.to_bytes(4, "big")) for i in range(size)])
    tree.reads.clear()
    inclusion_proof(77_777, size, tree.read)
    consistency_proof(12_345, size, tree.read)
    assert len(tree.reads) == 2 and max(tree.reads) <= 2 * 5


def _flip(proof: list[bytes], item: int, bit: int) -> list[bytes]:
    changed = bytearray(proof[item])
    changed[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:item], bytes(changed), *proof[item + 1 :]]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))), st.data())
def test_inclusion_verifies_and_any_bit_flip_fails(sizes: tuple[int, int], data: st.DataObject) -> None:
    """For every i < n <= 300 the proof verifies, and fails after any single-bit change of proof or leaf."""
    size, index = sizes
    tree = Tree([leaf_hash(i.to_bytes(2, "big")) for i in range(size)])
    root = tree.root(size)
    leaf = tree.leaf(index)
    proof = inclusion_proof(index, size, tree.read)
    assert verify_inclusion(index, size, leaf, proof, root)
    if proof:
        item, bit = data.draw(st.integers(0, len(proof) - 1)), data.draw(st.integers(0, 255))
        assert not verify_inclusion(index, size, leaf, _flip(proof, item, bit), root)
    assert not verify_inclusion(index, size, _flip([leaf], 0, data.draw(st.integers(0, 255)))[0], proof, root)
    other = data.draw(st.integers(0, size))
    if other != index:
        assert not verify_inclusion(other, size, leaf, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))), st.data())
def test_consistency_verifies_and_any_bit_flip_fails(sizes: tuple[int, int], data: st.DataObject) -> None:
    """For every m <= n <= 300 the consistency proof verifies, and fails after any single-bit change."""
    old, new = sizes
    tree = Tree([leaf_hash(i.to_bytes(2, "big")) for i in range(new)])
    old_root, new_root = tree.root(old), tree.root(new)
    proof = consistency_proof(old, new, tree.read)
    assert verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        item, bit = data.draw(st.integers(0, len(proof) - 1)), data.draw(st.integers(0, 255))
        assert not verify_consistency(old, new, old_root, new_root, _flip(proof, item, bit))
    bit = data.draw(st.integers(0, 255))
    assert not verify_consistency(old, new, _flip([old_root], 0, bit)[0], new_root, proof)
    assert not verify_consistency(old, new, old_root, _flip([new_root], 0, bit)[0], proof)


def test_wrong_index_or_size_fails() -> None:
    """A proof checked for another index or size is refused."""
    proof = inclusion_proof(5, 8, REFERENCE.read)
    root = bytes.fromhex(ROOTS[8])
    assert not verify_inclusion(4, 8, LEAVES[5], proof, root)
    # The size is bound to its root by the signed checkpoint: checked against size 7's root, it fails.
    assert not verify_inclusion(5, 7, LEAVES[5], proof, bytes.fromhex(ROOTS[7]))
    assert not verify_inclusion(8, 8, LEAVES[5], proof, root)
    assert not verify_consistency(5, 8, bytes.fromhex(ROOTS[6]), root, consistency_proof(6, 8, REFERENCE.read))


def test_plans_refuse_impossible_requests() -> None:
    """Indexes outside the tree and shrinking sizes are refused."""
    with pytest.raises(ValueError):
        inclusion_proof(8, 8, REFERENCE.read)
    with pytest.raises(ValueError):
        consistency_proof(5, 4, REFERENCE.read)
