"""Archive files: one batch's events written with the manifest that proves them, to a folder or fsspec URL.

An archive file is CDP's: gzipped JSON lines, one event a line, named
``<accountId>_<YYYYmmddTHHMM>Z_<archiveId>.json.gz``. Each line (:func:`archive_line`)
is the entry exactly as the log hashed it (``app``, ``body_sha256``, ``channel``, ``id``,
``received``, ``seq``, ``time``, in that order) followed by ``body``, exactly as stored
(``null`` once redacted). Beside it,
``<same name>.manifest.json`` holds:

- the batch (``archiveId``, ``accountId``, range, seqs), ``eventCount`` and the
  file's ``sha256``;
- ``checkpoint``: the signed checkpoint the batch was made under, and ``proof``: the
  hashes that, with the file's entries, rebuild its root
  (:mod:`trailvault.core.integrity.multiproof`);
- ``previous``: the app's batch made just before (its id and checkpoint), and
  ``consistency``: the proof that this checkpoint's log extends that one's.

So every archive file proves its own events, count and order against a signed root,
and consecutive archives chain: a missing or altered file in a folder of archives is
named. :func:`~trailvault.workflows.archive.verify.verify_archive` checks all of it with nothing but
the verifier key.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from isal import igzip  # type: ignore[import-untyped, unused-ignore]

from trailvault.adapters.files import file_sha256
from trailvault.adapters.store.base import StoredEntry
from trailvault.core.batches import ArchiveFile, shown_location
from trailvault.core.event import canonical_entry
from trailvault.errors import DestinationUnavailable, InvalidInput

__all__ = [
    "ARCHIVE_FORMAT", "BODY_KEY", "MANIFEST_SUFFIX", "GzipFile", "archive_line", "audit_events_json",
    "manifest_name", "open_destination", "read_back", "write_archive",
]  # fmt: skip

ARCHIVE_FORMAT = "trailvault-archive/v1"
MANIFEST_SUFFIX = ".manifest.json"
BODY_KEY = b',"body":'
# ISA-L's gzip (the same format as zlib's): typed here, since the package's functions are not.
GzipFile: Any = igzip.GzipFile


def archive_line(entry: StoredEntry) -> bytes:
    """An archive file's line: the canonical entry (its keys sorted, exactly the bytes the log hashed)
    with the body's stored text appended as the last key, ``"body"`` (``null`` once redacted)."""
    head = canonical_entry(entry, entry.seq, entry.body_sha256)
    return head[:-1] + BODY_KEY + (b"null" if entry.body_json is None else entry.body_json.encode()) + b"}"


def audit_events_json(lines: Iterable[tuple[int, bytes]]) -> Iterator[bytes]:
    """CDP's ``{"auditEvents": [...]}`` of archive lines, a line an event, in pieces as they come.

    Nothing is yielded before the first line is read, so an error in getting the lines (an
    unknown batch, a key without the scope) comes before any output, not after half of it.
    """
    pending = iter(lines)
    head = next(pending, None)
    yield b'{"auditEvents": [\n'
    if head is not None:
        yield head[1]
        for _, line in pending:
            yield b",\n" + line
    yield b"\n]}\n"


def manifest_name(file_name: str) -> str:
    """The manifest's name beside an archive file: ``X.json.gz`` -> ``X.manifest.json``."""
    return file_name.removesuffix(".json.gz") + MANIFEST_SUFFIX


#: Given the seqs written, returns the manifest's proving part: checkpoint, proof, previous, consistency.
ProofFor = Callable[["array[int]"], dict[str, Any]]


