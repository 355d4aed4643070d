"""The Schema model: lookups, index and sensitive paths, timestamp field, the normalised document."""

from __future__ import annotations

from typing import Any

import trailvault.core.schema
from trailvault.core.schema import Field, FieldType, Mode, Schema, parse_schema

USER_SCHEMA = parse_schema(
    [
        {"name": "time", "type": "TIMESTAMP", "index": True},
        {"name": "app", "type": "STRING", "sensitive": True},
        {
            "name": "user",
            "type": "RECORD",
            "nested": [
                {"name": "email", "type": "STRING", "index": True, "sensitive": True},
                {
                    "name": "provider",
                    "type": "RECORD",
                    "nested": [{"name": "name", "type": "STRING", "index": True}],
                },
            ],
        },
        {
            "name": "roles",
            "type": "RECORD",
            "mode": "REPEATED",
            "sensitive": True,
            "nested": [{"name": "r", "type": "STRING"}],
        },
    ]
)


def test_public_names() -> None:
    """The package exports exactly the public API."""
    assert trailvault.core.schema.__all__ == ["Field", "FieldType", "Mode", "Schema", "evolve", "parse_schema"]


def test_enum_values_are_upper_case_names() -> None:
    """FieldType and Mode values are their upper-case names."""
    assert ([t.value for t in FieldType], [m.value for m in Mode]) == (
        ["STRING", "INTEGER", "FLOAT", "BOOLEAN", "TIMESTAMP", "RECORD", "JSON"],
        ["NULLABLE", "REQUIRED", "REPEATED"],
    )


def test_field_by_dotted_path() -> None:
    """field("user.provider.name") finds the nested field."""
    assert USER_SCHEMA.field("user.provider.name") == Field("name", FieldType.STRING, index=True)


def test_field_absent_path_is_none() -> None:
    """A path that does not exist, or goes through a leaf, gives None."""
    assert (USER_SCHEMA.field("user.phone"), USER_SCHEMA.field("app.x")) == (None, None)


def test_index_paths_in_declaration_order() -> None:
    """index_paths lists every indexed field as a name tuple, depth first in declaration order."""
    assert USER_SCHEMA.index_paths() == [("time",), ("user", "email"), ("user", "provider", "name")]


def test_sensitive_paths_include_records() -> None:
    """sensitive_paths lists sensitive leaves and records."""
    assert USER_SCHEMA.sensitive_paths() == [("app",), ("user", "email"), ("roles",)]


def test_timestamp_field_prefers_time() -> None:
    """With both "time" and "timestamp" declared, "time" is the envelope time."""
    schema = Schema((Field("timestamp", FieldType.TIMESTAMP), Field("time", FieldType.TIMESTAMP)))
    assert schema.timestamp_field() == "time"


def test_timestamp_field_falls_back_to_timestamp() -> None:
    """Without "time", a TIMESTAMP called "timestamp" is used."""
    assert Schema((Field("timestamp", FieldType.TIMESTAMP),)).timestamp_field() == "timestamp"


def test_timestamp_field_needs_timestamp_type() -> None:
    """A STRING called "time" is not the envelope time."""
    assert Schema((Field("time", FieldType.STRING),)).timestamp_field() is None


def test_timestamp_field_is_never_a_list() -> None:
    """A REPEATED TIMESTAMP called "time" is not the envelope time."""
    assert Schema((Field("time", FieldType.TIMESTAMP, Mode.REPEATED),)).timestamp_field() is None


def test_to_document_omits_defaults() -> None:
    """to_document writes name, type and mode always, other keys only when not default."""
    schema = Schema(
        (
            Field("a", FieldType.STRING),
            Field(
                "t",
                FieldType.TIMESTAMP,
                index=True,
                description="d",
                time_formats=("epoch_millis",),
                epoch_unit="ms",
            ),
            Field("r", FieldType.RECORD, Mode.REPEATED, (Field("x", FieldType.BOOLEAN, sensitive=True),)),
        )
    )
    expected: dict[str, Any] = {
        "fields": [
            {"name": "a", "type": "STRING", "mode": "NULLABLE"},
            {
                "name": "t",
                "type": "TIMESTAMP",
                "mode": "NULLABLE",
                "index": True,
                "description": "d",
                "time_formats": ["epoch_millis"],
                "epoch_unit": "ms",
            },
            {
                "name": "r",
                "type": "RECORD",
                "mode": "REPEATED",
                "fields": [{"name": "x", "type": "BOOLEAN", "mode": "NULLABLE", "sensitive": True}],
            },
        ],
        "additional_fields": False,
    }
    assert schema.to_document() == expected


def test_to_document_round_trips() -> None:
    """parse_schema(s.to_document()) gives back an equal schema."""
    assert parse_schema(USER_SCHEMA.to_document()) == USER_SCHEMA


def test_elasticsearch_schema_round_trips(elasticsearch_example: dict[str, Any]) -> None:
    """A schema read from a mapping keeps its time formats and epoch unit through to_document."""
    schema = parse_schema(elasticsearch_example)
    assert parse_schema(schema.to_document()) == schema
