"""Elasticsearch date formats, compiled once into fast parsers.

A TIMESTAMP field taken from an Elasticsearch mapping carries the mapping's
``format`` list: built-in names such as ``strict_date_optional_time`` or
``epoch_millis``, and Java ``DateTimeFormatter`` patterns such as
``YYYY-MM-dd HH:mm:ss.SSSZ``. :func:`compile_time_formats` turns such a list
into one function ``text -> microseconds since the epoch, or None``.

Decisions a caller must know:

- ``Y`` (week-based year in Java) is read as the calendar year, like ``y`` and
  ``u``: mappings written for Joda-time (Elasticsearch 6 and older) used ``Y``
  for the plain year, and a week-based reading would put ``2024-12-30`` in 2025.
- A value without an offset, in a format without a zone letter (or with the
  zone in an optional section left out), is UTC, as in Elasticsearch.
- Offset letters (``Z``, ``X``, ``x``, one to five of them; not ``ZZZZ``) all accept ``Z``, ``+01``,
  ``+0100`` and ``+01:00``: Joda and Java disagree on which count means which,
  and refusing a clear offset would lose events. Zone names (``z``, ``V``) are
  refused: resolving them needs the zone database, which core code does not read.
- Fractions follow Java: ``SSS`` means exactly three digits. Built-in names
  accept one to nine digits, as Elasticsearch does. Precision past microseconds
  is dropped.

Pure functions, no I/O. Problems in a format raise InvalidSchema whose message
names the format but no field path: the schema model adds the path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from functools import lru_cache

from trailvault.errors import InvalidSchema

__all__ = ["DEFAULT_ES_FORMATS", "TimeParser", "compile_time_format", "compile_time_formats"]

#: Turns a text into microseconds since the epoch, or None when it does not match.
TimeParser = Callable[[str], "int | None"]

#: What Elasticsearch uses for a ``date`` without a ``format``.
DEFAULT_ES_FORMATS = ("strict_date_optional_time", "epoch_millis")

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# The same span trailvault.core.timestamps accepts: years 0001 to 9999.
_MIN_US = -62135596800_000000
_MAX_US = 253402300799_999999

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS_FULL = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAYS_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_OFFSET = r"(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)"

# Built-in Elasticsearch names, written as patterns for the same translator;
# "S" here stands for one to nine fraction digits (see _translate's flexible flag).
_NAMED_PATTERNS = {
    "strict_date_optional_time": "yyyy[-MM[-dd]]['T'HH[:mm[:ss[.S]]]][X]",
    "strict_date_optional_time_nanos": "yyyy[-MM[-dd]]['T'HH[:mm[:ss[.S]]]][X]",
    "date_optional_time": "y[-M[-d]]['T'H[:m[:s[.S]]]][X]",
    "strict_date_time": "yyyy-MM-dd'T'HH:mm:ss.S[X]",
    "date_time": "y-M-d'T'H:m:s.S[X]",
    "strict_date_time_no_millis": "yyyy-MM-dd'T'HH:mm:ss[X]",
    "date_time_no_millis": "y-M-d'T'H:m:s[X]",
    "strict_date_hour_minute_second": "yyyy-MM-dd'T'HH:mm:ss",
    "date_hour_minute_second": "y-M-d'T'H:m:s",
    "strict_date_hour_minute": "yyyy-MM-dd'T'HH:mm",
    "date_hour_minute": "y-M-d'T'H:m",
    "strict_date": "yyyy-MM-dd",
    "date": "y-M-d",
    "basic_date_time": "yyyyMMdd'T'HHmmss.S[X]",
    "basic_date_time_no_millis": "yyyyMMdd'T'HHmmss[X]",
    "basic_date": "yyyyMMdd",
}
_EPOCH_NAMES = {"epoch_millis": 1_000, "epoch_second": 1_000_000}
_EPOCH_TEXT = re.compile(r"([+-]?)(\d+)(?:\.(\d+))?", re.ASCII)
_SUPPORTED_LETTERS = "y Y u M d H h a m s S Z X x E"


def compile_time_formats(formats: tuple[str, ...]) -> TimeParser:
    """Return one parser that tries each format in order; the first match wins.

    Raises InvalidSchema for an unknown name or an unsupported pattern.
    """
    parsers = tuple(compile_time_format(fmt) for fmt in formats)
    if len(parsers) == 1:
        return parsers[0]

    def parse_any(text: str) -> int | None:
        for parse in parsers:
            micros = parse(text)
            if micros is not None:
                return micros
        return None

    return parse_any


@lru_cache(maxsize=256)
def compile_time_format(fmt: str) -> TimeParser:
    """Return the parser for one Elasticsearch format name or Java pattern.

    Cached, so checking a schema and compiling its validator share the work.
    """
    if not isinstance(fmt, str) or not fmt.strip():
        raise InvalidSchema(f"{_quote(fmt)} is not a date format; use a name such as strict_date_optional_time")
    name = fmt.strip()
    if name in _EPOCH_NAMES:
        return _epoch_parser(_EPOCH_NAMES[name])
    if name in _NAMED_PATTERNS:
        return _pattern_parser(_NAMED_PATTERNS[name], name, flexible_fraction=True)
    if "_" in name and name.replace("_", "").isalpha():
        # Looks like a built-in name we do not know, not a pattern: say so plainly.
        known = ", ".join([*_NAMED_PATTERNS, *_EPOCH_NAMES])
        raise InvalidSchema(f"unknown date format {_quote(name)}; use one of {known} or a Java pattern")
    return _pattern_parser(fmt, fmt, flexible_fraction=False)


def _epoch_parser(micros_per_unit: int) -> TimeParser:
    digits = 6 if micros_per_unit == 1_000_000 else 3

    def parse_epoch(text: str) -> int | None:
        match = _EPOCH_TEXT.fullmatch(text)
        if match is None:
            return None
        sign, whole, fraction = match.groups()
        # Integer arithmetic: a float would round 1420070400001 ms wrongly.
        micros = int(whole) * micros_per_unit + int((fraction or "").ljust(digits, "0")[:digits])
        micros = -micros if sign == "-" else micros
        return micros if _MIN_US <= micros <= _MAX_US else None

    return parse_epoch


def _pattern_parser(pattern: str, shown: str, *, flexible_fraction: bool) -> TimeParser:
    regex_text, groups = _translate(pattern, shown, flexible_fraction)
    if "year" not in groups and "year2" not in groups:
        raise InvalidSchema(f"date format {_quote(shown)} has no year; add yyyy")
    if "hour12" in groups and "ampm" not in groups:
        raise InvalidSchema(f"date format {_quote(shown)} uses h (1-12) without a (AM/PM); use H for 0-23")
    if "hour12" in groups and "hour" in groups:
        raise InvalidSchema(f"date format {_quote(shown)} has both H and h; keep one")
    regex = re.compile(regex_text, re.ASCII)  # \d means 0-9 only
    return lambda text: _to_micros(regex.fullmatch(text))


def _translate(pattern: str, shown: str, flexible_fraction: bool) -> tuple[str, set[str]]:
    """Translate a Java pattern to a regex; return it and the named groups used."""
    parts: list[str] = []
    groups: set[str] = set()
    depth = 0
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            while end != -1 and pattern[end + 1 : end + 2] == "'" and end != i + 1:
                end = pattern.find("'", end + 2)  # '' inside a quoted text is one quote
            if end == -1:
                raise InvalidSchema(f"date format {_quote(shown)} has an unclosed quote")
            literal = pattern[i + 1 : end].replace("''", "'") if end > i + 1 else "'"
            parts.append(re.escape(literal))
            i = end + 1
            continue
        if char == "[":
            parts.append("(?:")
            depth += 1
        elif char == "]":
            if depth == 0:
                raise InvalidSchema(f"date format {_quote(shown)} has a ] without its [")
            parts.append(")?")
            depth -= 1
        elif char.isascii() and char.isalpha():
            end = i
            while end < len(pattern) and pattern[end] == char:
                end += 1
            group, regex = _letter(char, end - i, shown, flexible_fraction)
            if group:
                if group in groups or (group in ("year", "year2") and groups & {"year", "year2"}):
                    raise InvalidSchema(f"date format {_quote(shown)} repeats the letter {char}")
                groups.add(group)
            parts.append(regex)
            i = end
            continue
        elif char in "#{}":
            raise InvalidSchema(f"date format {_quote(shown)} uses the reserved character {char}")
        else:
            parts.append(re.escape(char))
        i += 1
    if depth:
        raise InvalidSchema(f"date format {_quote(shown)} has a [ without its ]")
    return "".join(parts), groups


def _letter(char: str, count: int, shown: str, flexible_fraction: bool) -> tuple[str, str]:
    """Return (group name or "", regex) for a run of one pattern letter."""
    if char in "yYu":
        # Y is deliberately the calendar year: see the module docstring.
        if count == 2:
            return "year2", r"(?P<year2>\d{2})"
        return "year", r"(?P<year>\d{1,9})" if count == 1 else rf"(?P<year>\d{{{count}}})"
    if char == "M" and count == 3:
        return "month_name", rf"(?P<month_name>(?i:{'|'.join(_MONTHS)}))"
    if char == "M" and count == 4:
        return "month_name", rf"(?P<month_name>(?i:{'|'.join(_MONTHS_FULL)}))"
    two_digit = {"M": "month", "d": "day", "H": "hour", "h": "hour12", "m": "minute", "s": "second"}
    if char in two_digit and count <= 2:
        width = r"\d{1,2}" if count == 1 else r"\d{2}"
        return two_digit[char], f"(?P<{two_digit[char]}>{width})"
    if char == "S" and count <= 9:
        width = r"\d{1,9}" if flexible_fraction else rf"\d{{{count}}}"
        return "fraction", f"(?P<fraction>{width})"
    if char == "a" and count == 1:
        return "ampm", r"(?P<ampm>(?i:AM|PM))"
    if char == "E" and count <= 4:
        # Day names are matched and skipped: the date itself says which day it is.
        names = _DAYS_FULL if count == 4 else _DAYS
        return "", f"(?i:{'|'.join(names)})"
    if char in "ZXx" and count <= 5 and not (char == "Z" and count == 4):
        return "offset", _OFFSET
    if char in "zVvO":
        raise InvalidSchema(
            f"date format {_quote(shown)} uses a zone name ({char}); use an offset letter such as XXX or Z"
        )
    raise InvalidSchema(
        f"date format {_quote(shown)}: pattern letter {char * count} is not supported; "
        f"use the letters {_SUPPORTED_LETTERS} and quoted literals such as 'T'"
    )


def _to_micros(match: re.Match[str] | None) -> int | None:
    if match is None:
        return None
    found = match.groupdict()
    # 2000 is Java's base for two-digit years.
    year = int(found["year"]) if found.get("year") is not None else 2000 + int(found["year2"])
    month_name = found.get("month_name")
    if month_name is not None:
        key = month_name[:3].lower()
        month = _MONTHS.index(key) + 1
    else:
        month = int(found.get("month") or 1)
    day = int(found.get("day") or 1)
    if found.get("hour12") is not None:
        hour12 = int(found["hour12"])
        if not 1 <= hour12 <= 12:
            return None
        hour = hour12 % 12 + (12 if found["ampm"].upper() == "PM" else 0)
    else:
        hour = int(found.get("hour") or 0)
    minute = int(found.get("minute") or 0)
    second = int(found.get("second") or 0)
    fraction = found.get("fraction") or ""
    if hour > 23 or minute > 59 or second > 59:
        return None
    try:
        ordinal = date(year, month, day).toordinal()
    except ValueError:
        return None  # 30 February and friends: no match, so the next format is tried
    seconds = (ordinal - _EPOCH_ORDINAL) * 86_400 + hour * 3600 + minute * 60 + second
    seconds -= _offset_seconds(found.get("offset"))
    micros = seconds * 1_000_000 + int(fraction.ljust(6, "0")[:6])
    return micros if _MIN_US <= micros <= _MAX_US else None


def _offset_seconds(offset: str | None) -> int:
    if offset is None or offset in "Zz":
        return 0
    digits = offset[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60
    return -seconds if offset[0] == "-" else seconds


def _quote(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)
