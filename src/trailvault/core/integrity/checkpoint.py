"""Checkpoints in the C2SP ``tlog-checkpoint`` format, signed as C2SP signed notes.

::

    trailvault.example/0193a2b4-...      origin: <configured name>/<vault id>
    1234                                 the log's size
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=   its root, base64

    — trailvault.example/0193a2b4-... <base64 key ID || Ed25519 signature>
    — trailvault.example/0193a2b4-... <base64 key ID || time || cosignature/v1>

The second signature line is a timestamped cosignature by the same key: it gives
the checkpoint a signed time (see :mod:`trailvault.core.integrity.note`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trailvault.core.integrity.note import Verifier, parse_note, sign_note
from trailvault.errors import InvalidInput

__all__ = ["Checkpoint", "open_checkpoint", "sign_checkpoint"]


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: origin, size, root, signed time, and the note as signed."""

    origin: str
    size: int
    root: bytes
    timestamp: int | None
    note: str

    def body(self) -> str:
        return _body(self.origin, self.size, self.root)


def _body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_checkpoint(
    origin: str, size: int, root: bytes, private_key: Ed25519PrivateKey, *, timestamp: int
) -> Checkpoint:
    """Return the checkpoint of a log of ``size`` entries with ``root``, signed at ``timestamp``."""
    if "\n" in origin or not origin or size < 0 or len(root) != 32:
        raise ValueError("a checkpoint needs a one-line origin, a size >= 0 and a 32-byte root")
    note = sign_note(_body(origin, size, root), origin, private_key, timestamp=timestamp)
    return Checkpoint(origin, size, root, timestamp, note)


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """Parse a checkpoint note and check its signatures against ``verifier``.

    Raises InvalidInput naming ``checkpoint`` when the note is malformed, carries no
    valid signature by the key, or carries a signature by the key that fails.
    """
    text, signatures = parse_note(note)
    lines = text.split("\n")
    if len(lines) < 4:
        raise InvalidInput("checkpoint: expected origin, size and root lines", field="checkpoint")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    try:
        size = int(size_text)
        root = base64.b64decode(root_text, validate=True)
    except (ValueError, binascii.Error):
        raise InvalidInput("checkpoint: the size or root line is malformed", field="checkpoint") from None
    if size < 0 or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")) or len(root) != 32:
        raise InvalidInput("checkpoint: the size or root line is malformed", field="checkpoint")
    # Signatures by other keys are ignored, as C2SP signed-note requires.
    mine = [signature for signature in signatures if verifier.knows(signature)]
    if not any(signature.timestamp() is None for signature in mine):
        raise InvalidInput(
            f"checkpoint: not signed by the key {verifier.name!r}; is this the right key?", field="checkpoint"
        )
    timestamp = None
    for signature in mine:
        if not verifier.verify(signature, text):
            raise InvalidInput(
                f"checkpoint: a signature by {verifier.name!r} does not verify: forged, altered, or another key",
                field="checkpoint",
            )
        timestamp = signature.timestamp() if timestamp is None else timestamp
    return Checkpoint(origin, size, root, timestamp, note)