def write_archive(
    lines: Iterable[tuple[int, bytes]],
    proof_for: ProofFor,
    batch: dict[str, Any],
    fs: Any,
    folder: str,
    name: str,
    written: str,
) -> ArchiveFile:
    """Write ``lines`` ((seq, JSON line) in seq order) as ``folder/name`` and its manifest on fsspec ``fs``.

    The file is built in a local temporary file first (constant memory, and its sha256
    known before anything reaches the destination), then put; the manifest goes last,
    so a manifest names only a file that was written whole. ``batch`` is the batch's
    CDP form (:meth:`trailvault.core.batches.ArchiveBatch.to_dict`).
    """
    seqs: array[int] = array("q")
    with tempfile.TemporaryDirectory(prefix="trailvault-archive-") as scratch:
        local = Path(scratch) / name
        with (
            local.open("wb") as raw,
            # ISA-L's level 1 compresses as small as zlib's level 6, many times faster.
            GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as handle,
            ThreadPoolExecutor(1, thread_name_prefix="trailvault-gzip") as compressor,
        ):
            # zlib lets go of the interpreter while it compresses: one chunk is compressed
            # in the helper thread while the next is read from the store here.
            pending: Future[int] | None = None
            chunk: list[bytes] = []
            for seq, line in lines:
                seqs.append(seq)
                chunk.append(line)
                if len(chunk) >= 8192:
                    if pending is not None:
                        pending.result()
                    pending = compressor.submit(handle.write, b"\n".join(chunk) + b"\n")
                    chunk = []
            if pending is not None:
                pending.result()
            if chunk:
                handle.write(b"\n".join(chunk) + b"\n")
        digest = file_sha256(local)
        manifest = {
            "format": ARCHIVE_FORMAT,
            "archiveId": batch["archiveId"],
            "accountId": batch["accountId"],
            "file": name,
            "sha256": digest,
            "bytes": local.stat().st_size,
            "eventCount": len(seqs),
            "firstSeq": seqs[0] if seqs else None,
            "lastSeq": seqs[-1] if seqs else None,
            "fromTimestamp": batch["fromTimestamp"],
            "toTimestamp": batch["toTimestamp"],
            "written": written,
            **proof_for(seqs),
        }
        target = f"{folder.rstrip('/')}/{name}" if folder else name
        manifest_target = f"{folder.rstrip('/')}/{manifest_name(name)}" if folder else manifest_name(name)
        manifest_local = Path(scratch) / manifest_name(name)
        manifest_local.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        try:
            if folder:
                fs.makedirs(folder, exist_ok=True)
            _put(fs, local, target)
            _put(fs, manifest_local, manifest_target)
        except Exception as exc:  # fsspec backends raise their own error types
            raise DestinationUnavailable(
                f"destination: cannot write {shown_location(target)} ({type(exc).__name__}); "
                "check the destination and its credentials"
            ) from None
    return ArchiveFile(target, manifest_target, len(seqs), digest, manifest)


def _put(fs: Any, local: Path, target: str) -> None:
    """Copy a local file to the destination; on a local destination, synced to disk before returning."""
    fs.put_file(str(local), target)
    if getattr(fs, "protocol", None) in ("file", ("file", "local")) or type(fs).__name__ == "LocalFileSystem":
        descriptor = os.open(target, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        folder = os.open(os.path.dirname(target) or ".", os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def read_back(fs: Any, archive: ArchiveFile) -> str | None:
    """Read an archive file and its manifest back from the destination; None when both are as written,
    else what differs."""
    digest = hashlib.sha256()
    try:
        with fs.open(archive.path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        with fs.open(archive.manifest_path, "rb") as handle:
            manifest = orjson.loads(handle.read())
    except Exception as exc:  # fsspec backends raise their own error types
        return f"{shown_location(archive.path)}: cannot be read back ({type(exc).__name__})"
    if digest.hexdigest() != archive.sha256:
        return f"{shown_location(archive.path)}: the file read back is not the one written (sha256 differs)"
    if manifest != archive.manifest:
        return f"{shown_location(archive.manifest_path)}: the manifest read back is not the one written"
    return None


# -- verify archive ------------------------------------------------------------------------


def open_destination(destination: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """Return (fsspec filesystem, root path) of a folder or fsspec URL, with a clear error if it cannot open."""
    import fsspec  # type: ignore[import-untyped, unused-ignore]

    try:
        fs, root = fsspec.core.url_to_fs(destination, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise InvalidInput(
            f"destination: cannot open {shown_location(destination)!r} ({type(exc).__name__}); "
            "check the URL (for s3:// install 'trailvault[s3]')",
            field="destination",
        ) from None
    except Exception as exc:  # fsspec backends connect on opening and raise their own error types
        raise DestinationUnavailable(
            f"destination: cannot reach {shown_location(destination)!r} ({type(exc).__name__}); "
            "check the destination and its credentials"
        ) from None
    return fs, str(root)
