"""Issuing signed checkpoints: on demand, and in the background while a vault is open.

While events arrive a checkpoint follows within a fraction of a second (at least
one a second); when nothing arrives, one every minute renews the signed time. Every
checkpoint is kept. A vault closing issues a last one if its log grew.

The signer signs only a tree that extends the last checkpoint it trusts: the newest of
the one it keeps beside its key (the signer's record), the one this process signed
last, and the newest kept one whose note verifies with the key; checked with an RFC
9162 consistency proof from the stored tree. So someone who rewrote rows and rebuilt
the tree without the key, or deleted the checkpoints too, cannot get the key holder to
sign over the forgery; the signer refuses with IntegrityFailure and ``verify`` names it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trailvault.adapters.signing_key import read_signer_record, write_signer_record
from trailvault.adapters.store.contract.log import LogStore, StoredCheckpoint
from trailvault.core.integrity.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from trailvault.core.integrity.merkle import consistency_proof, root_hash, subtree_nodes, verify_consistency
from trailvault.core.integrity.note import Verifier, verifier_key
from trailvault.errors import IntegrityFailure, InvalidInput

__all__ = ["Checkpointer", "tree_root"]

_log = logging.getLogger("trailvault.checkpoints")

BUSY_INTERVAL = 0.2
IDLE_INTERVAL = 60.0
_POLL = 0.05


def tree_root(store: LogStore, size: int) -> bytes:
    """Return the root of the log's tree of ``size`` entries.

    Raises IntegrityFailure when the stored tree does not hold ``size`` leaves.
    """
    try:
        return root_hash(size, store.tree_nodes(subtree_nodes(0, size)))
    except (KeyError, ValueError):
        raise IntegrityFailure(
            f"the stored Merkle tree does not hold the log's {size} entries: a row was inserted outside "
            "trailvault or the tree was damaged; run `trailvault verify`"
        ) from None


class Checkpointer:
    """Signs checkpoints of one vault's log with its key, under its origin."""

    def __init__(
        self,
        store: LogStore,
        key: Ed25519PrivateKey,
        origin: str,
        *,
        record: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.origin = origin
        self._store = store
        self._key = key
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.verifier_key = verifier_key(origin, key.public_key())
        self._verifier = Verifier.parse(self.verifier_key)
        #: The newest checkpoint this signer trusts; every new one must extend it.
        self._trusted: Checkpoint | None = None
        self._record = record
        if record is not None:
            self._trusted = self._read_record(record)
        latest = store.latest_checkpoint()
        self._signed_size = -1 if latest is None else latest.size
        self._signed_at = time.monotonic()
        self._refused: str | None = None

    def issue(self, *, adopt: bool = False) -> Checkpoint:
        """Sign and keep a checkpoint of the log as it is now.

        Raises IntegrityFailure, signing nothing, when the stored tree does not extend the
        last trusted checkpoint or does not hold the whole log, and when the log has
        entries but there is no checkpoint to trust at all (a new vault signs its empty
        log, so that means its checkpoints were deleted, or the vault's id rewritten),
        unless ``adopt`` (a vault made before checkpoints existed).
        """
        with self._lock:
            size = self._store.log_size()
            trusted = self._newest_trusted()
            if trusted is None and size > 0 and not adopt:
                raise IntegrityFailure(
                    f"the log has {size} entries but no checkpoint signed by this key for this vault: checkpoints "
                    "were deleted or the vault's id changed outside trailvault; refusing to sign; run `trailvault "
                    "verify`. A vault made before checkpoints existed is adopted with "
                    "`trailvault checkpoint sign --adopt`"
                )
            root = self._extending_root(trusted, size)
            checkpoint = sign_checkpoint(self.origin, size, root, self._key, timestamp=int(self._clock()))
            self._store.save_checkpoint(
                StoredCheckpoint(checkpoint.size, checkpoint.root, checkpoint.timestamp or 0, checkpoint.note)
            )
            self._trusted = checkpoint
            self._signed_size, self._signed_at = size, time.monotonic()
            if self._record is not None:
                try:
                    write_signer_record(self._record, checkpoint.note)
                except OSError as exc:
                    _log.warning("trailvault: cannot keep the signer's record at %s: %s", self._record, exc.strerror)
            return checkpoint

    def _read_record(self, record: Path) -> Checkpoint | None:
        note = read_signer_record(record)
        if note is None:
            return None
        try:
            return open_checkpoint(note, self._verifier)
        except InvalidInput as exc:
            _log.warning("trailvault: the signer's record at %s is not this vault's (%s); ignored", record, exc.message)
            return None

    def _newest_trusted(self) -> Checkpoint | None:
        """The newest of the checkpoint this signer last trusted and the newest kept one (another
        process may have signed since), opened from its signed note, never from the store's columns."""
        latest = self._store.latest_checkpoint()
        if latest is None or (self._trusted is not None and latest.note == self._trusted.note):
            return self._trusted
        try:
            kept = open_checkpoint(latest.note, self._verifier)
        except InvalidInput as exc:
            raise IntegrityFailure(
                f"checkpoint of size {latest.size}: the newest kept checkpoint does not verify with the signing "
                f"key ({exc.message}); refusing to sign; run `trailvault verify`"
            ) from None
        if self._trusted is not None and self._trusted.size >= kept.size:
            return self._trusted
        return kept

    def _extending_root(self, trusted: Checkpoint | None, size: int) -> bytes:
        """The stored tree's root at ``size``, once it is shown to extend ``trusted``."""
        if trusted is not None and size < trusted.size:
            raise IntegrityFailure(
                f"checkpoint of size {trusted.size}: the log has only {size} entries: it was truncated outside "
                "trailvault; refusing to sign; run `trailvault verify`"
            )
        root = tree_root(self._store, size)
        if trusted is None or trusted.size == 0:
            return root
        if size == trusted.size:
            extends = root == trusted.root
        else:
            try:
                proof = consistency_proof(trusted.size, size, self._store.tree_nodes)
            except (KeyError, ValueError):
                proof = []
            extends = verify_consistency(trusted.size, size, trusted.root, root, proof)
        if not extends:
            raise IntegrityFailure(
                f"checkpoint of size {trusted.size}: the stored tree of {size} entries does not extend its signed "
                "root: entries or the tree were changed outside trailvault; refusing to sign over them; "
                "run `trailvault verify`"
            )
        return root

    def issue_if_grown(self) -> Checkpoint | None:
        """Issue a checkpoint when the log grew since the last one."""
        if self._store.log_size() > self._signed_size:
            return self.issue()
        return None

    def start(self) -> None:
        """Issue checkpoints in a background thread until :meth:`stop`.

        A new, empty log is signed at once: from then on a log with entries and no
        checkpoint at all means checkpoints were deleted (the signer refuses it, verify fails it).
        """
        if self._signed_size < 0 and self._store.log_size() == 0:
            self.issue()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="trailvault-checkpointer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background thread and sign what the log gained since the last checkpoint.

        A refusal to sign is logged, not raised: closing a damaged vault must not hide
        what the command did (``verify`` names the damage).
        """
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        try:
            self.issue_if_grown()
        except IntegrityFailure as exc:
            self._report(exc)

    def _report(self, refusal: IntegrityFailure) -> None:
        """Log a refusal to sign once, not at every poll."""
        if refusal.message != self._refused:
            self._refused = refusal.message
            _log.error("trailvault: no checkpoint signed: %s", refusal.message)

    def _run(self) -> None:
        while not self._stop.wait(_POLL):
            since = time.monotonic() - self._signed_at
            try:
                if since >= IDLE_INTERVAL:
                    self.issue()
                elif since >= BUSY_INTERVAL:
                    self.issue_if_grown()
            except IntegrityFailure as exc:
                self._report(exc)
                # A damaged tree stays damaged: look again after an idle interval, not every poll.
                self._signed_at = time.monotonic() + IDLE_INTERVAL - BUSY_INTERVAL
            except Exception:
                continue
