"""OCI Data Safe audit events, as people already have them, read into records to post.

Three shapes, read from a binary stream in bounded memory (one record at a time,
however large the document):

- the oci CLI's output, ``{"data": {"items": [...]}, "opc-next-page": ...}`` (or
  ``{"data": [...]}``) with kebab-case keys (``db-user-name``), also several such
  documents one after the other, as ``>> datasafe.log`` makes them;
- the SDK's ``oci.util.to_dict`` output (snake_case ``db_user_name``), as a JSON
  array or one object per line;
- the REST API's camelCase JSON: an array, an ``{"items": [...]}`` collection, or
  NDJSON.

Every record becomes a :class:`DatasafeRecord`: Data Safe's ``id`` as the event id
and the body in the REST spelling (top-level keys only: tag names are the user's and
kept as they are), with null values left out, so the same event reads the same
from every shape. A record that is not an object or has no ``id`` becomes a
:class:`RecordProblem`; one that breaks the JSON syntax stops the reading with
InvalidInput naming its line, since nothing after it can be trusted.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from trailvault.errors import InvalidInput

__all__ = ["DatasafeRecord", "RecordProblem", "read_datasafe", "rest_name"]

_CHUNK = 1 << 20
_SPACE = re.compile(r"[ \t\r\n\ufeff]+")
_FIRST_KEY = re.compile(r'\{[ \t\r\n]*("(?:[^"\\]|\\.){0,64}")')
_NO_KEY = re.compile(r'\{[ \t\r\n]*[^ \t\r\n"]')
# Keys of a top-level object that make it a wrapper of records rather than a record.
_WRAPPER_KEYS = ("data", "items")


@dataclass(frozen=True, slots=True)
class DatasafeRecord:
    """One audit event: Data Safe's ``id``, the body in REST spelling, and where it was read."""

    id: str
    body: dict[str, Any]
    position: str


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """A record that cannot become an event, with where it was read, the field and why."""

    position: str
    field: str | None
    message: str


def rest_name(key: str) -> str:
    """Return a field name in the REST spelling: ``db-user-name`` and ``db_user_name`` become ``dbUserName``."""
    if "-" not in key and "_" not in key:
        return key
    head, *rest = re.split(r"[-_]", key)
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def read_datasafe(stream: BinaryIO) -> Iterator[DatasafeRecord | RecordProblem]:
    """Yield each record of ``stream`` (any of the module's shapes), in order.

    Raises InvalidInput naming the line when the input is not JSON.
    """
    for position, value in _Scanner(stream).records():
        yield _record(value, position)


def _record(value: Any, position: str) -> DatasafeRecord | RecordProblem:
    if not isinstance(value, dict):
        return RecordProblem(position, None, "expected an audit event (a JSON object)")
    body = {rest_name(key): item for key, item in value.items() if item is not None}
    event_id = body.pop("id", None)
    if not isinstance(event_id, str) or not event_id:
        return RecordProblem(position, "id", "missing; Data Safe's id (text) becomes the event's id")
    return DatasafeRecord(event_id, body, position)


class _Frame:
    """An open array of records (``item`` counts them) or an open wrapper object."""

    __slots__ = ("after_value", "item", "key", "records")

    def __init__(self, *, records: bool, key: str | None = None) -> None:
        self.records = records
        self.key = key
        self.item = 0
        self.after_value = False  # a comma or the closing bracket must come next


