"""The channel schema model: fields, types, modes, and the rules every schema obeys.

A :class:`Schema` is an immutable tree of :class:`Field` objects. Whatever format it
came from (BigQuery list, our ``{"fields": ...}`` wrapper, an Elasticsearch mapping),
the same checks run in ``Schema.__post_init__``, so a Schema that exists is valid:

- names match :data:`NAME_PATTERN` and are unique within a record, ignoring case;
- a RECORD has children and nothing else has;
- ``index`` is on a single-valued leaf outside any REPEATED field (the store turns it
  into an expression index, which cannot reach into lists);
- ``time_formats`` and a non-default ``epoch_unit`` appear on TIMESTAMP fields only,
  and every time format compiles;
- a schema without fields must allow additional fields;
- ``allowed`` values (an enum) appear on STRING fields only, as distinct strings;
- a JSON field (any JSON value, kept as given) sits at the top level, is not
  REPEATED and is not indexed;
- at most one field has ``event_time``, a top-level single TIMESTAMP.

Breaking a rule raises InvalidSchema naming the dotted field path and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from trailvault.core.schema.dates import compile_time_format
from trailvault.core.schema.fields import Field, FieldType, Mode
from trailvault.core.schema.validate import compile_validator
from trailvault.errors import InvalidSchema

__all__ = ["MASKED", "NAME_PATTERN", "Field", "FieldType", "Mode", "Schema"]

#: What a field name must look like (BigQuery's rule, plus ``@`` and ``-`` for log data).
NAME_PATTERN = re.compile(r"[A-Za-z_@][A-Za-z0-9_@-]{0,127}")
_NAME_RULE = "start with a letter, _ or @, then letters, digits, _, @ or -, at most 128 characters"


@dataclass(frozen=True)
class Schema:
    """A channel schema: the declared fields and whether unknown body keys are allowed.

    Construction checks every rule in the module docstring and raises InvalidSchema.
    ``validate`` compiles the schema on first use and keeps the compiled validator on
    the instance; equality, hashing and pickling look at the two fields only.
    """

    fields: tuple[Field, ...]
    additional_fields: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.fields, tuple):
            raise InvalidSchema("schema fields must be a tuple of Field")
        if not isinstance(self.additional_fields, bool):
            raise InvalidSchema("additional_fields: must be true or false")
        if not self.fields and not self.additional_fields:
            raise InvalidSchema("the schema declares no fields; declare at least one, or allow additional fields")
        _check_fields(self.fields, "", inside_repeated=False)
        _check_event_time(self.fields)

    def validate(self, body: Any) -> dict[str, Any]:
        """Check ``body`` and return it normalised, or raise ValidationFailed.

        Returns ``body`` itself when nothing needed normalising, otherwise a new
        dict; the caller's value is never changed. See trailvault.core.schema.validate.
        """
        validator = compile_validator(self.fields, self.additional_fields)
        # Later calls find the compiled function on the instance before this method,
        # saving a lookup and a frame on every event (about 80,000 a second).
        object.__setattr__(self, "validate", validator)
        return validator(body)

    def to_document(self) -> dict[str, Any]:
        """Return the normalised JSON-able form; ``parse_schema(s.to_document()) == s``.

        ``{"fields": [...], "additional_fields": bool}``; each field has ``name``,
        ``type`` and ``mode``, and the other keys only when they differ from the default.
        """
        return {
            "fields": [_field_document(f) for f in self.fields],
            "additional_fields": self.additional_fields,
        }

    def field(self, path: str) -> Field | None:
        """Return the field at a dotted path such as ``user.provider.name``, or None."""
        found: Field | None = None
        children = self.fields
        for name in path.split("."):
            found = next((f for f in children if f.name == name), None)
            if found is None:
                return None
            children = found.fields
        return found

    def index_paths(self) -> list[tuple[str, ...]]:
        """Return the path of every field with ``index`` on, in declaration order."""
        return [path for path, f in _walk(self.fields, ()) if f.index]

    def sensitive_paths(self) -> list[tuple[str, ...]]:
        """Return the path of every field with ``sensitive`` on (RECORDs too), in declaration order."""
        return [path for path, f in _walk(self.fields, ()) if f.sensitive]

    def mask(self, body: dict[str, Any]) -> dict[str, Any]:
        """Return ``body`` with the value of every ``sensitive`` field replaced by :data:`MASKED`.

        A null or absent value stays as it is (its absence is no secret); inside a
        REPEATED record every element is masked. The body itself is left unchanged.
        """
        paths = self.sensitive_paths()
        if not paths:
            return body
        tree: dict[str, Any] = {}
        for path in paths:
            node = tree
            for name in path[:-1]:
                node = node.setdefault(name, {})
                if node is True:
                    break
            else:
                node[path[-1]] = True
        masked: dict[str, Any] = _masked(body, tree)
        return masked

    def timestamp_field(self) -> str | None:
        """Return the field whose value becomes the event's time, or None.

        The field marked ``event_time`` when there is one; else "time" or "timestamp"
        (in that preference) when it is a top-level, single TIMESTAMP.
        """
        for f in self.fields:
            if f.event_time:
                return f.name
        for name in ("time", "timestamp"):
            for f in self.fields:
                if f.name == name and f.type is FieldType.TIMESTAMP and f.mode is not Mode.REPEATED:
                    return name
        return None

    def time_is_sensitive(self) -> bool:
        """Return whether the field that becomes the envelope's ``time`` (:meth:`timestamp_field`) is sensitive."""
        name = self.timestamp_field()
        found = None if name is None else self.field(name)
        return found is not None and found.sensitive

    def __getstate__(self) -> dict[str, Any]:
        # The compiled validator is a closure and cannot be pickled; it is rebuilt on use.
        return {"fields": self.fields, "additional_fields": self.additional_fields}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "fields", state["fields"])
        object.__setattr__(self, "additional_fields", state["additional_fields"])


