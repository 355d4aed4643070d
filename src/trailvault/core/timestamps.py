"""Timestamps: one canonical text form and one integer form.

Inside trailvault a point in time is an ``int`` of microseconds since the Unix
epoch, UTC. Its canonical text is RFC 3339 in UTC with exactly six fraction
digits and a ``Z``: ``2024-10-07T01:00:00.000000Z``. Fixed width makes the text
sort in time order, which body indexes rely on, and makes canonical bytes stable.

Input may carry any UTC offset (normalised to UTC) or minutes-only precision
(``2024-10-07T01:00Z``). A timestamp with no offset is refused: guessing the
zone of an audit record would silently shift it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from trailvault.errors import InvalidInput

__all__ = ["format_timestamp", "from_datetime", "parse_timestamp", "to_datetime"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_US = -62135596800_000000  # 0001-01-01T00:00:00Z
_MAX_US = 253402300799_999999  # 9999-12-31T23:59:59.999999Z


def from_datetime(value: datetime, *, field: str = "time") -> int:
    """Return microseconds since the epoch for an aware ``datetime``.

    Raises InvalidInput naming ``field`` when the datetime has no UTC offset.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{field}: {value.isoformat()} has no UTC offset; add one (for example 'Z' or '+02:00')",
            field=field,
        )
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_datetime(micros: int) -> datetime:
    """Return the aware UTC ``datetime`` for microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=micros)


def format_timestamp(micros: int) -> str:
    """Return the canonical RFC 3339 text: UTC, six fraction digits, ``Z``."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_second_text(seconds)}.{fraction:06d}Z"


@lru_cache(maxsize=4096)
def _second_text(seconds: int) -> str:
    # Ingest formats the same few seconds over and over (every entry's time and
    # receipt go into its canonical bytes), so the calendar work is cached.
    moment = _EPOCH + timedelta(seconds=seconds)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def parse_timestamp(value: object, *, field: str = "time") -> int:
    """Parse an RFC 3339 text or an aware ``datetime`` into microseconds since the epoch.

    Accepts ``Z`` or any numeric offset, a space instead of ``T``, and any
    precision down to minutes. Raises InvalidInput naming ``field`` otherwise.
    """
    if isinstance(value, datetime):
        return from_datetime(value, field=field)
    if not isinstance(value, str):
        raise InvalidInput(
            f"{field}: expected an RFC 3339 timestamp such as 2024-10-07T01:00:00Z, got {type(value).__name__}",
            field=field,
        )
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{field}: {value!r} is not an RFC 3339 timestamp; use for example 2024-10-07T01:00:00Z",
            field=field,
        ) from None
    micros = from_datetime(moment, field=field)
    if not _MIN_US <= micros <= _MAX_US:
        raise InvalidInput(f"{field}: {value!r} is out of range", field=field)
    return micros