class _Scanner:
    """Reads records from a stream of JSON documents, holding only the record being read.

    The wrappers (``{"data": {"items": [``) are walked key by key; each record, and
    every other value, is decoded whole by the C decoder of ``json`` (``raw_decode``),
    reading more of the stream when a value is cut at the end of what was read.
    Positions name the document and item (1-based) and the line a record starts on.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        # read1 answers with what a pipe has now, so records flow as a producer writes them.
        self._read = getattr(stream, "read1", stream.read)
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.json = json.JSONDecoder()
        self.text = ""
        self.offset = 0
        self.line = 1  # the line number of text[counted]
        self.counted = 0
        self.document = 0
        self.stack: list[_Frame] = []
        self.eof = False

    def records(self) -> Iterator[tuple[str, Any]]:
        while True:
            if not self._skip_space():
                if self.stack:
                    raise self._syntax(len(self.text), "the input ends inside a document")
                return
            char = self.text[self.offset]
            frame = self.stack[-1] if self.stack else None
            if frame is None:
                yield from self._document(char)
            elif frame.records:
                yield from self._in_array(frame, char)
            else:
                self._in_wrapper(char)

    def _document(self, char: str) -> Iterator[tuple[str, Any]]:
        self.document += 1
        if char == "[":
            self.offset += 1
            self.stack.append(_Frame(records=True))
        elif char == "{":
            if self._first_key() in _WRAPPER_KEYS:
                self.offset += 1
                self.stack.append(_Frame(records=False))
                return
            where = self._position(self.offset)
            value = self._value()
            items = _wrapped_items(value)
            if items is None:
                yield f"document {self.document} ({where})", value
            else:
                for number, item in enumerate(items, 1):
                    yield f"document {self.document}, item {number} ({where})", item
        else:
            raise self._syntax(self.offset, "expected a JSON object or array")

    def _in_array(self, frame: _Frame, char: str) -> Iterator[tuple[str, Any]]:
        if char == "]":
            self.offset += 1
            self.stack.pop()
        elif char == ",":
            if not frame.after_value:
                raise self._syntax(self.offset, 'expected a value before ","')
            self.offset += 1
            frame.after_value = False
        elif frame.after_value:
            raise self._syntax(self.offset, 'expected "," or "]" after an item')
        else:
            frame.after_value = True
            frame.item += 1
            where = self._position(self.offset)
            yield f"document {self.document}, item {frame.item} ({where})", self._value()

    def _in_wrapper(self, char: str) -> None:
        if char == "}":
            self.offset += 1
            self.stack.pop()
            return
        if char == ",":
            self.offset += 1
            return
        if char != '"':
            raise self._syntax(self.offset, "expected a key (a string in double quotes)")
        key = self._value()
        if not self._skip_space() or self.text[self.offset] != ":":
            raise self._syntax(self.offset, 'expected ":" after a key')
        self.offset += 1
        if not self._skip_space():
            raise self._syntax(self.offset, "the input ends inside a document")
        path = [frame.key for frame in self.stack[1:]] + [key]
        opening = self.text[self.offset]
        if opening == "[" and path in (["data"], ["items"], ["data", "items"]):
            self.offset += 1
            self.stack.append(_Frame(records=True))
        elif opening == "{" and path == ["data"]:
            self.offset += 1
            self.stack.append(_Frame(records=False, key=key))
        else:
            self._value()  # opc-next-page and the like

    def _first_key(self) -> str | None:
        """The first key of the object starting at the offset (read, not consumed), or None."""
        while True:
            found = _FIRST_KEY.match(self.text, self.offset)
            if found is not None:
                return str(json.loads(found.group(1)))
            if _NO_KEY.match(self.text, self.offset):
                return None
            if len(self.text) - self.offset > _CHUNK or not self._more():
                return None

    def _value(self) -> Any:
        """Decode the JSON value at the offset and move past it, reading more while it is cut short."""
        while True:
            try:
                value, end = self.json.raw_decode(self.text, self.offset)
            except json.JSONDecodeError as exc:
                # An error within the last few characters (or an open string) may be a value
                # cut by the chunk boundary rather than a mistake.
                cut = exc.pos >= len(self.text) - 16 or exc.msg.startswith("Unterminated string")
                if cut and self._more():
                    continue
                raise self._syntax(exc.pos, f"not JSON ({exc.msg})") from None
            if end == len(self.text) and not self.eof and self._more():
                continue  # a number at the very end may go on in the next chunk
            self.offset = end
            return value

    def _skip_space(self) -> bool:
        """Move past whitespace; False at the end of the input."""
        while True:
            found = _SPACE.match(self.text, self.offset)
            self.offset = found.end() if found else self.offset
            if self.offset < len(self.text):
                return True
            if not self._more():
                return False

    def _position(self, at: int) -> str:
        self.line += self.text.count("\n", self.counted, at)
        self.counted = at
        return f"line {self.line}"

    def _more(self) -> bool:
        """Read the next chunk, dropping what was read before the offset; False at the end."""
        if self.eof:
            return False
        chunk = self._read(_CHUNK)
        self.eof = not chunk
        try:
            text = self.utf8.decode(chunk, final=self.eof)
        except UnicodeDecodeError:
            raise self._syntax(len(self.text), "not UTF-8 text; export the events as JSON in UTF-8") from None
        if self.eof and not text:
            return False
        self._position(self.offset)
        self.text = self.text[self.offset :] + text
        self.counted -= self.offset
        self.offset = 0
        return True

    def _syntax(self, at: int, problem: str) -> InvalidInput:
        where = self._position(max(self.counted, min(at, len(self.text))))
        return InvalidInput(f"input: {where}: {problem}", field="input")


def _wrapped_items(value: Any) -> list[Any] | None:
    """The records of a wrapper read whole (its first key was not data or items), or None for a record."""
    if not isinstance(value, dict) or not any(key in value for key in _WRAPPER_KEYS):
        return None
    data = value.get("data", value)
    items = data.get("items") if isinstance(data, dict) else data
    return items if isinstance(items, list) else None
