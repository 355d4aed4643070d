"""``verify``: recompute the whole log from its rows and check it against the tree and every checkpoint.

One pass in seq order, in constant memory: each entry's body must still hash to its
``body_sha256``, each recomputed leaf must equal the leaf the tree holds, and the tree
rebuilt from the recomputed leaves must have each signed checkpoint's root at that
checkpoint's size. A checkpoint kept elsewhere (``trusted``) proves the log only grew
since: it catches truncation and rewrites by someone who also re-signed the vault's own
checkpoints.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from trailvault.errors import IntegrityFailure, InvalidInput
from trailvault.integrity.checkpoint import Checkpoint, open_checkpoint
from trailvault.integrity.log import entry_leaf
from trailvault.integrity.note import Verifier
from trailvault.integrity.rebuild import TreeBuilder
from trailvault.store.base import Store, StoredEntry

__all__ = ["VerifyReport", "verify_log"]

_CHUNK = 4096


@dataclass
class VerifyReport:
    """What verify checked and the first problem found (``ok`` when there is none)."""

    entries: int = 0
    checkpoints: int = 0
    problem: str | None = None
    seq: int | None = None
    trusted: dict[str, Any] | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "problem": self.problem,
            "seq": self.seq,
            "trusted_checkpoint": self.trusted,
        }


class _Problem(Exception):
    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


def verify_log(store: Store, verifier: Verifier, trusted: str | None = None) -> VerifyReport:
    """Check the whole log; return a report naming the first bad seq or check."""
    report = VerifyReport()
    try:
        trusted_checkpoint = _open_trusted(trusted, verifier)
        _check(store, verifier, trusted_checkpoint, report)
    except _Problem as problem:
        report.problem, report.seq = str(problem), problem.seq
    return report


def _open_trusted(trusted: str | None, verifier: Verifier) -> Checkpoint | None:
    if trusted is None:
        return None
    try:
        return open_checkpoint(trusted, verifier)
    except InvalidInput as exc:
        raise _Problem(f"the trusted checkpoint does not verify with the key: {exc.message}") from None


def _check(store: Store, verifier: Verifier, trusted: Checkpoint | None, report: VerifyReport) -> None:
    checkpoints = store.all_checkpoints()
    pending: list[tuple[int, bytes, str, str | None]] = [
        (cp.size, cp.root, f"checkpoint of size {cp.size}", cp.note) for cp in checkpoints
    ]
    if trusted is not None:
        pending.append((trusted.size, trusted.root, f"the trusted checkpoint (size {trusted.size})", None))
    pending.sort(key=lambda item: item[0])
    for _, _, name, note in pending:
        if note is not None:
            _check_signature(note, name, verifier)
    builder = TreeBuilder()
    position = 0
    position = _compare_roots(builder, pending, position, report)
    after = 0
    while True:
        chunk = store.entries(after, _CHUNK)
        if not chunk:
            break
        stored = _stored_leaves(store, chunk)
        for entry in chunk:
            if entry.seq != builder.size + 1:
                raise _Problem(
                    f"seq {builder.size + 1} is missing: a row was deleted outside trailvault", builder.size + 1
                )
            leaf = _entry_leaf(entry)
            if stored.get(entry.seq - 1) != leaf:
                raise _Problem(
                    f"seq {entry.seq} does not match its leaf in the Merkle tree: its envelope or body hash "
                    "was changed outside trailvault (or the row was moved)",
                    entry.seq,
                )
            builder.append(leaf)
            report.entries += 1
            position = _compare_roots(builder, pending, position, report)
        after = chunk[-1].seq
    if position < len(pending):
        size, _, name, _ = pending[position]
        raise _Problem(
            f"{name} covers {size} entries but the log has only {builder.size}: the log was truncated",
            builder.size + 1,
        )


def _entry_leaf(entry: StoredEntry) -> bytes:
    if entry.body_json is not None and hashlib.sha256(entry.body_json.encode()).digest() != entry.body_sha256:
        raise _Problem(f"seq {entry.seq}: the body was changed outside trailvault (its SHA-256 differs)", entry.seq)
    return entry_leaf(entry, entry.seq, entry.body_sha256)


def _stored_leaves(store: Store, chunk: list[StoredEntry]) -> dict[int, bytes]:
    try:
        nodes = store.tree_nodes([(0, entry.seq - 1) for entry in chunk])
    except IntegrityFailure:
        # Find the first entry without a leaf; only a damaged vault pays for this.
        nodes = {}
        for entry in chunk:
            try:
                nodes.update(store.tree_nodes([(0, entry.seq - 1)]))
            except IntegrityFailure:
                raise _Problem(
                    f"seq {entry.seq} has no leaf in the Merkle tree: a row was inserted outside trailvault "
                    "or the tree was damaged",
                    entry.seq,
                ) from None
    return {index: value for (_, index), value in nodes.items()}


def _check_signature(note: str, name: str, verifier: Verifier) -> None:
    try:
        open_checkpoint(note, verifier)
    except InvalidInput as exc:
        raise _Problem(f"{name}: {exc.message}") from None


def _compare_roots(
    builder: TreeBuilder, pending: list[tuple[int, bytes, str, str | None]], position: int, report: VerifyReport
) -> int:
    while position < len(pending) and pending[position][0] == builder.size:
        size, root, name, note = pending[position]
        if builder.root() != root:
            raise _Problem(
                f"{name}: its root differs from the log's first {size} entries: "
                "the log was rewritten before that size, or the checkpoint was altered",
                size if size else None,
            )
        if note is not None:
            report.checkpoints += 1
        else:
            report.trusted = {"size": size, "consistent": True}
        position += 1
    return position
