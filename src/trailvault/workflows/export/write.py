"""Export: a query's events to Parquet, CSV and JSONL.gz files with a manifest that proves them.

``vault.export(out, ...)`` streams the events of a query, in seq order, into one file
per channel and format (``<channel>.parquet``, ``<channel>.csv``,
``<channel>.jsonl.gz``), in constant memory (the seqs the proof needs are kept as runs
of consecutive ones). It signs (or takes) a checkpoint first and exports only what it covers.
``manifest.json``, written last, holds the query, the checkpoint note, counts,
covered range, each file's sha256, and ``proof.bin``: the hashes that, with the
exported entries, rebuild the checkpoint's root (:mod:`trailvault.core.integrity.multiproof`).

``verify_export(folder, key)`` checks all of that offline with the vault's verifier
key: every row of every file is the log's entry at its seq, unaltered, under the
signed checkpoint, and the files are the manifest's. Given the vault too
(``against=``), it also re-runs the query and checks that no event is missing.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from trailvault.adapters.files import file_sha256, write_durably
from trailvault.adapters.formats import (
    SUFFIXES,
    Writer,
    open_writer,
    parse_formats,
    require_formats,
)
from trailvault.adapters.formats.columns import Page, joined
from trailvault.core.integrity.multiproof import SeqRuns
from trailvault.core.schema import Schema
from trailvault.core.timestamps import format_timestamp, parse_timestamp
from trailvault.errors import Conflict, InvalidInput
from trailvault.workflows.export.source import Progress, Source, page_rows
from trailvault.workflows.export.stream import StreamSource

__all__ = ["FORMAT", "export_from", "export_into", "load_into_database", "query_record", "require_empty"]

FORMAT = "trailvault-export/v1"
#: Pages being prepared or waiting to be written, at most: two keep both cores busy,
#: and their tables (the page size shrinks with more typed formats) stay a few megabytes.
_PAGES_AHEAD = 2


def export_into(
    source: Source,
    folder: Path,
    formats: tuple[str, ...],
    size: int,
    note: str,
    query: dict[str, Any],
    progress: Progress | None,
) -> dict[str, Any]:
    """Write ``source``'s entries into ``folder`` (checked by :func:`require_empty`) as ``formats``,
    with a manifest proving them against the checkpoint ``note`` of ``size``; return the manifest.

    ``query`` is the query as the manifest records it (:func:`query_record`). On any error the
    files written so far are removed (the folder too, when the export made it).
    """
    return _run_into(_Export(source, folder, formats, size, note, query, progress), folder)


def export_from(
    source: StreamSource, out: str | Path, formats: str | tuple[str, ...], progress: Progress | None
) -> dict[str, Any]:
    """Write a server's streamed export into the new or empty folder ``out``, as a local export does."""
    chosen = parse_formats(formats)
    require_formats(chosen)
    folder = require_empty(out)
    header = source.header
    return export_into(source, folder, chosen, header["size"], header["checkpoint"], header["query"], progress)


def load_into_database(
    source: Source, url: str, size: int, note: str, query: dict[str, Any], progress: Progress | None
) -> dict[str, Any]:
    """Load ``source``'s entries into one table per channel of the database at ``url``; return a summary.

    ``source`` must give Arrow pages (a typed export's); pyarrow must be installed
    (:func:`~trailvault.adapters.formats.require_pyarrow`, checked by the caller first).
    """
    from trailvault.adapters.formats.database import DatabaseLoader

    loader = DatabaseLoader(url)
    job = _Export(source, None, ("csv",), size, note, query, progress, loader)
    try:
        return job.run()
    except BaseException:
        job.abandon()
        raise
    finally:
        loader.close()


def query_record(
    channel: str | None,
    time_from: datetime | str | None,
    time_to: datetime | str | None,
    filter: str | None,  # noqa: A002
) -> dict[str, Any]:
    """The export's query as the manifest records it (times in canonical text)."""
    return {
        "channel": channel,
        "from": None if time_from is None else format_timestamp(parse_timestamp(time_from, field="from")),
        "to": None if time_to is None else format_timestamp(parse_timestamp(time_to, field="to")),
        "filter": filter,
    }


