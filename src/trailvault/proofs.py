"""Building proofs from a vault's stored tree, each tied to a signed checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trailvault.integrity.merkle import consistency_proof, inclusion_plan, plan_hashes, plan_nodes
from trailvault.store.base import Store

__all__ = ["ConsistencyProof", "InclusionProof", "build_consistency", "build_inclusion"]


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


def build_inclusion(store: Store, index: int, size: int, checkpoint: str | None) -> InclusionProof:
    """Read the leaf and the O(log n) nodes of its inclusion proof in the tree of ``size``, in one read."""
    plan = inclusion_plan(index, size)
    nodes = store.tree_nodes([(0, index), *plan_nodes(plan)])
    return InclusionProof(index, size, nodes[(0, index)], plan_hashes(plan, nodes), checkpoint)


def build_consistency(
    store: Store, old_size: int, new_size: int, old_root: bytes, new_root: bytes, checkpoint: str | None
) -> ConsistencyProof:
    """Read the nodes of the consistency proof between two tree sizes."""
    hashes = consistency_proof(old_size, new_size, store.tree_nodes)
    return ConsistencyProof(old_size, new_size, old_root, new_root, hashes, checkpoint)
