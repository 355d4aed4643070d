"""JSONL.gz export files: one event a line, ``{"id", "time", "received", "app", "channel", "seq",
"body_sha256", "body"}``, the body exactly as the log hashed it."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from trailvault.adapters.formats.hashed import HashedFile
from trailvault.adapters.formats.rows import Entry
from trailvault.core.timestamps import format_timestamp

__all__ = ["JsonlWriter", "entry_line", "read_jsonl_rows", "split_line"]


def entry_line(entry: Entry) -> bytes:
    """The JSON line of an entry: the envelope, ``body_sha256``, then the body's stored text as it is."""
    head = orjson.dumps(
        {
            "id": entry.id,
            "time": format_timestamp(entry.time_us),
            "received": format_timestamp(entry.received_us),
            "app": entry.app,
            "channel": entry.channel,
            "seq": entry.seq,
            "body_sha256": entry.body_sha256.hex(),
        }
    )
    return head[:-1] + b',"body":' + (b"null" if entry.body_json is None else entry.body_json.encode()) + b"}"


def split_line(line: bytes) -> tuple[dict[str, Any], str | None]:
    """Read an :func:`entry_line` back: the envelope, and the body's text exactly as it was.

    The body is the last key, and ``,"body":`` cannot occur earlier: a quote inside the
    envelope's strings is escaped.
    """
    cut = line.index(b',"body":')
    envelope = orjson.loads(line[:cut] + b"}")
    body = line[cut + 8 :].rstrip()[:-1]
    return envelope, None if body == b"null" else body.decode()


class JsonlWriter:
    """Entries to a gzip file of JSON lines; the body goes in as the stored text, unparsed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sink = HashedFile(path)
        name = path.name.removesuffix(".gz")  # the name in the gzip header, as gzip.open(path) puts it
        self._file = gzip.GzipFile(filename=name, mode="wb", compresslevel=5, fileobj=self._sink)

    def write(self, entries: Sequence[Entry]) -> None:
        self._file.write(self.prepare(entries))

    def prepare(self, entries: Sequence[Entry]) -> bytes:
        return b"".join(entry_line(entry) + b"\n" for entry in entries)

    def write_prepared(self, prepared: bytes) -> None:
        self._file.write(prepared)

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._sink.close()

    def sha256(self) -> str:
        return self._sink.sha256()


def read_jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Yield each line of a JSONL.gz export file."""
    with gzip.open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)
