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

from trailvault.errors import InvalidInput
from trailvault.formats.jsonl import JsonlWriter, read_jsonl_rows
from trailvault.formats.rows import Entry
from trailvault.schema import Schema

__all__ = [
    "FORMATS", "SUFFIXES", "TABLE_FORMATS", "Writer",
    "open_writer", "parse_formats", "read_rows", "require_formats", "require_pyarrow",
]  # fmt: skip

FORMATS = ("parquet", "csv", "jsonl.gz")
SUFFIXES = {"parquet": ".parquet", "csv": ".csv", "jsonl.gz": ".jsonl.gz"}
#: The formats built with pyarrow (the ``export`` extra); JSONL.gz needs nothing more.
TABLE_FORMATS = ("parquet", "csv")


def require_pyarrow(field: str, needs: str) -> None:
    """Raise InvalidInput naming ``field`` and the extra when pyarrow is not installed.

    Called before a job reads or writes anything, so that a refused export, download or
    load changes nothing; ``needs`` says what wanted it ("Parquet and CSV need").
    """
    try:
        # Imported rather than looked up: the job imports it next anyway, and an install
        # that is present but broken is refused here too, not halfway through.
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        raise InvalidInput(
            f"{field}: {needs} pyarrow, which is not installed; pip install 'trailvault[export]'", field=field
        ) from None


def require_formats(chosen: Sequence[str], *, field: str = "format") -> None:
    """:func:`require_pyarrow` when ``chosen`` (named by the setting ``field``) holds Parquet or CSV."""
    if any(fmt in TABLE_FORMATS for fmt in chosen):
        require_pyarrow(field, "Parquet and CSV need")


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


def parse_formats(text: str | Sequence[str], *, field: str = "format") -> tuple[str, ...]:
    """Return the formats named (comma-separated text or a list); raise InvalidInput naming ``field``
    (the option or setting they came from) and the bad one."""
    words = text.split(",") if isinstance(text, str) else list(text)
    chosen: list[str] = []
    for word in (word.strip().lower() for word in words):
        if word in ("jsonl", "ndjson", "jsonl.gz"):
            word = "jsonl.gz"
        if word not in FORMATS:
            raise InvalidInput(f"{field}: {word[:40]!r} is not one of {', '.join(FORMATS)}", field=field)
        if word not in chosen:
            chosen.append(word)
    if not chosen:
        raise InvalidInput(f"{field}: name at least one of {', '.join(FORMATS)}", field=field)
    return tuple(chosen)


def open_writer(fmt: str, path: Path, schema: Schema) -> Writer:
    # The table writers load pyarrow (about 130 ms); only a typed export pays that.
    if fmt in ("parquet", "csv"):
        from trailvault.formats.tables import CsvWriter, ParquetWriter
    if fmt == "parquet":
        return ParquetWriter(path, schema)
    if fmt == "csv":
        return CsvWriter(path, schema)
    return JsonlWriter(path)


def read_rows(fmt: str, path: Path, schema: Schema) -> Iterator[dict[str, Any]]:
    if fmt == "jsonl.gz":
        return read_jsonl_rows(path)
    from trailvault.formats.tables import read_table_rows

    return read_table_rows(path, schema, csv=fmt == "csv")
