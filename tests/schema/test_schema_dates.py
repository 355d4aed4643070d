"""Elasticsearch date formats: Java patterns and built-in names, through Schema.validate."""

from __future__ import annotations

from typing import Any

import pytest

from trailvault.core.schema import Field, FieldType, Schema, parse_schema
from trailvault.errors import InvalidSchema, ValidationFailed


def timestamp_schema(*formats: str, epoch_unit: Any = "ms") -> Schema:
    return Schema((Field("timestamp", FieldType.TIMESTAMP, time_formats=formats, epoch_unit=epoch_unit),))


def normalised(value: Any, *formats: str) -> Any:
    return timestamp_schema(*formats).validate({"timestamp": value})["timestamp"]


def test_week_year_trap_stays_in_calendar_year() -> None:
    """YYYY-MM-dd reads 2024-12-30 as 30 December 2024, not week-based 2025."""
    assert normalised("2024-12-30 10:00:00.000+0100", "YYYY-MM-dd HH:mm:ss.SSSZ") == "2024-12-30T09:00:00.000000Z"


def test_offset_is_normalised_to_utc() -> None:
    """A -05:30 offset is turned into UTC."""
    assert normalised("2024-01-01T00:10:00-05:30", "yyyy-MM-dd'T'HH:mm:ssXXX") == "2024-01-01T05:40:00.000000Z"


def test_z_letter_accepts_literal_z() -> None:
    """The Z pattern letter accepts "Z" as well as +0000."""
    assert normalised("2024-06-01 12:00:00.5Z", "yyyy-MM-dd HH:mm:ss.SZ") == "2024-06-01T12:00:00.500000Z"


def test_no_zone_means_utc() -> None:
    """A pattern without a zone letter reads the value as UTC, like Elasticsearch."""
    assert normalised("2024-06-01 12:00", "yyyy-MM-dd HH:mm") == "2024-06-01T12:00:00.000000Z"


def test_twelve_hour_clock_with_am_pm() -> None:
    """hh with a reads 12:30 AM as 00:30."""
    assert normalised("01/02/2024 12:30 AM", "dd/MM/yyyy hh:mm a") == "2024-02-01T00:30:00.000000Z"


def test_month_names_and_day_names() -> None:
    """EEE, dd MMM yyyy (RFC 1123) is read with English names."""
    value = "Mon, 30 Dec 2024 10:00:00 +0100"
    assert normalised(value, "EEE, dd MMM yyyy HH:mm:ss Z") == "2024-12-30T09:00:00.000000Z"


def test_quoted_literal_with_escaped_quote() -> None:
    """'o''clock' in a pattern matches the text o'clock."""
    assert normalised("2024-06-01 7 o'clock", "yyyy-MM-dd H 'o''clock'") == "2024-06-01T07:00:00.000000Z"


def test_optional_section() -> None:
    """A [ ... ] section may be left out."""
    assert normalised("2024-06-01", "yyyy-MM-dd[ HH:mm]") == "2024-06-01T00:00:00.000000Z"


def test_two_digit_year_is_twenty_first_century() -> None:
    """yy reads 24 as 2024, as Java does."""
    assert normalised("30.12.24", "dd.MM.yy") == "2024-12-30T00:00:00.000000Z"


def test_fraction_width_follows_pattern() -> None:
    """SSS refuses six fraction digits, as Java does."""
    with pytest.raises(ValidationFailed):
        normalised("2024-06-01 12:00:00.123456", "yyyy-MM-dd HH:mm:ss.SSS")


def test_nine_fraction_digits_are_cut_to_microseconds() -> None:
    """SSSSSSSSS keeps microseconds and drops the rest."""
    value = "2024-06-01 12:00:00.123456789"
    assert normalised(value, "yyyy-MM-dd HH:mm:ss.SSSSSSSSS") == "2024-06-01T12:00:00.123456Z"


