"""Export file formats: Parquet, CSV and JSONL.gz writers and readers of one row shape.

``open_writer(format, path, schema)`` returns a writer with ``write(entries)`` (stored
entries of one channel, in seq order; or ``prepare`` on any thread then ``write_prepared``
in order), ``close()`` and ``sha256()`` (of the file, hashed as it was written);
``read_rows(format, path, schema)`` yields the rows of a file in the JSONL shape
(canonical time text, ``body_sha256`` hex, the body as posted), which is
what ``verify export`` checks against the log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from trailvault.adapters.formats.jsonl import JsonlWriter, read_jsonl_rows
from trailvault.adapters.formats.kinds import (
    FORMATS,
    SUFFIXES,
    TABLE_FORMATS,
    parse_formats,
    require_formats,
    require_pyarrow,
)
from trailvault.adapters.formats.rows import Entry
from trailvault.core.schema import Schema

__all__ = [
    "FORMATS", "SUFFIXES", "TABLE_FORMATS", "Writer",
    "open_writer", "parse_formats", "read_rows", "require_formats", "require_pyarrow",
]  # fmt: skip

class Writer(Protocol):
    path: Path

    def write(self, entries: Sequence[Entry]) -> None: ...

    def prepare(self, entries: Sequence[Entry]) -> Any:
        """The page as this file will hold it; touches no file and no writer state, so
        pages (and formats) may be prepared on several threads at once."""
        ...

    def write_prepared(self, prepared: Any) -> None:
        """Write a prepared page: ``write(e)`` is ``write_prepared(prepare(e))``, in page order."""
        ...

    def close(self) -> None: ...

    def sha256(self) -> str:
        """The hex SHA-256 of the file as written (after ``close``)."""
        ...


def open_writer(fmt: str, path: Path, schema: Schema) -> Writer:
    # The table writers load pyarrow (about 130 ms); only a typed export pays that.
    if fmt in ("parquet", "csv"):
        from trailvault.adapters.formats.tables import CsvWriter, ParquetWriter
    if fmt == "parquet":
        return ParquetWriter(path, schema)
    if fmt == "csv":
        return CsvWriter(path, schema)
    return JsonlWriter(path)


def read_rows(fmt: str, path: Path, schema: Schema) -> Iterator[dict[str, Any]]:
    if fmt == "jsonl.gz":
        return read_jsonl_rows(path)
    from trailvault.adapters.formats.tables import read_table_rows

    return read_table_rows(path, schema, csv=fmt == "csv")
