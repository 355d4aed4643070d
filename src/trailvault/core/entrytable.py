"""A page of log entries as one Arrow table: the layout typed exports read (needs pyarrow).

Columns, in this order: ``seq``, ``id``, ``app``, ``channel``, ``time`` and ``received``
(int64 µs), ``body`` (the stored text, null when redacted) and ``body_sha256``
(lowercase hex). A store's ``entry_columns`` and the pages of a streamed export are both
built by :func:`entry_table`, so the layout is written once.

Columns are filled without a Python conversion per value. Text comes from one joined
buffer: ``pa.array`` over Python strings converts them one at a time and leaves the heap
holding many times the page (about 100 MB resident after ten thousand 600-byte bodies);
one join, one encode and the offsets cost a fraction of that, and of the time. Integers
go through one ``array('q')``. pyarrow is imported on first use, so opening a
store never pays for it.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, cast

__all__ = ["entry_schema", "entry_table", "hex_column", "int_column", "text_column"]


@cache
def entry_schema() -> Any:
    """The Arrow schema of an entry page."""
    import pyarrow as pa  # type: ignore[import-untyped]  # the export extra; only typed exports get here

    return pa.schema(
        [
            ("seq", pa.int64()),
            ("id", pa.string()),
            ("app", pa.string()),
            ("channel", pa.string()),
            ("time", pa.int64()),
            ("received", pa.int64()),
            ("body", pa.string()),
            ("body_sha256", pa.string()),
        ]
    )


def entry_table(
    seqs: Sequence[int],
    ids: Sequence[str],
    apps: Sequence[str],
    channels: Sequence[str],
    times: Sequence[int],
    received: Sequence[int],
    bodies: Sequence[str | None],
    digests: Sequence[bytes],
) -> Any:
    """The page whose entries have these values, column by column (each in seq order)."""
    import pyarrow as pa

    return pa.Table.from_arrays(
        [
            int_column(seqs),
            text_column(ids),
            pa.array(apps, pa.string()),
            pa.array(channels, pa.string()),
            int_column(times),
            int_column(received),
            text_column(bodies),
            hex_column(digests),
        ],
        schema=entry_schema(),
    )


def int_column(values: Sequence[int]) -> Any:
    """An Arrow int64 array of ``values`` (none of them None), through one machine array.

    ``pa.array`` converts a Python int at a time, about 0.4 µs each: for three integer
    columns that was most of the cost of a page. An ``array('q')`` fills in a tenth of it.
    """
    import pyarrow as pa

    data = array("q", values)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def text_column(values: Sequence[str | None]) -> Any:
    """An Arrow string array (or, past 2 GiB of text, a chunked one) of ``values``; None is null."""
    import pyarrow as pa

    missing = None in values
    present: Sequence[str] = [value or "" for value in values] if missing else cast(Sequence[str], values)
    data = "".join(present).encode()
    if len(data) >= 2**31:  # past 32-bit offsets: Arrow splits the values into chunks itself
        return pa.array(values, pa.string())
    lengths: Iterable[int] = map(len, present)
    if len(data) != sum(map(len, present)):  # some value is not ASCII: count its UTF-8 bytes
        lengths = (len(value.encode()) for value in present)
    offsets = array("i", itertools.accumulate(lengths, initial=0))
    texts = pa.StringArray.from_buffers(len(present), pa.py_buffer(offsets), pa.py_buffer(data))
    if missing:
        import pyarrow.compute as pc  # type: ignore[import-untyped]

        texts = pc.if_else(pa.array([value is None for value in values]), pa.scalar(None, pa.string()), texts)
    return texts


def hex_column(digests: Sequence[bytes]) -> Any:
    """An Arrow string array of the digests' lowercase hex, from one joined buffer.

    Digests are usually all 32 bytes; an empty one (a download's redacted or masked body,
    whose hash it cannot claim) becomes the empty string.
    """
    import pyarrow as pa

    data = b"".join(digests).hex().encode()
    width = len(digests[0]) if digests else 0
    if width and all(len(digest) == width for digest in digests):
        offsets = array("i", range(0, 2 * width * len(digests) + 1, 2 * width))
    else:
        offsets = array("i", [0])
        for digest in digests:
            offsets.append(offsets[-1] + 2 * len(digest))
    return pa.StringArray.from_buffers(len(digests), pa.py_buffer(offsets), pa.py_buffer(data))
