"""``verify``: recompute the whole log from its rows and check it against the tree and every checkpoint.

One pass in seq order, in constant memory: each entry's body must still hash to its
``body_sha256``, each recomputed leaf must equal the leaf the tree holds, and the tree
rebuilt from the recomputed leaves must have, at each signed checkpoint's size, the
root written inside that checkpoint's signed note. Only signed data is trusted: the
store's copies of a checkpoint's size, root and time (its columns) are compared with
the note, and a difference is itself a finding. As every signed root is compared with
the one tree rebuilt from the rows, each checkpoint is also shown to extend the one
before it. A log with entries must be covered by a signed checkpoint: entries past the
newest one are counted (``uncovered``), and fail verify when the newest checkpoint was
signed longer ago than a bound. A checkpoint kept elsewhere (``trusted``) proves the log only grew since: it
catches truncation and rewrites by someone who also re-signed the vault's own
checkpoints, or deleted them.

The log is checked in aligned segments of ``2**16`` entries. Each segment is a perfect
subtree, so segments can be checked in parallel by worker processes (``jobs``), each
with its own connection to the store, and their frontiers folded together in order
here (:mod:`trailvault.core.integrity.rebuild`). Hashing is CPU-bound Python, so threads
would not help; processes use every core.
"""

from __future__ import annotations

import bisect
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import orjson

from trailvault.adapters.store.base import Store, StoredEntry
from trailvault.core.channel import PURGES_CHANNEL, REDACTIONS_CHANNEL
from trailvault.core.integrity.checkpoint import Checkpoint, open_checkpoint
from trailvault.core.integrity.findings import MAX_UNCOVERED_AGE, VerifyReport
from trailvault.core.integrity.log import stored_leaf
from trailvault.core.integrity.note import Verifier
from trailvault.core.integrity.rebuild import Frontier, TreeBuilder, fold_frontier
from trailvault.errors import InvalidInput

__all__ = ["SEGMENT", "Segment", "check_segment", "verify_log"]

#: Entries per segment: a power of two, so each segment is one perfect subtree.
SEGMENT = 1 << 16
_CHUNK = 4096
_HASH = 32


class _Problem(Exception):
    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


@dataclass(frozen=True)
class Segment:
    """What checking the entries ``[start, end)`` of the log found.

    ``roots`` holds the segment's own frontier at each size asked for (absolute
    sizes); ``frontier`` is the frontier after the last good entry; ``problem`` is the
    first bad entry's message and seq, after which nothing was checked.
    """

    count: int
    roots: tuple[tuple[int, Frontier], ...]
    frontier: Frontier
    problem: tuple[str, int | None] | None = None
    #: (seq, app) of entries whose body is gone, and of those a redaction record names.
    erased: tuple[tuple[int, str], ...] = ()
    recorded: tuple[tuple[int, str], ...] = ()
    #: (seq, count, seqs digest) of the purge records in the segment.
    purges: tuple[tuple[int, int, str], ...] = ()


def verify_log(
    store: Store,
    verifier: Verifier,
    trusted: str | None = None,
    *,
    jobs: int = 1,
    reopen: Callable[[], Store] | None = None,
    max_uncovered_age: float = MAX_UNCOVERED_AGE,
    now: float | None = None,
    signer_checkpoint: str | None = None,
) -> VerifyReport:
    """Check the whole log; return a report naming the first bad seq or check.

    With ``jobs`` above 1 and ``reopen`` (a picklable callable opening the same store),
    segments are checked by that many worker processes; otherwise in this process.
    Entries past the newest signed checkpoint are a problem when that checkpoint was
    signed more than ``max_uncovered_age`` seconds before ``now`` (default: the clock),
    and always when the vault keeps no signed checkpoint at all. ``signer_checkpoint`` is the
    note the signer keeps beside its key: checked like a trusted checkpoint when it
    verifies with ``verifier``, left out when it does not (it is another vault's).
    """
    report = VerifyReport()
    try:
        trusted_checkpoint = _open_trusted(trusted, verifier)
        signer = _open_signer(signer_checkpoint, verifier)
        coverage = _check(store, verifier, trusted_checkpoint, signer, report, jobs, reopen)
        _check_coverage(report, coverage, max_uncovered_age, time.time() if now is None else now)
    except _Problem as problem:
        report.problem, report.seq = str(problem), problem.seq
    return report


def _open_trusted(trusted: str | None, verifier: Verifier) -> Checkpoint | None:
    name = "the trusted checkpoint does not verify with the key"
    return None if trusted is None else _open_signed(trusted, name, verifier)


def _open_signer(note: str | None, verifier: Verifier) -> Checkpoint | None:
    try:
        return None if note is None else open_checkpoint(note, verifier)
    except InvalidInput:
        return None


