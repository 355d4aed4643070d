"""The key store: the API keys of every app, kept with the digest of their secrets."""

from __future__ import annotations

from typing import Protocol

from trailvault.core.api_key import ApiKey

__all__ = ["KeyStore"]


class KeyStore(Protocol):
    """API keys: saved once, revoked at most once, never deleted.

    The store keeps a key's SHA-256 digest of its secret, never the secret. Key ids are
    unique across the vault; a key belongs to one app, and only that app may revoke it.
    The reads a key makes are recorded as ordinary events of the app's channel
    ``trailvault.reads`` (:meth:`LogStore.append <trailvault.adapters.store.contract.log.LogStore.append>`),
    not here. Safe to call from several threads and store objects: what one writes,
    another reads at once.
    """

    def save_api_key(self, key: ApiKey, secret_sha256: bytes, oci_public_key: str | None = None) -> None:
        """Keep a new API key (creating its app when needed) with the digest of its secret.

        ``oci_public_key`` is the PEM of the RSA key whose fingerprint is ``key.oci_fingerprint``
        (both or neither). Raises Conflict when a key of that id exists (ids are random; this
        is a caller's bug), or Conflict naming ``oci_public_key`` when another key, of any
        app, revoked or not, has that fingerprint.
        """

    def api_key(self, key_id: str) -> tuple[ApiKey, bytes] | None:
        """Return a key of any app with its secret's digest, or None."""

    def api_key_by_fingerprint(self, fingerprint: str) -> tuple[ApiKey, str] | None:
        """Return the key of any app registered with the OCI public key of ``fingerprint``, and that key's PEM.

        None when no key has it. Revoked keys are returned too (the caller refuses them).
        """

    def oci_public_key(self, key_id: str) -> str | None:
        """Return the PEM of the OCI public key registered for a key, or None (for ``trailvault migrate``)."""

    def all_api_keys(self) -> list[tuple[ApiKey, bytes]]:
        """Return every app's keys with their secrets' digests, oldest first (for ``trailvault migrate``)."""

    def list_api_keys(self, app: str) -> list[ApiKey]:
        """Return the app's keys, revoked ones included, oldest first; [] for an unknown app."""

    def revoke_api_key(self, app: str, key_id: str, revoked_us: int) -> ApiKey | None:
        """Revoke the app's key and return it (once: a second revoke keeps the first time).

        None when the app has no such key: another app's key is left as it was.
        """
