"""Export: a query's events to Parquet, CSV and JSONL.gz files with a manifest that proves them.

``vault.export(out, ...)`` streams the events of a query, in seq order, into one file
per channel and format (``<channel>.parquet``, ``<channel>.csv``,
``<channel>.jsonl.gz``), in constant memory (the seqs the proof needs are kept as runs
of consecutive ones). It signs (or takes) a checkpoint first and exports only what it covers.
``manifest.json``, written last, holds the query, the checkpoint note, counts,
covered range, each file's sha256, and ``proof.bin``: the hashes that, with the
exported entries, rebuild the checkpoint's root (:mod:`trailvault.integrity.multiproof`).

``verify_export(folder, key)`` checks all of that offline with the vault's verifier
key: every row of every file is the log's entry at its seq, unaltered, under the
signed checkpoint, and the files are the manifest's. Given the vault too
(``against=``), it also re-runs the query and checks that no event is missing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import heapq
import itertools
import shutil
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from trailvault.errors import Conflict, InvalidInput, NotFound, ServerUnavailable, TrailvaultError
from trailvault.event import canonical_body, check_name
from trailvault.files import file_sha256, write_durably
from trailvault.formats import SUFFIXES, Writer, open_writer, parse_formats, read_rows, require_formats, require_pyarrow
from trailvault.formats.columns import EntryColumns, EntryList, Page, joined
from trailvault.formats.jsonl import entry_line, split_line
from trailvault.integrity.checkpoint import open_checkpoint
from trailvault.integrity.log import entry_leaf
from trailvault.integrity.merkle import subtree_hash, subtree_nodes
from trailvault.integrity.multiproof import LeafIndexes, SeqRuns, multiproof_ranges, multiproof_root
from trailvault.integrity.note import Verifier
from trailvault.query import And, Compare, Filter, Op
from trailvault.schema import Schema, parse_schema
from trailvault.scim import parse_filter
from trailvault.store import Store
from trailvault.store.base import StoredEntry
from trailvault.timestamps import format_timestamp, parse_timestamp
from trailvault.verification import Findings

if TYPE_CHECKING:
    from trailvault.vault import Vault

__all__ = [
    "FORMAT", "STREAM_FORMAT", "ExportReport", "Exporting", "StreamSource", "export_from", "export_stream",
    "verify_export",
]  # fmt: skip

FORMAT = "trailvault-export/v1"
_BATCH = 10_000
_TYPED = ("parquet", "csv")


def _page_rows(formats: tuple[str, ...]) -> int:
    """Events a page of an export to ``formats`` holds: 10,000 shared among the typed files,
    whose prepared tables (a few megabytes each) are what a page costs in memory."""
    return _BATCH // max(1, sum(fmt in _TYPED for fmt in formats))

_NODE_CHUNK = 4096
#: Pages being prepared or waiting to be written, at most: two keep both cores busy,
#: and their tables (the page size shrinks with more typed formats) stay a few megabytes.
_PAGES_AHEAD = 2

#: Called with (events written, the seq reached, the last seq the export can reach).
Progress = Callable[[int, int, int], None]


class Exporting:
    """``export``, mixed into :class:`~trailvault.vault.Vault`."""

    app: str
    _store: Store

    def export(
        self,
        out: str | Path | None = None,
        *,
        channel: str | None = None,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
        filter: str | None = None,  # noqa: A002 - the listing parameter's name everywhere
        formats: str | tuple[str, ...] = ("parquet", "csv", "jsonl.gz"),
        progress: Progress | None = None,
        to_db: str | None = None,
    ) -> dict[str, Any]:
        """Write the query's events into the new or empty folder ``out``; return the manifest.

        The query is :meth:`Vault.events`' (``channel``, ``time_from``, ``time_to``,
        ``filter``), in seq order. On any error the files written so far are removed.
        With ``to_db`` (``sqlite:///FILE`` or ``postgresql://...``) instead of ``out``, the
        events are loaded into one table per channel (:mod:`trailvault.formats.database`)
        and a summary is returned.
        """
        vault: Vault = self  # type: ignore[assignment]
        if (out is None) == (to_db is None):
            raise InvalidInput(
                "out: give a folder (--out, out=) or a database (--to-db, to_db=), one of the two", field="out"
            )
        if to_db is not None:
            return _load_into_database(vault, to_db, channel, time_from, time_to, filter, progress)
        assert out is not None
        chosen = parse_formats(formats)
        # Checked before the checkpoint is signed: a refused export changes nothing.
        require_formats(chosen)
        folder = _require_empty(out)
        checkpoint = _checkpoint_for_export(vault)
        query = _query_of(channel, time_from, time_to, filter)
        job = _Export(
            _VaultSource(vault, query, checkpoint.size, columns=chosen != ("jsonl.gz",), page_rows=_page_rows(chosen)),
            folder,
            chosen,
            checkpoint.size,
            checkpoint.note,
            query,
            progress,
        )
        return _run_into(job, folder)


STREAM_FORMAT = "trailvault-export-stream/v1"


def export_stream(
    vault: Vault,
    channel: str | None = None,
    time_from: datetime | str | None = None,
    time_to: datetime | str | None = None,
    filter: str | None = None,  # noqa: A002
    visible: tuple[str, ...] | None = None,
) -> Iterator[bytes]:
    """Yield an export as a server streams it: NDJSON lines of a header (checkpoint, size, query),
    every entry's line (as in JSONL.gz files), and a trailer with the count and the proof (base64).

    :meth:`trailvault.client.RemoteVault.export` turns the stream into the same files and
    manifest as a local export, so ``verify export`` proves them the same way.
    """
    # Everything that can refuse the request runs now, before the answer's status is sent.
    checkpoint = _checkpoint_for_export(vault)
    query = _query_of(channel, time_from, time_to, filter)
    source = _VaultSource(vault, query, checkpoint.size)
    pages = source.pages()
    first = next(pages)
    # The schemas go first, so the client can type Parquet and CSV without another request;
    # ``visible`` (a key's channels) keeps other channels' names and schemas out of it.
    schemas = {
        item.name: item.schema.to_document()
        for item in vault.channels()
        if channel in (None, item.name) and (visible is None or item.name in visible)
    }
    header = {
        "format": STREAM_FORMAT, "vault": source.vault_id(), "app": vault.app, "query": query,
        "checkpoint": checkpoint.note, "size": checkpoint.size, "schemas": schemas,
    }  # fmt: skip
    return _stream(source, header, first, pages)


def _stream(source: _VaultSource, header: dict[str, Any], first: Page, pages: Iterator[Page]) -> Iterator[bytes]:
    yield orjson.dumps(header) + b"\n"
    seqs = SeqRuns()
    for entries in itertools.chain([first], pages):
        seqs.extend(entries.seqs())
        yield b"".join(entry_line(entry) + b"\n" for entry in entries)
    proof = b"".join(source.proof(seqs))
    yield orjson.dumps({"end": True, "count": len(seqs), "proof": base64.b64encode(proof).decode()}) + b"\n"


class StreamSource:
    """A :class:`Source` reading :func:`export_stream`'s lines (the remote client's export)."""

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
            if len(page) >= _BATCH:
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


def export_from(
    source: StreamSource, out: str | Path, formats: str | tuple[str, ...], progress: Progress | None
) -> dict[str, Any]:
    """Write a streamed export into the new or empty folder ``out``, as :meth:`Exporting.export` does."""
    chosen = parse_formats(formats)
    require_formats(chosen)
    folder = _require_empty(out)
    header = source.header
    job = _Export(source, folder, chosen, header["size"], header["checkpoint"], header["query"], progress)
    return _run_into(job, folder)


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


def _require_empty(out: str | Path) -> Path:
    """Return ``out`` as a path when it is missing or an empty folder; raise Conflict otherwise."""
    folder = Path(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise Conflict(f"out: {folder} is not an empty folder; export into a new one", field="out")
    return folder


def _load_into_database(
    vault: Vault,
    url: str,
    channel: str | None,
    time_from: datetime | str | None,
    time_to: datetime | str | None,
    filter: str | None,  # noqa: A002
    progress: Progress | None,
) -> dict[str, Any]:
    require_pyarrow("to_db", "loading into a database needs")
    from trailvault.formats.database import DatabaseLoader

    checkpoint = _checkpoint_for_export(vault)
    query = _query_of(channel, time_from, time_to, filter)
    loader = DatabaseLoader(url)
    source = _VaultSource(vault, query, checkpoint.size, columns=True, page_rows=_page_rows(("csv",)))
    job = _Export(source, None, ("csv",), checkpoint.size, checkpoint.note, query, progress, loader)
    try:
        return job.run()
    except BaseException:
        job.abandon()
        raise
    finally:
        loader.close()


def _query_of(
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


def _checkpoint_for_export(vault: Vault) -> Any:
    if vault._checkpointer is not None:
        return vault.issue_checkpoint()
    try:
        return vault.checkpoint()
    except NotFound:
        raise NotFound(
            "checkpoint: this vault has no signed checkpoint to prove an export with; open it with its key",
            field="checkpoint",
        ) from None


def _export_filter(query: dict[str, Any], size: int) -> Filter:
    bound: Filter = Compare("seq", Op.LE, size)
    return bound if query["filter"] is None else And((parse_filter(query["filter"]), bound))


class Source(Protocol):
    """Where an export's entries come from: the vault itself, or a server's export stream."""

    app: str

    def vault_id(self) -> str: ...

    def pages(self) -> Iterator[Page]:
        """The query's entries in seq order, a page at a time."""

    def schema(self, channel: str) -> Schema: ...

    def proof(self, seqs: Sequence[int]) -> Iterator[bytes]:
        """The hashes of the multi-entry proof of ``seqs`` (after :meth:`pages` is exhausted)."""


