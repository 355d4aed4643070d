"""Reading schemas: format A (BigQuery style), our wrapper, and the errors they give."""

from __future__ import annotations

from typing import Any

import pytest

from trailvault.core.schema import Field, FieldType, Mode, Schema, parse_schema
from trailvault.errors import InvalidSchema

TAXES = Field(
    "taxes",
    FieldType.RECORD,
    Mode.REPEATED,
    (Field("salestax", FieldType.FLOAT), Field("taxrate", FieldType.FLOAT)),
)


def refusal(document: Any) -> str:
    with pytest.raises(InvalidSchema) as caught:
        parse_schema(document)
    return caught.value.message


def test_platform6_bigquery_example_parses(bigquery_example: list[dict[str, Any]]) -> None:
    """The Platform 6 BigQuery example reads as company REQUIRED, amount FLOAT, taxes REPEATED RECORD."""
    expected = Schema((Field("company", FieldType.STRING, Mode.REQUIRED), Field("amount", FieldType.FLOAT), TAXES))
    assert parse_schema(bigquery_example) == expected


@pytest.mark.parametrize("field_type", ["STRING", "INTEGER", "FLOAT", "BOOLEAN", "TIMESTAMP"])
def test_every_leaf_type_parses(field_type: str) -> None:
    """Each leaf type name reads as the FieldType of the same name."""
    assert parse_schema([{"name": "a", "type": field_type}]).fields[0].type is FieldType(field_type)


@pytest.mark.parametrize("mode", ["NULLABLE", "REQUIRED", "REPEATED"])
def test_every_mode_parses(mode: str) -> None:
    """Each mode name reads as the Mode of the same name."""
    assert parse_schema([{"name": "a", "type": "STRING", "mode": mode}]).fields[0].mode is Mode(mode)


def test_mode_defaults_to_nullable() -> None:
    """A field without "mode" is NULLABLE."""
    assert parse_schema([{"name": "a", "type": "STRING"}]).fields[0].mode is Mode.NULLABLE


def test_types_and_modes_are_case_insensitive() -> None:
    """ "float" and "required" read as FLOAT and REQUIRED."""
    field = parse_schema([{"name": "a", "type": "float", "mode": "required"}]).fields[0]
    assert (field.type, field.mode) == (FieldType.FLOAT, Mode.REQUIRED)


@pytest.mark.parametrize(
    ("alias", "meaning"),
    [("INT64", FieldType.INTEGER), ("FLOAT64", FieldType.FLOAT), ("BOOL", FieldType.BOOLEAN)],
)
def test_bigquery_type_aliases(alias: str, meaning: FieldType) -> None:
    """BigQuery's standard-SQL type names are understood."""
    assert parse_schema([{"name": "a", "type": alias}]).fields[0].type is meaning


def test_struct_with_bigquery_fields_key() -> None:
    """STRUCT is a RECORD and BigQuery's "fields" key holds its children."""
    schema = parse_schema([{"name": "r", "type": "STRUCT", "fields": [{"name": "x", "type": "STRING"}]}])
    assert schema.fields[0] == Field("r", FieldType.RECORD, fields=(Field("x", FieldType.STRING),))


def test_description_index_and_sensitive_are_read() -> None:
    """description, "index": true and "sensitive": true are kept on the field."""
    document = [{"name": "a", "type": "STRING", "description": "who", "index": True, "sensitive": True}]
    assert parse_schema(document).fields[0] == Field(
        "a", FieldType.STRING, index=True, sensitive=True, description="who"
    )


def test_wrapper_form_reads_additional_fields() -> None:
    """{"fields": [...], "additional_fields": true} opens the schema."""
    schema = parse_schema({"fields": [{"name": "a", "type": "STRING"}], "additional_fields": True})
    assert schema == Schema((Field("a", FieldType.STRING),), additional_fields=True)


def test_empty_schema_with_additional_fields_is_allowed() -> None:
    """A schema with no fields is fine when additional fields are allowed."""
    assert parse_schema({"fields": [], "additional_fields": True}).fields == ()


def test_empty_schema_is_refused() -> None:
    """A schema with no fields and a closed body is refused."""
    assert "declares no fields" in refusal([])


def test_unknown_type_names_path_and_choices() -> None:
    """An unknown type inside a RECORD names the dotted path and the valid types."""
    document = [{"name": "taxes", "type": "RECORD", "nested": [{"name": "taxrate", "type": "FLAOT"}]}]
    assert refusal(document) == (
        'taxes.taxrate: unknown type "FLAOT"; use one of STRING, INTEGER, FLOAT, BOOLEAN, TIMESTAMP, RECORD, JSON'
    )


def test_unknown_mode_names_choices() -> None:
    """An unknown mode names the valid modes."""
    document = [{"name": "a", "type": "STRING", "mode": "OPTIONAL"}]
    assert refusal(document) == 'a: unknown mode "OPTIONAL"; use one of NULLABLE, REQUIRED, REPEATED'


