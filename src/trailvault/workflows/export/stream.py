"""An export as a server streams it, and the client's reading of that stream.

The stream is NDJSON: a header (format, vault, app, query, checkpoint note, size, schemas),
every entry's line (as in JSONL.gz files), and a trailer with the count and the proof
(base64). :class:`StreamSource` reads it back as a :class:`~trailvault.workflows.export.source.Source`,
so a remote export writes the same files and manifest as a local one.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from trailvault.adapters.formats.columns import EntryList, Page
from trailvault.adapters.formats.jsonl import entry_line, split_line
from trailvault.adapters.store.base import StoredEntry
from trailvault.core.event import check_name
from trailvault.core.integrity.multiproof import SeqRuns
from trailvault.core.schema import Schema, parse_schema
from trailvault.core.timestamps import parse_timestamp
from trailvault.errors import InvalidInput, ServerUnavailable
from trailvault.workflows.export.source import PAGE_ROWS, Source

__all__ = ["STREAM_FORMAT", "StreamSource", "stream_lines"]

STREAM_FORMAT = "trailvault-export-stream/v1"


def stream_lines(source: Source, header: dict[str, Any], first: Page, pages: Iterator[Page]) -> Iterator[bytes]:
    """The stream's lines: ``header``, the entries of ``first`` and then of ``pages``, the trailer with the proof."""
    yield orjson.dumps(header) + b"\n"
    seqs = SeqRuns()
    for entries in itertools.chain([first], pages):
        seqs.extend(entries.seqs())
        yield b"".join(entry_line(entry) + b"\n" for entry in entries)
    proof = b"".join(source.proof(seqs))
    yield orjson.dumps({"end": True, "count": len(seqs), "proof": base64.b64encode(proof).decode()}) + b"\n"


class StreamSource:
    """A :class:`Source` reading the lines of :func:`stream_lines` (the remote client's export)."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines = lines
        first = orjson.loads(next(lines))
        if not isinstance(first, dict) or first.get("format") != STREAM_FORMAT:
            raise InvalidInput("export: the server's answer is not a trailvault export stream", field="export")
        self.header: dict[str, Any] = first
        self.app = str(first["app"])
        self._trailer: dict[str, Any] | None = None

    def vault_id(self) -> str:
        return str(self.header["vault"])

    def pages(self) -> Iterator[Page]:
        page = EntryList()
        for line in self._lines:
            if line.startswith(b'{"end"'):
                self._trailer = orjson.loads(line)
                break
            envelope, body = split_line(line)
            # The channel names files: whatever the server sends, it must be a channel name.
            check_name(envelope["channel"], field="channel")
            page.append(
                StoredEntry(
                    envelope["seq"], envelope["id"], envelope["app"], envelope["channel"],
                    parse_timestamp(envelope["time"]), parse_timestamp(envelope["received"]), body,
                    bytes.fromhex(envelope["body_sha256"]),
                )
            )  # fmt: skip
            if len(page) >= PAGE_ROWS:
                yield page
                page = EntryList()
        if page:
            yield page
        if self._trailer is None:
            raise ServerUnavailable("export: the server's stream ended early; export again")

    def schema(self, channel: str) -> Schema:
        return parse_schema(self.header["schemas"][channel])

    def proof(self, seqs: Sequence[int]) -> Iterator[bytes]:
        assert self._trailer is not None
        if self._trailer["count"] != len(seqs):
            raise ServerUnavailable("export: the stream's count does not match its entries; export again")
        yield base64.b64decode(self._trailer["proof"])