class _VaultSource:
    """The vault's entries a page at a time: as Arrow columns when ``columns`` (typed formats), else as objects."""

    def __init__(
        self, vault: Vault, query: dict[str, Any], size: int, *, columns: bool = False, page_rows: int = _BATCH
    ) -> None:
        self.vault, self.query, self.size, self.app = vault, query, size, vault.app
        self.columns, self.page_rows = columns, page_rows

    def vault_id(self) -> str:
        return self.vault._store.vault_id()

    def pages(self) -> Iterator[Page]:
        query = self.vault._query(
            self.query["channel"], self.query["from"], self.query["to"], None,
            _export_filter(self.query, self.size), "seq", "asc", self.page_rows,
        )  # fmt: skip
        store = self.vault._store
        if self.columns:
            # The store pages typed exports itself: a long one may be read another way (SQLite:
            # in a separate process), and the export only sees pages in seq order either way.
            yield from map(EntryColumns, store.entry_pages(query, expected=self.size))
            return
        while True:
            page = EntryList(store.find_entries(query))
            yield page
            if len(page) < query.limit:
                return
            last = page[-1].seq
            query = query.starting_after((last, last))

    def schema(self, channel: str) -> Schema:
        return self.vault.channel(channel).schema

    def proof(self, seqs: Sequence[int]) -> Iterator[bytes]:
        return proof_hashes(self.vault._store, seqs, self.size)


