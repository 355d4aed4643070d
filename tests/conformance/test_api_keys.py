"""The key store (:class:`~trailvault.adapters.store.contract.api_keys.KeyStore`): API keys as backends keep them."""

from __future__ import annotations

import hashlib

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
