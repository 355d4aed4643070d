"""The store contract, one Protocol per role; :class:`trailvault.adapters.store.base.Store` combines them.

- :class:`~trailvault.adapters.store.contract.channels.ChannelStore`: apps, channels and their schema versions.
- :class:`~trailvault.adapters.store.contract.log.LogStore`: the append-only log, its Merkle tree, checkpoints
  and the vault's own values (its id, the verifier key).
- :class:`~trailvault.adapters.store.contract.api_keys.KeyStore`: API keys.
- :class:`~trailvault.adapters.store.contract.archive.ArchiveStore`: batching tasks, archive batches, marks,
  purge and legal holds.

A caller that needs one role names it, so its needs read from its signature; both backends
provide every role. ``tests/conformance/`` holds one module per role, run against each backend.
"""

from __future__ import annotations

from trailvault.adapters.store.contract.api_keys import KeyStore
from trailvault.adapters.store.contract.archive import ArchiveStore
from trailvault.adapters.store.contract.channels import ChannelRecord, ChannelStore
from trailvault.adapters.store.contract.log import AppendOutcome, LogStore, StoredCheckpoint

__all__ = ["AppendOutcome", "ArchiveStore", "ChannelRecord", "ChannelStore", "KeyStore", "LogStore", "StoredCheckpoint"]
