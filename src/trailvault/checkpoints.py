"""Issuing signed checkpoints: on demand, and in the background while a vault is open.

While events arrive a checkpoint follows within a fraction of a second (at least
one a second); when nothing arrives, one every minute renews the signed time. Every
checkpoint is kept. A vault closing issues a last one if its log grew.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trailvault.integrity.checkpoint import Checkpoint, sign_checkpoint
from trailvault.integrity.merkle import root_hash, subtree_nodes
from trailvault.store.base import Store, StoredCheckpoint

__all__ = ["Checkpointer", "tree_root"]

_log = logging.getLogger("trailvault.checkpoints")

BUSY_INTERVAL = 0.2
IDLE_INTERVAL = 60.0
_POLL = 0.05


def tree_root(store: Store, size: int) -> bytes:
    """Return the root of the log's tree of ``size`` entries."""
    return root_hash(size, store.tree_nodes(subtree_nodes(0, size)))


class Checkpointer:
    """Signs checkpoints of one vault's log with its key, under its origin."""

    def __init__(
        self, store: Store, key: Ed25519PrivateKey, origin: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.origin = origin
        self._store = store
        self._key = key
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        latest = store.latest_checkpoint()
        self._signed_size = -1 if latest is None else latest.size
        self._signed_at = time.monotonic()

    def issue(self) -> Checkpoint:
        """Sign and keep a checkpoint of the log as it is now."""
        with self._lock:
            size = self._store.log_size()
            checkpoint = sign_checkpoint(
                self.origin, size, tree_root(self._store, size), self._key, timestamp=int(self._clock())
            )
            self._store.save_checkpoint(
                StoredCheckpoint(checkpoint.size, checkpoint.root, checkpoint.timestamp or 0, checkpoint.note)
            )
            self._signed_size, self._signed_at = size, time.monotonic()
            return checkpoint

    def issue_if_grown(self) -> Checkpoint | None:
        """Issue a checkpoint when the log grew since the last one."""
        if self._store.log_size() > self._signed_size:
            return self.issue()
        return None

    def start(self) -> None:
        """Issue checkpoints in a background thread until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="trailvault-checkpointer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background thread and sign what the log gained since the last checkpoint."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self.issue_if_grown()

    def _run(self) -> None:
        while not self._stop.wait(_POLL):
            since = time.monotonic() - self._signed_at
            try:
                if since >= IDLE_INTERVAL:
                    self.issue()
                elif since >= BUSY_INTERVAL:
                    self.issue_if_grown()
            except Exception:
                continue
