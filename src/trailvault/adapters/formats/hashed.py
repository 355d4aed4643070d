"""A new file that hashes what is written to it, so an export's manifest needs no second read."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["HashedFile"]


class HashedFile:
    """A new file, written front to back, that keeps the SHA-256 of every byte written.

    Hand it to a writer that takes a file object (Arrow's CSV and Parquet writers,
    gzip): ``sha256()`` after ``close()`` is the hex digest of the finished file, what
    reading it back would give, without reading a file of gigabytes a second time.
    It has no ``seek``: a writer that would rewrite earlier bytes fails rather than
    leaving a digest that does not match the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")
        self._digest = hashlib.sha256()

    def write(self, data: Any) -> int:
        self._digest.update(data)
        return self._file.write(data)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        self._file.close()

    def sha256(self) -> str:
        """The hex SHA-256 of all that was written (call after the last write)."""
        return self._digest.hexdigest()