def require_empty(out: str | Path) -> Path:
    """Return ``out`` as a path when it is missing or an empty folder; raise Conflict otherwise."""
    folder = Path(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise Conflict(f"out: {folder} is not an empty folder; export into a new one", field="out")
    return folder


def _run_into(job: _Export, folder: Path) -> dict[str, Any]:
    """Run an export into ``folder``; on any error, stop it and remove what it wrote: the folder
    itself when the export made it, else only its contents (it was empty), so that a folder
    the user prepared (a mount point, its permissions) is left as it was."""
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(
            f"out: cannot create the folder {folder} ({exc.strerror}); choose a folder you can write", field="out"
        ) from None
    try:
        return job.run()
    except BaseException:
        job.abandon()
        if made:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            for path in folder.iterdir():  # it was empty: all it holds are the export's files
                path.unlink(missing_ok=True)
        raise


class _Export:
    def __init__(
        self,
        source: Source,
        folder: Path | None,
        formats: tuple[str, ...],
        size: int,
        note: str,
        query: dict[str, Any],
        progress: Progress | None,
        loader: Any = None,
    ) -> None:
        self.loader = loader
        self.source, self.folder, self.formats = source, folder, formats
        self.size, self.note, self.query, self.progress = size, note, query, progress
        self.writers: dict[str, list[Writer]] = {}
        self.pending: dict[str, list[Page]] = {}
        self.counts: dict[str, int] = {}
        self.schemas: dict[str, Schema] = {}
        # Runs of consecutive seqs: the proof needs every exported seq, and an export's are
        # mostly consecutive, so this stays a few numbers however long the export is.
        self.seqs = SeqRuns()
        self.page_rows = page_rows(formats)
        self.writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trailvault-export")
        self.preparing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="trailvault-prepare")
        self.writing: deque[Future[None]] = deque()

    def run(self) -> dict[str, Any]:
        first_time = last_time = None
        for page in self.source.pages():
            self.seqs.extend(page.seqs())
            bounds = page.time_bounds()
            if bounds is not None:
                first_time = bounds[0] if first_time is None else min(first_time, bounds[0])
                last_time = bounds[1] if last_time is None else max(last_time, bounds[1])
            for channel, part in page.by_channel().items():
                self.pending.setdefault(channel, []).append(part)
            for channel in [name for name, parts in self.pending.items() if sum(map(len, parts)) >= self.page_rows]:
                self._flush(channel)
            if self.progress is not None and page:
                self.progress(len(self.seqs), self.seqs[-1], self.size)
        for channel in list(self.pending):
            self._flush(channel)
        self._drain()
        self.writer_thread.shutdown()
        self.preparing.shutdown()
        for writers in self.writers.values():
            for writer in writers:
                writer.close()
        if self.progress is not None:
            self.progress(len(self.seqs), self.size, self.size)
        if self.loader is not None:
            return {
                "to_db": self.loader.kind,
                "query": {**self.query, "order": "seq"},
                "checkpoint": self.note,
                "size": self.size,
                "count": len(self.seqs),
                "tables": [
                    {"channel": channel, "rows": self.counts.get(channel, 0)}
                    for channel, writers in sorted(self.writers.items())
                ],
            }
        assert self.folder is not None
        proof_hashes = self._write_proof()
        manifest = {
            "format": FORMAT,
            "created": format_timestamp(time.time_ns() // 1000),
            "vault": self.source.vault_id(),
            "app": self.source.app,
            "query": {**self.query, "order": "seq"},
            "checkpoint": self.note,
            "size": self.size,
            "count": len(self.seqs),
            "range": {
                "first_seq": self.seqs[0] if self.seqs else None,
                "last_seq": self.seqs[-1] if self.seqs else None,
                "first_time": None if first_time is None else format_timestamp(first_time),
                "last_time": None if last_time is None else format_timestamp(last_time),
            },
            "files": [
                {
                    "name": writer.path.name,
                    "format": fmt,
                    "channel": channel,
                    "count": self.counts[channel],
                    "bytes": writer.path.stat().st_size,
                    "sha256": writer.sha256(),
                }
                for channel, writers in sorted(self.writers.items())
                for fmt, writer in zip(self.formats, writers, strict=True)
            ],
            "schemas": {name: schema.to_document() for name, schema in sorted(self.schemas.items())},
            "proof": {"name": "proof.bin", "hashes": proof_hashes, "sha256": file_sha256(self.folder / "proof.bin")},
        }
        # Written last and whole: a folder with a manifest holds a complete export.
        write_durably(self.folder / "manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
        return manifest

    def _schema(self, channel: str) -> Schema:
        schema = self.schemas.get(channel)
        if schema is None:
            schema = self.schemas[channel] = self.source.schema(channel)
        return schema

    def _flush(self, channel: str) -> None:
        parts = self.pending.pop(channel, [])
        if not parts:
            return
        rows = joined(parts)
        writers = self.writers.get(channel)
        if writers is None:
            schema = self._schema(channel)
            if self.loader is not None:
                writers = self.writers[channel] = [self.loader.table(channel, schema)]
            else:
                assert self.folder is not None
                writers = self.writers[channel] = [
                    open_writer(fmt, self.folder / f"{channel}{SUFFIXES[fmt]}", schema) for fmt in self.formats
                ]
        # Two threads prepare (parse, flatten: mostly outside the interpreter lock) each file's
        # part of a page, and of the next page while there is room; one thread writes the
        # prepared parts in page order. Reading the next page overlaps all of it.
        while len(self.writing) >= _PAGES_AHEAD:
            self.writing.popleft().result()
        prepared = [self.preparing.submit(writer.prepare, rows) for writer in writers]
        self.writing.append(self.writer_thread.submit(_write_prepared, writers, prepared))
        self.counts[channel] = self.counts.get(channel, 0) + len(rows)

    def abandon(self) -> None:
        """After a failure: stop the writing thread and close every file (they are about to be removed)."""
        self.writer_thread.shutdown(wait=True, cancel_futures=True)
        self.preparing.shutdown(wait=True, cancel_futures=True)
        for writers in self.writers.values():
            for writer in writers:
                # The export already failed and its files go; a second error would hide the first.
                with contextlib.suppress(Exception):
                    writer.close()

    def _drain(self) -> None:
        while self.writing:
            self.writing.popleft().result()

    def _write_proof(self) -> int:
        assert self.folder is not None
        written = 0
        with (self.folder / "proof.bin").open("wb") as handle:
            for chunk in self.source.proof(self.seqs):
                handle.write(chunk)
                written += len(chunk)
        return written // 32


def _write_prepared(writers: list[Writer], prepared: list[Future[Any]]) -> None:
    for writer, part in zip(writers, prepared, strict=True):
        writer.write_prepared(part.result())
    # Arrow's allocator keeps freed pages for reuse; a page's tables, several formats over,
    # would stay resident as if they were still held.
    arrow = sys.modules.get("pyarrow")  # None also when marked missing
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
