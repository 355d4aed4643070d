"""Archive batches, batching tasks and legal holds as values, with Cloudera CDP's JSON shapes.

An **archive batch** is a closed set of one app's events, chosen by time range and
cut at a maximum size, that waits to be archived, is marked archived, and is then
purged from the vault. A **batching task** makes the batches of one
``batch-events-for-archiving`` call. A **legal hold** keeps the app's events that it
covers (optionally one channel, optionally a time range) from being purged until it
is cleared. No I/O here: the store keeps them, :mod:`trailvault.workflows.vault.archiving` works them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from trailvault.core.timestamps import format_timestamp, parse_timestamp
from trailvault.errors import BatchArchived, InvalidInput

__all__ = [
    "BATCHES_SCHEMA", "DEFAULT_MAX_BATCH_EVENTS", "DEFAULT_RETENTION", "PURGES_SCHEMA", "ArchiveBatch",
    "ArchiveFile", "ArchiveSettings", "ArchiveTask", "BatchPage", "LegalHold", "PurgeReport", "TaskStatus",
    "archive_file_name", "outstanding", "seqs_digest", "shown_location",
]  # fmt: skip


class TaskStatus(StrEnum):
    """A batching task's status, with CDP's words."""

    OPEN = "OPEN"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class ArchiveBatch:
    """One archive batch: the events of ``app`` with time in ``[time_from_us, time_to_us)``
    chosen by its task, ``first_seq`` to ``last_seq``, all within the log's first
    ``checkpoint_size`` entries (the checkpoint its task signed before choosing). Its
    record in the log (``record_seq``) comes after them; its archive file is proven
    against the earliest checkpoint covering that record.
    """

    archive_id: str
    app: str
    event_count: int
    time_from_us: int
    time_to_us: int
    first_seq: int
    last_seq: int
    checkpoint_size: int
    created_us: int
    #: When it was marked successfully archived, or None while outstanding.
    archived_us: int | None = None
    #: How many of its events have been purged so far.
    purged: int = 0
    #: The seq of its record in ``trailvault.batches``, which the log keeps: its count, seqs digest, previous batch.
    record_seq: int = 0

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ArchiveBatch:
        """Read the JSON form of :meth:`to_dict` (``archiveTimestamp`` has millisecond precision)."""
        archived = document["archiveTimestamp"]
        return cls(
            document["archiveId"], document["accountId"], document["eventCount"],
            parse_timestamp(document["fromTimestamp"], field="fromTimestamp"),
            parse_timestamp(document["toTimestamp"], field="toTimestamp"),
            document["firstSeq"], document["lastSeq"], document["checkpointSize"], 0,
            archived * 1000 if archived else None, document["purgedCount"], document["recordSeq"],
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """CDP's ``ArchiveBatch`` (``archiveTimestamp``: epoch milliseconds, 0 while outstanding),
        plus trailvault's own keys (range, seqs, checkpoint size, purged count)."""
        return {
            "accountId": self.app,
            "eventCount": self.event_count,
            "archiveId": self.archive_id,
            "archiveTimestamp": 0 if self.archived_us is None else self.archived_us // 1000,
            "fromTimestamp": format_timestamp(self.time_from_us),
            "toTimestamp": format_timestamp(self.time_to_us),
            "firstSeq": self.first_seq,
            "lastSeq": self.last_seq,
            "checkpointSize": self.checkpoint_size,
            "purgedCount": self.purged,
            "recordSeq": self.record_seq,
        }


@dataclass(frozen=True, slots=True)
class ArchiveTask:
    """A ``batch-events-for-archiving`` task of one app and the batches it has made so far."""

    task_id: str
    app: str
    time_from_us: int
    time_to_us: int
    status: TaskStatus
    created_us: int
    finished_us: int | None = None
    error: str | None = None
    batches: tuple[ArchiveBatch, ...] = field(default=())

    @classmethod
    def from_dict(cls, document: dict[str, Any], task_id: str, app: str) -> ArchiveTask:
        """Read CDP's status answer (which carries neither the task's id, app nor range)."""
        batches = tuple(ArchiveBatch.from_dict(item) for item in document["eventBatches"])
        return cls(task_id, app, 0, 0, TaskStatus(document["status"]), 0, None, document.get("error"), batches)

    def to_dict(self) -> dict[str, Any]:
        """CDP's status answer: ``status`` and ``eventBatches`` (empty while OPEN), plus ``error`` when FAILED."""
        document: dict[str, Any] = {
            "status": self.status.value,
            "eventBatches": [] if self.status is TaskStatus.OPEN else [batch.to_dict() for batch in self.batches],
        }
        if self.error is not None:
            document["error"] = self.error
        return document


