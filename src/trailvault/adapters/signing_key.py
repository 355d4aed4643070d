"""The vault's Ed25519 signing key on disk: created once, readable only by its owner, never logged.

The key is a PKCS #8 PEM file. By default it sits beside a SQLite database
(``trailvault-data/vault.key``), or, for a PostgreSQL vault, in the user's
configuration folder under the vault's id
(``~/.config/trailvault/keys/<vault id>.key``); the ``signing_key`` setting puts it elsewhere,
which is what the threat model in docs/integrity.md recommends: whoever holds both
the database and the key can rewrite history.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from trailvault.errors import InvalidInput, NotFound

__all__ = [
    "create_signing_key",
    "default_key_path",
    "load_signing_key",
    "read_signer_record",
    "signer_record_path",
    "write_signer_record",
]


def default_key_path(location: str, vault_id: str) -> Path:
    """Return where a vault's key lives by default.

    ``location`` is the store's: a SQLite file gets ``vault.key`` beside it; a server
    URL gets ``$XDG_CONFIG_HOME/trailvault/adapters/signing_key/<vault_id>.key`` (``~/.config`` when unset).
    """
    if "://" not in location:
        return Path(location).with_suffix(".key")
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "trailvault" / "keys" / f"{vault_id}.key"


def create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Create a new key at ``path`` with mode 0600, or return the one already there."""
    if path.exists():
        return load_signing_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    # O_EXCL with the mode given at creation: the key is never readable by others, not even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read the key at ``path``; raise NotFound or InvalidInput naming ``signing_key`` (never its contents)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(
            f"signing_key: no key at {path}; `trailvault init` creates one, or set signing_key", field="signing_key"
        ) from None
    except OSError as exc:
        raise InvalidInput(f"signing_key: cannot read {path} ({exc.strerror})", field="signing_key") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidInput(f"signing_key: {path} is not an unencrypted PEM private key", field="signing_key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"signing_key: {path} is not an Ed25519 key", field="signing_key")
    return key


def signer_record_path(key_path: Path, vault_id: str) -> Path:
    """Return where the signer keeps the last checkpoint it signed for a vault: beside its key.

    Someone who can write the database but not the key's folder cannot change it, so the
    signer never signs a log that does not extend it, even with every checkpoint in the
    database deleted (see docs/integrity.md). The vault id keeps vaults sharing a key apart.
    """
    return key_path.with_name(f"{key_path.name}.{vault_id}.checkpoint")


def read_signer_record(path: Path) -> str | None:
    """Return the note kept at ``path``, or None when there is none (or it cannot be read)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def write_signer_record(path: Path, note: str) -> None:
    """Replace the note kept at ``path`` at once (a reader sees the old note or the new one, whole).

    Not synced to disk: after a power loss an older note only means an older, still true,
    base for the next signature.
    """
    # A file of its own per write (mkstemp: 0600, O_EXCL): two signers of one vault never
    # write into the same partial file, so the record is always one whole note.
    descriptor, partial = tempfile.mkstemp(prefix=path.name + ".", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(note)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
