"""Schema evolution: which changes to a channel's schema are allowed.

Events already kept must stay valid under every later version of their channel's
schema, and readers must keep finding the values they found before. So a new
version may only add NULLABLE fields (at any depth, also inside REPEATED records),
turn ``index``, ``sensitive`` or ``additional_fields`` on, reorder fields, change
descriptions, add values to an enum or lift it. Removing an enum value (or
putting an enum on a field that had none) is refused, since a kept event may hold
the value; so is moving ``event_time``, which says what every kept event's time
was read from. Everything else is refused, listing every refused difference.
"""

from __future__ import annotations

from trailvault.core.schema.model import Field, FieldType, Mode, Schema
from trailvault.errors import SchemaChangeRefused

__all__ = ["evolve"]

_ALLOWED = (
    "Only adding NULLABLE fields is allowed (also turning on index, sensitive or additional_fields, "
    "changing descriptions and adding enum values); open a new channel for other changes"
)


def evolve(current: Schema, proposed: Schema) -> Schema | None:
    """Return None when ``proposed`` equals ``current``, ``proposed`` when it is an allowed change.

    Raises SchemaChangeRefused whose message lists every refused difference by
    path, such as ``amount: type FLOAT -> STRING``; ``field`` is the first path.
    """
    if proposed == current:
        return None
    refused: list[tuple[str, str]] = []
    if current.additional_fields and not proposed.additional_fields:
        refused.append(("additional_fields", "turned off (events with additional fields exist)"))
    _compare(current.fields, proposed.fields, "", refused)
    if refused:
        listed = "; ".join(f"{path}: {problem}" for path, problem in refused)
        raise SchemaChangeRefused(f"schema change refused: {listed}. {_ALLOWED}", field=refused[0][0])
    return proposed


def _compare(old: tuple[Field, ...], new: tuple[Field, ...], prefix: str, refused: list[tuple[str, str]]) -> None:
    new_by_name = {f.name: f for f in new}
    old_names = {f.name for f in old}
    for before in old:
        path = prefix + before.name
        after = new_by_name.get(before.name)
        if after is None:
            refused.append((path, "removed (fields cannot be removed)"))
            continue
        _compare_field(before, after, path, refused)
    for added in new:
        if added.name not in old_names and added.mode is not Mode.NULLABLE:
            refused.append((prefix + added.name, f"a new field must be NULLABLE (it is {added.mode})"))


def _compare_field(before: Field, after: Field, path: str, refused: list[tuple[str, str]]) -> None:
    if before.type is not after.type:
        refused.append((path, f"type {before.type} -> {after.type}"))
    if before.mode is not after.mode:
        refused.append((path, f"mode {before.mode} -> {after.mode}"))
    if before.index and not after.index:
        refused.append((path, "index turned off"))
    if before.sensitive and not after.sensitive:
        refused.append((path, "sensitive turned off"))
    if before.time_formats != after.time_formats:
        shown_before = "||".join(before.time_formats) or "RFC 3339"
        shown_after = "||".join(after.time_formats) or "RFC 3339"
        refused.append((path, f"time_formats {shown_before} -> {shown_after}"))
    if before.event_time != after.event_time:
        refused.append((path, f"event_time turned {'on' if after.event_time else 'off'}"))
    if after.allowed and not before.allowed:
        refused.append((path, "enum added (kept events may hold other values)"))
    elif after.allowed:
        removed = [value for value in before.allowed if value not in after.allowed]
        if removed:
            refused.append((path, f"enum values removed: {', '.join(removed)} (kept events may hold them)"))
    if before.epoch_unit != after.epoch_unit:
        refused.append((path, f"epoch_unit {before.epoch_unit} -> {after.epoch_unit}"))
    if before.type is FieldType.RECORD and after.type is FieldType.RECORD:
        _compare(before.fields, after.fields, f"{path}.", refused)