@dataclass(frozen=True, slots=True)
class LegalHold:
    """A legal hold: while set, purge leaves every event it covers in the vault."""

    name: str
    app: str
    reason: str
    created_us: int
    channel: str | None = None
    time_from_us: int | None = None
    time_to_us: int | None = None
    cleared_us: int | None = None

    def covers(self, channel: str, time_us: int) -> bool:
        """Whether this hold, while set, keeps an event of ``channel`` at ``time_us``."""
        return (
            (self.channel is None or self.channel == channel)
            and (self.time_from_us is None or time_us >= self.time_from_us)
            and (self.time_to_us is None or time_us < self.time_to_us)
        )

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> LegalHold:
        """Read the JSON form of :meth:`to_dict`."""

        def stamp(name: str) -> int | None:
            return None if document[name] is None else parse_timestamp(document[name], field=name)

        created = stamp("created")
        assert created is not None
        return cls(
            document["name"], document["app"], document["reason"], created, document["channel"],
            stamp("from"), stamp("to"), stamp("cleared"),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "app": self.app,
            "channel": self.channel,
            "from": None if self.time_from_us is None else format_timestamp(self.time_from_us),
            "to": None if self.time_to_us is None else format_timestamp(self.time_to_us),
            "reason": self.reason,
            "created": format_timestamp(self.created_us),
            "cleared": None if self.cleared_us is None else format_timestamp(self.cleared_us),
        }


def archive_file_name(batch: ArchiveBatch, written_us: int) -> str:
    """CDP's archive file name: ``<accountId>_<YYYYmmddTHHMM>Z_<archiveId>.json.gz`` (UTC write time)."""
    stamp = format_timestamp(written_us)  # 2024-10-07T01:02:03.000004Z
    return f"{batch.app}_{stamp[0:4]}{stamp[5:7]}{stamp[8:10]}T{stamp[11:13]}{stamp[14:16]}Z_{batch.archive_id}.json.gz"


def seqs_digest(seqs: Sequence[int]) -> str:
    """The hex SHA-256 of ascending seqs as 8-byte big-endian numbers: what batch and purge records name."""
    return hashlib.sha256(b"".join(seq.to_bytes(8, "big") for seq in seqs)).hexdigest()


DEFAULT_MAX_BATCH_EVENTS = 100_000
#: Seconds an archived event stays in the vault after it was received: 30 days.
DEFAULT_RETENTION = 30 * 86_400.0


# A batch or purge names its seqs: how many, the first and last, and their digest. Not
# indexed: a body index is evaluated on every event of the vault as it is appended.
_SEQS_FIELDS = [
    {"name": "archive_id", "type": "STRING", "mode": "REQUIRED"},
    {"name": "count", "type": "INTEGER", "mode": "REQUIRED"},
    {"name": "first_seq", "type": "INTEGER", "mode": "REQUIRED"},
    {"name": "last_seq", "type": "INTEGER", "mode": "REQUIRED"},
    {"name": "seqs_sha256", "type": "STRING", "mode": "REQUIRED"},
]
#: The schema of ``trailvault.batches``: one event per archive batch, appended with it. The
#: log's tree, and so every signed checkpoint after it, vouches for the batch's content.
BATCHES_SCHEMA = {"fields": [*_SEQS_FIELDS, {"name": "previous_archive_id", "type": "STRING", "mode": "NULLABLE"}]}
#: The schema of ``trailvault.purges``: one event per purge of (part of) a batch.
PURGES_SCHEMA = {"fields": list(_SEQS_FIELDS)}


@dataclass(frozen=True)
class ArchiveSettings:
    """How a vault archives: the largest batch, and how long archived events stay before purge."""

    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS
    retention: float = DEFAULT_RETENTION

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_events <= 10_000_000:
            raise InvalidInput(
                f"max_batch_events: use 1 to 10,000,000 events, not {self.max_batch_events}", field="max_batch_events"
            )
        if not 0 <= self.retention < float("inf"):
            raise InvalidInput(f"retention: use 0 or more seconds, not {self.retention}", field="retention")


@dataclass(frozen=True)
class BatchPage:
    """A page of ``list_outstanding_archive_batches``; ``next_page_token`` continues it."""

    event_batches: list[ArchiveBatch]
    next_page_token: str | None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"eventBatches": [batch.to_dict() for batch in self.event_batches]}
        if self.next_page_token is not None:
            document["nextPageToken"] = self.next_page_token
        return document


@dataclass
class PurgeReport:
    """What a purge removed: events per archive batch."""

    purged: int = 0
    batches: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"purged": self.purged, "archiveIds": self.batches}


def outstanding(batch: ArchiveBatch) -> ArchiveBatch:
    """The batch, when it is not marked archived yet; else raise BatchArchived naming it and when.

    CDP serves a batch's events only until it is marked: from then on its archive file is
    the copy, and listing (or writing) it again is refused rather than answered from rows
    that purge is about to remove.
    """
    if batch.archived_us is None:
        return batch
    # To the millisecond, as the batch's archiveTimestamp has it: a remote client, which knows
    # the batch only in CDP's shape, then names the same time as the server.
    archived_at = format_timestamp(batch.archived_us - batch.archived_us % 1000)
    raise BatchArchived(
        f"archiveId: batch {batch.archive_id!r} was marked archived at {archived_at}; its events are no longer "
        "listed or written: read them from its archive file",
        field="archiveId",
        archive_id=batch.archive_id,
        archived_at=archived_at,
    )


def shown_location(location: str) -> str:
    """A destination fit for messages and logs: no password from its URL, no query string."""
    parts = urlsplit(location.split("?", 1)[0])
    if parts.password is None:
        return location.split("?", 1)[0]
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class ArchiveFile:
    """An archive file as written: where it and its manifest are, and what they hold."""

    path: str
    manifest_path: str
    event_count: int
    sha256: str
    manifest: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "archiveId": self.manifest["archiveId"],
            "file": shown_location(self.path),
            "manifest": shown_location(self.manifest_path),
            "eventCount": self.event_count,
            "sha256": self.sha256,
        }
