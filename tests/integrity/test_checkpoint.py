"""Checkpoints as C2SP signed notes: signing, verifier keys, and every way a forgery fails."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trailvault.core.integrity.checkpoint import open_checkpoint, sign_checkpoint
from trailvault.core.integrity.note import Verifier, key_id, parse_note, verifier_key
from trailvault.errors import InvalidInput

ORIGIN = "trailvault.example/0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b"
ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_checkpoint_text_layout(key: Ed25519PrivateKey) -> None:
    """The note is origin, size, base64 root, a blank line, then two signature lines by the origin."""
    note = sign_checkpoint(ORIGIN, 42, ROOT, key, timestamp=1_700_000_000).note
    lines = note.split("\n")
    assert lines[:4] == [ORIGIN, "42", base64.b64encode(ROOT).decode(), ""]
    assert lines[4].startswith(f"\u2014 {ORIGIN} ") and lines[5].startswith(f"\u2014 {ORIGIN} ")


def test_round_trip_with_signed_time(key: Ed25519PrivateKey) -> None:
    """A checkpoint verifies with its verifier key and carries its signed time."""
    verifier = Verifier.parse(verifier_key(ORIGIN, key.public_key()))
    opened = open_checkpoint(sign_checkpoint(ORIGIN, 7, ROOT, key, timestamp=1_700_000_123).note, verifier)
    assert (opened.origin, opened.size, opened.root, opened.timestamp) == (ORIGIN, 7, ROOT, 1_700_000_123)


def test_verifier_key_format(key: Ed25519PrivateKey) -> None:
    """The verifier key is name+keyid+base64(0x01 || key), the key ID per C2SP."""
    raw = Verifier(ORIGIN, key.public_key()).raw()
    name, hex_id, material = verifier_key(ORIGIN, key.public_key()).split("+", 2)
    assert name == ORIGIN
    assert hex_id == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4].hex()
    assert base64.b64decode(material) == b"\x01" + raw


def test_damaged_verifier_key_refused(key: Ed25519PrivateKey) -> None:
    """A verifier key whose ID does not match is refused naming key."""
    name, _, material = verifier_key(ORIGIN, key.public_key()).split("+", 2)
    with pytest.raises(InvalidInput, match="key ID does not match"):
        Verifier.parse(f"{name}+00000000+{material}")
    with pytest.raises(InvalidInput, match="key:"):
        Verifier.parse("not a key")


def test_altered_root_fails(key: Ed25519PrivateKey) -> None:
    """Changing the root line breaks the signature."""
    note = sign_checkpoint(ORIGIN, 7, ROOT, key, timestamp=1).note
    forged = note.replace(base64.b64encode(ROOT).decode(), base64.b64encode(bytes(32)).decode())
    with pytest.raises(InvalidInput, match="does not verify"):
        open_checkpoint(forged, Verifier(ORIGIN, key.public_key()))


def test_altered_size_fails(key: Ed25519PrivateKey) -> None:
    """Changing the size line breaks the signature."""
    note = sign_checkpoint(ORIGIN, 7, ROOT, key, timestamp=1).note
    with pytest.raises(InvalidInput, match="does not verify"):
        open_checkpoint(note.replace("\n7\n", "\n8\n", 1), Verifier(ORIGIN, key.public_key()))


def test_forged_signature_fails(key: Ed25519PrivateKey) -> None:
    """A signature line with the right key ID but bytes from another key fails."""
    note = sign_checkpoint(ORIGIN, 7, ROOT, key, timestamp=1).note
    text, signatures = parse_note(note)
    impostor = Ed25519PrivateKey.generate().sign(text.encode())
    fake = base64.b64encode(signatures[0].key_id + impostor).decode()
    forged = text + "\n" + f"\u2014 {ORIGIN} {fake}\n"
    with pytest.raises(InvalidInput, match="does not verify"):
        open_checkpoint(forged, Verifier(ORIGIN, key.public_key()))


def test_other_vaults_key_fails(key: Ed25519PrivateKey) -> None:
    """A checkpoint checked with another vault's key is refused."""
    note = sign_checkpoint(ORIGIN, 7, ROOT, key, timestamp=1).note
    with pytest.raises(InvalidInput, match="not signed by the key"):
        open_checkpoint(note, Verifier(ORIGIN, Ed25519PrivateKey.generate().public_key()))


def test_altered_timestamp_fails(key: Ed25519PrivateKey) -> None:
    """Changing the cosignature's time breaks it."""
    note = sign_checkpoint(ORIGIN, 7, ROOT, key, timestamp=1_700_000_000).note
    text, signatures = parse_note(note)
    cosigned = signatures[1]
    moved = (1_800_000_000).to_bytes(8, "big") + cosigned.signature[8:]
    line = f"\u2014 {ORIGIN} {base64.b64encode(cosigned.key_id + moved).decode()}\n"
    with pytest.raises(InvalidInput, match="does not verify"):
        open_checkpoint(text + "\n" + signatures[0].line() + line, Verifier(ORIGIN, key.public_key()))


def test_unknown_signers_are_ignored(key: Ed25519PrivateKey) -> None:
    """A signature line by another key (different key ID) is ignored, as C2SP requires."""
    note = sign_checkpoint(ORIGIN, 7, ROOT, key, timestamp=1).note
    other = key_id("witness.example/w1", 1, bytes(32))
    extra = f"\u2014 witness.example/w1 {base64.b64encode(other + bytes(64)).decode()}\n"
    assert open_checkpoint(note + extra, Verifier(ORIGIN, key.public_key())).size == 7


@pytest.mark.parametrize("bad", ["no blank line", "a\nb\n\nnot a signature\n", "x\n1\nroot\n\n\u2014 x !!!\n"])
def test_malformed_notes_refused(key: Ed25519PrivateKey, bad: str) -> None:
    """Malformed notes are refused with a message, not a crash."""
    with pytest.raises(InvalidInput):
        open_checkpoint(bad, Verifier(ORIGIN, key.public_key()))
