"""The sender's spool: events kept on disk while the server cannot take them.

A spool folder holds segment files ``segment-<n>.ndjson``, oldest first, each
line ``<channel>\\t<envelope JSON>``, written under a temporary name, synced, then
renamed, so a listed segment is always complete; ``rejected.ndjson``, the events the
server refused for good with its error; and ``damaged.ndjson``, lines that do not
read (a disk fault), kept aside rather than blocking delivery. One sender per spool
folder: a lock file refuses a second.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from trailvault.errors import Conflict, InvalidInput

__all__ = ["Spool", "SpooledEvent"]

_SEGMENT = re.compile(r"segment-(\d{12})\.ndjson")


class SpooledEvent(NamedTuple):
    """One event waiting for delivery: its channel and its envelope line (``{"id", "time", "body"}``)."""

    channel: str
    line: bytes


class Spool:
    """Segment files of a spool folder; see the module docstring. Thread-safe: one lock around each call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._lock_file = (path / "sender.lock").open("a")
        except OSError as exc:
            raise InvalidInput(f"spool: cannot use {path} ({exc.strerror}); check the folder", field="spool") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise Conflict(
                f"spool: another sender uses {path}; give each sender its own folder", field="spool"
            ) from None
        segments = self._segments()
        self._next = int(_SEGMENT.fullmatch(segments[-1].name).group(1)) + 1 if segments else 1  # type: ignore[union-attr]
        self._count = sum(len(self._read(segment)) for segment in segments)

    def close(self) -> None:
        """Release the folder's lock (another sender may use it then)."""
        self._lock_file.close()

    def count(self) -> int:
        """Events in the spool's segments."""
        with self._lock:
            return self._count

    def write(self, events: Iterable[SpooledEvent]) -> None:
        """Write events to a new segment, durably: a segment is complete when it is listed."""
        lines = [event.channel.encode() + b"\t" + event.line + b"\n" for event in events]
        if not lines:
            return
        with self._lock:
            target = self.path / f"segment-{self._next:012d}.ndjson"
            self._next += 1
            _write_durably(target, b"".join(lines))
            self._count += len(lines)

    def oldest(self) -> Path | None:
        with self._lock:
            segments = self._segments()
            return segments[0] if segments else None

    def read(self, segment: Path) -> list[SpooledEvent]:
        with self._lock:
            return self._read(segment)

    def replace(self, segment: Path, events: list[SpooledEvent]) -> None:
        """Keep only ``events`` of ``segment`` (the rest were delivered)."""
        with self._lock:
            before = len(self._read(segment))
            _write_durably(segment, b"".join(e.channel.encode() + b"\t" + e.line + b"\n" for e in events))
            self._count -= before - len(events)

    def remove(self, segment: Path) -> None:
        with self._lock:
            self._count -= len(self._read(segment))
            segment.unlink()
            _sync_folder(self.path)

    def reject(self, refused: list[tuple[SpooledEvent, dict[str, Any]]]) -> None:
        """Append events the server refused for good, each with its error, to ``rejected.ndjson``."""
        lines = b"".join(
            orjson.dumps({"channel": event.channel, "event": _event_value(event.line), "error": error}) + b"\n"
            for event, error in refused
        )
        with self._lock, (self.path / "rejected.ndjson").open("ab") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def _read(self, segment: Path) -> list[SpooledEvent]:
        """The segment's events; a line that does not read (cut short by a crash) moves to damaged.ndjson."""
        events, damaged = [], []
        for line in segment.read_bytes().split(b"\n"):
            if not line:
                continue
            channel, tab, envelope = line.partition(b"\t")
            try:
                if not tab:
                    raise ValueError("no channel")
                orjson.loads(envelope)
            except ValueError:
                damaged.append(line)
                continue
            events.append(SpooledEvent(channel.decode(), envelope))
        if damaged:
            with (self.path / "damaged.ndjson").open("ab") as handle:
                handle.write(b"".join(line + b"\n" for line in damaged))
                handle.flush()
                os.fsync(handle.fileno())
            _write_durably(segment, b"".join(e.channel.encode() + b"\t" + e.line + b"\n" for e in events))
        return events

    def _segments(self) -> list[Path]:
        return sorted(path for path in self.path.iterdir() if _SEGMENT.fullmatch(path.name))


def _event_value(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return line.decode(errors="replace")


def _write_durably(path: Path, data: bytes) -> None:
    """Write to a temporary name, sync, then rename: the final name only ever holds complete data."""
    staging = path.with_name(path.name + ".tmp")
    with staging.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
    _sync_folder(path.parent)


def _sync_folder(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