def proof_hashes(store: Store, seqs: Sequence[int], size: int) -> Iterator[bytes]:
    """The multi-entry proof of ``seqs`` in a log of ``size``, from the store's tree, in chunks of hashes."""
    ranges = list(multiproof_ranges(LeafIndexes(seqs), size))
    for start in range(0, len(ranges), _NODE_CHUNK):
        chunk = ranges[start : start + _NODE_CHUNK]
        nodes = store.tree_nodes({key for low, high in chunk for key in subtree_nodes(low, high)})
        yield b"".join(subtree_hash(low, high, nodes) for low, high in chunk)


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
        self.page_rows = _page_rows(formats)
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


# -- verify export ---------------------------------------------------------------------------


@dataclass
class ExportReport(Findings):
    """What ``verify export`` checked, and every problem found (``ok`` when there is none)."""

    events: int = 0
    files: int = 0
    size: int = 0
    redacted: int = 0

    def _counts(self) -> dict[str, Any]:
        return {
            "events": self.events, "files": self.files, "checkpoint_size": self.size,
            "redacted_bodies": self.redacted,
        }  # fmt: skip


class _Envelope:
    __slots__ = ("app", "channel", "id", "received_us", "time_us")

    def __init__(self, row: dict[str, Any]) -> None:
        self.id = row["id"]
        self.app = row["app"]
        self.channel = row["channel"]
        # Microseconds from Parquet and CSV, RFC 3339 text from JSONL.
        time, received = row["time"], row["received"]
        self.time_us = time if type(time) is int else parse_timestamp(time, field="time")
        self.received_us = received if type(received) is int else parse_timestamp(received, field="received")