def test_impossible_date_does_not_match() -> None:
    """30 February matches no format and names the formats tried."""
    with pytest.raises(ValidationFailed) as caught:
        normalised("2024-02-30", "yyyy-MM-dd")
    assert caught.value.message == 'timestamp: "2024-02-30" does not match any of the formats yyyy-MM-dd'


def test_no_match_message_lists_all_formats() -> None:
    """A value matching none of several formats names them joined by ||."""
    with pytest.raises(ValidationFailed) as caught:
        normalised("x", "YYYY-MM-dd HH:mm:ss.SSSZ", "epoch_millis")
    assert caught.value.message == (
        'timestamp: "x" does not match any of the formats YYYY-MM-dd HH:mm:ss.SSSZ||epoch_millis'
    )


def test_formats_are_tried_in_order() -> None:
    """The second format is used when the first does not match."""
    assert normalised("1735549200000", "yyyy-MM-dd", "epoch_millis") == "2024-12-30T09:00:00.000000Z"


@pytest.mark.parametrize(
    "value",
    ["2024", "2024-12", "2024-12-30", "2024-12-30T09", "2024-12-30T09:00", "2024-12-30T09:00:00Z"],
)
def test_strict_date_optional_time_accepts_partial_values(value: str) -> None:
    """strict_date_optional_time accepts anything from a year to a full time with zone."""
    assert normalised(value, "strict_date_optional_time").startswith(value[:4])


def test_strict_date_optional_time_with_nanoseconds_and_offset() -> None:
    """strict_date_optional_time reads nine fraction digits and an offset."""
    value = "2024-12-30T10:00:00.123456789+01:00"
    assert normalised(value, "strict_date_optional_time") == "2024-12-30T09:00:00.123456Z"


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("strict_date_time", "2024-12-30T09:00:00.5Z", "2024-12-30T09:00:00.500000Z"),
        ("date_time", "2024-1-3T9:00:00.5Z", "2024-01-03T09:00:00.500000Z"),
        ("strict_date", "2024-12-30", "2024-12-30T00:00:00.000000Z"),
        ("date", "2024-1-3", "2024-01-03T00:00:00.000000Z"),
        ("basic_date_time", "20241230T090000.000Z", "2024-12-30T09:00:00.000000Z"),
        ("date_optional_time", "2024-1-3T9:5", "2024-01-03T09:05:00.000000Z"),
        ("epoch_second", "1735549200", "2024-12-30T09:00:00.000000Z"),
        ("epoch_millis", "1735549200001.5", "2024-12-30T09:00:00.001500Z"),
    ],
)
def test_named_formats(fmt: str, value: str, expected: str) -> None:
    """Each supported built-in name reads its own shape."""
    assert normalised(value, fmt) == expected


def test_number_is_epoch_in_field_unit() -> None:
    """A bare number is read in the field's epoch unit (milliseconds for Elasticsearch dates)."""
    assert normalised(1735549200000, "yyyy-MM-dd") == "2024-12-30T09:00:00.000000Z"


@pytest.mark.parametrize(
    ("pattern", "complaint"),
    [
        ("yyyy-ww", "pattern letter ww is not supported"),
        ("yyyy-MM-dd z", "uses a zone name (z)"),
        ("MM-dd", "has no year"),
        ("yyyy hh", "uses h (1-12) without a (AM/PM)"),
        ("yyyy-'MM", "has an unclosed quote"),
        ("yyyy[-MM", "has a [ without its ]"),
        ("yyyy-MM-yyyy", "repeats the letter y"),
    ],
)
def test_bad_patterns_are_refused(pattern: str, complaint: str) -> None:
    """Patterns that cannot be read are refused when the schema is built, saying why."""
    with pytest.raises(InvalidSchema) as caught:
        timestamp_schema(pattern)
    assert complaint in caught.value.message


def test_unknown_named_format_is_refused() -> None:
    """A built-in name Elasticsearch has but trailvault does not know is refused at parse time."""
    with pytest.raises(InvalidSchema, match='timestamp: unknown date format "week_date"'):
        parse_schema({"properties": {"timestamp": {"type": "date", "format": "week_date"}}})
