"""The download job: a server's events into files, run after run, with no gap and no duplicate.

With ``databaseurl`` the events are also (or, with no output format, only) loaded into a
table per channel of that database, keyed by seq, so a repeated run adds nothing twice.

Files are named ``<channel>_<from>_<to>.<format>`` with the run's UTC range (minutes,
``2024-10-07T0100Z``); incremental runs add the seq range they cover
(``_seq31-42``), so no run's file ever replaces another's.

A drop-in for SAS CI360's audit download job (``trailvault download --config
config.ini --credentials credentials.ini``; the INI files are read by the CLI). Each
run asks the server for events in seq order and writes one file per channel and
format into ``outputdir``, named with the run's UTC range. With a time range, the run
takes the events whose time is in it. Without one, it takes every event the server
received since the last successful run: the watermark (the last seq delivered, and
when) is kept in ``outputdir/.trailvault-download.json`` and moved only after every
file of the run is complete, so a failed run is simply repeated, and late events
(an old ``time``, a new seq) are never missed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from trailvault.adapters.files import sync, write_durably
from trailvault.adapters.formats import SUFFIXES, Writer, open_writer, require_formats, require_pyarrow
from trailvault.adapters.store.base import StoredEntry
from trailvault.core.api_key import Scope
from trailvault.core.event import Event, canonical_body
from trailvault.core.timestamps import format_timestamp, parse_timestamp
from trailvault.errors import Conflict, InvalidInput

# RemoteVault is named for types only: the job's caller connects, so the CLI loads httpx only then.
if TYPE_CHECKING:
    from trailvault.adapters.formats.database import DatabaseLoader
    from trailvault.workflows.client import RemoteVault

__all__ = ["WATERMARK_FILE", "DownloadResult", "DownloadSettings", "run_download"]

WATERMARK_FILE = ".trailvault-download.json"
_BATCH = 10_000
_log = logging.getLogger("trailvault.download")


@dataclass(frozen=True)
class DownloadSettings:
    """What one run does (from config.ini; the token comes from credentials.ini)."""

    outputdir: Path
    formats: tuple[str, ...]
    range_start: str | None = None
    range_end: str | None = None
    #: The API key's expected name (credentials.ini ``apiuser``); a key of another name is refused.
    api_user: str | None = None
    #: Also (or only, with no formats) load the events into a table per channel of this database
    #: (``sqlite:///FILE`` or ``postgresql://...``); seq is the key, so a repeated run adds nothing twice.
    database_url: str | None = None


@dataclass(frozen=True)
class DownloadResult:
    """What a run wrote (``files``: their final names)."""

    events: int
    files: list[Path]
    first_seq: int | None
    last_seq: int | None
    range_label: str


def run_download(vault: RemoteVault, settings: DownloadSettings) -> DownloadResult:
    """Run the job once against ``vault``; see the module docstring."""
    if settings.api_user and vault.key.name != settings.api_user:
        raise InvalidInput(
            f"apiuser: the token belongs to API key {vault.key.name!r}, not {settings.api_user!r}; "
            "fix apiuser or the token in credentials.ini",
            field="apiuser",
        )
    if not settings.formats and not settings.database_url:
        raise InvalidInput("outputformat: name a format (CSV, PARQUET, JSONL) or set databaseurl", field="outputformat")
    # Before the watermark is read or a file written: a refused run changes nothing.
    if settings.database_url:
        require_pyarrow("databaseurl", "loading into a database needs")
    require_formats(settings.formats, field="outputformat")
    try:
        settings.outputdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(
            f"outputdir: cannot create the folder {settings.outputdir} ({exc.strerror}); fix outputdir in config.ini",
            field="outputdir",
        ) from None
    watermark = _finish_pending(settings.outputdir, _read_watermark(settings.outputdir))
    started_us = time.time_ns() // 1000
    if settings.range_start or settings.range_end:
        if not (settings.range_start and settings.range_end):
            raise InvalidInput(
                "dataRangeEndTimeStamp: give both dataRangeStartTimeStamp and dataRangeEndTimeStamp, or neither "
                "(since the last run)",
                field="dataRangeEndTimeStamp",
            )
        start_us = parse_timestamp(settings.range_start, field="dataRangeStartTimeStamp")
        end_us = parse_timestamp(settings.range_end, field="dataRangeEndTimeStamp")
        if end_us <= start_us:
            raise InvalidInput("dataRangeEndTimeStamp: the range ends before it starts", field="dataRangeEndTimeStamp")
        events = vault.iter_events(time_from=settings.range_start, time_to=settings.range_end, sort_by="seq")
        label = f"{_label(start_us)}_{_label(end_us)}"
        # A range downloaded before names the same files: never overwrite them (events purged
        # since would be lost from the copy). Checked before anything is read or loaded.
        taken = sorted(p.name for p in settings.outputdir.glob(f"*_{label}.*") if p.suffix != ".partial")
        if settings.formats and taken:
            raise Conflict(
                f"outputdir: {taken[0]} exists from an earlier download of this range; move it away to download "
                "the range again, or change dataRangeStartTimeStamp/dataRangeEndTimeStamp",
                field="outputdir",
            )
        _log.info("downloading events with time in [%s, %s)", format_timestamp(start_us), format_timestamp(end_us))
    else:
        after = int(watermark.get("last_seq", 0))
        upto = vault.log_size()
        events = vault.iter_events(filter=f"seq gt {after} and seq le {upto}", sort_by="seq")
        since = watermark.get("until_us")
        # The seq range keeps the names of two runs within one minute apart.
        label = f"{_label(since) if since else 'start'}_{_label(started_us)}_seq{after + 1}-{upto}"
        _log.info("downloading events received since seq %d, up to seq %d", after, upto)
    result = _write_files(vault, settings, events, label)
    if settings.range_start or settings.range_end:
        files = [_publish(path) for path in result.files]
    else:
        last = result.last_seq if result.last_seq is not None else int(watermark.get("last_seq", 0))
        moved = {"last_seq": last, "until_us": started_us}
        # The watermark moves first, naming the complete files still to be renamed: a crash
        # from here on is finished by the next run, which neither loses nor repeats them.
        _write_watermark(settings.outputdir, {**moved, "pending": [path.name for path in result.files]})
        files = [_publish(path) for path in result.files]
        _write_watermark(settings.outputdir, moved)
    _log.info("wrote %d events into %d files", result.events, len(files))
    return DownloadResult(result.events, sorted(files), result.first_seq, result.last_seq, result.range_label)


def _publish(partial: Path) -> Path:
    final = partial.with_name(partial.name.removesuffix(".partial"))
    os.replace(partial, final)
    sync(partial.parent)
    return final


def _finish_pending(folder: Path, watermark: dict[str, Any]) -> dict[str, Any]:
    """Finish the renames a crashed run left (its watermark names them); remove any other .partial file."""
    pending = set(watermark.pop("pending", []))
    for path in folder.glob("*.partial"):
        if path.name in pending:
            _publish(path)
        else:
            path.unlink()
    if pending:
        _write_watermark(folder, watermark)
    return watermark


def _write_files(vault: RemoteVault, settings: DownloadSettings, events: Iterator[Event], label: str) -> DownloadResult:
    """Write the events into per-channel files under temporary names, renamed only when all are complete."""
    writers: dict[str, list[Writer]] = {}
    tables: dict[str, list[Writer]] = {}
    pending: dict[str, list[StoredEntry]] = {}
    count, first, last = 0, None, None
    schemas: dict[str, Any] = {}
    masked: set[str] = set()  # channels whose sensitive fields this key reads masked
    # Imported here: the loader brings pyarrow, which a run without a database does not need.
    from trailvault.adapters.formats.database import DatabaseLoader

    database = DatabaseLoader(settings.database_url, field="databaseurl") if settings.database_url else None
    try:
        for event in events:
            pending.setdefault(event.channel, []).append(_entry(event))
            count += 1
            first = event.seq if first is None else first
            last = event.seq
            if len(pending[event.channel]) >= _BATCH:
                _flush(vault, settings, writers, tables, database, pending, schemas, masked, event.channel, label)
        for channel in list(pending):
            _flush(vault, settings, writers, tables, database, pending, schemas, masked, channel, label)
        for channel_tables in tables.values():
            for table in channel_tables:
                table.close()
        files = []
        for channel_writers in writers.values():
            for writer in channel_writers:
                writer.close()
                sync(writer.path)
                files.append(writer.path)
    except BaseException:
        for channel_writers in writers.values():
            for writer in channel_writers:
                writer.path.unlink(missing_ok=True)
        raise
    finally:
        if database is not None:
            database.close()
    return DownloadResult(count, sorted(files), first, last, label)


def _flush(
    vault: RemoteVault,
    settings: DownloadSettings,
    writers: dict[str, list[Writer]],
    tables: dict[str, list[Writer]],
    database: DatabaseLoader | None,
    pending: dict[str, list[StoredEntry]],
    schemas: dict[str, Any],
    masked: set[str],
    channel: str,
    label: str,
) -> None:
    rows = pending.pop(channel, [])
    if not rows:
        return
    if channel not in writers:
        schema = schemas[channel] = vault.channel(channel).schema
        if schema.sensitive_paths() and not vault.key.allows(Scope.UNMASK):
            _log.warning(
                "channel %s: sensitive fields read [masked] with this key (it lacks the unmask scope); "
                "body_sha256 is left empty in its files, since a masked body's hash is not the log's%s",
                channel,
                "; time comes from a sensitive field and reads 1970-01-01T00:00:00Z (masked)"
                if schema.time_is_sensitive()
                else "",
            )
            masked.add(channel)
        writers[channel] = [
            open_writer(fmt, settings.outputdir / f"{channel}_{label}{SUFFIXES[fmt]}.partial", schema)
            for fmt in settings.formats
        ]
        tables[channel] = [database.table(channel, schema)] if database is not None else []
    if channel in masked:
        rows = [replace(row, body_sha256=b"") for row in rows]
    for writer in (*writers[channel], *tables[channel]):
        writer.write(rows)


def _entry(event: Event) -> StoredEntry:
    text = None if event.body is None else canonical_body(event.body).decode()
    # A redacted body's hash is not served over the listing API: the download leaves it empty.
    digest = b"" if text is None else hashlib.sha256(text.encode()).digest()
    return StoredEntry(event.seq, event.id, event.app, event.channel, event.time_us, event.received_us, text, digest)


def _label(micros: int) -> str:
    """A file-name-safe UTC time: 2024-10-07T0100Z."""
    text = format_timestamp(micros)
    return text[:13] + text[14:16] + "Z"


def _read_watermark(folder: Path) -> dict[str, Any]:
    path = folder / WATERMARK_FILE
    if not path.exists():
        return {}
    try:
        data = orjson.loads(path.read_bytes())
        assert isinstance(data, dict)
        return data
    except (OSError, orjson.JSONDecodeError, AssertionError):
        raise InvalidInput(
            f"outputdir: {path} is damaged; remove it to start over (the next run then downloads everything)",
            field="outputdir",
        ) from None


def _write_watermark(folder: Path, data: dict[str, Any]) -> None:
    write_durably(folder / WATERMARK_FILE, orjson.dumps(data))
