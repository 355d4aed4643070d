"""Reading Elasticsearch mappings (format B)."""

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


def shape(schema: Schema) -> dict[str, tuple[FieldType, bool]]:
    """Each field path with its type and whether it is a list; REQUIRED does not exist in ES."""
    found: dict[str, tuple[FieldType, bool]] = {}

    def walk(fields: tuple[Field, ...], prefix: str) -> None:
        for f in fields:
            found[prefix + f.name] = (f.type, f.mode is Mode.REPEATED)
            walk(f.fields, f"{prefix}{f.name}.")

    walk(schema.fields, "")
    return found


def test_platform6_mapping_parses(elasticsearch_example: dict[str, Any]) -> None:
    """The Platform 6 mapping (old mapping type, _all, multi-field) reads as the expected schema."""
    timestamp = Field("timestamp", FieldType.TIMESTAMP, time_formats=("YYYY-MM-dd HH:mm:ss.SSSZ",), epoch_unit="ms")
    expected = Schema((timestamp, Field("company", FieldType.STRING), Field("amount", FieldType.FLOAT), TAXES))
    assert parse_schema(elasticsearch_example) == expected


def test_both_platform6_examples_are_equivalent(
    bigquery_example: list[dict[str, Any]], elasticsearch_example: dict[str, Any]
) -> None:
    """Apart from the mapping's timestamp, both examples declare the same paths, types and lists."""
    from_mapping = shape(parse_schema(elasticsearch_example))
    del from_mapping["timestamp"]
    assert from_mapping == shape(parse_schema(bigquery_example))


def test_modern_typeless_mapping() -> None:
    """{"mappings": {"properties": ...}} is read without a mapping type."""
    schema = parse_schema({"mappings": {"properties": {"a": {"type": "keyword"}}}})
    assert schema == Schema((Field("a", FieldType.STRING),))


def test_bare_properties() -> None:
    """A bare {"properties": ...} is read as a mapping."""
    assert parse_schema({"properties": {"n": {"type": "long"}}}) == Schema((Field("n", FieldType.INTEGER),))


def test_get_mapping_answer() -> None:
    """The answer of GET /<index>/_mapping, wrapped in the index name, is read."""
    document = {"myindex": {"mappings": {"properties": {"ok": {"type": "boolean"}}}}}
    assert parse_schema(document) == Schema((Field("ok", FieldType.BOOLEAN),))


@pytest.mark.parametrize(
    ("es_type", "expected"),
    [
        ("text", FieldType.STRING),
        ("keyword", FieldType.STRING),
        ("wildcard", FieldType.STRING),
        ("ip", FieldType.STRING),
        ("long", FieldType.INTEGER),
        ("integer", FieldType.INTEGER),
        ("short", FieldType.INTEGER),
        ("unsigned_long", FieldType.INTEGER),
        ("float", FieldType.FLOAT),
        ("double", FieldType.FLOAT),
        ("scaled_float", FieldType.FLOAT),
        ("boolean", FieldType.BOOLEAN),
        ("date", FieldType.TIMESTAMP),
        ("date_nanos", FieldType.TIMESTAMP),
    ],
)
def test_leaf_types_map(es_type: str, expected: FieldType) -> None:
    """Each supported Elasticsearch type maps to its trailvault type."""
    assert parse_schema({"properties": {"a": {"type": es_type}}}).fields[0].type is expected


def test_object_is_nullable_record() -> None:
    """An object (even without "type") is a NULLABLE RECORD."""
    schema = parse_schema({"properties": {"user": {"properties": {"email": {"type": "keyword"}}}}})
    assert schema.fields[0] == Field("user", FieldType.RECORD, Mode.NULLABLE, (Field("email", FieldType.STRING),))


def test_date_without_format_gets_elasticsearch_default() -> None:
    """A date without "format" uses strict_date_optional_time||epoch_millis, numbers in milliseconds."""
    field = parse_schema({"properties": {"t": {"type": "date"}}}).fields[0]
    assert (field.time_formats, field.epoch_unit) == (("strict_date_optional_time", "epoch_millis"), "ms")


