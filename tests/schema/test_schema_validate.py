"""Schema.validate: checking and normalising event bodies."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from trailvault.core.schema import Schema, parse_schema
from trailvault.errors import ValidationFailed

EVENT_SCHEMA = parse_schema(
    [
        {"name": "company", "type": "STRING", "mode": "REQUIRED"},
        {"name": "amount", "type": "FLOAT"},
        {"name": "count", "type": "INTEGER"},
        {"name": "ok", "type": "BOOLEAN"},
        {"name": "time", "type": "TIMESTAMP"},
        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
        {
            "name": "user",
            "type": "RECORD",
            "nested": [
                {"name": "email", "type": "STRING"},
                {"name": "provider", "type": "RECORD", "nested": [{"name": "name", "type": "STRING"}]},
            ],
        },
        {
            "name": "taxes",
            "type": "RECORD",
            "mode": "REPEATED",
            "nested": [{"name": "salestax", "type": "FLOAT"}, {"name": "taxrate", "type": "FLOAT"}],
        },
    ]
)
OPEN_SCHEMA = parse_schema({"fields": EVENT_SCHEMA.to_document()["fields"], "additional_fields": True})


def problems(body: Any, schema: Schema = EVENT_SCHEMA) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        schema.validate(body)
    return caught.value.problems


def value_of(field: str, value: Any) -> Any:
    return EVENT_SCHEMA.validate({"company": "c", field: value})[field]


def test_valid_body_is_returned_as_is() -> None:
    """A body needing no normalising is returned itself, not a copy."""
    body = {
        "company": "c",
        "amount": 1.5,
        "count": 2,
        "ok": True,
        "time": "2024-12-30T09:00:00.000000Z",
        "tags": ["a"],
        "user": {"email": "e", "provider": {"name": "p"}},
        "taxes": [{"salestax": 1.0, "taxrate": 0.2}],
    }
    assert EVENT_SCHEMA.validate(body) is body


def test_body_must_be_an_object() -> None:
    """A list body is refused as not a JSON object."""
    with pytest.raises(ValidationFailed) as caught:
        EVENT_SCHEMA.validate([1])
    assert (caught.value.message, caught.value.field) == ("body: expected a JSON object, got list", None)


def test_missing_required_field() -> None:
    """A missing REQUIRED field is reported by name."""
    assert problems({}) == [("company", "missing REQUIRED field")]


def test_null_required_field() -> None:
    """A REQUIRED field set to null counts as missing."""
    assert problems({"company": None}) == [("company", "missing REQUIRED field")]


def test_nullable_null_stays_null() -> None:
    """An explicit null in a NULLABLE field stays null."""
    assert EVENT_SCHEMA.validate({"company": "c", "amount": None}) == {"company": "c", "amount": None}


def test_wrong_type_is_reported_with_value() -> None:
    """A text in an INTEGER field names the field, the type and the value."""
    with pytest.raises(ValidationFailed) as caught:
        EVENT_SCHEMA.validate({"company": "c", "count": "abc"})
    assert (caught.value.message, caught.value.field) == ('count: expected INTEGER, got "abc"', "count")


def test_error_in_nested_record_names_path() -> None:
    """A wrong value two records deep is reported with its dotted path."""
    assert problems({"company": "c", "user": {"provider": {"name": 5}}}) == [
        ("user.provider.name", "expected STRING, got 5")
    ]


def test_error_in_repeated_record_names_index() -> None:
    """A wrong value in the second element of a REPEATED RECORD is reported as taxes[1].taxrate."""
    body = {"company": "c", "taxes": [{"taxrate": 0.1}, {"taxrate": "x"}]}
    assert problems(body) == [("taxes[1].taxrate", 'expected FLOAT, got "x"')]


def test_repeated_given_an_object() -> None:
    """A REPEATED field given an object is refused as not a list."""
    assert problems({"company": "c", "taxes": {"taxrate": 1.0}}) == [
        ("taxes", "expected a list (REPEATED RECORD), got object")
    ]


def test_repeated_given_a_scalar() -> None:
    """A REPEATED STRING given a text is refused with the value."""
    assert problems({"company": "c", "tags": "a"}) == [("tags", 'expected a list (REPEATED STRING), got "a"')]


def test_null_element_in_repeated() -> None:
    """A null inside a REPEATED list is refused by index."""
    assert problems({"company": "c", "tags": ["a", None]}) == [("tags[1]", "null is not allowed in a REPEATED field")]


def test_repeated_null_stays_null() -> None:
    """A REPEATED field set to null is left as given."""
    assert value_of("tags", None) is None


def test_record_given_a_list() -> None:
    """A RECORD field given a list is refused."""
    assert problems({"company": "c", "user": []}) == [("user", "expected an object (RECORD), got list")]


def test_unknown_field_is_refused() -> None:
    """An undeclared key is refused with the way to fix it."""
    assert problems({"company": "c", "extra": 1}) == [
        (
            "extra",
            "unknown field; declare it in the channel schema as a NULLABLE field, or allow additional fields",
        )
    ]


def test_unknown_nested_field_names_full_path() -> None:
    """An undeclared key inside a REPEATED RECORD is reported with its full path."""
    assert problems({"company": "c", "taxes": [{"vat": 1}]})[0][0] == "taxes[0].vat"


def test_unknown_field_allowed_with_additional_fields() -> None:
    """With additional_fields an undeclared key is kept unchanged."""
    body = {"company": "c", "extra": {"deep": [1, "two", None]}}
    assert OPEN_SCHEMA.validate(body) is body


def test_additional_value_must_be_plain_json() -> None:
    """With additional_fields an undeclared key still needs a finite, plain JSON value."""
    assert problems({"company": "c", "extra": [math.inf]}, OPEN_SCHEMA) == [
        ("extra", "expected a finite number, got Infinity")
    ]


def test_all_problems_are_collected() -> None:
    """Every problem is reported, in declaration order, joined in the message."""
    with pytest.raises(ValidationFailed) as caught:
        EVENT_SCHEMA.validate({"amount": "x", "ok": 3})
    assert caught.value.message == (
        'company: missing REQUIRED field; amount: expected FLOAT, got "x"; ok: expected BOOLEAN, got 3'
    )


def test_problems_are_capped_at_twenty() -> None:
    """At most 20 problems are listed; the message counts the rest."""
    with pytest.raises(ValidationFailed) as caught:
        EVENT_SCHEMA.validate({"company": "c", "tags": [1] * 25})
    assert (len(caught.value.problems), caught.value.message.endswith("; and 5 more problems")) == (20, True)


def test_long_values_are_cut_in_messages() -> None:
    """An offending value is shown in at most 60 characters."""
    assert problems({"company": "c", "count": "y" * 100}) == [("count", f'expected INTEGER, got "{"y" * 58}…')]


@pytest.mark.parametrize(("given", "expected"), [("42", 42), ("-7", -7), (10.0, 10), (2**63 - 1, 2**63 - 1)])
def test_integer_coercions(given: Any, expected: int) -> None:
    """Digit strings and integral floats become int; the 64-bit maximum is accepted."""
    result = value_of("count", given)
    assert (result, type(result)) == (expected, int)


@pytest.mark.parametrize("given", [2**63, -(2**63) - 1])
def test_integer_outside_64_bit_is_refused(given: int) -> None:
    """An integer outside the signed 64-bit range is refused, saying so."""
    assert problems({"company": "c", "count": given}) == [
        ("count", f"{given} is outside the signed 64-bit range of INTEGER")
    ]


@pytest.mark.parametrize("given", [True, 1.5, "1.5", " 1", "1_000", [1]])
def test_integer_refusals(given: Any) -> None:
    """Booleans, fractions and loose texts are not integers."""
    assert problems({"company": "c", "count": given})[0][1].startswith("expected INTEGER, got")


@pytest.mark.parametrize(("given", "expected"), [(10, 10.0), ("2.5", 2.5), ("-1e3", -1000.0), (0.1, 0.1)])
def test_float_coercions(given: Any, expected: float) -> None:
    """Ints and numeric texts become float, so 10 is stored as 10.0."""
    result = value_of("amount", given)
    assert (result, type(result)) == (expected, float)


@pytest.mark.parametrize("given", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(given: float) -> None:
    """NaN and infinities cannot be stored as JSON and are refused."""
    assert problems({"company": "c", "amount": given})[0][1].startswith("expected a finite FLOAT")


@pytest.mark.parametrize("given", [True, "nan", "inf", "abc"])
def test_float_refusals(given: Any) -> None:
    """Booleans and non-numeric texts (including "nan") are not floats."""
    assert problems({"company": "c", "amount": given})[0][1].startswith("expected")


@pytest.mark.parametrize(("given", "expected"), [("TRUE", True), ("false", False), (False, False)])
def test_boolean_coercions(given: Any, expected: bool) -> None:
    """ "true"/"false" in any case become booleans."""
    assert value_of("ok", given) is expected


@pytest.mark.parametrize("given", [1, 0, "yes"])
def test_boolean_refusals(given: Any) -> None:
    """Numbers and other texts are not booleans."""
    assert problems({"company": "c", "ok": given})[0][1].startswith("expected BOOLEAN")


def test_string_refuses_numbers() -> None:
    """A number in a STRING field is refused, not turned into text."""
    assert problems({"company": 5}) == [("company", "expected STRING, got 5")]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2024-12-30T10:00:00+01:00", "2024-12-30T09:00:00.000000Z"),
        ("2024-12-30 09:00Z", "2024-12-30T09:00:00.000000Z"),
        (datetime(2024, 12, 30, 10, tzinfo=timezone(timedelta(hours=1))), "2024-12-30T09:00:00.000000Z"),
        (1735549200, "2024-12-30T09:00:00.000000Z"),
        (1735549200.25, "2024-12-30T09:00:00.250000Z"),
    ],
)
def test_timestamp_normalised_to_canonical_utc(given: Any, expected: str) -> None:
    """Offsets, datetimes and epoch seconds become canonical UTC text."""
    assert value_of("time", given) == expected


def test_canonical_timestamp_is_kept() -> None:
    """A canonical timestamp needs no normalising, so the body is returned itself."""
    body = {"company": "c", "time": "2024-02-29T23:59:59.999999Z"}
    assert EVENT_SCHEMA.validate(body) is body


def test_canonical_looking_impossible_date_is_refused() -> None:
    """2023-02-29 has the canonical shape but is not a date."""
    assert problems({"company": "c", "time": "2023-02-29T00:00:00.000000Z"})[0][1].endswith(
        "is not an RFC 3339 timestamp; use for example 2024-10-07T01:00:00Z"
    )


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("2024-12-30T09:00:00", '"2024-12-30T09:00:00" has no UTC offset; add one (for example Z or +02:00)'),
        ("yesterday", '"yesterday" is not an RFC 3339 timestamp; use for example 2024-10-07T01:00:00Z'),
        (datetime(2024, 1, 1), "2024-01-01T00:00:00 has no UTC offset; add one (for example Z or +02:00)"),
        (True, "expected TIMESTAMP (text such as 2024-10-07T01:00:00Z, or epoch seconds), got true"),
        (10**20, "100000000000000000000 is outside the years 0001 to 9999"),
    ],
)
def test_timestamp_refusals(given: Any, complaint: str) -> None:
    """Zone-less texts, non-dates, naive datetimes, booleans and huge numbers are refused."""
    assert problems({"company": "c", "time": given}) == [("time", complaint)]


def test_aware_datetime_in_utc() -> None:
    """An aware UTC datetime becomes canonical text."""
    assert value_of("time", datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00.000000Z"


def test_normalising_returns_new_body_and_keeps_input() -> None:
    """Normalising a nested value returns a new body and leaves the caller's body untouched."""
    body = {"company": "c", "user": {"provider": {"name": "p"}}, "taxes": [{"salestax": 1}, {"taxrate": 0.5}]}
    before = copy.deepcopy(body)
    result = EVENT_SCHEMA.validate(body)
    assert (body, result["taxes"], result["user"] is body["user"]) == (
        before,
        [{"salestax": 1.0}, {"taxrate": 0.5}],
        True,
    )


