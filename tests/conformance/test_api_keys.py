"""The key store (:class:`~trailvault.adapters.store.contract.api_keys.KeyStore`): API keys as backends keep them."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from trailvault.adapters.store import Store
from trailvault.core.api_key import ApiKey, Scope
from trailvault.errors import Conflict

from .conftest import StoreFactory


def _key(key_id: str, app: str = "default", channels: tuple[str, ...] | None = None) -> ApiKey:
    return ApiKey(key_id, app, f"name {key_id}", frozenset({Scope.READ, Scope.INGEST}), channels, 1_000)


def test_saved_key_reads_back_with_its_digest(store: Store) -> None:
    """A key reads back whole, with the digest it was saved with, from any app."""
    key = _key("00000000000000a1", app="billing", channels=("a", "b"))
    digest = hashlib.sha256(b"secret").digest()
    store.save_api_key(key, digest)
    assert store.api_key(key.id) == (key, digest)
    assert store.api_key("00000000000000ff") is None


def test_keys_are_listed_per_app(store: Store) -> None:
    """Listing shows one app's keys, oldest first."""
    store.save_api_key(_key("00000000000000b1"), b"x" * 32)
    store.save_api_key(_key("00000000000000b2", app="other"), b"y" * 32)
    assert [key.id for key in store.list_api_keys("default")] == ["00000000000000b1"]
    assert store.list_api_keys("nobody") == []


def test_revoking_is_once_and_only_in_the_keys_app(make_store: StoreFactory) -> None:
    """A second revoke keeps the first time; another app cannot revoke the key; a second store sees it."""
    store = make_store()
    store.save_api_key(_key("00000000000000c1"), b"x" * 32)
    assert store.revoke_api_key("other", "00000000000000c1", 5) is None
    first = store.revoke_api_key("default", "00000000000000c1", 5)
    second = store.revoke_api_key("default", "00000000000000c1", 9)
    assert first is not None and second is not None
    assert first.revoked_us == second.revoked_us == 5
    found = make_store().api_key("00000000000000c1")
    assert found is not None and found[0].revoked_us == 5


def test_a_key_id_is_saved_once(make_store: StoreFactory) -> None:
    """Saving a second key with an existing id raises Conflict and keeps the first key and its digest."""
    key = _key("00000000000000d1")
    make_store().save_api_key(key, b"x" * 32)
    with pytest.raises(Conflict):
        make_store().save_api_key(_key("00000000000000d1", app="other"), b"y" * 32)
    assert make_store().api_key(key.id) == (key, b"x" * 32)
    assert make_store().list_api_keys("other") == []


def _oci_key(key_id: str, fingerprint: str, app: str = "default") -> ApiKey:
    return replace(_key(key_id, app=app), oci_fingerprint=fingerprint)


_PEM = "-----BEGIN PUBLIC KEY-----\nstored as given\n-----END PUBLIC KEY-----\n"
_FINGERPRINT = ":".join(["a1"] * 16)


def test_a_key_is_found_by_its_oci_fingerprint(make_store: StoreFactory) -> None:
    """A key saved with an OCI public key is found by its fingerprint from another store, with its PEM."""
    key = _oci_key("00000000000000e1", _FINGERPRINT, app="billing")
    make_store().save_api_key(key, b"x" * 32, _PEM)
    store = make_store()
    assert store.api_key_by_fingerprint(_FINGERPRINT) == (key, _PEM)
    assert store.oci_public_key(key.id) == _PEM
    assert store.api_key(key.id) == (key, b"x" * 32)
    assert store.api_key_by_fingerprint(":".join(["b2"] * 16)) is None
    store.save_api_key(_key("00000000000000e2"), b"y" * 32)
    assert store.oci_public_key("00000000000000e2") is None


def test_a_revoked_key_is_still_found_by_fingerprint(store: Store) -> None:
    """Revoking keeps the fingerprint's key findable, with its revocation (the caller refuses it)."""
    store.save_api_key(_oci_key("00000000000000e3", _FINGERPRINT), b"x" * 32, _PEM)
    store.revoke_api_key("default", "00000000000000e3", 7)
    found = store.api_key_by_fingerprint(_FINGERPRINT)
    assert found is not None and found[0].revoked_us == 7


def test_an_oci_fingerprint_is_registered_once(make_store: StoreFactory) -> None:
    """A second key with the same public key, of any app, is refused with Conflict naming oci_public_key."""
    make_store().save_api_key(_oci_key("00000000000000f1", _FINGERPRINT), b"x" * 32, _PEM)
    with pytest.raises(Conflict) as refused:
        make_store().save_api_key(_oci_key("00000000000000f2", _FINGERPRINT, app="other"), b"y" * 32, _PEM)
    assert refused.value.field == "oci_public_key"
    assert make_store().api_key("00000000000000f2") is None
    assert make_store().list_api_keys("other") == []
