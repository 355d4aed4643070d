"""Properties over randomly generated schemas."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from trailvault.core.schema import Field, FieldType, Mode, Schema, evolve, parse_schema
from trailvault.errors import InvalidSchema, ValidationFailed

NAMES = st.from_regex(r"[A-Za-z_@][A-Za-z0-9_@-]{0,12}", fullmatch=True)
LEAF_TYPES = st.sampled_from([t for t in FieldType if t not in (FieldType.RECORD, FieldType.JSON)])
ENUMS = st.lists(st.sampled_from(["A", "B", "SUCCESS", "x y"]), max_size=3, unique=True).map(tuple)
TIME_FORMATS = st.lists(
    st.sampled_from(["strict_date_optional_time", "epoch_millis", "epoch_second", "YYYY-MM-dd HH:mm:ss.SSSZ"]),
    max_size=2,
    unique=True,
).map(tuple)


def unique_by_case(fields: list[Field]) -> tuple[Field, ...]:
    seen: set[str] = set()
    kept = []
    for f in fields:
        if f.name.casefold() not in seen:
            seen.add(f.name.casefold())
            kept.append(f)
    return tuple(kept)


@st.composite
def fields(draw: st.DrawFn, depth: int = 0, inside_repeated: bool = False) -> Field:
    name = draw(NAMES)
    mode = draw(st.sampled_from(list(Mode)))
    common = {"sensitive": draw(st.booleans()), "description": draw(st.sampled_from(["", "about it"]))}
    if depth < 2 and draw(st.booleans()):
        children_inside_repeated = inside_repeated or mode is Mode.REPEATED
        children = draw(st.lists(fields(depth + 1, children_inside_repeated), min_size=1, max_size=4))
        return Field(name, FieldType.RECORD, mode, unique_by_case(children), **common)
    if depth == 0 and mode is not Mode.REPEATED and draw(st.integers(0, 5)) == 0:
        return Field(name, FieldType.JSON, mode, **common)
    field_type = draw(LEAF_TYPES)
    can_index = not inside_repeated and mode is not Mode.REPEATED
    index = can_index and draw(st.booleans())
    if field_type is FieldType.TIMESTAMP:
        formats = draw(TIME_FORMATS)
        unit = draw(st.sampled_from(["s", "ms"]))
        return Field(name, field_type, mode, index=index, time_formats=formats, epoch_unit=unit, **common)
    allowed = draw(ENUMS) if field_type is FieldType.STRING else ()
    return Field(name, field_type, mode, index=index, allowed=allowed, **common)


schemas = st.builds(
    Schema,
    st.lists(fields(), min_size=1, max_size=6).map(unique_by_case),
    st.booleans(),
)


@given(schemas)
def test_to_document_round_trips(schema: Schema) -> None:
    """parse_schema(s.to_document()) == s for any valid schema."""
    assert parse_schema(schema.to_document()) == schema


@given(schemas)
def test_evolving_to_itself_changes_nothing(schema: Schema) -> None:
    """evolve(s, s) is None for any valid schema."""
    assert evolve(schema, parse_schema(schema.to_document())) is None


@given(schemas)
def test_empty_body_is_valid_unless_something_is_required(schema: Schema) -> None:
    """An empty body passes exactly when no top-level field is REQUIRED."""
    required = any(f.mode is Mode.REQUIRED for f in schema.fields)
    try:
        schema.validate({})
    except ValidationFailed:
        passed = False
    else:
        passed = True
    assert passed is not required


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
FIELD_KEYS = st.sampled_from(["name", "type", "mode", "nested", "fields", "index", "properties", "format"])
SCHEMA_LIKE = st.lists(st.dictionaries(FIELD_KEYS, JSON | st.sampled_from(["RECORD", "date", "x"]), max_size=5))


@given(JSON | SCHEMA_LIKE | st.builds(lambda p: {"properties": p}, st.dictionaries(st.text(max_size=5), JSON)))
def test_parse_schema_raises_only_invalid_schema(document: object) -> None:
    """Any JSON value either parses or raises InvalidSchema, never a bare Python error."""
    with contextlib.suppress(InvalidSchema):
        parse_schema(document)


@given(schemas, JSON)
def test_validate_raises_only_validation_failed(schema: Schema, body: object) -> None:
    """Any JSON body either validates or raises ValidationFailed, never a bare Python error."""
    with contextlib.suppress(ValidationFailed):
        schema.validate(body)


def body_for(fields: tuple[Field, ...], data: st.DataObject, depth: int = 0) -> dict[str, object]:
    """A body using the declared names, each with a value that may or may not fit."""
    body: dict[str, object] = {}
    for f in fields:
        if data.draw(st.booleans()):
            if f.fields and depth < 3 and data.draw(st.booleans()):
                inner = body_for(f.fields, data, depth + 1)
                body[f.name] = [inner, inner] if f.mode is Mode.REPEATED else inner
            else:
                body[f.name] = data.draw(JSON | st.sampled_from(["2024-12-30T10:00:00+01:00", "42", "true", 1e300]))
    return body


@given(schemas, st.data())
def test_validate_on_declared_names_raises_only_validation_failed(schema: Schema, data: st.DataObject) -> None:
    """Bodies using the declared names validate with the same keys or raise ValidationFailed."""
    body = body_for(schema.fields, data)
    with contextlib.suppress(ValidationFailed):
        assert schema.validate(body).keys() == body.keys()
