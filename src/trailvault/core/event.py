"""Events, their envelope, and the canonical bytes that the Merkle tree hashes.

An event is an envelope plus a body::

    id        the producer's idempotency key, or a UUIDv7 trailvault generates
    time      when it happened (UTC, microseconds)
    received  when trailvault got it (UTC, microseconds)
    app       the tenant that owns it
    channel   the named, schema-checked stream it belongs to
    seq       its 1-based position in the vault's single log

Canonical bytes (see docs/events.md) are fixed here because everything that proves
the log hashes them:

* canonical body: ``orjson.dumps(body, option=OPT_SORT_KEYS)`` of the normalised
  body, i.e. compact JSON, keys sorted at every depth, UTF-8, floats in orjson's
  shortest round-trip form, timestamps already in canonical RFC 3339 text;
* canonical entry: the same encoding of ``{"app", "body_sha256" (hex), "channel",
  "id", "received", "seq", "time"}`` with both times as canonical RFC 3339 text.
  Hashing the body separately lets a body be redacted while the entry still hashes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import orjson

from trailvault.core.schema.model import MASKED
from trailvault.core.timestamps import format_timestamp, parse_timestamp, to_datetime
from trailvault.errors import InvalidInput

__all__ = [
    "Envelope",
    "Event",
    "EventPage",
    "NewEvent",
    "PendingEvent",
    "Posted",
    "StoredEntry",
    "canonical_body",
    "canonical_entry",
    "check_id",
    "check_name",
    "entry_document",
    "fingerprint",
    "nul_path",
]

_SORTED = orjson.OPT_SORT_KEYS
_ID = re.compile(r"[\x21-\x7e]{1,128}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


@dataclass(frozen=True, slots=True)
class Event:
    """One kept event. ``body`` is None once it has been redacted or purged.

    ``time_masked`` is True when ``time`` comes from a ``sensitive`` field and the reader
    lacks ``unmask``: ``time`` then reads ``[masked]`` in the JSON form, and ``time_us``
    (0 in an event read back from that form) means nothing.
    """

    id: str
    time_us: int
    received_us: int
    app: str
    channel: str
    seq: int
    body: dict[str, Any] | None
    time_masked: bool = False

    @property
    def time(self) -> datetime:
        """When it happened, as an aware UTC datetime."""
        return to_datetime(self.time_us)

    @property
    def received(self) -> datetime:
        """When trailvault received it, as an aware UTC datetime."""
        return to_datetime(self.received_us)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Event:
        """Read the JSON form of :meth:`to_dict` (what the HTTP API answers)."""
        masked = document["time"] == MASKED
        return cls(
            document["id"],
            0 if masked else parse_timestamp(document["time"], field="time"),
            parse_timestamp(document["received"], field="received"),
            document["app"],
            document["channel"],
            document["seq"],
            document["body"],
            masked,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: the envelope with RFC 3339 times, plus ``body``."""
        return {
            "id": self.id,
            "time": MASKED if self.time_masked else format_timestamp(self.time_us),
            "received": format_timestamp(self.received_us),
            "app": self.app,
            "channel": self.channel,
            "seq": self.seq,
            "body": self.body,
        }


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to post with envelope values of the producer's own.

    ``id`` is the idempotency key (a UUIDv7 is generated when it is None);
    ``time`` is when it happened (an aware datetime or RFC 3339 text; the body's
    ``time``/``timestamp`` field or the time of receipt when None).
    """

    body: Mapping[str, Any] | str | bytes
    id: str | None = None
    time: datetime | str | None = None

    @classmethod
    def from_envelope(cls, document: Any, *, where: str) -> NewEvent:
        """Read ``{"id", "time", "body"}`` (id and time optional); raise InvalidInput naming ``where``."""
        if not isinstance(document, dict) or "body" not in document:
            raise InvalidInput(
                f'{where}: an envelope item is {{"id", "time", "body"}}, with body required', field=where
            )
        unknown = set(document) - {"id", "time", "body"}
        if unknown:
            raise InvalidInput(
                f"{where}: unknown envelope key {sorted(unknown)[0][:40]!r}; use id, time and body", field=where
            )
        return cls(document["body"], document.get("id"), document.get("time"))


class PendingEvent(NamedTuple):
    """An event checked and encoded by the vault, waiting for the store to give it a seq.

    ``fingerprint`` identifies what the producer posted (see :func:`fingerprint`);
    it is None when trailvault generated the id, since nobody can have posted it before.
    A named tuple because ingest makes tens of thousands a second.
    """

    id: str
    app: str
    channel: str
    time_us: int
    received_us: int
    body_json: str
    body_sha256: bytes
    fingerprint: bytes | None


class Posted(NamedTuple):
    """What a post returns: the event's id and seq; ``duplicate`` when it was already kept."""

    id: str
    seq: int
    duplicate: bool = False


