"""How the log's entries become Merkle leaves, shared by every store backend."""

from __future__ import annotations

import hashlib

from trailvault.core.event import Envelope, StoredEntry, canonical_entry
from trailvault.core.integrity.merkle import leaf_hash

__all__ = ["LeafParts", "entry_leaf", "leaf_from_parts", "leaf_parts", "stored_leaf"]

#: An entry's canonical bytes before and after its seq's digits.
LeafParts = tuple[bytes, bytes]
_SEQ_KEY = b',"seq":'


def entry_leaf(event: Envelope, seq: int, body_sha256: bytes) -> bytes:
    """Return the Merkle leaf hash of the entry at ``seq`` (leaf index ``seq - 1``)."""
    return leaf_hash(canonical_entry(event, seq, body_sha256))


def stored_leaf(entry: StoredEntry) -> bytes | None:
    """The leaf recomputed from a stored row, or None when its body no longer hashes to its ``body_sha256``.

    A redacted row (no body) keeps only the hash, which is all its leaf needs.
    """
    if entry.body_json is not None and hashlib.sha256(entry.body_json.encode()).digest() != entry.body_sha256:
        return None
    return entry_leaf(entry, entry.seq, entry.body_sha256)


def leaf_parts(event: Envelope, body_sha256: bytes) -> LeafParts:
    """Split an entry's canonical bytes around its seq, before the seq is known.

    A store calls this before it takes its sequence lock, so that inside the lock only
    :func:`leaf_from_parts` runs. ``seq`` is followed only by ``time``, whose text holds
    no quote, so the last ``,"seq":`` is the key itself, never text inside a value.
    """
    text = canonical_entry(event, 0, body_sha256)
    head, _, tail = text.rpartition(_SEQ_KEY + b"0,")
    return head + _SEQ_KEY, b"," + tail


def leaf_from_parts(parts: LeafParts, seq: int) -> bytes:
    """Finish the leaf hash of an entry split by :func:`leaf_parts`, now that its seq is known."""
    return hashlib.sha256(b"\x00" + parts[0] + str(seq).encode() + parts[1]).digest()
