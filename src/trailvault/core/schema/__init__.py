"""Channel schemas: reading them (BigQuery style, Elasticsearch mappings, our own
normalised form), checking event bodies against them, and allowed changes.

Core code: no I/O. Callers pass already-parsed JSON values.
"""

from trailvault.core.schema.evolution import evolve
from trailvault.core.schema.model import Field, FieldType, Mode, Schema
from trailvault.core.schema.parse import parse_schema

__all__ = ["Field", "FieldType", "Mode", "Schema", "evolve", "parse_schema"]
