"""C2SP signed notes with Ed25519 keys: signing, verifying, and verifier-key strings.

A signed note is a text ending in a newline, a blank line, and signature lines
``— <key name> base64(key ID || signature)``. The key ID is the first four bytes of
``SHA-256(key name || 0x0A || signature type || public key)``. trailvault uses two
signature types with one key: ``0x01`` (plain Ed25519 over the note text) for the
checkpoint itself, and ``0x04`` (a timestamped ``cosignature/v1``) to give the
checkpoint a signed time. The cosignature message begins with ``cosignature/v1``,
which no checkpoint text can begin with, so the two uses stay apart.

A verifier key is written ``<name>+<key ID hex>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trailvault.errors import InvalidInput

__all__ = [
    "COSIGNATURE",
    "ED25519",
    "NoteSignature",
    "Verifier",
    "cosignature_message",
    "key_id",
    "parse_note",
    "sign_note",
    "verifier_key",
]

ED25519 = 0x01
COSIGNATURE = 0x04
_DASH = "\u2014 "
_NAME_FORBIDDEN = (" ", "+", "\n")


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """Return the 4-byte key ID of a key for one signature type."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """Return the verifier key string ``<name>+<key ID hex>+<base64(0x01 || key)>``."""
    raw = _raw(public_key)
    return f"{name}+{key_id(name, ED25519, raw).hex()}+{base64.b64encode(bytes([ED25519]) + raw).decode()}"


@dataclass(frozen=True)
class Verifier:
    """A trusted public key under its name, as parsed from a verifier key string."""

    name: str
    public_key: Ed25519PublicKey

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """Parse a verifier key string; raise InvalidInput naming ``key`` when it is not one."""
        parts = text.strip().split("+", 2)  # base64 may itself contain "+"
        problem = "use the output of `trailvault key show`"
        if len(parts) != 3 or not parts[0]:
            raise InvalidInput(f"key: not a verifier key ({problem})", field="key")
        name, hex_id, encoded = parts
        try:
            material = base64.b64decode(encoded, validate=True)
            expected = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"key: not a verifier key ({problem})", field="key") from None
        if len(material) != 33 or material[0] != ED25519:
            raise InvalidInput("key: only Ed25519 verifier keys (type 0x01) are supported", field="key")
        if key_id(name, ED25519, material[1:]) != expected:
            raise InvalidInput("key: the key ID does not match the name and key; the key is damaged", field="key")
        return cls(name, Ed25519PublicKey.from_public_bytes(material[1:]))

    def raw(self) -> bytes:
        return _raw(self.public_key)

    def knows(self, signature: NoteSignature) -> bool:
        """Tell whether a signature line claims to be by this key (name and key ID both match)."""
        raw = self.raw()
        return signature.name == self.name and signature.key_id in (
            key_id(self.name, ED25519, raw),
            key_id(self.name, COSIGNATURE, raw),
        )

    def verify(self, signature: NoteSignature, text: str) -> bool:
        """Tell whether ``signature`` is this key's valid signature of ``text`` (either type)."""
        if signature.name != self.name:
            return False
        if signature.key_id == key_id(self.name, ED25519, self.raw()):
            message = text.encode()
            sig = signature.signature
        elif signature.key_id == key_id(self.name, COSIGNATURE, self.raw()) and len(signature.signature) == 72:
            (timestamp,) = struct.unpack(">Q", signature.signature[:8])
            message = cosignature_message(text, timestamp)
            sig = signature.signature[8:]
        else:
            return False
        try:
            self.public_key.verify(sig, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key name, the 4-byte key ID and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"

    def timestamp(self) -> int | None:
        """The signed time of a cosignature (seconds since the epoch), else None."""
        return struct.unpack(">Q", self.signature[:8])[0] if len(self.signature) == 72 else None


def cosignature_message(text: str, timestamp: int) -> bytes:
    """Return what a ``cosignature/v1`` signs: a header, the time, and the note text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey, *, timestamp: int | None = None) -> str:
    """Return the signed note: ``text``, a blank line, the Ed25519 signature and, with
    ``timestamp``, a timestamped cosignature by the same key giving the signed time."""
    if not text.endswith("\n") or any(bad in name for bad in _NAME_FORBIDDEN) or not name:
        raise ValueError("a note text ends in a newline and a key name has no spaces, '+' or newlines")
    raw = _raw(private_key.public_key())
    lines = [NoteSignature(name, key_id(name, ED25519, raw), private_key.sign(text.encode())).line()]
    if timestamp is not None:
        signed = struct.pack(">Q", timestamp) + private_key.sign(cosignature_message(text, timestamp))
        lines.append(NoteSignature(name, key_id(name, COSIGNATURE, raw), signed).line())
    return text + "\n" + "".join(lines)


def parse_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and signatures; raise InvalidInput when malformed."""
    separator = note.rfind("\n\n")
    if separator < 0:
        raise InvalidInput("note: no blank line between the text and its signatures", field="note")
    text, block = note[: separator + 1], note[separator + 2 :]
    signatures = []
    for line in block.splitlines():
        if not line.startswith(_DASH):
            raise InvalidInput(f"note: {line[:40]!r} is not a signature line", field="note")
        name, _, encoded = line[len(_DASH) :].rpartition(" ")
        try:
            data = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise InvalidInput(f"note: the signature of {name!r} is not base64", field="note") from None
        if len(data) < 5 or not name:
            raise InvalidInput(f"note: the signature line of {name!r} is too short", field="note")
        signatures.append(NoteSignature(name, data[:4], data[4:]))
    if not signatures:
        raise InvalidInput("note: it has no signature", field="note")
    return text, signatures
