"""Receipts: everything needed to prove one event was logged, checkable with no vault at hand.

A receipt (``trailvault-receipt/v1``) is a JSON object::

    {"format": "trailvault-receipt/v1",
     "entry": {...the canonical entry: app, body_sha256, channel, id, received, seq, time...},
     "body": {...the canonical body, so its content is proven too...},
     "index": 41, "size": 42, "leaf_hash": "<hex>", "hashes": ["<hex>", ...],
     "checkpoint": "<the signed checkpoint note>"}

Checking it needs only the vault's verifier key: the checkpoint must carry a valid
signature by the key, the body must hash to the entry's ``body_sha256``, the entry's
canonical bytes must hash to the leaf, and the inclusion proof must lead from the leaf
at ``index = seq - 1`` to the checkpoint's root at its size.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from trailvault.core.event import canonical_body
from trailvault.core.integrity.checkpoint import Checkpoint, open_checkpoint
from trailvault.core.integrity.merkle import leaf_hash, verify_inclusion
from trailvault.core.integrity.note import Verifier
from trailvault.errors import InvalidInput

__all__ = ["FORMAT", "check_receipt", "make_receipt"]

FORMAT = "trailvault-receipt/v1"


def make_receipt(
    entry: dict[str, Any],
    body: dict[str, Any] | None,
    index: int,
    size: int,
    leaf: bytes,
    hashes: list[bytes],
    checkpoint: str,
) -> dict[str, Any]:
    """Assemble a receipt from an entry, its body, its inclusion proof and the signed checkpoint."""
    return {
        "format": FORMAT,
        "entry": entry,
        "body": body,
        "index": index,
        "size": size,
        "leaf_hash": leaf.hex(),
        "hashes": [item.hex() for item in hashes],
        "checkpoint": checkpoint,
    }


def check_receipt(receipt: Any, verifier: Verifier) -> Checkpoint:
    """Check a receipt offline; return its verified checkpoint or raise InvalidInput naming what failed."""
    if not isinstance(receipt, dict) or receipt.get("format") != FORMAT:
        raise InvalidInput(f"receipt: not a {FORMAT} document", field="receipt")
    try:
        entry, index, size = receipt["entry"], receipt["index"], receipt["size"]
        hashes = [bytes.fromhex(item) for item in receipt["hashes"]]
        claimed_leaf = bytes.fromhex(receipt["leaf_hash"])
        note = receipt["checkpoint"]
        seq = entry["seq"]
        body_sha256 = bytes.fromhex(entry["body_sha256"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("receipt: a field is missing or malformed", field="receipt") from None
    if not isinstance(note, str) or not isinstance(index, int) or not isinstance(size, int):
        raise InvalidInput("receipt: a field is missing or malformed", field="receipt")
    checkpoint = open_checkpoint(note, verifier)
    body = receipt.get("body")
    if body is not None and hashlib.sha256(canonical_body(body)).digest() != body_sha256:
        raise InvalidInput("receipt: the body does not match the entry's body_sha256", field="body")
    if index != seq - 1:
        raise InvalidInput(f"receipt: index {index} is not the entry's seq {seq} - 1", field="index")
    leaf = leaf_hash(orjson.dumps(entry, option=orjson.OPT_SORT_KEYS))
    if leaf != claimed_leaf:
        raise InvalidInput("receipt: the entry does not hash to the receipt's leaf", field="entry")
    if size != checkpoint.size:
        raise InvalidInput(f"receipt: the proof is for size {size}, the checkpoint for {checkpoint.size}", field="size")
    if not verify_inclusion(index, size, leaf, hashes, checkpoint.root):
        raise InvalidInput("receipt: the inclusion proof does not lead to the checkpoint's root", field="hashes")
    return checkpoint