#: A root to compare: (size, root, what to call it, whose: "kept", "trusted" or "signer", signed time).
_Pending = tuple[int, bytes, str, str, int | None]


@dataclass(frozen=True)
class _Coverage:
    """What the checkpoints say of the log's tail: whether the vault keeps any, and the newest's signed time."""

    kept: bool
    signed_at: int | None


def _check(
    store: Store,
    verifier: Verifier,
    trusted: Checkpoint | None,
    signer: Checkpoint | None,
    report: VerifyReport,
    jobs: int,
    reopen: Callable[[], Store] | None,
) -> _Coverage:
    """Check every entry and signed root; return what the checkpoints say of the log's tail."""
    pending, altered = _signed_checkpoints(store, verifier)
    if trusted is not None:
        name = f"the trusted checkpoint (size {trusted.size})"
        pending.append((trusted.size, trusted.root, name, "trusted", trusted.timestamp))
    if signer is not None:
        name = f"the signer's last checkpoint (size {signer.size}, kept beside the signing key)"
        pending.append((signer.size, signer.root, name, "signer", signer.timestamp))
    pending.sort(key=lambda item: item[0])
    report.covered = max((item[0] for item in pending), default=0)
    # Read after the checkpoints, so every checkpoint's size is within it.
    size = store.log_size()
    starts = range(0, size, SEGMENT)
    sizes = sorted({item[0] for item in pending})
    builder = TreeBuilder()
    roots = _Roots(pending, report)
    roots.compare(0, builder.root())
    erased: list[tuple[int, str]] = []
    recorded: set[tuple[int, str]] = set()
    purges: dict[int, tuple[int, str]] = {}
    for result in _segments(store, starts, size, sizes, jobs, reopen):
        for at_size, frontier in result.roots:
            roots.compare(at_size, fold_frontier(builder.frontier() + frontier))
        report.entries += result.count
        if result.problem is not None:
            raise _Problem(*result.problem)
        builder.absorb(result.frontier)
        erased.extend(result.erased)
        recorded.update(result.recorded)
        purges.update((seq, (count, digest)) for seq, count, digest in result.purges)
    # A body may go only through redact, which records it in the log; the leaf keeps only
    # the body's hash, so this is how a body removed behind trailvault's back is caught.
    for seq, app in erased:
        if (seq, app) not in recorded:
            raise _Problem(
                f"seq {seq}: its body was removed outside trailvault (no redaction record in the log names it)", seq
            )
    _check_purges(store, purges)
    if roots.position < len(pending):
        at_size, _, name, _, _ = pending[roots.position]
        raise _Problem(f"{name} covers {at_size} entries but the log has only {size}: the log was truncated", size + 1)
    if altered:
        raise _Problem(altered[0])
    kept = max((item[0] for item in pending if item[3] == "kept"), default=None)
    if signer is not None and (kept is None or signer.size > kept):
        raise _Problem(
            f"the signer's last checkpoint (kept beside the signing key) is of size {signer.size}, but the vault "
            f"keeps {'no checkpoint' if kept is None else f'none past size {kept}'}: checkpoints were deleted "
            "outside trailvault"
        )
    report.uncovered = max(0, size - report.covered)
    stamps = [item[4] or 0 for item in pending if item[0] == report.covered]
    return _Coverage(kept is not None, max(stamps, default=None))


def _signed_checkpoints(store: Store, verifier: Verifier) -> tuple[list[_Pending], list[str]]:
    """Every kept checkpoint as its signed note says (size, root), and how kept rows disagree with their notes.

    The store's size, root and time columns are unsigned copies that anyone with write
    access to the database can change; only the note is compared with the log.
    """
    pending: list[_Pending] = []
    altered: list[str] = []
    for kept in store.all_checkpoints():
        signed = _open_signed(kept.note, f"checkpoint of size {kept.size}", verifier)
        name = f"checkpoint of size {signed.size}"
        if not kept.agrees_with(signed):
            altered.append(
                f"{name}: the unsigned size, root or time kept beside its signed note differ from the note "
                f"(the row says size {kept.size}): the row was altered outside trailvault"
            )
        pending.append((signed.size, signed.root, name, "kept", signed.timestamp))
    return pending, altered


