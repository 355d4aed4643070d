"""Timestamp parsing and the canonical text form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailvault.core.timestamps import format_timestamp, from_datetime, parse_timestamp
from trailvault.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-10-07T01:00Z", "2024-10-07T01:00:00.000000Z"),
        ("2024-10-07T03:00:00+02:00", "2024-10-07T01:00:00.000000Z"),
        ("2024-10-06T20:30:00.5-04:30", "2024-10-07T01:00:00.500000Z"),
        ("2024-10-07 01:00:00.123456z", "2024-10-07T01:00:00.123456Z"),
    ],
)
def test_parse_normalises_to_utc(text: str, expected: str) -> None:
    """Offsets are normalised to UTC; the text has six fraction digits and Z."""
    assert format_timestamp(parse_timestamp(text)) == expected


@pytest.mark.parametrize("text", ["2024-10-07T01:00:00", "yesterday", "2024-13-01T00:00Z", ""])
def test_parse_refuses(text: str) -> None:
    """Text without an offset or not a timestamp is refused naming the field."""
    with pytest.raises(InvalidInput, match="when:"):
        parse_timestamp(text, field="when")


def test_parse_refuses_non_text() -> None:
    """A number is not a timestamp here."""
    with pytest.raises(InvalidInput):
        parse_timestamp(12345)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_round_trip(moment: datetime) -> None:
    """format then parse gives back the same microsecond."""
    micros = from_datetime(moment)
    assert parse_timestamp(format_timestamp(micros)) == micros


def test_canonical_text_sorts_in_time_order() -> None:
    """Fixed width: text order is time order."""
    moments = [datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=h))) for h in range(-5, 6)]
    texts = [format_timestamp(from_datetime(m)) for m in moments]
    assert sorted(texts) == [format_timestamp(from_datetime(m)) for m in sorted(moments)]
