"""The proving half of a :class:`~trailvault.vault.Vault`: its key, checkpoints, proofs, receipts and verify.

Kept apart from recording and finding so each stays readable; ``Vault`` inherits it.
Everything here reads the store's Merkle tree and checkpoints; nothing writes events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from trailvault.checkpoints import Checkpointer, tree_root
from trailvault.errors import EventNotFound, InvalidInput, InvalidQuery, NotFound
from trailvault.event import Event, entry_document
from trailvault.integrity.note import Verifier
from trailvault.integrity.receipt import make_receipt
from trailvault.proofs import ConsistencyProof, InclusionProof, build_consistency, build_inclusion
from trailvault.store import Store
from trailvault.store.base import StoredCheckpoint, StoredEntry
from trailvault.verification import VerifyReport, verify_log

__all__ = ["Proving"]


class Proving:
    """Key, checkpoints, inclusion and consistency proofs, receipts and verify, for one app's vault."""

    app: str
    _store: Store
    _checkpointer: Checkpointer | None
    # Opens another connection to the same store in a worker process (verify's jobs).
    _reopen: Callable[[], Store] | None

    if TYPE_CHECKING:

        def get(self, event_id: str) -> Event: ...

    def verifier_key(self) -> str:
        """Return the vault's public key as a signed-note verifier key (``trailvault key show``)."""
        key = self._store.meta("verifier_key")
        if key is None:
            raise NotFound("key: this vault has no signing key yet; run `trailvault init`", field="key")
        return key

    def log_size(self) -> int:
        """Return the number of entries in the vault's log (every app's events)."""
        return self._store.log_size()

    def issue_checkpoint(self) -> StoredCheckpoint:
        """Sign a checkpoint of the log as it is now (they are also issued automatically)."""
        if self._checkpointer is None:
            raise NotFound("signing_key: this vault was opened without its signing key", field="signing_key")
        checkpoint = self._checkpointer.issue()
        return StoredCheckpoint(checkpoint.size, checkpoint.root, checkpoint.timestamp or 0, checkpoint.note)

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint:
        """Return the latest checkpoint, or the latest of exactly ``size`` entries."""
        if size is not None and not 0 <= size < 1 << 63:
            raise InvalidQuery(f"size: {size} is not a log size", field="size")
        found = self._store.latest_checkpoint() if size is None else self._store.checkpoint_of_size(size)
        if found is None:
            what = "no checkpoint yet" if size is None else f"no checkpoint of size {size}"
            raise NotFound(f"size: {what}; checkpoints are issued as events arrive", field="size")
        return found

    def prove_inclusion(self, event: str | int, size: int | None = None) -> InclusionProof:
        """Prove that an event (by id, or by seq) is entry ``seq - 1`` of the tree of ``size``.

        Without ``size`` the proof is against the earliest checkpoint that covers the
        event (one is issued now when none does yet), and carries that checkpoint.
        """
        seq = self._own_entry(event).seq
        log_size = self._store.log_size()
        if size is None:
            covering = self._store.checkpoint_covering(seq)
            if covering is None and self._checkpointer is not None:
                self._checkpointer.issue()
                covering = self._store.checkpoint_covering(seq)
            size = covering.size if covering is not None else log_size
            note = covering.note if covering is not None else None
        else:
            if not seq <= size <= log_size:
                raise InvalidQuery(f"size: use a size from {seq} to {log_size}", field="size")
            exact = self._store.checkpoint_of_size(size)
            note = exact.note if exact is not None else None
        return build_inclusion(self._store, seq - 1, size, note)

    def verify(self, trusted_checkpoint: str | None = None, key: str | None = None, *, jobs: int = 1) -> VerifyReport:
        """Recompute every leaf, rebuild the tree, and check it against every kept checkpoint.

        ``key`` is the verifier key to trust (default: the one recorded in the vault, which
        someone holding the database could have replaced: pass the key you were given).
        ``trusted_checkpoint`` is a checkpoint note kept elsewhere: the log must extend it.
        ``jobs`` above 1 checks segments of 65,536 entries in that many worker processes
        (started with ``spawn``, so a script calling this needs the usual
        ``if __name__ == "__main__":`` guard). Streams the log in constant memory; the
        report names the first bad seq or check.
        """
        if jobs < 1:
            raise InvalidInput(f"jobs: use 1 or more worker processes, not {jobs}", field="jobs")
        verifier = Verifier.parse(key if key is not None else self.verifier_key())
        return verify_log(self._store, verifier, trusted_checkpoint, jobs=jobs, reopen=self._reopen)

    def _own_entry(self, event: str | int) -> StoredEntry:
        """Return this app's entry by id or seq; another app's entry is as absent as a missing one."""
        seq = event if isinstance(event, int) else self.get(event).seq
        stored = self._store.entries(seq - 1, 1) if 1 <= seq < 1 << 63 else []
        if not stored or stored[0].seq != seq or stored[0].app != self.app:
            raise EventNotFound(f"seq: no entry {seq} in app {self.app!r}", field="seq")
        return stored[0]

    def receipt(self, event: str | int) -> dict[str, Any]:
        """Return a self-contained receipt for an event (by id or seq): entry, body, proof, checkpoint.

        ``trailvault verify receipt`` (or :func:`trailvault.integrity.receipt.check_receipt`)
        checks it with nothing but the vault's verifier key.
        """
        entry = self._own_entry(event)
        seq = entry.seq
        proof = self.prove_inclusion(seq)
        if proof.checkpoint is None:
            raise NotFound("checkpoint: no signed checkpoint covers this event yet; retry in a second", field="seq")
        body = None if entry.body_json is None else orjson.loads(entry.body_json)
        document = entry_document(entry, seq, entry.body_sha256)
        return make_receipt(document, body, proof.index, proof.size, proof.leaf_hash, proof.hashes, proof.checkpoint)

    def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Prove that the log of ``new_size`` entries extends the log of ``old_size`` entries."""
        log_size = self._store.log_size()
        if not 0 < old_size <= new_size <= log_size:
            raise InvalidQuery(f"from/to: use 0 < from <= to <= {log_size}", field="from")
        exact = self._store.checkpoint_of_size(new_size)
        return build_consistency(
            self._store, old_size, new_size, tree_root(self._store, old_size), tree_root(self._store, new_size),
            exact.note if exact is not None else None,
        )  # fmt: skip