def _check_coverage(report: VerifyReport, coverage: _Coverage, max_age: float, now: float) -> None:
    """A log with entries needs a kept signed checkpoint (a vault signs one of size 0 when it is made), and
    entries past the newest one may wait for the next only so long after the newest was signed.

    The wait is measured from the newest checkpoint's signed time, never from the entries'
    ``received`` (unsigned, so anyone with write access could make an old tail look new):
    an open vault renews its checkpoint every minute, and one closing signs what it added.
    """
    if report.uncovered == 0:
        return
    first = report.covered + 1
    if not coverage.kept:
        raise _Problem(
            f"the log has {report.uncovered} entries and no signed checkpoint at all: checkpoints were "
            "deleted outside trailvault, or no writer holding the signing key has run; open the vault with "
            "its key to sign them, then verify against a checkpoint kept elsewhere",
            first,
        )
    age = now - (coverage.signed_at or 0)
    if age > max_age:
        raise _Problem(
            f"{report.uncovered} entries from seq {first} on are covered by no signed checkpoint, and the newest "
            f"(size {report.covered}) was signed {age:,.0f} s ago (the bound is {max_age:,.0f} s): checkpoints "
            "were deleted outside trailvault, or no writer holding the signing key has run since; open the "
            "vault with its key to sign them, or raise max_uncovered_age",
            first,
        )


def _check_purges(store: Store, records: dict[int, tuple[int, str]]) -> None:
    """Every purged row must be named by a purge record in the log, whose count and seqs digest agree.

    So a row deleted behind trailvault's back and then listed as purged is still caught:
    the log's record (covered by the signed checkpoints) says which seqs went.
    """
    for record_seq, count, digest in store.purge_records():
        named = records.pop(record_seq, None)
        if named is None:
            raise _Problem(f"seq {record_seq} is given as a purge record, but the log holds no such record", record_seq)
        if named != (count, digest):
            raise _Problem(
                f"the purge recorded at seq {record_seq} names {named[0]} events, but {count} other rows are gone "
                "under it: rows were deleted outside trailvault",
                record_seq,
            )
    for record_seq, (count, _) in records.items():
        if count != 0:
            raise _Problem(f"the purge recorded at seq {record_seq} removed rows that are not missing", record_seq)


def _segments(
    store: Store, starts: range, size: int, sizes: list[int], jobs: int, reopen: Callable[[], Store] | None
) -> Iterator[Segment]:
    """Yield each segment's result in order, checked here or by ``jobs`` worker processes.

    Tasks are made as they are needed (a log whose size was forged huge must not stall
    the planning), each with the checkpoint sizes inside it, found by bisection.
    """

    def task(start: int) -> tuple[int, int, list[int]]:
        end = min(start + SEGMENT, size)
        return start, end, sizes[bisect.bisect_right(sizes, start) : bisect.bisect_right(sizes, end)]

    tasks = (task(start) for start in starts)
    if jobs <= 1 or reopen is None or len(starts) <= 1:
        for start, end, inside in tasks:
            yield check_segment(store, start, end, inside)
        return
    # spawn, not fork: the vault has a checkpoint thread and open connections that a
    # forked child must not inherit.
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(starts)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(reopen,),
    )
    try:
        # A bounded window of segments in flight keeps memory constant on any log size.
        window: deque[Future[Segment]] = deque()
        for planned in tasks:
            window.append(pool.submit(_check_in_worker, *planned))
            if len(window) >= 2 * jobs:
                break
        while window:
            result = window.popleft().result()
            for planned in tasks:
                window.append(pool.submit(_check_in_worker, *planned))
                break
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_worker_store: Store | None = None


def _start_worker(reopen: Callable[[], Store]) -> None:
    global _worker_store
    _worker_store = reopen()


def _check_in_worker(start: int, end: int, sizes: list[int]) -> Segment:
    assert _worker_store is not None, "the worker's store is opened by its initializer"
    return check_segment(_worker_store, start, end, sizes)


def check_segment(store: Store, start: int, end: int, sizes: Sequence[int]) -> Segment:
    """Check entries ``[start, end)`` (seqs ``start + 1`` to ``end``) against their leaves.

    Recomputes each body hash and leaf from the stored row, compares the leaves with
    the tree's, and rebuilds the segment's subtree, recording its frontier at each of
    ``sizes``. ``start`` must be a multiple of a power of two at least ``end - start``.
    """
    builder = TreeBuilder()
    wanted = deque(sizes)
    roots: list[tuple[int, Frontier]] = []
    erased: list[tuple[int, str]] = []
    recorded: list[tuple[int, str]] = []
    purges: list[tuple[int, int, str]] = []

    def feed(leaves: Sequence[bytes], first: int) -> None:
        # Append leaves of indexes first.., stopping at each asked size to record a frontier.
        taken = 0
        while wanted and wanted[0] <= first + len(leaves):
            cut = wanted.popleft() - first
            builder.extend(leaves[taken:cut])
            taken = cut
            roots.append((first + cut, builder.frontier()))
        builder.extend(leaves[taken:])

    position = start
    while position < end:
        window = min(_CHUNK, end - position)
        # A purged entry has no row: its leaf is the tree's own (the purge record's digest
        # and the checkpoints' roots vouch for it), so read the purged seqs and stored leaves first.
        purged = store.purged_seqs(position, position + window)
        stored = store.leaf_hashes(position, position + window)
        chunk = store.entries(position, window - len(purged)) if len(purged) < window else []
        rows = iter(chunk)
        row = next(rows, None)
        leaves: list[bytes] = []
        try:
            for seq in range(position + 1, position + window + 1):
                if row is not None and row.seq == seq:
                    leaves.append(_entry_leaf(row))
                    if row.body_json is None:
                        erased.append((row.seq, row.app))
                    elif row.channel == REDACTIONS_CHANNEL:
                        recorded.append((_redacted_seq(row), row.app))
                    elif row.channel == PURGES_CHANNEL:
                        purges.append(_purge_record(row))
                    row = next(rows, None)
                elif seq in purged:
                    kept = stored[(seq - 1 - position) * _HASH : (seq - position) * _HASH]
                    if not kept:
                        raise _Problem(f"seq {seq} was purged but has no leaf in the Merkle tree", seq)
                    leaves.append(kept)
                else:
                    raise _Problem(f"seq {seq} is missing: a row was deleted outside trailvault", seq)
            _compare_leaves(stored, position, leaves)
        except _Problem as found:
            first = _first_problem(stored, position, leaves, found)
            good = (first.seq or position + 1) - 1 - position
            feed(leaves[:good], position)
            return Segment(position + good - start, tuple(roots), builder.frontier(), (str(first), first.seq))
        feed(leaves, position)
        position += len(leaves)
    return Segment(end - start, tuple(roots), builder.frontier(), None, tuple(erased), tuple(recorded), tuple(purges))


