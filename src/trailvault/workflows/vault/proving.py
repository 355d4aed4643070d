"""The proving half of a :class:`~trailvault.workflows.vault.vault.Vault`: key, checkpoints, proofs, receipts, verify.

Kept apart from recording and finding so each stays readable; ``Vault`` inherits it.
Everything here reads the store's Merkle tree and checkpoints; nothing writes events.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from trailvault.adapters.signing_key import read_signer_record
from trailvault.adapters.store.base import StoredCheckpoint, StoredEntry
from trailvault.core.event import entry_document
from trailvault.core.integrity.checkpoint import Checkpoint, open_checkpoint
from trailvault.core.integrity.findings import MAX_UNCOVERED_AGE, VerifyReport
from trailvault.core.integrity.log import stored_leaf
from trailvault.core.integrity.merkle import verify_consistency, verify_inclusion
from trailvault.core.integrity.note import Verifier
from trailvault.core.integrity.receipt import make_receipt
from trailvault.errors import EventNotFound, IntegrityFailure, InvalidInput, InvalidQuery, NotFound
from trailvault.workflows.proofs import ConsistencyProof, InclusionProof, build_consistency, build_inclusion
from trailvault.workflows.vault.checkpointer import tree_root
from trailvault.workflows.vault.parts import VaultParts
from trailvault.workflows.vault.verify import verify_log

__all__ = ["Proving"]


class Proving(VaultParts):
    """Key, checkpoints, inclusion and consistency proofs, receipts and verify, for one app's vault."""

    def verifier_key(self) -> str:
        key = self._store.meta("verifier_key")
        if key is None:
            raise NotFound("key: this vault has no signing key yet; run `trailvault init`", field="key")
        return key

    def log_size(self) -> int:
        return self._store.log_size()

    def issue_checkpoint(self, *, adopt: bool = False) -> StoredCheckpoint:
        """Sign a checkpoint of the log as it is now (they are also issued automatically).

        ``adopt=True`` signs a log that has entries but no checkpoint the signer can trust
        (a vault made before checkpoints existed); the signer refuses that otherwise, as it
        is also what a log whose checkpoints were deleted looks like.
        """
        if self._checkpointer is None:
            raise NotFound("signing_key: this vault was opened without its signing key", field="signing_key")
        return _stored(self._checkpointer.issue(adopt=adopt))

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint:
        if size is not None and not 0 <= size < 1 << 63:
            raise InvalidQuery(f"size: {size} is not a log size", field="size")
        found = self._store.latest_checkpoint() if size is None else self._store.checkpoint_of_size(size)
        if found is None:
            what = "no checkpoint yet" if size is None else f"no checkpoint of size {size}"
            raise NotFound(f"size: {what}; checkpoints are issued as events arrive", field="size")
        return _stored(self._signed(found))

    def _signed_covering(self, seq: int, *, field: str = "seq") -> Checkpoint:
        """The earliest signed checkpoint covering ``seq``, one issued now when none does and the key is here."""
        kept = self._store.checkpoint_covering(seq)
        if kept is None and self._checkpointer is not None:
            self._checkpointer.issue()
            kept = self._store.checkpoint_covering(seq)
        if kept is None:
            raise NotFound(
                f"{field}: no signed checkpoint covers seq {seq} yet; one follows new events within a second "
                "while a writer holding the signing key runs: retry, and if none comes, run `trailvault verify`",
                field=field,
            )
        return self._signed(kept)

    def prove_inclusion(self, event: str | int, size: int | None = None) -> InclusionProof:
        seq = self._own_entry(event).seq
        if size is None:
            signed = self._signed_covering(seq)
        else:
            log_size = self._store.log_size()
            if not seq <= size <= log_size:
                raise InvalidQuery(f"size: use a size from {seq} to {log_size}", field="size")
            signed = self._signed(self._signed_of_size(size))
        try:
            proof = build_inclusion(self._store, seq - 1, signed.size, signed.note)
        except (KeyError, ValueError):
            proof = None
        if proof is None or not verify_inclusion(proof.index, proof.size, proof.leaf_hash, proof.hashes, signed.root):
            raise IntegrityFailure(
                f"checkpoint of size {signed.size}: the stored tree does not prove seq {seq} against its signed "
                "root: the tree was changed outside trailvault; run `trailvault verify`"
            )
        return proof

    def _signed_of_size(self, size: int) -> StoredCheckpoint:
        kept = self._store.checkpoint_of_size(size)
        if kept is None:
            latest = self._store.latest_checkpoint()
            hint = f" (the latest is of size {latest.size})" if latest is not None else ""
            raise InvalidQuery(
                f"size: no signed checkpoint of size {size}{hint}; proofs are given only against signed "
                "checkpoints: leave size out, or use the size of one (`trailvault checkpoint show`)",
                field="size",
            )
        return kept

    def _signed(self, kept: StoredCheckpoint) -> Checkpoint:
        """A kept checkpoint opened from its signed note; its unsigned size and root must agree with it."""
        # The signer's own key where this process holds it: the store's record of the key is data.
        signer = self._checkpointer
        try:
            signed = _opened(kept.note, signer.verifier_key if signer is not None else self.verifier_key())
        except InvalidInput as exc:
            raise IntegrityFailure(f"checkpoint of size {kept.size}: {exc.message}; run `trailvault verify`") from None
        if not kept.agrees_with(signed):
            raise IntegrityFailure(
                f"checkpoint of size {signed.size}: the size, root or time kept beside its signed note differ from the "
                "note: the row was altered outside trailvault; run `trailvault verify`"
            )
        return signed

    def verify(
        self,
        trusted_checkpoint: str | None = None,
        key: str | None = None,
        *,
        jobs: int = 1,
        max_uncovered_age: float = MAX_UNCOVERED_AGE,
    ) -> VerifyReport:
        if jobs < 1:
            raise InvalidInput(f"jobs: use 1 or more worker processes, not {jobs}", field="jobs")
        if not max_uncovered_age >= 0:
            raise InvalidInput(
                f"max_uncovered_age: use a number of seconds, 0 or more, not {max_uncovered_age}",
                field="max_uncovered_age",
            )
        verifier = Verifier.parse(key if key is not None else self.verifier_key())
        signer = read_signer_record(self._signer_record) if self._signer_record is not None else None
        return verify_log(
            self._store, verifier, trusted_checkpoint, jobs=jobs, reopen=self._reopen,
            max_uncovered_age=max_uncovered_age, signer_checkpoint=signer,
        )  # fmt: skip

    def _own_entry(self, event: str | int) -> StoredEntry:
        """Return this app's entry by id or seq; another app's entry is as absent as a missing one."""
        seq = event if isinstance(event, int) else self.get(event).seq
        stored = self._store.entries(seq - 1, 1) if 1 <= seq < 1 << 63 else []
        if not stored or stored[0].seq != seq or stored[0].app != self.app:
            raise EventNotFound(f"seq: no entry {seq} in app {self.app!r}", field="seq")
        return stored[0]

    def receipt(self, event: str | int) -> dict[str, Any]:
        entry = self._own_entry(event)
        seq = entry.seq
        proof = self.prove_inclusion(seq)
        if stored_leaf(entry) != proof.leaf_hash:
            raise IntegrityFailure(
                f"seq {seq} does not match its leaf in the Merkle tree: it was changed outside trailvault; "
                "run `trailvault verify`"
            )
        body = None if entry.body_json is None else orjson.loads(entry.body_json)
        document = entry_document(entry, seq, entry.body_sha256)
        assert proof.checkpoint is not None, "prove_inclusion proves against a signed checkpoint's note"
        return make_receipt(document, body, proof.index, proof.size, proof.leaf_hash, proof.hashes, proof.checkpoint)

    def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        log_size = self._store.log_size()
        if not 0 < old_size <= new_size <= log_size:
            raise InvalidQuery(f"from/to: use 0 < from <= to <= {log_size}", field="from")
        new = self._signed(self._signed_of_size(new_size))
        old_kept = self._store.checkpoint_of_size(old_size)
        try:
            old_root = self._signed(old_kept).root if old_kept is not None else tree_root(self._store, old_size)
            proof = build_consistency(self._store, old_size, new_size, old_root, new.root, new.note)
        except (KeyError, ValueError):
            proof = None
        if proof is None or not verify_consistency(old_size, new_size, proof.old_root, new.root, proof.hashes):
            raise IntegrityFailure(
                f"checkpoint of size {new_size}: the stored tree does not prove that it extends the log of "
                f"{old_size} entries: the tree was changed outside trailvault; run `trailvault verify`"
            )
        return proof


@functools.lru_cache(maxsize=256)
def _opened(note: str, key: str) -> Checkpoint:
    """A checkpoint note opened with a verifier key; kept, as proofs keep asking for the same few."""
    return open_checkpoint(note, Verifier.parse(key))


def _stored(signed: Checkpoint) -> StoredCheckpoint:
    """A signed checkpoint in the store's shape, every field from the note."""
    return StoredCheckpoint(signed.size, signed.root, signed.timestamp or 0, signed.note)
