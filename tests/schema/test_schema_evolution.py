"""evolve: which schema changes are allowed, and how refusals read."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from trailvault.core.schema import Field, FieldType, Mode, Schema, evolve, parse_schema
from trailvault.errors import SchemaChangeRefused

CURRENT = parse_schema(
    [
        {"name": "company", "type": "STRING", "mode": "REQUIRED", "index": True, "sensitive": True},
        {"name": "amount", "type": "FLOAT"},
        {"name": "time", "type": "TIMESTAMP"},
        {
            "name": "taxes",
            "type": "RECORD",
            "mode": "REPEATED",
            "nested": [{"name": "salestax", "type": "FLOAT"}, {"name": "taxrate", "type": "FLOAT"}],
        },
    ]
)


def changed(**replacements: Field) -> Schema:
    """CURRENT with some top-level fields replaced (by name) or appended."""
    fields = [replacements.pop(f.name, f) for f in CURRENT.fields]
    return Schema((*fields, *replacements.values()), CURRENT.additional_fields)


def refusal(proposed: Schema, current: Schema = CURRENT) -> str:
    with pytest.raises(SchemaChangeRefused) as caught:
        evolve(current, proposed)
    return caught.value.message


def field(name: str) -> Field:
    found = CURRENT.field(name)
    assert found is not None
    return found


def test_identical_schema_gives_none() -> None:
    """Opening a channel again with the same schema changes nothing."""
    assert evolve(CURRENT, parse_schema(CURRENT.to_document())) is None


def test_adding_nullable_top_level_field() -> None:
    """A new NULLABLE field gives the new schema."""
    proposed = changed(vat=Field("vat", FieldType.FLOAT))
    assert evolve(CURRENT, proposed) == proposed


def test_adding_nullable_field_inside_repeated_record() -> None:
    """A new NULLABLE child inside a REPEATED RECORD is allowed."""
    taxes = field("taxes")
    proposed = changed(taxes=dataclasses.replace(taxes, fields=(*taxes.fields, Field("region", FieldType.STRING))))
    assert evolve(CURRENT, proposed) == proposed


@pytest.mark.parametrize(
    "change",
    [
        {"index": True},
        {"sensitive": True},
        {"description": "what was paid"},
    ],
)
def test_allowed_flag_changes(change: dict[str, Any]) -> None:
    """Turning on index or sensitive and changing a description are allowed."""
    proposed = changed(amount=dataclasses.replace(field("amount"), **change))
    assert evolve(CURRENT, proposed) == proposed


def test_turning_on_additional_fields_is_allowed() -> None:
    """Allowing additional fields is allowed."""
    proposed = Schema(CURRENT.fields, additional_fields=True)
    assert evolve(CURRENT, proposed) == proposed


def test_removing_a_field_is_refused() -> None:
    """A removed field is refused by path."""
    proposed = Schema(tuple(f for f in CURRENT.fields if f.name != "amount"))
    assert "amount: removed (fields cannot be removed)" in refusal(proposed)


def test_type_change_is_refused() -> None:
    """A type change is refused as "amount: type FLOAT -> STRING"."""
    proposed = changed(amount=Field("amount", FieldType.STRING))
    assert refusal(proposed).startswith("schema change refused: amount: type FLOAT -> STRING. Only adding")


def test_mode_change_is_refused() -> None:
    """Making a NULLABLE field REQUIRED is refused."""
    proposed = changed(amount=Field("amount", FieldType.FLOAT, Mode.REQUIRED))
    assert "amount: mode NULLABLE -> REQUIRED" in refusal(proposed)


@pytest.mark.parametrize("mode", [Mode.REQUIRED, Mode.REPEATED])
def test_adding_non_nullable_field_is_refused(mode: Mode) -> None:
    """A new field must be NULLABLE."""
    proposed = changed(vat=Field("vat", FieldType.FLOAT, mode))
    assert f"vat: a new field must be NULLABLE (it is {mode})" in refusal(proposed)


def test_index_turned_off_is_refused() -> None:
    """Turning an index off is refused."""
    proposed = changed(company=dataclasses.replace(field("company"), index=False))
    assert "company: index turned off" in refusal(proposed)


def test_sensitive_turned_off_is_refused() -> None:
    """Turning sensitive off is refused: it would unmask kept values."""
    proposed = changed(company=dataclasses.replace(field("company"), sensitive=False))
    assert "company: sensitive turned off" in refusal(proposed)


def test_additional_fields_turned_off_is_refused() -> None:
    """Closing an open schema is refused."""
    open_schema = Schema(CURRENT.fields, additional_fields=True)
    assert "additional_fields: turned off" in refusal(CURRENT, open_schema)


def test_time_format_change_is_refused() -> None:
    """Changing a TIMESTAMP's formats is refused."""
    proposed = changed(time=Field("time", FieldType.TIMESTAMP, time_formats=("epoch_millis",)))
    assert "time: time_formats RFC 3339 -> epoch_millis" in refusal(proposed)


def test_epoch_unit_change_is_refused() -> None:
    """Changing what a bare number means is refused."""
    proposed = changed(time=Field("time", FieldType.TIMESTAMP, epoch_unit="ms"))
    assert "time: epoch_unit s -> ms" in refusal(proposed)


def test_nested_type_change_is_refused_by_path() -> None:
    """A type change inside a record is named by its dotted path."""
    taxes = field("taxes")
    proposed = changed(taxes=dataclasses.replace(taxes, fields=(Field("salestax", FieldType.STRING), taxes.fields[1])))
    assert "taxes.salestax: type FLOAT -> STRING" in refusal(proposed)


def test_every_refused_difference_is_listed() -> None:
    """All refused differences appear in one message, and field is the first path."""
    proposed = changed(amount=Field("amount", FieldType.STRING), vat=Field("vat", FieldType.FLOAT, Mode.REQUIRED))
    with pytest.raises(SchemaChangeRefused) as caught:
        evolve(CURRENT, proposed)
    assert (caught.value.message, caught.value.field) == (
        "schema change refused: amount: type FLOAT -> STRING; "
        "vat: a new field must be NULLABLE (it is REQUIRED). "
        "Only adding NULLABLE fields is allowed (also turning on index, sensitive or additional_fields, "
        "changing descriptions and adding enum values); open a new channel for other changes",
        "amount",
    )
