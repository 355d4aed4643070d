"""verify archive: check archive files offline with the vault's verifier key, in worker processes when asked."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import multiprocessing
import threading
from array import array
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from isal import igzip  # type: ignore[import-untyped, unused-ignore]

from trailvault.core.batches import seqs_digest
from trailvault.core.channel import BATCHES_CHANNEL
from trailvault.core.integrity.checkpoint import Checkpoint, open_checkpoint
from trailvault.core.integrity.findings import Findings
from trailvault.core.integrity.merkle import verify_consistency
from trailvault.core.integrity.multiproof import LeafIndexes, multiproof_root
from trailvault.core.integrity.note import Verifier
from trailvault.errors import InvalidInput, TrailvaultError
from trailvault.workflows.archive.files import ARCHIVE_FORMAT, BODY_KEY, MANIFEST_SUFFIX, GzipFile, manifest_name

__all__ = ["MAX_LINE_BYTES", "ArchiveReport", "verify_archive"]

#: ``,"time":"2024-10-07T01:00:00.000000Z"``: the canonical time's key and text, always this wide.
_TIME_WIDTH = 37
#: How much unzipped text ``verify archive`` takes at a time (see :func:`_line_chunks`).
_CHUNK_BYTES = 4 << 20
#: The longest line ``verify archive`` reads. A line is one entry, at most ``max_event_bytes``
#: (1 MB by default; a server takes requests of 16 MB at most) plus its envelope: a longer
#: line is a finding, where reading it whole could take all the memory there is.
MAX_LINE_BYTES = 64 << 20
_HASH = 32


@dataclass
class ArchiveReport(Findings):
    """What ``verify archive`` checked, and every problem found (``ok`` when there is none).

    ``absent_previous`` holds the archive ids that a checked archive names as the one
    before it but that were not among the files checked, and ``notes`` says so for each:
    not a problem (each file is proven on its own) unless a complete chain was asked for.
    """

    files: int = 0
    events: int = 0
    redacted: int = 0
    absent_previous: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def _counts(self) -> dict[str, Any]:
        return {
            "files": self.files, "events": self.events, "redacted_bodies": self.redacted,
            "absent_previous": self.absent_previous, "notes": self.notes,
        }  # fmt: skip


@dataclass(frozen=True)
class _Checked:
    """One archive file's result: its manifest (None when unreadable) and what it found."""

    name: str
    manifest: dict[str, Any] | None
    checkpoint: tuple[int, bytes] | None
    events: int
    redacted: int
    problems: tuple[str, ...]


def verify_archive(path: str | Path, key: str, *, jobs: int = 1, complete: bool = False) -> ArchiveReport:
    """Check an archive file (by it or its manifest) or every archive under a folder, offline.

    Each file: its sha256 is the manifest's; every line is an entry whose body hashes
    to its ``body_sha256``; the entries, in ascending seq order and as many as the
    manifest says, rebuild the signed checkpoint's root with the manifest's proof.
    Across files: each archive's ``previous`` checkpoint is the one named, and the
    consistency proof shows this log extends it; a ``previous`` that is among the files
    must be that archive. A ``previous`` absent from the files checked is reported in
    ``absent_previous`` and ``notes`` (``ok`` stays true), and is a problem only with
    ``complete``, which asks for the whole chain back to the app's first archive.
    ``jobs`` above 1 checks files in that many processes.
    """
    if jobs < 1:
        raise InvalidInput(f"jobs: use 1 or more worker processes, not {jobs}", field="jobs")
    verifier = Verifier.parse(key)
    root = Path(path)
    if root.is_dir():
        manifests = sorted(root.rglob("*" + MANIFEST_SUFFIX))
        if not manifests:
            raise InvalidInput(f"path: no archive manifest (*{MANIFEST_SUFFIX}) under {root}", field="path")
    elif root.is_file():
        manifests = [root if root.name.endswith(MANIFEST_SUFFIX) else root.with_name(manifest_name(root.name))]
    else:
        raise InvalidInput(f"path: {root} is neither an archive file nor a folder of archives", field="path")
    report = ArchiveReport()
    if jobs > 1 and len(manifests) > 1:
        checked = _check_files_apart(manifests, key, verifier, min(jobs, len(manifests)))
    else:
        checked = [_check_file(manifest, key, verifier) for manifest in manifests]
    for result in checked:
        report.files += 1
        report.events += result.events
        report.redacted += result.redacted
        report.problems.extend(result.problems)
    _check_chain(checked, verifier, report, complete=complete)
    return report


