"""The parts of a schema: value types, modes and fields (held by :class:`~.model.Schema`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

__all__ = ["Field", "FieldType", "Mode"]


class FieldType(enum.StrEnum):
    """The value types a field can hold."""

    STRING = "STRING"
    INTEGER = "INTEGER"
    FLOAT = "FLOAT"
    BOOLEAN = "BOOLEAN"
    TIMESTAMP = "TIMESTAMP"
    RECORD = "RECORD"
    #: Any JSON value kept as it is (an object of free-form keys, such as OCI's tags).
    JSON = "JSON"


class Mode(enum.StrEnum):
    """Whether a field may be missing (NULLABLE), must be there (REQUIRED) or is a list (REPEATED)."""

    NULLABLE = "NULLABLE"
    REQUIRED = "REQUIRED"
    REPEATED = "REPEATED"


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a channel schema; ``fields`` holds the children of a RECORD.

    ``time_formats`` lists Elasticsearch date formats (empty means RFC 3339) and
    ``epoch_unit`` says what a bare number means for a TIMESTAMP. ``allowed`` lists the
    values a STRING may take (empty: any text), ``event_time`` marks the top-level
    TIMESTAMP whose value becomes the event's time. Fields are checked
    when the :class:`Schema` holding them is built, where their path is known.
    """

    name: str
    type: FieldType
    mode: Mode = Mode.NULLABLE
    fields: tuple[Field, ...] = ()
    index: bool = False
    sensitive: bool = False
    description: str = ""
    time_formats: tuple[str, ...] = ()
    epoch_unit: Literal["s", "ms"] = "s"
    allowed: tuple[str, ...] = ()
    event_time: bool = False