def test_numeric_is_refused_with_advice() -> None:
    """NUMERIC is refused with the advice to use FLOAT or STRING."""
    assert refusal([{"name": "price", "type": "NUMERIC"}]) == (
        "price: type NUMERIC is not supported; use FLOAT or STRING"
    )


def test_misspelt_key_is_refused() -> None:
    """A typo such as "mdoe" is refused instead of silently meaning NULLABLE."""
    assert refusal([{"name": "a", "type": "STRING", "mdoe": "REQUIRED"}]).startswith('a: unknown key "mdoe"')


def test_non_boolean_index_is_refused() -> None:
    """ "index": "yes" is refused: flags are booleans."""
    assert refusal([{"name": "a", "type": "STRING", "index": "yes"}]) == (
        "a: \"index\" must be true or false, got 'yes'"
    )


@pytest.mark.parametrize("name", ["1abc", "has space", "dot.ted", "", "x" * 129, "é"])
def test_invalid_names_are_refused(name: str) -> None:
    """A name breaking the rule is refused, naming the field and the rule."""
    assert refusal([{"name": name, "type": "STRING"}]).startswith(f'{name}: invalid field name "{name}"; a name must')


@pytest.mark.parametrize("name", ["_a", "@timestamp", "a-b", "A9", "x" * 128])
def test_valid_names_are_accepted(name: str) -> None:
    """Names with _, @, - and up to 128 characters are accepted."""
    assert parse_schema([{"name": name, "type": "STRING"}]).fields[0].name == name


def test_duplicate_names_ignoring_case_are_refused() -> None:
    """Two fields whose names differ only in case are refused, with the nested path."""
    document = [
        {
            "name": "r",
            "type": "RECORD",
            "nested": [{"name": "Vat", "type": "FLOAT"}, {"name": "vat", "type": "FLOAT"}],
        }
    ]
    assert refusal(document) == 'r.vat: duplicate field name (same as "Vat", ignoring case); rename one of them'


def test_record_without_children_is_refused() -> None:
    """A RECORD needs nested fields."""
    assert refusal([{"name": "r", "type": "RECORD"}]) == "r: a RECORD needs at least one nested field"


def test_leaf_with_children_is_refused() -> None:
    """A STRING with a non-empty "nested" list is refused."""
    document = [{"name": "s", "type": "STRING", "nested": [{"name": "x", "type": "STRING"}]}]
    assert refusal(document).startswith("s: only a RECORD can have nested fields")


def test_leaf_with_empty_nested_list_is_fine() -> None:
    """An empty "nested" list on a STRING is accepted."""
    assert parse_schema([{"name": "s", "type": "STRING", "nested": []}]).fields[0].fields == ()


def test_index_inside_repeated_record_is_refused() -> None:
    """An index on a field inside a REPEATED record is refused: it cannot be an expression index."""
    document = [
        {
            "name": "taxes",
            "type": "RECORD",
            "mode": "REPEATED",
            "nested": [{"name": "r", "type": "FLOAT", "index": True}],
        }
    ]
    assert refusal(document).startswith("taxes.r: cannot be indexed because it is (inside) a REPEATED field")


def test_text_document_is_refused_with_advice() -> None:
    """A JSON text instead of a parsed value is refused, telling the caller to parse it."""
    assert refusal('[{"name": "a"}]').endswith("got text; parse it first")


def test_number_document_is_refused() -> None:
    """A number is no schema."""
    assert refusal(42).startswith("expected a schema:")


def test_object_of_unknown_shape_is_refused() -> None:
    """An object that is neither our wrapper nor a mapping is refused, listing the accepted shapes."""
    assert refusal({"columns": []}).startswith("not a schema: expected a BigQuery-style array of fields")


def test_field_without_name_is_refused() -> None:
    """A field object without a name is refused by its position."""
    assert refusal([{"type": "STRING"}]) == 'field #1: every field needs a "name" (a string)'


def test_bad_time_format_is_refused_at_parse_time() -> None:
    """An unknown date format name is refused when the schema is read, naming the field."""
    document = [{"name": "t", "type": "TIMESTAMP", "time_formats": ["strict_date_optional_tim"]}]
    assert refusal(document).startswith('t: unknown date format "strict_date_optional_tim"')


def test_time_formats_on_a_string_are_refused() -> None:
    """time_formats only make sense on a TIMESTAMP."""
    assert refusal([{"name": "s", "type": "STRING", "time_formats": ["epoch_millis"]}]).startswith(
        "s: time_formats and epoch_unit apply to TIMESTAMP fields only"
    )


def test_schema_built_in_python_is_checked() -> None:
    """Building a Schema directly runs the same checks as parsing."""
    with pytest.raises(InvalidSchema, match="a RECORD needs at least one nested field"):
        Schema((Field("r", FieldType.RECORD),))
