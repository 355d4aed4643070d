"""The channel store (:class:`trailvault.adapters.store.contract.channels.ChannelStore`) on every backend."""

from __future__ import annotations

import pytest

from trailvault.adapters.store import Store
from trailvault.errors import Conflict

from .conftest import SCHEMA


def test_save_and_get_channel(store: Store) -> None:
    """A saved channel comes back with its version and schema document."""
    store.save_channel_version("default", "orders", 1, SCHEMA, [], 7)
    record = store.get_channel("default", "orders")
    assert record is not None
    assert (record.version, record.schema_document, record.created_us) == (1, SCHEMA, 7)


def test_latest_version_wins(orders: Store) -> None:
    """get_channel and list_channels return the latest schema version."""
    newer = {**SCHEMA, "fields": [*SCHEMA["fields"], {"name": "amount", "type": "FLOAT"}]}
    orders.save_channel_version("default", "orders", 2, newer, [], 2)
    assert orders.get_channel("default", "orders").version == 2  # type: ignore[union-attr]
    assert [(c.name, c.version) for c in orders.list_channels("default")] == [("orders", 2)]


def test_saving_an_existing_version_conflicts(orders: Store) -> None:
    """Two writers saving the same version: the second gets Conflict."""
    with pytest.raises(Conflict):
        orders.save_channel_version("default", "orders", 1, SCHEMA, [], 3)


def test_channels_are_per_app(orders: Store) -> None:
    """Another app does not see the channel."""
    assert orders.get_channel("other", "orders") is None
    assert orders.list_channels("other") == []