_MANIFEST_SHAPE: dict[str, type] = {
    "checkpoint": str, "size": int, "count": int, "schemas": dict, "files": list, "proof": dict, "query": dict,
}  # fmt: skip
_FILE_SHAPE: dict[str, type] = {"name": str, "format": str, "sha256": str}
_JSON_NAMES = {str: "string", int: "integer", dict: "object", list: "array"}


def _check_manifest_shape(folder: Path, manifest: dict[str, Any]) -> None:
    """Raise InvalidInput naming the first key a damaged or altered manifest lacks (or holds
    in the wrong type), instead of failing later on it."""
    where = f"export: {folder}/manifest.json"
    for name, kind in _MANIFEST_SHAPE.items():
        if not isinstance(manifest.get(name), kind):
            raise InvalidInput(
                f"{where}: {name!r} is missing or not a JSON {_JSON_NAMES[kind]}; the manifest was damaged or altered, "
                "so the export cannot be proven",
                field="export",
            )
    for index, item in enumerate(manifest["files"]):
        for name, kind in _FILE_SHAPE.items():
            if not isinstance(item, dict) or not isinstance(item.get(name), kind):
                raise InvalidInput(
                    f"{where}: files[{index}].{name} is missing or not a JSON {_JSON_NAMES[kind]}; the manifest was "
                    "damaged or altered, so the export cannot be proven",
                    field="export",
                )
    if not isinstance(manifest["proof"].get("sha256"), str):
        raise InvalidInput(f"{where}: proof.sha256 is missing; the manifest was damaged or altered", field="export")


