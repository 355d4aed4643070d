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
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from trailvault.adapters.files import append_durably, sync, write_durably
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
        chosen = list(events)
        if not chosen:
            return
        with self._lock:
            target = self.path / f"segment-{self._next:012d}.ndjson"
            self._next += 1
            write_durably(target, _segment_bytes(chosen))
            self._count += len(chosen)

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
            write_durably(segment, _segment_bytes(events))
            self._count -= before - len(events)

    def remove(self, segment: Path) -> None:
        with self._lock:
            self._count -= len(self._read(segment))
            segment.unlink()
            sync(self.path)

    def reject(self, refused: list[tuple[SpooledEvent, dict[str, Any]]]) -> None:
        """Append events the server refused for good, each with its error, to ``rejected.ndjson``."""
        lines = b"".join(
            orjson.dumps({"channel": event.channel, "event": _event_value(event.line), "error": error}) + b"\n"
            for event, error in refused
        )
        with self._lock:
            append_durably(self.path / "rejected.ndjson", lines)

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
            append_durably(self.path / "damaged.ndjson", b"".join(line + b"\n" for line in damaged))
            write_durably(segment, _segment_bytes(events))
        return events

    def _segments(self) -> list[Path]:
        return sorted(path for path in self.path.iterdir() if _SEGMENT.fullmatch(path.name))


def _segment_bytes(events: list[SpooledEvent]) -> bytes:
    return b"".join(event.channel.encode() + b"\t" + event.line + b"\n" for event in events)


def _event_value(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return line.decode(errors="replace")
