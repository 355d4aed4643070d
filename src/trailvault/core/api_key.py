"""API keys and scopes: who may do what, to which app and channels (no I/O).

A key is a bearer token ``tv_<key id>_<secret>``: the key id (16 hex digits)
finds the stored key, the secret (32 random bytes, base64url) proves it. Only the
secret's SHA-256 is kept; a fast hash is enough because the secret has 256 bits of
entropy, so nothing can be guessed from the digest (passwords need slow hashes;
random tokens do not). The token is shown once, when the key is created.

Scopes::

    ingest   open channels and post events
    read     list and get events, channels, checkpoints and proofs
    archive  take events out: export, archive batches, purge (issue 6)
    admin    create, list and revoke keys, redact; implies ingest, read and archive
    unmask   see the values of fields the schema marks ``sensitive`` (never implied)

A key limited to some channels sees nothing of the others: a request for one of
them is answered like a request for a channel that does not exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trailvault.core.timestamps import format_timestamp, parse_timestamp
from trailvault.errors import InvalidInput, Unauthorized

__all__ = ["ApiKey", "Scope", "new_token", "parse_scopes", "parse_token", "secret_digest", "secret_matches"]

_TOKEN = re.compile(r"tv_([0-9a-f]{16})_([A-Za-z0-9_\-]{43})")


class Scope(StrEnum):
    """What a key may do; see the module docstring."""

    INGEST = "ingest"
    READ = "read"
    ARCHIVE = "archive"
    ADMIN = "admin"
    UNMASK = "unmask"


_IMPLIED = {Scope.ADMIN: frozenset({Scope.INGEST, Scope.READ, Scope.ARCHIVE})}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key, without its secret.

    ``channels`` is None for a key that may use every channel of its app.
    ``revoked_us`` is None while the key works. ``oci_fingerprint`` names the RSA public
    key registered for OCI request signatures (:mod:`trailvault.core.ocisignature`), or is None.
    """

    id: str
    app: str
    name: str
    scopes: frozenset[Scope]
    channels: tuple[str, ...] | None
    created_us: int
    revoked_us: int | None = None
    oci_fingerprint: str | None = None

    def allows(self, scope: Scope) -> bool:
        """Return whether the key holds ``scope``, itself or through ``admin``."""
        return scope in self.scopes or any(scope in _IMPLIED.get(held, ()) for held in self.scopes)

    def sees(self, channel: str) -> bool:
        """Return whether the key may use ``channel``."""
        return self.channels is None or channel in self.channels

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ApiKey:
        """Read the JSON form of :meth:`to_dict`."""
        channels = document["channels"]
        revoked = document["revoked"]
        return cls(
            document["id"],
            document["app"],
            document["name"],
            frozenset(Scope(scope) for scope in document["scopes"]),
            None if channels is None else tuple(channels),
            parse_timestamp(document["created"], field="created"),
            None if revoked is None else parse_timestamp(revoked, field="revoked"),
            document.get("oci_fingerprint"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (never the secret)."""
        return {
            "id": self.id,
            "app": self.app,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "channels": None if self.channels is None else list(self.channels),
            "created": format_timestamp(self.created_us),
            "revoked": None if self.revoked_us is None else format_timestamp(self.revoked_us),
            "oci_fingerprint": self.oci_fingerprint,
        }


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Return the scopes named in ``values`` (each may be comma-separated); raise InvalidInput naming a bad one."""
    scopes: set[Scope] = set()
    for value in values:
        for word in str(value).split(","):
            word = word.strip().lower()
            if not word:
                continue
            try:
                scopes.add(Scope(word))
            except ValueError:
                raise InvalidInput(
                    f"scopes: {word[:40]!r} is not a scope; use {', '.join(scope.value for scope in Scope)}",
                    field="scopes",
                ) from None
    if not scopes:
        raise InvalidInput(f"scopes: give at least one of {', '.join(scope.value for scope in Scope)}", field="scopes")
    return frozenset(scopes)


def new_token() -> tuple[str, str, bytes]:
    """Return a new key's ``(key id, token, secret digest)``; the token is shown once and never stored."""
    key_id = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return key_id, f"tv_{key_id}_{secret}", secret_digest(secret)


def parse_token(token: str) -> tuple[str, str]:
    """Return a token's ``(key id, secret)``; raise Unauthorized when it is not shaped like one.

    The message never repeats the token.
    """
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        raise Unauthorized("authorization: the API key is not a trailvault key (tv_…); check the token")
    return match.group(1), match.group(2)


def secret_digest(secret: str) -> bytes:
    """Return what is stored of a secret: its SHA-256."""
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, digest: bytes) -> bool:
    """Compare in constant time, so response timing tells nothing about the stored digest."""
    return hmac.compare_digest(secret_digest(secret), digest)
