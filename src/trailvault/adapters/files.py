"""Local files written so that a crash leaves either the old content or the new, whole.

``write_durably`` writes under a temporary name, syncs, renames over the target and
syncs the folder (so the rename itself survives power loss); ``append_durably`` adds
to a file and syncs it; ``sync`` flushes a file or a folder to disk.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["append_durably", "file_sha256", "sync", "write_durably"]


def write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``; a reader sees the old file or the new one, never a part."""
    staging = path.with_name(path.name + ".tmp")
    with staging.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
    sync(path.parent)


def append_durably(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created when missing) and sync it before returning."""
    with path.open("ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def sync(path: Path) -> None:
    """Flush a file's or a folder's content (a folder: its entries, such as a rename) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