def test_date_format_is_split_on_double_bar() -> None:
    """ "format" lists alternatives separated by ||."""
    field = parse_schema({"properties": {"t": {"type": "date", "format": "yyyy-MM-dd || epoch_second"}}}).fields[0]
    assert field.time_formats == ("yyyy-MM-dd", "epoch_second")


def test_epoch_second_only_means_seconds() -> None:
    """A date whose formats allow epoch_second but not epoch_millis reads bare numbers as seconds."""
    field = parse_schema({"properties": {"t": {"type": "date", "format": "epoch_second"}}}).fields[0]
    assert field.epoch_unit == "s"


@pytest.mark.parametrize(("dynamic", "expected"), [(True, True), ("true", True), (False, False), ("strict", False)])
def test_dynamic_at_root_sets_additional_fields(dynamic: Any, expected: bool) -> None:
    """Only "dynamic": true opens the schema; false and strict keep it closed."""
    document = {"mappings": {"dynamic": dynamic, "properties": {"a": {"type": "keyword"}}}}
    assert parse_schema(document).additional_fields is expected


def test_no_dynamic_means_closed() -> None:
    """Without "dynamic" the schema is closed, unlike Elasticsearch."""
    assert parse_schema({"properties": {"a": {"type": "keyword"}}}).additional_fields is False


def test_only_explicit_index_true_sets_index() -> None:
    """ "index": true sets index; "index": false is ignored (Elasticsearch's default is true)."""
    schema = parse_schema(
        {"properties": {"a": {"type": "keyword", "index": True}, "b": {"type": "keyword", "index": False}}}
    )
    assert [f.index for f in schema.fields] == [True, False]


def test_sensitive_is_honoured() -> None:
    """ "sensitive": true marks the field sensitive."""
    assert parse_schema({"properties": {"a": {"type": "keyword", "sensitive": True}}}).fields[0].sensitive


def test_search_settings_are_ignored() -> None:
    """Analyzers, ignore_above, doc_values and friends do not change the schema."""
    spec = {"type": "text", "analyzer": "standard", "ignore_above": 10, "doc_values": False, "copy_to": "all"}
    assert parse_schema({"properties": {"a": spec}}) == Schema((Field("a", FieldType.STRING),))


def test_unsupported_type_names_path_and_choices() -> None:
    """geo_point is refused, naming the path and listing supported types."""
    message = refusal({"properties": {"place": {"properties": {"at": {"type": "geo_point"}}}}})
    assert message.startswith('place.at: unsupported type "geo_point"; use one of text, keyword')


def test_dotted_property_name_is_refused_with_advice() -> None:
    """A property called "user.name" is refused, telling how to nest it."""
    message = refusal({"properties": {"user.name": {"type": "keyword"}}})
    assert message.startswith("user.name: a property name cannot contain a dot; nest it under an object")


def test_unknown_mapping_parameter_is_refused() -> None:
    """A misspelt parameter such as "analyser" is refused."""
    assert refusal({"properties": {"a": {"type": "text", "analyser": "x"}}}) == (
        'a: unknown mapping parameter "analyser"'
    )


def test_several_mapping_types_are_refused() -> None:
    """An old mapping with two types is refused: a channel takes one."""
    document = {"mappings": {"a": {"properties": {}}, "b": {"properties": {}}}}
    assert refusal(document).startswith("mapping: found several mapping types (a, b)")


def test_bad_date_pattern_is_refused_at_parse_time() -> None:
    """A date pattern with an unsupported letter is refused when the mapping is read."""
    message = refusal({"properties": {"t": {"type": "date", "format": "yyyy-ww"}}})
    assert message.startswith('t: date format "yyyy-ww": pattern letter ww is not supported')


def test_non_text_type_is_refused() -> None:
    """A "type" that is not a text is refused, not a Python error."""
    assert refusal({"properties": {"a": {"type": ["keyword"]}}}) == 'a: "type" must be a text such as "keyword"'
