"""How the log's entries become Merkle leaves, shared by every store backend."""

from __future__ import annotations

from trailvault.event import Envelope, canonical_entry
from trailvault.integrity.merkle import leaf_hash

__all__ = ["entry_leaf"]


def entry_leaf(event: Envelope, seq: int, body_sha256: bytes) -> bytes:
    """Return the Merkle leaf hash of the entry at ``seq`` (leaf index ``seq - 1``)."""
    return leaf_hash(canonical_entry(event, seq, body_sha256))
