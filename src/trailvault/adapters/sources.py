"""Read the documents a user points at: a path, a ``file:`` URI, or any fsspec URL.

Platform 6 only read ``file:`` URIs; trailvault takes any readable location.
URLs other than ``file:`` need fsspec (``pip install 'trailvault[fsspec]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from trailvault.core.jsontext import decode_json
from trailvault.core.schema.builtin import BUILTIN_PREFIX, BUILTIN_SCHEMAS
from trailvault.errors import InvalidSchema

__all__ = ["read_json_document", "read_schema_document"]


def read_schema_document(location: str | Path) -> Any:
    """Return the schema document ``location`` names: a built-in schema, or a file's JSON.

    ``builtin:NAME`` always names a built-in schema (core/schema/builtin.py); a bare
    NAME of a built-in (``datasafe``) names it too when no file of that name exists
    here, so a file always wins over a bare name. A Path is always a file. Anything
    else is read by :func:`read_json_document`. An unknown built-in raises InvalidSchema
    listing the names.
    """
    if isinstance(location, str):
        if location.startswith(BUILTIN_PREFIX):
            name = location[len(BUILTIN_PREFIX) :]
            if name not in BUILTIN_SCHEMAS:
                known = ", ".join(f"{BUILTIN_PREFIX}{known}" for known in BUILTIN_SCHEMAS)
                raise InvalidSchema(f'schema: no built-in schema "{name}"; use one of {known}', field="schema")
            return BUILTIN_SCHEMAS[name]
        if location in BUILTIN_SCHEMAS and not Path(location).exists():
            return BUILTIN_SCHEMAS[location]
    return read_json_document(location, field="schema")


def read_json_document(location: str | Path, *, field: str) -> Any:
    """Return the parsed JSON document at ``location``.

    Raises InvalidSchema naming ``field`` when it cannot be read, and
    MalformedJSON (with line and column) when it is not JSON.
    """
    text = str(location)
    scheme = urlsplit(text).scheme if "://" in text or text.startswith("file:") else ""
    if scheme == "file":
        parts = urlsplit(text)
        path = Path(
            unquote(parts.netloc + parts.path) if parts.netloc not in ("", "localhost") else unquote(parts.path)
        )
        data = _read_path(path, field=field, shown=text)
    elif scheme:
        data = _read_url(text, field=field)
    else:
        data = _read_path(Path(text).expanduser(), field=field, shown=text)
    return decode_json(data, field=f"{field} {text}")


def _read_path(path: Path, *, field: str, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise InvalidSchema(f"{field}: cannot read {shown} ({reason}); check the path", field=field) from None


def _read_url(url: str, *, field: str) -> bytes:
    try:
        import fsspec  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise InvalidSchema(
            f"{field}: reading {url.split('://', 1)[0]}:// URLs needs fsspec; "
            "install it with pip install 'trailvault[fsspec]', or give a local path",
            field=field,
        ) from None
    try:
        with fsspec.open(url, "rb") as handle:
            data: bytes = handle.read()
            return data
    except Exception as exc:  # fsspec backends raise their own error types
        raise InvalidSchema(
            f"{field}: cannot read {url} ({exc.__class__.__name__}); check the URL", field=field
        ) from None