def verify_export(folder: str | Path, key: str, *, against: Vault | None = None) -> ExportReport:
    """Check an export folder offline with the vault's verifier key; see the module docstring."""
    folder = Path(folder)
    try:
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InvalidInput(f"export: {folder}/manifest.json cannot be read ({exc})", field="export") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"export: {folder}/manifest.json is not a {FORMAT} manifest", field="export")
    _check_manifest_shape(folder, manifest)
    checkpoint = open_checkpoint(manifest["checkpoint"], Verifier.parse(key))
    report = ExportReport(size=checkpoint.size)
    if manifest["size"] != checkpoint.size:
        report.problems.append(f"manifest: size {manifest['size']} is not the signed checkpoint's {checkpoint.size}")
    schemas = {name: parse_schema(document) for name, document in manifest["schemas"].items()}
    files_by_format: dict[str, list[dict[str, Any]]] = {}
    for item in manifest["files"]:
        report.files += 1
        path = folder / item["name"]
        if not path.is_file():
            report.problems.append(f"{item['name']}: missing")
            continue
        if file_sha256(path) != item["sha256"]:
            report.problems.append(f"{item['name']}: its sha256 is not the manifest's (the file was changed)")
        files_by_format.setdefault(item["format"], []).append(item)
    proof_path = folder / "proof.bin"
    if not proof_path.is_file() or file_sha256(proof_path) != manifest["proof"]["sha256"]:
        report.problems.append("proof.bin: missing or not the manifest's")
        return report
    proof = proof_path.read_bytes()
    exported: array[int] = array("q")
    for fmt, items in files_by_format.items():
        seqs, leaves = _format_leaves(folder, fmt, items, schemas, report)
        if len(seqs) != manifest["count"]:
            report.problems.append(f"{fmt}: {len(seqs)} events, the manifest says {manifest['count']}")
            continue
        hashes = iter(proof[offset : offset + 32] for offset in range(0, len(proof), 32))
        try:
            root = multiproof_root(LeafIndexes(seqs), checkpoint.size, _leaf_reader(leaves), hashes)
        except ValueError as exc:
            report.problems.append(f"{fmt}: {exc}")
            continue
        if root != checkpoint.root or next(hashes, None) is not None:
            report.problems.append(
                f"{fmt}: the events do not rebuild the signed root: an event was changed, added, removed or moved"
            )
        report.events = len(seqs)
        exported = seqs
    if against is not None and not report.problems:
        _compare_with_vault(manifest, against, exported, report)
    return report


def _leaf_reader(leaves: bytearray) -> Callable[[int], bytes]:
    return lambda position: bytes(leaves[32 * position : 32 * position + 32])


def _format_leaves(
    folder: Path, fmt: str, items: list[dict[str, Any]], schemas: dict[str, Schema], report: ExportReport
) -> tuple[array[int], bytearray]:
    """Read every file of one format, merge them in seq order, check bodies; return seqs and leaves."""

    def rows(item: dict[str, Any]) -> Iterator[tuple[int, bytes]]:
        try:
            for row in read_rows(fmt, folder / item["name"], schemas[item["channel"]]):
                body_sha256 = bytes.fromhex(row["body_sha256"])
                body = row["body"]
                if body is None:
                    redacted.add(row["seq"])
                elif hashlib.sha256(canonical_body(body)).digest() != body_sha256:
                    report.problems.append(f"{item['name']}: seq {row['seq']}: the body is not the one the log hashed")
                yield row["seq"], entry_leaf(_Envelope(row), row["seq"], body_sha256)
        except (OSError, EOFError, ValueError, KeyError, TypeError, TrailvaultError) as exc:
            # The files are outside input: one that does not read is a finding, not a crash.
            report.problems.append(f"{item['name']}: cannot be read as {fmt} ({type(exc).__name__}: {str(exc)[:200]})")

    seqs: array[int] = array("q")
    leaves = bytearray()
    redacted: set[int] = set()
    last = 0
    for seq, leaf in heapq.merge(*(rows(item) for item in items)):
        if seq <= last:
            report.problems.append(f"{fmt}: seq {seq} comes twice or out of order")
        seqs.append(seq)
        leaves += leaf
        last = seq
    # Counted in one format only: every format holds the same events.
    report.redacted = max(report.redacted, len(redacted))
    return seqs, leaves


def _compare_with_vault(manifest: dict[str, Any], vault: Vault, exported: array[int], report: ExportReport) -> None:
    query = manifest["query"]
    expected = [
        event.seq
        for event in vault.iter_events(
            query["channel"],
            time_from=query["from"],
            time_to=query["to"],
            filter=_export_filter(query, manifest["size"]),
            sort_by="seq",
        )
    ]
    missing = sorted(set(expected) - set(exported))
    extra = sorted(set(exported) - set(expected))
    if missing:
        report.problems.append(
            f"vault: {len(missing)} events of the query are not in the export (first seq {missing[0]})"
        )
    if extra:
        report.problems.append(f"vault: {len(extra)} exported events do not match the query (first seq {extra[0]})")