def canonical_body(body: dict[str, Any]) -> bytes:
    """Return the canonical bytes of a normalised body."""
    return orjson.dumps(body, option=_SORTED)


class Envelope(Protocol):
    """Anything carrying an entry's envelope: an Event, a PendingEvent, a stored row."""

    @property
    def id(self) -> str: ...
    @property
    def app(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def time_us(self) -> int: ...
    @property
    def received_us(self) -> int: ...


def entry_document(event: Envelope, seq: int, body_sha256: bytes) -> dict[str, Any]:
    """Return the entry as a JSON object: the envelope with RFC 3339 times, and the body's SHA-256.

    Keys are in sorted order (canonical_entry relies on it).
    """
    return {
        "app": event.app,
        "body_sha256": body_sha256.hex(),
        "channel": event.channel,
        "id": event.id,
        "received": format_timestamp(event.received_us),
        "seq": seq,
        "time": format_timestamp(event.time_us),
    }


def canonical_entry(event: Envelope, seq: int, body_sha256: bytes) -> bytes:
    """Return the canonical bytes of an entry: the envelope plus the body's SHA-256."""
    # entry_document lists its keys already sorted, so orjson's key sort (a hot-path cost
    # for every append) is not needed; the known-answer test pins the bytes.
    return orjson.dumps(entry_document(event, seq, body_sha256))


def fingerprint(
    channel: str, given_time_us: int | None, posted_body_sha256: bytes, posted_by: str | None = None
) -> bytes:
    """Identify what a producer posted under its own id, for idempotent retries.

    Covers the channel, the time only if the producer gave one, and the body as
    posted (before trailvault filled in any default), so a retry of the same post
    matches even though ``received`` and filled-in defaults differ. ``posted_by`` is
    the API key that posted (None for the Python API): only that key's retry matches,
    so another key learns from the answer only that the id is taken, never whether
    its guess at the stored content was right.
    """
    time_text = None if given_time_us is None else format_timestamp(given_time_us)
    parts = [channel, time_text, posted_body_sha256.hex()]
    material = orjson.dumps(parts if posted_by is None else [*parts, posted_by])
    return hashlib.sha256(material).digest()[:16]


def check_id(value: object) -> str:
    """Return a producer-supplied event id, or raise InvalidInput naming ``id``."""
    text = str(value) if not isinstance(value, str) and value is not None else value
    if not isinstance(text, str) or not _ID.fullmatch(text):
        raise InvalidInput(
            "id: an event id is 1 to 128 visible ASCII characters with no spaces "
            f"(got {str(value)[:40]!r}); leave it out to get a UUIDv7",
            field="id",
        )
    return text


def check_name(value: object, *, field: str) -> str:
    """Return a valid app or channel name, or raise InvalidInput naming ``field``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(
            f"{field}: {str(value)[:60]!r} is not a valid name; use 1 to 128 letters, digits, "
            "'_', '.' or '-', starting with a letter or digit",
            field=field,
        )
    return value


def nul_path(body: Any, path: str = "") -> str | None:
    """Return the path of the first key or text holding U+0000, or None.

    No backend takes such text, since PostgreSQL's jsonb cannot store it.
    """
    items = body.items() if isinstance(body, dict) else enumerate(body) if isinstance(body, list) else ()
    for key, value in items:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        if "\x00" in str(key) or (isinstance(value, str) and "\x00" in value):
            return where
        if isinstance(value, (dict, list)) and (found := nul_path(value, where)) is not None:
            return found
    return None


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One entry of the log exactly as stored, for verification: the body as its stored text."""

    seq: int
    id: str
    app: str
    channel: str
    time_us: int
    received_us: int
    body_json: str | None
    body_sha256: bytes
    #: Identifies what the producer posted under its own id (None for generated ids).
    fingerprint: bytes | None = None


@dataclass(frozen=True)
class EventPage(Sequence[Event]):
    """One page of a listing. ``next_page`` continues it, or is None on the last page."""

    events: list[Event]
    next_page: str | None

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: Any) -> Any:
        return self.events[index]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)
