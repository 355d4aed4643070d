"""Format B: Elasticsearch mappings, read into a Schema.

Accepted shapes: ``{"mappings": {"properties": {...}}}`` (modern),
``{"mappings": {<type name>: {"properties": {...}, "_all": {...}}}}`` (old, exactly
one mapping type, whose name is ignored), a bare ``{"properties": {...}}``, and the
same wrapped as ``GET /<index>/_mapping`` returns it, ``{<index>: {"mappings": ...}}``.
An index-creation body's ``settings`` and ``aliases`` are ignored.

How Elasticsearch meanings map to ours:

- text, keyword and the other string types are STRING; integer types INTEGER;
  floating types FLOAT; boolean BOOLEAN; date and date_nanos TIMESTAMP; object (or
  no type but ``properties``) a NULLABLE RECORD; nested a REPEATED RECORD. There is
  no REQUIRED in Elasticsearch, so every other field is NULLABLE.
- A date keeps its ``format`` (split on ``||``; absent means
  ``strict_date_optional_time||epoch_millis``) and reads a bare number as epoch
  milliseconds, or seconds when the formats name ``epoch_second`` but not ``epoch_millis``.
- Unlike Elasticsearch, trailvault schemas are closed by default: only ``"dynamic":
  true`` (or ``"true"``) at the mapping root allows additional fields; ``false``,
  ``"strict"``, ``"runtime"`` or no ``dynamic`` refuse unknown keys. ``dynamic`` on
  inner objects is ignored.
- Elasticsearch indexes every field by default; trailvault builds an expression
  index only for an explicit ``"index": true``. ``"sensitive": true`` is honoured.
- Multi-fields (``fields``), analyzers and other search settings do not change which
  values are valid and are ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from trailvault.core.schema.dates import DEFAULT_ES_FORMATS
from trailvault.core.schema.model import Field, FieldType, Mode, Schema
from trailvault.errors import InvalidSchema

__all__ = ["is_mapping", "parse_mapping"]

_LEAF_TYPES = {
    **dict.fromkeys(
        ("text", "keyword", "match_only_text", "wildcard", "constant_keyword", "ip", "version", "string"),
        FieldType.STRING,
    ),
    **dict.fromkeys(("long", "integer", "short", "byte", "unsigned_long"), FieldType.INTEGER),
    **dict.fromkeys(("float", "double", "half_float", "scaled_float"), FieldType.FLOAT),
    "boolean": FieldType.BOOLEAN,
    "date": FieldType.TIMESTAMP,
    "date_nanos": FieldType.TIMESTAMP,
}
_SUPPORTED = ", ".join([*_LEAF_TYPES, "object", "nested"])
_ROOT_IGNORED = {
    "_all", "_source", "_meta", "date_detection", "dynamic_templates", "numeric_detection", "_routing",
    "dynamic_date_formats", "_field_names", "_parent", "_timestamp", "_ttl", "include_in_all", "_size",
}  # fmt: skip
_PROPERTY_IGNORED = {
    "fields", "analyzer", "search_analyzer", "search_quote_analyzer", "ignore_above", "norms", "doc_values",
    "store", "null_value", "copy_to", "boost", "coerce", "ignore_malformed", "scaling_factor", "similarity",
    "term_vector", "eager_global_ordinals", "index_options", "locale", "normalizer", "meta", "fielddata",
    "fielddata_frequency_filter", "index_phrases", "index_prefixes", "position_increment_gap",
    "split_queries_on_whitespace", "include_in_all", "include_in_parent", "include_in_root", "dynamic",
    "time_series_dimension", "time_series_metric", "on_script_error", "value", "enabled",
}  # fmt: skip
_PROPERTY_KEYS = _PROPERTY_IGNORED | {"type", "properties", "format", "index", "sensitive"}
_ROOT_KEYS = _ROOT_IGNORED | {"properties", "dynamic"}


def is_mapping(document: dict[str, Any]) -> bool:
    """Tell whether a JSON object looks like an Elasticsearch mapping (see the module docstring)."""
    if "mappings" in document or "properties" in document:
        return True
    if len(document) == 1:
        inner = next(iter(document.values()))
        return isinstance(inner, dict) and "mappings" in inner
    return False


def parse_mapping(document: dict[str, Any]) -> Schema:
    """Read an Elasticsearch mapping into a Schema; raise InvalidSchema naming the path and the fix."""
    root = _mapping_root(document)
    unknown = [key for key in root if key not in _ROOT_KEYS]
    if unknown:
        raise InvalidSchema(f'mapping: unknown key "{unknown[0]}"; field definitions belong under "properties"')
    dynamic = root.get("dynamic")
    # Closed unless asked: an audit channel should not grow fields by accident.
    additional = dynamic is True or (isinstance(dynamic, str) and dynamic.lower() == "true")
    return Schema(fields=_parse_properties(root.get("properties", {}), ""), additional_fields=additional)


def _mapping_root(document: dict[str, Any]) -> dict[str, Any]:
    if "mappings" not in document and "properties" not in document and len(document) == 1:
        document = next(iter(document.values()))  # the GET /<index>/_mapping answer
    if "properties" in document and "mappings" not in document:
        return document
    extra = [key for key in document if key not in ("mappings", "settings", "aliases")]
    if extra:
        raise InvalidSchema(f'mapping: unknown key "{extra[0]}" beside "mappings"')
    mappings = document["mappings"]
    if not isinstance(mappings, dict):
        raise InvalidSchema('mapping: "mappings" must be an object')
    if "properties" in mappings or all(key in _ROOT_KEYS for key in mappings):
        return mappings
    types = [key for key in mappings if key not in _ROOT_KEYS]
    if len(types) != 1:
        raise InvalidSchema(
            f"mapping: found several mapping types ({', '.join(types)}); a channel takes exactly one, "
            'or use the typeless form {"mappings": {"properties": {...}}}'
        )
    inner = mappings[types[0]]
    if not isinstance(inner, dict):
        raise InvalidSchema(f'mapping: the mapping type "{types[0]}" must be an object')
    return inner


def _parse_properties(properties: Any, prefix: str) -> tuple[Field, ...]:
    if not isinstance(properties, dict):
        raise InvalidSchema(f'{prefix[:-1] or "mapping"}: "properties" must be an object')
    return tuple(_parse_property(name, spec, prefix) for name, spec in properties.items())


def _parse_property(name: str, spec: Any, prefix: str) -> Field:
    path = prefix + name
    if "." in name:
        outer, _, inner = name.partition(".")
        raise InvalidSchema(
            f"{path}: a property name cannot contain a dot; nest it under an object: "
            f'"{outer}": {{"properties": {{"{inner}": ...}}}}',
            field=path,
        )
    if not isinstance(spec, dict):
        raise InvalidSchema(f'{path}: expected an object with a "type"', field=path)
    unknown = [key for key in spec if key not in _PROPERTY_KEYS]
    if unknown:
        raise InvalidSchema(f'{path}: unknown mapping parameter "{unknown[0]}"', field=path)
    if spec.get("enabled") is False:
        raise InvalidSchema(
            f'{path}: "enabled": false (keep without checking) is not supported; declare its fields',
            field=path,
        )
    es_type = spec.get("type", "object" if "properties" in spec else None)
    if es_type is not None and not isinstance(es_type, str):
        raise InvalidSchema(f'{path}: "type" must be a text such as "keyword"', field=path)
    sensitive = spec.get("sensitive", False)
    if not isinstance(sensitive, bool):
        raise InvalidSchema(f'{path}: "sensitive" must be true or false', field=path)
    # Elasticsearch's own default is index: true; we index only on explicit request.
    index = spec.get("index") is True
    if es_type in ("object", "nested"):
        mode = Mode.REPEATED if es_type == "nested" else Mode.NULLABLE
        children = _parse_properties(spec.get("properties", {}), f"{path}.")
        return Field(name, FieldType.RECORD, mode, children, index=index, sensitive=sensitive)
    if es_type not in _LEAF_TYPES:
        shown = f'unsupported type "{es_type}"' if es_type is not None else 'no "type"'
        raise InvalidSchema(f"{path}: {shown}; use one of {_SUPPORTED}", field=path)
    if "properties" in spec:
        raise InvalidSchema(f'{path}: a {es_type} cannot have "properties"; make it an object', field=path)
    field_type = _LEAF_TYPES[es_type]
    if field_type is not FieldType.TIMESTAMP:
        return Field(name, field_type, index=index, sensitive=sensitive)
    formats = _parse_formats(spec.get("format"), path)
    # A number means milliseconds in Elasticsearch, unless only epoch_second is allowed.
    epoch_unit: Literal["s", "ms"] = "s" if "epoch_second" in formats and "epoch_millis" not in formats else "ms"
    return Field(name, field_type, index=index, sensitive=sensitive, time_formats=formats, epoch_unit=epoch_unit)


def _parse_formats(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_ES_FORMATS
    if not isinstance(value, str) or not value.strip():
        raise InvalidSchema(f'{path}: "format" must be a text such as "strict_date_optional_time"', field=path)
    return tuple(part.strip() for part in value.split("||"))
