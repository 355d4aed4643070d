"""The export formats by name: which exist, their file suffixes, and which need pyarrow."""

from __future__ import annotations

from collections.abc import Sequence

from trailvault.errors import InvalidInput

__all__ = ["FORMATS", "SUFFIXES", "TABLE_FORMATS", "parse_formats", "require_formats", "require_pyarrow"]

FORMATS = ("parquet", "csv", "jsonl.gz")
SUFFIXES = {"parquet": ".parquet", "csv": ".csv", "jsonl.gz": ".jsonl.gz"}
#: The formats built with pyarrow (the ``export`` extra); JSONL.gz needs nothing more.
TABLE_FORMATS = ("parquet", "csv")


def require_pyarrow(field: str, needs: str) -> None:
    """Raise InvalidInput naming ``field`` and the extra when pyarrow is not installed.

    Called before a job reads or writes anything, so that a refused export, download or
    load changes nothing; ``needs`` says what wanted it ("Parquet and CSV need").
    """
    try:
        # Imported rather than looked up: the job imports it next anyway, and an install
        # that is present but broken is refused here too, not halfway through.
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        raise InvalidInput(
            f"{field}: {needs} pyarrow, which is not installed; pip install 'trailvault[export]'", field=field
        ) from None


def require_formats(chosen: Sequence[str], *, field: str = "format") -> None:
    """:func:`require_pyarrow` when ``chosen`` (named by the setting ``field``) holds Parquet or CSV."""
    if any(fmt in TABLE_FORMATS for fmt in chosen):
        require_pyarrow(field, "Parquet and CSV need")


def parse_formats(text: str | Sequence[str], *, field: str = "format") -> tuple[str, ...]:
    """Return the formats named (comma-separated text or a list); raise InvalidInput naming ``field``
    (the option or setting they came from) and the bad one."""
    words = text.split(",") if isinstance(text, str) else list(text)
    chosen: list[str] = []
    for word in (word.strip().lower() for word in words):
        if word in ("jsonl", "ndjson", "jsonl.gz"):
            word = "jsonl.gz"
        if word not in FORMATS:
            raise InvalidInput(f"{field}: {word[:40]!r} is not one of {', '.join(FORMATS)}", field=field)
        if word not in chosen:
            chosen.append(word)
    if not chosen:
        raise InvalidInput(f"{field}: name at least one of {', '.join(FORMATS)}", field=field)
    return tuple(chosen)