def _check_files_apart(manifests: list[Path], key: str, verifier: Verifier, jobs: int) -> list[_Checked]:
    """Check the files in ``jobs`` processes, this one and ``jobs - 1`` workers, each taking the next file when free.

    This process starts on the first file at once, while the workers start: each is
    a fresh interpreter (spawn, not fork: the caller may hold a vault with a checkpoint
    thread and open connections). Results come back in the order of ``manifests``.
    """
    results: list[_Checked | None] = [None] * len(manifests)
    waiting = iter(range(len(manifests)))
    taking = threading.Lock()

    def take() -> int | None:
        with taking:
            return next(waiting, None)

    def feed(pool: ProcessPoolExecutor) -> None:
        # One thread a worker, waiting on it without the interpreter lock.
        while (position := take()) is not None:
            results[position] = pool.submit(_check_file, manifests[position], key).result()

    context = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=jobs - 1, mp_context=context) as pool,
        ThreadPoolExecutor(jobs - 1, thread_name_prefix="trailvault-verify") as feeders,
    ):
        fed = [feeders.submit(feed, pool) for _ in range(jobs - 1)]
        try:
            while (position := take()) is not None:
                results[position] = _check_file(manifests[position], key, verifier)
        except BaseException:
            with taking:
                waiting = iter(())  # the workers take no further file
            raise
        for future in fed:
            future.result()
    return [result for result in results if result is not None]


def _check_file(manifest_path: Path, key: str, verifier: Verifier | None = None) -> _Checked:
    verifier = verifier or Verifier.parse(key)
    name = manifest_path.name
    try:
        manifest = _read_manifest(manifest_path)
        checkpoint = open_checkpoint(manifest["checkpoint"], verifier)
    except (OSError, ValueError, TrailvaultError) as exc:
        message = exc.message if isinstance(exc, TrailvaultError) else str(exc)
        return _Checked(name, None, None, 0, 0, (f"{name}: cannot be read as an archive manifest ({message[:200]})",))
    problems: list[str] = []
    label = manifest["file"]
    if not label.startswith(f"{manifest['accountId']}_"):
        problems.append(f"{label}: its name does not start with the manifest's accountId")
    try:
        data = (manifest_path.parent / label).read_bytes()
    except OSError:
        return _Checked(name, manifest, (checkpoint.size, checkpoint.root), 0, 0, (f"{label}: missing",))
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        problems.append(f"{label}: its sha256 is not the manifest's (the file was changed)")
    events, redacted = _check_entries(label, data, manifest, checkpoint, problems)
    return _Checked(name, manifest, (checkpoint.size, checkpoint.root), events, redacted, tuple(problems))


