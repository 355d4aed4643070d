"""The RFC 9162 (Certificate Transparency v2) Merkle tree, its proofs and their verifiers.

Hashes: a leaf is ``SHA-256(0x00 || entry)``, an inner node
``SHA-256(0x01 || left || right)``; the tree over ``n`` leaves splits at the largest
power of two below ``n`` (RFC 9162 §2.1.1), so odd nodes are carried up, never
duplicated.

Storage: only *complete* subtrees are stored, as ``(level, index)`` nodes covering
leaves ``[index * 2**level, (index + 1) * 2**level)``. Every subtree that RFC 9162's
recursion visits starts at a multiple of a power of two at least its size, so each
is either a stored node or splits into one stored node plus a smaller such subtree.
That makes any root, inclusion proof or consistency proof a read of O(log n) nodes:
:func:`inclusion_plan` and :func:`consistency_plan` say which, and
:func:`subtree_hash` folds them.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 exactly: driven by the index
and the tree sizes, never by left/right hints from whoever produced the proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "NodeKey",
    "consistency_plan",
    "consistency_proof",
    "inclusion_plan",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "plan_hashes",
    "plan_nodes",
    "root_hash",
    "subtree_hash",
    "subtree_nodes",
    "verify_consistency",
    "verify_inclusion",
]

#: A stored node: (level, index); level 0 holds the leaf hashes.
NodeKey = tuple[int, int]
#: A subtree ``[start, end)`` of leaves.
Range = tuple[int, int]

EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """Return ``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree_nodes(start: int, end: int) -> list[NodeKey]:
    """Return the stored nodes whose hashes make up subtree ``[start, end)``, left to right."""
    keys: list[NodeKey] = []
    while end > start:
        size = end - start
        if size & (size - 1) == 0:
            level = size.bit_length() - 1
            keys.append((level, start >> level))
            break
        half = _split(size)
        level = half.bit_length() - 1
        keys.append((level, start >> level))
        start += half
    return keys


def subtree_hash(start: int, end: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """Return ``MTH(D[start:end])`` from stored nodes (those :func:`subtree_nodes` names)."""
    if end <= start:
        return EMPTY_ROOT
    hashes = [nodes[key] for key in subtree_nodes(start, end)]
    value = hashes[-1]
    for left in reversed(hashes[:-1]):
        value = node_hash(left, value)
    return value


def root_hash(size: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """Return the root of the tree of ``size`` leaves."""
    return subtree_hash(0, size, nodes)


def inclusion_plan(index: int, size: int) -> list[Range]:
    """Return the subtrees whose hashes form the inclusion proof of leaf ``index`` (RFC 9162 PATH)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    path: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        half = _split(end - start)
        if index < start + half:
            path.append((start + half, end))
            end = start + half
        else:
            path.append((start, start + half))
            start += half
    path.reverse()
    return path


def consistency_plan(old_size: int, new_size: int) -> list[Range]:
    """Return the subtrees whose hashes form the consistency proof from ``old_size`` to ``new_size``."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    proof: list[Range] = []
    start, end, old_end, complete = 0, new_size, old_size, True
    while True:
        if old_end == end:
            if not complete:
                proof.append((start, end))
            break
        half = _split(end - start)
        if old_end <= start + half:
            proof.append((start + half, end))
            end = start + half
        else:
            proof.append((start, start + half))
            start += half
            complete = False
    proof.reverse()
    return proof


def plan_nodes(plan: Sequence[Range]) -> list[NodeKey]:
    """Return the stored nodes a proof plan's hashes are folded from."""
    return [key for start, end in plan for key in subtree_nodes(start, end)]


def plan_hashes(plan: Sequence[Range], nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """Return a proof plan's hashes from the nodes :func:`plan_nodes` named."""
    return [subtree_hash(start, end, nodes) for start, end in plan]


def _proof(plan: list[Range], node: Callable[[Iterable[NodeKey]], Mapping[NodeKey, bytes]]) -> list[bytes]:
    return plan_hashes(plan, node(plan_nodes(plan)))


def inclusion_proof(
    index: int, size: int, nodes: Callable[[Iterable[NodeKey]], Mapping[NodeKey, bytes]]
) -> list[bytes]:
    """Return the inclusion proof of leaf ``index`` in the tree of ``size``, reading nodes in one call."""
    return _proof(inclusion_plan(index, size), nodes)


def consistency_proof(
    old_size: int, new_size: int, nodes: Callable[[Iterable[NodeKey]], Mapping[NodeKey, bytes]]
) -> list[bytes]:
    """Return the consistency proof between two tree sizes, reading nodes in one call."""
    return _proof(consistency_plan(old_size, new_size), nodes)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Check an inclusion proof exactly as RFC 9162 §2.1.3.2 says."""
    if index >= size or index < 0:
        return False
    fn, sn, value = index, size - 1, leaf
    for sibling in proof:
        if len(sibling) != 32 or sn == 0:
            return False
        if fn & 1 or fn == sn:
            value = node_hash(sibling, value)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            value = node_hash(value, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and value == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Check a consistency proof exactly as RFC 9162 §2.1.4.2 says."""
    if old_size <= 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if any(len(item) != 32 for item in path):
        return False
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for item in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(item, fr)
            sr = node_hash(item, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, item)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