def test_failed_validation_leaves_input_untouched() -> None:
    """A body with problems is not changed either."""
    body = {"company": "c", "amount": "1", "count": "x"}
    with pytest.raises(ValidationFailed):
        EVENT_SCHEMA.validate(body)
    assert body == {"company": "c", "amount": "1", "count": "x"}


def test_validator_is_compiled_once() -> None:
    """The compiled validator is kept on the instance after the first call."""
    schema = parse_schema([{"name": "a", "type": "STRING"}])
    schema.validate({})
    first = schema.validate
    schema.validate({"a": "x"})
    assert schema.validate is first


def test_schema_with_compiled_validator_still_pickles() -> None:
    """A used Schema pickles and compares equal (the compiled validator is left out)."""
    import pickle

    schema = parse_schema([{"name": "a", "type": "STRING"}])
    schema.validate({})
    assert pickle.loads(pickle.dumps(schema)) == schema


def test_huge_integer_is_refused_cleanly() -> None:
    """An integer of thousands of digits is refused as out of range, not with a Python error."""
    assert problems({"company": "c", "count": 10**5000}) == [
        ("count", "a number of more than 60 digits is outside the signed 64-bit range of INTEGER")
    ]


def test_huge_digit_text_is_refused_cleanly() -> None:
    """A digit text of thousands of digits is refused as out of range."""
    assert problems({"company": "c", "count": "9" * 5000})[0][1].endswith("outside the signed 64-bit range of INTEGER")


def test_path_through_list_record_list() -> None:
    """A problem in a list inside a record inside a list names every index on the way."""
    schema = parse_schema(
        [
            {
                "name": "orders",
                "type": "RECORD",
                "mode": "REPEATED",
                "nested": [
                    {
                        "name": "detail",
                        "type": "RECORD",
                        "nested": [{"name": "lines", "type": "INTEGER", "mode": "REPEATED"}],
                    }
                ],
            }
        ]
    )
    body = {"orders": [{}, {"detail": {"lines": [1, "x"]}}]}
    assert problems(body, schema) == [("orders[1].detail.lines[1]", 'expected INTEGER, got "x"')]


def test_digits_of_other_scripts_are_not_numbers() -> None:
    """Only ASCII digit texts are coerced to INTEGER."""
    assert problems({"company": "c", "count": "٣"}) == [("count", 'expected INTEGER, got "٣"')]