#: What a manifest must hold, and of which kind; anything else makes it unreadable.
_MANIFEST_KINDS: dict[str, type | tuple[type, ...]] = {
    "archiveId": str, "accountId": str, "file": str, "sha256": str, "eventCount": int, "checkpoint": str,
    "proof": str, "record": str, "previous": (dict, type(None)), "consistency": list,
}  # fmt: skip


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, each field of the kind verify uses; ValueError naming what is wrong."""
    try:
        manifest = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise ValueError(f"not a {ARCHIVE_FORMAT} manifest")
    for key, kind in _MANIFEST_KINDS.items():
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise ValueError(f"{key} is missing or not a {getattr(kind, '__name__', 'valid value')}")
    file = manifest["file"]
    if "/" in file or "\\" in file or file.startswith(".") or not file.endswith(".json.gz"):
        raise ValueError(f"file {file[:80]!r} is not an archive file's name beside the manifest")
    previous = manifest["previous"]
    if previous is not None and not (
        isinstance(previous.get("archiveId"), str) and isinstance(previous.get("checkpoint"), str)
    ):
        raise ValueError("previous needs archiveId and checkpoint as text")
    if not all(isinstance(item, str) for item in manifest["consistency"]):
        raise ValueError("consistency is a list of base64 hashes")
    try:
        manifest["proof_hashes"] = base64.b64decode(manifest["proof"], validate=True)
        manifest["consistency_hashes"] = [base64.b64decode(item, validate=True) for item in manifest["consistency"]]
    except binascii.Error:
        raise ValueError("proof or consistency is not base64") from None
    return dict(manifest)


def _check_entries(
    label: str, data: bytes, manifest: dict[str, Any], checkpoint: Checkpoint, problems: list[str]
) -> tuple[int, int]:
    """Recompute every line's leaf, check the batch's record, and rebuild the signed root; return (events, redacted)."""
    seqs: array[int] = array("q")
    leaves: list[bytes] = []
    redacted = 0
    read = 0  # lines, blank ones included, for the line numbers of messages
    in_order = True
    try:
        for lines in _line_chunks(data):
            if not in_order:  # nothing more is checked; the entries are only counted
                seqs.extend(0 for line in lines if line)
                continue
            found, in_order = _read_lines(label, lines, manifest["accountId"], seqs, leaves, problems, after=read)
            redacted += found
            read += len(lines)
    except (OSError, EOFError, ValueError, igzip.BadGzipFile) as exc:
        problems.append(f"{label}: cannot be read as an archive ({type(exc).__name__}: {str(exc)[:200]})")
        return 0, 0
    if not in_order:
        return len(seqs), 0
    if len(seqs) != manifest["eventCount"]:
        problems.append(f"{label}: {len(seqs)} events, the manifest says {manifest['eventCount']}")
        return len(seqs), redacted
    if not _check_record(label, manifest, seqs, leaves, problems):
        return len(seqs), redacted
    if seqs[-1] > checkpoint.size:
        problems.append(f"{label}: seq {seqs[-1]} is beyond the signed checkpoint (size {checkpoint.size})")
        return len(seqs) - 1, redacted
    proof = manifest["proof_hashes"]
    hashes = iter([proof[offset : offset + _HASH] for offset in range(0, len(proof), _HASH)])
    try:
        root = multiproof_root(LeafIndexes(seqs), checkpoint.size, leaves.__getitem__, hashes, leaves=leaves)
    except ValueError as exc:
        problems.append(f"{label}: {exc}")
        return len(seqs) - 1, redacted
    if root != checkpoint.root or next(hashes, None) is not None:
        problems.append(
            f"{label}: the events do not rebuild the signed root: an event was changed, added, removed or moved"
        )
    return len(seqs) - 1, redacted


def _check_record(
    label: str, manifest: dict[str, Any], seqs: array[int], leaves: list[bytes], problems: list[str]
) -> bool:
    """Check the file's events against the batch's record in the log, then add the record to the proven entries.

    The record (count, seqs digest, previous batch) is an entry of the log, so the root
    rebuilt below vouches for it: an emptied, shortened or swapped file, or a chain
    rewired around a missing archive, no longer matches it.
    """
    line = manifest["record"].encode()
    record_seqs: array[int] = array("q")
    record_leaves: list[bytes] = []
    try:
        _, whole = _read_lines(label, [line], manifest["accountId"], record_seqs, record_leaves, problems)
        parsed = orjson.loads(line)
        body, channel = parsed.get("body"), parsed.get("channel")
    except (ValueError, orjson.JSONDecodeError) as exc:
        problems.append(f"{label}: the batch's record cannot be read ({str(exc)[:200]})")
        return False
    previous = manifest["previous"]["archiveId"] if manifest["previous"] is not None else None
    expected = {
        "archive_id": manifest["archiveId"], "count": len(seqs), "seqs_sha256": seqs_digest(seqs),
        "previous_archive_id": previous,
    }  # fmt: skip
    if channel != BATCHES_CHANNEL or not isinstance(body, dict) or not whole or len(record_seqs) != 1:
        problems.append(f"{label}: the manifest's record is not a record of {BATCHES_CHANNEL}")
        return False
    differs = [name for name, value in expected.items() if body.get(name) != value]
    if differs:
        problems.append(
            f"{label}: the file does not hold the batch the log recorded ({', '.join(differs)} differ): "
            "events were removed, added or swapped, or the chain was rewired"
        )
        return False
    if seqs and record_seqs[0] <= seqs[-1]:
        problems.append(f"{label}: the batch's record comes before its events")
        return False
    seqs.append(record_seqs[0])
    leaves.append(record_leaves[0])
    return True


def _line_chunks(data: bytes) -> Iterator[list[bytes]]:
    """The lines of a gzipped archive file, a few MB of them at a time, in order (the last one without its newline).

    Not the whole file at once: a batch of 250,000 events is about 200 MB unzipped, and
    unzipping, splitting and cutting it whole copies it three times into fresh memory
    the system must fault in page by page. A few MB at a time are reused from the
    allocator and stay in cache: a third less time a line, measured.

    A line longer than a chunk is kept as its pieces and joined once, when it ends, so
    reading it stays linear; one longer than :data:`MAX_LINE_BYTES` raises ValueError
    naming it, as soon as that much of it is read (a small gzip file can unzip to one
    line of gigabytes).
    """
    pieces: list[bytes] = []  # the line begun in an earlier chunk and not ended yet
    carried = 0
    number = 1  # of the line that ``pieces`` begin
    with GzipFile(fileobj=io.BytesIO(data), mode="rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            lines = chunk.split(b"\n")
            if len(lines) == 1:
                pieces.append(chunk)
                carried += len(chunk)
                _check_line_length(number, carried)
                continue
            if carried + len(chunk) > MAX_LINE_BYTES:  # only then can a line here be too long
                for index, line in enumerate(lines[:-1]):
                    _check_line_length(number + index, len(line) + (carried if index == 0 else 0))
            if pieces:
                pieces.append(lines[0])
                lines[0] = b"".join(pieces)
            rest = lines.pop()
            pieces, carried = ([rest], len(rest)) if rest else ([], 0)
            number += len(lines)
            yield lines
    if pieces:
        _check_line_length(number, carried)
        yield [b"".join(pieces)]


def _check_line_length(number: int, length: int) -> None:
    if length > MAX_LINE_BYTES:
        raise ValueError(
            f"line {number} is longer than {MAX_LINE_BYTES >> 20} MB, the longest line verify reads; "
            "no entry of an archive is that long"
        )


def _read_lines(
    label: str,
    lines: list[bytes],
    app: str,
    seqs: array[int],
    leaves: list[bytes],
    problems: list[str],
    *,
    after: int = 0,
) -> tuple[int, bool]:
    """Add the lines' entries to ``seqs`` and ``leaves``, noting bad bodies; return (redacted count, in seq order).

    ``lines`` follow ``after`` lines already read into ``seqs`` and ``leaves``: line
    numbers in messages count from there, and order is checked against what came before.
    Blank lines hold no entry and are passed over.

    A line is the canonical entry with the body appended as its last key (see
    :func:`archive_line`), so the entry's bytes are the line up to ``,"body":`` and
    hashing them needs no JSON parsing. Nothing read here is trusted before the root
    is rebuilt: a line whose bytes are not exactly the canonical entry the log hashed
    gives another leaf. ``,"body":`` cannot occur inside a JSON string (a quote in one
    is escaped), so its first occurrence is the key; the entry ends with ``seq`` and then
    ``time``, whose canonical text has a fixed width (37 bytes with its key). One pass
    per step, in comprehensions: this is the hot loop.
    """
    sha256 = hashlib.sha256
    prefix = b'{"app":"' + app.encode() + b'","body_sha256":"'
    start, end = len(prefix), len(prefix) + 64
    entries = [line for line in lines if line] if b"" in lines else lines
    split = [line.partition(BODY_KEY) for line in entries]
    strangers = [
        index for index, (head, key, body) in enumerate(split)
        if not head.startswith(prefix) or not key or not body.endswith(b"}")
    ]  # fmt: skip
    if strangers:
        stranger = entries[strangers[0]]
        number = after + 1 + next(index for index, line in enumerate(lines) if line is stranger)
        raise ValueError(f"line {number}: not a whole entry of app {app!r}")
    begin = len(seqs)
    seqs.extend(int(head[head.rindex(b":", 0, -_TIME_WIDTH) + 1 : -_TIME_WIDTH]) for head, _, _ in split)
    disorder = next((seqs[i] for i in range(max(begin, 1), len(seqs)) if seqs[i] <= seqs[i - 1]), None)
    if disorder is not None or (seqs and seqs[0] < 1):
        problems.append(f"{label}: seq {disorder if disorder is not None else seqs[0]} comes twice or out of order")
        return 0, False
    leaves.extend(sha256(b"\x00" + head + b"}").digest() for head, _, _ in split)
    # A redacted body (null) never hashes to the hash the entry keeps: those are the only mismatches allowed.
    mismatched = [
        index
        for index, (head, _, body) in enumerate(split)
        if sha256(body[:-1]).hexdigest().encode() != head[start:end]
    ]
    redacted = 0
    for index in mismatched:
        if split[index][2] == b"null}":
            redacted += 1
        else:
            problems.append(f"{label}: seq {seqs[begin + index]}: the body is not the one the log hashed")
    return redacted, True


def _check_chain(checked: list[_Checked], verifier: Verifier, report: ArchiveReport, *, complete: bool) -> None:
    """Each archive's previous must be the checkpoint named and be extended, and be there when ``complete``."""
    by_id = {result.manifest["archiveId"]: result for result in checked if result.manifest is not None}
    followers: dict[str, str] = {}
    for result in checked:
        manifest = result.manifest
        if manifest is None or result.checkpoint is None:
            continue
        previous = manifest.get("previous")
        if previous is None:
            continue
        label = manifest["file"]
        before = followers.setdefault(previous["archiveId"], manifest["archiveId"])
        if before != manifest["archiveId"]:
            report.problems.append(f"{label}: another archive ({before}) also follows {previous['archiveId']}")
        try:
            old = open_checkpoint(previous["checkpoint"], verifier)
        except InvalidInput as exc:
            report.problems.append(f"{label}: the previous archive's checkpoint does not verify ({exc.message})")
            continue
        hashes = manifest["consistency_hashes"]
        size, root = result.checkpoint
        if old.size > size or not verify_consistency(old.size, size, old.root, root, hashes):
            report.problems.append(
                f"{label}: its checkpoint does not extend the previous archive's: the log was rewritten in between"
            )
        found = by_id.get(previous["archiveId"])
        if found is None:
            absent = f"{label}: the archive before it ({previous['archiveId']}) is not among the files checked"
            if complete:
                report.problems.append(f"{absent}, and a complete chain was asked for")
            else:
                report.absent_previous.append(previous["archiveId"])
                report.notes.append(f"{absent}; each file present is proven on its own (--complete to require it)")
        elif found.checkpoint != (old.size, old.root):
            report.problems.append(f"{label}: the previous archive's checkpoint is not the one it names")
