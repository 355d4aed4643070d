"""The generated fast path never accepts what the full validator would change or refuse."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trailvault.core.schema import Field, FieldType, Mode, Schema, parse_schema
from trailvault.core.schema.fastpath import compile_fast_path
from trailvault.core.schema.validate import compile_validator
from trailvault.errors import ValidationFailed

from .test_schema_properties import JSON, schemas

CANONICAL_TIMES = st.sampled_from(
    ["2024-12-30T09:00:00.000000Z", "2024-02-30T09:00:00.000000Z", "2024-12-30T09:00:00.000000+", "x" * 27]
)
LEAVES: dict[FieldType, st.SearchStrategy[Any]] = {
    FieldType.STRING: st.text(max_size=5),
    FieldType.INTEGER: st.integers(min_value=-(2**64), max_value=2**64),
    FieldType.FLOAT: st.floats(allow_nan=True, allow_infinity=True),
    FieldType.BOOLEAN: st.booleans(),
    FieldType.TIMESTAMP: CANONICAL_TIMES,
    FieldType.JSON: JSON,
}


def nearly_valid(fields: tuple[Field, ...], data: st.DataObject, depth: int = 0) -> dict[str, Any]:
    """A body that is mostly of the right types, with occasional wrong values, nulls and extras."""
    body: dict[str, Any] = {}
    for f in fields:
        if not data.draw(st.integers(0, 4)):
            continue
        count = data.draw(st.integers(0, 2))
        if data.draw(st.integers(0, 9)) == 0:
            body[f.name] = None
        elif f.mode is Mode.REPEATED:
            body[f.name] = [_value(f, data, depth) for _ in range(count)]
        else:
            body[f.name] = _value(f, data, depth)
    if data.draw(st.integers(0, 9)) == 0:
        body["zz_extra"] = data.draw(JSON)
    return body


def _value(f: Field, data: st.DataObject, depth: int) -> Any:
    if f.type is FieldType.RECORD:
        return nearly_valid(f.fields, data, depth + 1)
    if f.allowed and data.draw(st.booleans()):
        return data.draw(st.sampled_from(f.allowed))
    leaf = LEAVES[f.type] | JSON if data.draw(st.integers(0, 5)) == 0 else LEAVES[f.type]
    return data.draw(leaf)


@settings(max_examples=300)
@given(schemas, st.data())
def test_fast_accept_means_full_validator_keeps_body(schema: Schema, data: st.DataObject) -> None:
    """Whenever the fast path accepts a body, the full validator accepts it unchanged."""
    fast = compile_fast_path(schema.fields)
    full = compile_validator(schema.fields, schema.additional_fields, fast_path=False)
    body = nearly_valid(schema.fields, data)
    if fast(body):
        assert full(body) == body


def test_fast_path_accepts_the_common_case() -> None:
    """A plain valid body takes the fast path (the returned object is the input itself)."""
    schema = parse_schema([{"name": "company", "type": "STRING", "mode": "REQUIRED"},
                           {"name": "taxes", "type": "RECORD", "mode": "REPEATED",
                            "nested": [{"name": "taxrate", "type": "FLOAT"}]}])  # fmt: skip
    body = {"company": "A", "taxes": [{"taxrate": 1.5}]}
    assert compile_fast_path(schema.fields)(body) is True
    assert schema.validate(body) is body


def test_fast_path_defers_on_unknown_key_even_when_allowed() -> None:
    """With additional fields allowed, an extra key still goes to the full validator (which checks it)."""
    schema = parse_schema({"fields": [{"name": "a", "type": "STRING"}], "additional_fields": True})
    assert compile_fast_path(schema.fields)({"a": "x", "b": float("nan")}) is False
    try:
        schema.validate({"a": "x", "b": float("nan")})
    except ValidationFailed as exc:
        assert exc.field == "b"
    else:
        raise AssertionError("a NaN in an additional field was accepted")