#: What a masked value reads as, for keys without the ``unmask`` scope.
MASKED = "[masked]"


def _masked(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_masked(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    copy = dict(value)
    for name, below in tree.items():
        if copy.get(name) is None:
            continue
        copy[name] = MASKED if below is True else _masked(copy[name], below)
    return copy


def _walk(fields: tuple[Field, ...], prefix: tuple[str, ...]) -> list[tuple[tuple[str, ...], Field]]:
    found: list[tuple[tuple[str, ...], Field]] = []
    for f in fields:
        path = (*prefix, f.name)
        found.append((path, f))
        found.extend(_walk(f.fields, path))
    return found


def _field_document(f: Field) -> dict[str, Any]:
    document: dict[str, Any] = {"name": f.name, "type": f.type.value, "mode": f.mode.value}
    if f.fields:
        document["fields"] = [_field_document(child) for child in f.fields]
    if f.index:
        document["index"] = True
    if f.sensitive:
        document["sensitive"] = True
    if f.description:
        document["description"] = f.description
    if f.time_formats:
        document["time_formats"] = list(f.time_formats)
    if f.epoch_unit != "s":
        document["epoch_unit"] = f.epoch_unit
    if f.allowed:
        document["enum"] = list(f.allowed)
    if f.event_time:
        document["event_time"] = True
    return document


def _check_fields(fields: tuple[Field, ...], prefix: str, *, inside_repeated: bool) -> None:
    seen: dict[str, str] = {}
    for f in fields:
        if not isinstance(f, Field):
            raise InvalidSchema(f"{prefix or 'schema'}: expected Field objects, got {type(f).__name__}")
        path = f"{prefix}{f.name}"
        _check_field(f, path, inside_repeated=inside_repeated)
        # BigQuery compares names ignoring case; two such columns could not be exported there.
        folded = f.name.casefold()
        if folded in seen:
            raise InvalidSchema(
                f'{path}: duplicate field name (same as "{seen[folded]}", ignoring case); rename one of them',
                field=path,
            )
        seen[folded] = f.name
        _check_fields(f.fields, f"{path}.", inside_repeated=inside_repeated or f.mode is Mode.REPEATED)
        if prefix and (f.event_time or f.type is FieldType.JSON):
            what = '"event_time"' if f.event_time else "a JSON field"
            raise InvalidSchema(
                f"{path}: {what} must sit at the top level of the schema, not inside a RECORD", field=path
            )


def _check_field(f: Field, path: str, *, inside_repeated: bool) -> None:
    if not isinstance(f.name, str) or not NAME_PATTERN.fullmatch(f.name):
        raise InvalidSchema(f'{path}: invalid field name "{f.name}"; a name must {_NAME_RULE}', field=path)
    if not isinstance(f.type, FieldType):
        raise InvalidSchema(f"{path}: type must be a FieldType, got {f.type!r}", field=path)
    if not isinstance(f.mode, Mode):
        raise InvalidSchema(f"{path}: mode must be a Mode, got {f.mode!r}", field=path)
    if not isinstance(f.fields, tuple):
        raise InvalidSchema(f"{path}: the children of a field must be a tuple of Field", field=path)
    for flag in ("index", "sensitive"):
        if not isinstance(getattr(f, flag), bool):
            raise InvalidSchema(f'{path}: "{flag}" must be true or false', field=path)
    if not isinstance(f.description, str):
        raise InvalidSchema(f'{path}: "description" must be a string', field=path)
    if f.type is FieldType.RECORD and not f.fields:
        raise InvalidSchema(f"{path}: a RECORD needs at least one nested field", field=path)
    if f.type is not FieldType.RECORD and f.fields:
        raise InvalidSchema(
            f"{path}: only a RECORD can have nested fields (this is {f.type}); make it a RECORD or drop them",
            field=path,
        )
    if f.index:
        _check_index(f, path, inside_repeated=inside_repeated)
    _check_time(f, path)
    _check_allowed(f, path)
    if f.type is FieldType.JSON and f.mode is Mode.REPEATED:
        raise InvalidSchema(f"{path}: a JSON field cannot be REPEATED (its value may be a list already)", field=path)


def _check_allowed(f: Field, path: str) -> None:
    if not isinstance(f.allowed, tuple) or not all(isinstance(value, str) for value in f.allowed):
        raise InvalidSchema(f'{path}: "enum" must be a list of strings', field=path)
    if f.allowed and f.type is not FieldType.STRING:
        raise InvalidSchema(f'{path}: "enum" applies to STRING fields only (this is {f.type})', field=path)
    if len(set(f.allowed)) != len(f.allowed):
        raise InvalidSchema(f'{path}: "enum" lists a value twice; list each value once', field=path)
    if not isinstance(f.event_time, bool):
        raise InvalidSchema(f'{path}: "event_time" must be true or false', field=path)


def _check_event_time(fields: tuple[Field, ...]) -> None:
    marked = [f for f in fields if f.event_time]
    if len(marked) > 1:
        raise InvalidSchema(
            f'{marked[1].name}: "event_time" is on {marked[0].name} already; mark one field', field=marked[1].name
        )
    for f in marked:
        if f.type is not FieldType.TIMESTAMP or f.mode is Mode.REPEATED:
            raise InvalidSchema(
                f'{f.name}: "event_time" needs a single TIMESTAMP field (this is {f.mode} {f.type})', field=f.name
            )


def _check_index(f: Field, path: str, *, inside_repeated: bool) -> None:
    if f.type is FieldType.JSON:
        raise InvalidSchema(f'{path}: a JSON field cannot be indexed; remove "index"', field=path)
    if f.type is FieldType.RECORD:
        raise InvalidSchema(f'{path}: "index" applies to leaf fields; set it on the fields inside', field=path)
    if inside_repeated or f.mode is Mode.REPEATED:
        raise InvalidSchema(
            f'{path}: cannot be indexed because it is (inside) a REPEATED field, a list; remove "index"',
            field=path,
        )


def _check_time(f: Field, path: str) -> None:
    if f.epoch_unit not in ("s", "ms"):
        raise InvalidSchema(f'{path}: epoch_unit must be "s" or "ms", got {f.epoch_unit!r}', field=path)
    if f.type is not FieldType.TIMESTAMP:
        if f.time_formats or f.epoch_unit != "s":
            raise InvalidSchema(
                f"{path}: time_formats and epoch_unit apply to TIMESTAMP fields only (this is {f.type})",
                field=path,
            )
        return
    if not isinstance(f.time_formats, tuple):
        raise InvalidSchema(f"{path}: time_formats must be a tuple of strings", field=path)
    for fmt in f.time_formats:
        if not isinstance(fmt, str):
            raise InvalidSchema(f"{path}: time_formats must hold strings, got {fmt!r}", field=path)
        try:
            compile_time_format(fmt)
        except InvalidSchema as exc:
            raise InvalidSchema(f"{path}: {exc.message}", field=path) from None
