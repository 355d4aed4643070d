"""parse_schema: tell which schema format a JSON value is in, and read it.

Callers read and parse the file (core code does no I/O) and pass the JSON value.
"""

from __future__ import annotations

from typing import Any

from trailvault.core.schema.bigquery import parse_bigquery_fields
from trailvault.core.schema.elasticsearch import is_mapping, parse_mapping
from trailvault.core.schema.model import Schema
from trailvault.errors import InvalidSchema

__all__ = ["parse_schema"]

_SHAPES = (
    'a BigQuery-style array of fields, {"fields": [...], "additional_fields": false}, '
    'or an Elasticsearch mapping {"mappings": {"properties": {...}}}'
)


def parse_schema(document: Any) -> Schema:
    """Read a channel schema from an already-parsed JSON value.

    Accepts a BigQuery-style list of fields (closed: no additional fields), our
    wrapper ``{"fields": [...], "additional_fields": bool}`` whose fields are
    BigQuery-style or normalised (what ``Schema.to_document`` writes), an
    Elasticsearch mapping, or a Schema (returned as it is). Raises InvalidSchema
    with a message naming the field path and the fix.
    """
    if isinstance(document, Schema):
        return document
    if isinstance(document, list):
        return Schema(fields=parse_bigquery_fields(document))
    if isinstance(document, dict):
        if "fields" in document:
            return _parse_wrapper(document)
        if is_mapping(document):
            return parse_mapping(document)
        raise InvalidSchema(f"not a schema: expected {_SHAPES}")
    if isinstance(document, str | bytes):
        raise InvalidSchema(f"expected the parsed JSON of a schema ({_SHAPES}), got text; parse it first")
    raise InvalidSchema(f"expected a schema: {_SHAPES}; got {type(document).__name__}")


def _parse_wrapper(document: dict[str, Any]) -> Schema:
    unknown = [key for key in document if key not in ("fields", "additional_fields")]
    if unknown:
        raise InvalidSchema(f'schema: unknown key "{unknown[0]}"; use "fields" and "additional_fields"')
    additional = document.get("additional_fields", False)
    if not isinstance(additional, bool):
        raise InvalidSchema("additional_fields: must be true or false", field="additional_fields")
    return Schema(fields=parse_bigquery_fields(document["fields"]), additional_fields=additional)
