"""Enums (allowed values), JSON fields for free-form maps, and the field marked event_time."""

from __future__ import annotations

import pytest

from trailvault.core.schema import Field, FieldType, Mode, Schema, evolve, parse_schema
from trailvault.errors import InvalidSchema, SchemaChangeRefused, ValidationFailed

STATUS = {"name": "status", "type": "STRING", "enum": ["SUCCESS", "FAILURE"]}
DOCUMENT = [
    STATUS,
    {"name": "kinds", "type": "STRING", "mode": "REPEATED", "enum": ["A", "B"]},
    {"name": "tags", "type": "JSON"},
    {"name": "happened", "type": "TIMESTAMP", "mode": "REQUIRED", "event_time": True},
]
WHEN = "2024-10-07T01:00:00.000000Z"


@pytest.mark.parametrize("fast_path", [True, False])
def test_an_enum_takes_only_its_values_and_the_error_names_field_and_values(fast_path: bool) -> None:
    """A value outside the enum is refused naming the field and every allowed value, with or without the fast path."""
    schema = parse_schema(DOCUMENT)
    from trailvault.core.schema.validate import compile_validator

    validate = compile_validator(schema.fields, schema.additional_fields, fast_path=fast_path)
    body = {"status": "SUCCESS", "kinds": ["A", "B"], "happened": WHEN}
    assert validate(body) is body
    with pytest.raises(ValidationFailed) as caught:
        validate({"status": "success", "kinds": ["C"], "happened": WHEN})
    assert caught.value.problems == [
        ("status", '"success" is not an allowed value; use one of SUCCESS, FAILURE'),
        ("kinds[0]", '"C" is not an allowed value; use one of A, B'),
    ]
    assert caught.value.field == "status"


def test_enum_round_trips_through_the_normalised_document() -> None:
    """to_document writes "enum" and "event_time", and parse_schema reads them back."""
    schema = parse_schema(DOCUMENT)
    document = schema.to_document()
    assert document["fields"][0]["enum"] == ["SUCCESS", "FAILURE"]
    assert document["fields"][3]["event_time"] is True
    assert parse_schema(document) == schema


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"name": "n", "type": "INTEGER", "enum": ["1"]}, 'n: "enum" applies to STRING fields only (this is INTEGER)'),
        ({"name": "s", "type": "STRING", "enum": []}, 's: "enum" must be a non-empty list of strings'),
        ({"name": "s", "type": "STRING", "enum": ["A", "A"]}, 's: "enum" lists a value twice; list each value once'),
        ({"name": "j", "type": "JSON", "mode": "REPEATED"}, "j: a JSON field cannot be REPEATED"),
        ({"name": "j", "type": "JSON", "index": True}, 'j: a JSON field cannot be indexed; remove "index"'),
        ({"name": "t", "type": "STRING", "event_time": True}, 't: "event_time" needs a single TIMESTAMP field'),
        (
            {"name": "r", "type": "RECORD", "fields": [{"name": "j", "type": "JSON"}]},
            "r.j: a JSON field must sit at the top level of the schema",
        ),
    ],
)
def test_bad_enum_json_and_event_time_declarations_are_named(field: dict[str, object], message: str) -> None:
    """Each misuse of enum, JSON or event_time is refused naming the field and the fix."""
    with pytest.raises(InvalidSchema) as caught:
        parse_schema([field])
    assert caught.value.message.startswith(message)


def test_two_event_time_fields_are_refused() -> None:
    """Only one field may be the event's time."""
    with pytest.raises(InvalidSchema, match='b: "event_time" is on a already'):
        parse_schema([
            {"name": "a", "type": "TIMESTAMP", "event_time": True},
            {"name": "b", "type": "TIMESTAMP", "event_time": True},
        ])  # fmt: skip


def test_the_event_time_field_wins_over_time() -> None:
    """timestamp_field() names the field marked event_time, before a field called time."""
    schema = parse_schema([
        {"name": "time", "type": "TIMESTAMP"},
        {"name": "at", "type": "TIMESTAMP", "event_time": True},
    ])  # fmt: skip
    assert schema.timestamp_field() == "at"


def test_a_json_field_keeps_any_json_value_and_refuses_what_json_cannot_carry() -> None:
    """JSON holds objects (free-form maps), lists and scalars as given; NaN is refused naming the field."""
    schema = parse_schema(DOCUMENT)
    for tags in ({"team": "db", "ns": {"k": 1, "n": None}}, [1, "x"], "text", None):
        body = {"tags": tags, "happened": WHEN}
        assert schema.validate(body) == body
    with pytest.raises(ValidationFailed) as caught:
        schema.validate({"tags": {"x": float("nan")}, "happened": WHEN})
    assert caught.value.field == "tags"


def test_adding_enum_values_or_lifting_the_enum_is_allowed() -> None:
    """Kept events stay valid when values are added or the enum goes."""
    current = Schema((Field("status", FieldType.STRING, allowed=("SUCCESS",)),))
    wider = Schema((Field("status", FieldType.STRING, allowed=("SUCCESS", "FAILURE")),))
    assert evolve(current, wider) == wider
    assert evolve(current, Schema((Field("status", FieldType.STRING),))) is not None


def test_removing_enum_values_adding_an_enum_or_moving_event_time_is_refused() -> None:
    """A kept event may hold a removed value; the refusal names the field and the values."""
    current = Schema((
        Field("status", FieldType.STRING, allowed=("SUCCESS", "FAILURE")),
        Field("kind", FieldType.STRING),
        Field("at", FieldType.TIMESTAMP, Mode.REQUIRED, event_time=True),
    ))  # fmt: skip
    proposed = Schema((
        Field("status", FieldType.STRING, allowed=("SUCCESS",)),
        Field("kind", FieldType.STRING, allowed=("A",)),
        Field("at", FieldType.TIMESTAMP, Mode.REQUIRED),
    ))  # fmt: skip
    with pytest.raises(SchemaChangeRefused) as caught:
        evolve(current, proposed)
    message = caught.value.message
    assert "status: enum values removed: FAILURE (kept events may hold them)" in message
    assert "kind: enum added" in message and "at: event_time turned off" in message
    assert caught.value.field == "status"
