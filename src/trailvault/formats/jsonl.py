"""JSONL.gz export files: one event a line, ``{"id", "time", "received", "app", "channel", "seq",
"body_sha256", "body"}``, the body exactly as the log hashed it."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from trailvault.timestamps import format_timestamp

__all__ = ["JsonlWriter", "read_jsonl_rows"]


class JsonlWriter:
    """Rows (``time``/``received`` in microseconds) to a gzip file of JSON lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = gzip.open(path, "wb", compresslevel=5)  # noqa: SIM115 - closed by close()

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        self._file.write(
            b"".join(
                orjson.dumps(
                    {
                        "id": row["id"],
                        "time": format_timestamp(row["time"]),
                        "received": format_timestamp(row["received"]),
                        "app": row["app"],
                        "channel": row["channel"],
                        "seq": row["seq"],
                        "body_sha256": row["body_sha256"],
                        "body": row["body"],
                    }
                )
                + b"\n"
                for row in rows
            )
        )

    def close(self) -> None:
        self._file.close()


def read_jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Yield each line of a JSONL.gz export file."""
    with gzip.open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)