def _redacted_seq(entry: StoredEntry) -> int:
    try:
        return int(orjson.loads(entry.body_json or "{}")["redacted_seq"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return 0  # not a redaction record trailvault wrote; it names nothing


def _purge_record(entry: StoredEntry) -> tuple[int, int, str]:
    """(record seq, count, seqs digest) of a purge record; a record trailvault did not write names nothing."""
    try:
        body = orjson.loads(entry.body_json or "{}")
        return entry.seq, int(body["count"]), str(body["seqs_sha256"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return entry.seq, -1, ""


def _first_problem(stored: bytes, position: int, leaves: list[bytes], found: _Problem) -> _Problem:
    """The entries before ``found`` were recomputed but not yet compared with the tree: an earlier bad one wins."""
    assert found.seq is not None
    try:
        _compare_leaves(stored, position, leaves[: found.seq - 1 - position])
    except _Problem as earlier:
        return earlier
    return found


def _compare_leaves(stored: bytes, position: int, leaves: list[bytes]) -> None:
    """Raise a problem at the first recomputed leaf the stored tree (``stored``, from ``position``) disagrees with."""
    stored = stored[: len(leaves) * _HASH]
    if b"".join(leaves) == stored:
        return
    for index, leaf in enumerate(leaves):
        kept = stored[index * _HASH : (index + 1) * _HASH]
        seq = position + index + 1
        if not kept:
            raise _Problem(
                f"seq {seq} has no leaf in the Merkle tree: a row was inserted outside trailvault "
                "or the tree was damaged",
                seq,
            )
        if kept != leaf:
            raise _Problem(
                f"seq {seq} does not match its leaf in the Merkle tree: its envelope or body hash "
                "was changed outside trailvault (or the row was moved)",
                seq,
            )


def _entry_leaf(entry: StoredEntry) -> bytes:
    leaf = stored_leaf(entry)
    if leaf is None:
        raise _Problem(f"seq {entry.seq}: the body was changed outside trailvault (its SHA-256 differs)", entry.seq)
    return leaf


def _open_signed(note: str, name: str, verifier: Verifier) -> Checkpoint:
    try:
        return open_checkpoint(note, verifier)
    except InvalidInput as exc:
        raise _Problem(f"{name}: {exc.message}") from None


class _Roots:
    """The signed roots to compare, in size order, with the tree rebuilt from the rows as it grows."""

    def __init__(self, pending: list[_Pending], report: VerifyReport) -> None:
        self.pending = pending
        self.position = 0
        self._report = report
        self._good = 0  # the largest size whose signed root matched

    def compare(self, size: int, root: bytes) -> None:
        """Compare ``root`` (the log's root at ``size``) with every pending root of that size."""
        while self.position < len(self.pending) and self.pending[self.position][0] == size:
            _, expected, name, whose, _ = self.pending[self.position]
            if root != expected:
                raise _Problem(
                    f"{name}: its signed root differs from the log's first {size} entries rebuilt from the rows: "
                    f"an entry from seq {self._good + 1} to {size} was changed outside trailvault (each leaf "
                    "matches the stored tree, so the tree was rebuilt to match), or the checkpoint was altered",
                    size if size else None,
                )
            if whose == "kept":
                self._report.checkpoints += 1
            elif whose == "trusted":
                self._report.trusted = {"size": size, "consistent": True}
            self._good = size
            self.position += 1
