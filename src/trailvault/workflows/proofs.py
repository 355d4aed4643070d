"""Building proofs from a vault's stored tree: of one entry, of consistency, and of many entries at once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from trailvault.adapters.store.contract.log import LogStore
from trailvault.core.integrity.merkle import (
    consistency_proof,
    inclusion_plan,
    plan_hashes,
    plan_nodes,
    subtree_hash,
    subtree_nodes,
)
from trailvault.core.integrity.multiproof import LeafIndexes, multiproof_ranges

__all__ = ["ConsistencyProof", "InclusionProof", "build_consistency", "build_inclusion", "proof_hashes"]

#: Subtrees whose hashes one read of the tree fetches, when proving many entries at once.
_NODE_CHUNK = 4096


@dataclass(frozen=True)
class InclusionProof:
    """Entry ``index`` (seq - 1), with ``leaf_hash``, is in the tree of ``size`` entries."""

    index: int
    size: int
    leaf_hash: bytes
    hashes: list[bytes]
    checkpoint: str | None

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> InclusionProof:
        """Read the JSON form of :meth:`to_dict`."""
        hashes = [bytes.fromhex(item) for item in document["hashes"]]
        leaf = bytes.fromhex(document["leaf_hash"])
        return cls(document["index"], document["size"], leaf, hashes, document["checkpoint"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "seq": self.index + 1,
            "size": self.size,
            "leaf_hash": self.leaf_hash.hex(),
            "hashes": [item.hex() for item in self.hashes],
            "checkpoint": self.checkpoint,
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of ``new_size`` entries extends the tree of ``old_size`` entries."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    hashes: list[bytes]
    checkpoint: str | None

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ConsistencyProof:
        """Read the JSON form of :meth:`to_dict`."""
        return cls(
            document["from"],
            document["to"],
            bytes.fromhex(document["old_root"]),
            bytes.fromhex(document["new_root"]),
            [bytes.fromhex(item) for item in document["hashes"]],
            document["checkpoint"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.old_size,
            "to": self.new_size,
            "old_root": self.old_root.hex(),
            "new_root": self.new_root.hex(),
            "hashes": [item.hex() for item in self.hashes],
            "checkpoint": self.checkpoint,
        }


def build_inclusion(store: LogStore, index: int, size: int, checkpoint: str | None) -> InclusionProof:
    """Read the leaf and the O(log n) nodes of its inclusion proof in the tree of ``size``, in one read."""
    plan = inclusion_plan(index, size)
    nodes = store.tree_nodes([(0, index), *plan_nodes(plan)])
    return InclusionProof(index, size, nodes[(0, index)], plan_hashes(plan, nodes), checkpoint)


def build_consistency(
    store: LogStore, old_size: int, new_size: int, old_root: bytes, new_root: bytes, checkpoint: str | None
) -> ConsistencyProof:
    """Read the nodes of the consistency proof between two tree sizes."""
    hashes = consistency_proof(old_size, new_size, store.tree_nodes)
    return ConsistencyProof(old_size, new_size, old_root, new_root, hashes, checkpoint)


def proof_hashes(store: LogStore, seqs: Sequence[int], size: int) -> Iterator[bytes]:
    """The multi-entry proof of ``seqs`` in a log of ``size``, from the store's tree, in chunks of hashes."""
    ranges = list(multiproof_ranges(LeafIndexes(seqs), size))
    for start in range(0, len(ranges), _NODE_CHUNK):
        chunk = ranges[start : start + _NODE_CHUNK]
        nodes = store.tree_nodes({key for low, high in chunk for key in subtree_nodes(low, high)})
        yield b"".join(subtree_hash(low, high, nodes) for low, high in chunk)
