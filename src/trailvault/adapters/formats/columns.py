"""Pages of stored entries, as rows or as Arrow columns, the unit an export moves.

An export reads the log a page at a time and hands each channel's part of a page to
its writers. :class:`EntryList` holds the entries as objects (what a server's stream
gives, and all there is without pyarrow); :class:`EntryColumns` holds them as one
Arrow table (what a store reads straight into columns), so the Parquet and CSV
writers never build a Python object per event. Both are sequences of
:class:`~trailvault.adapters.formats.rows.Entry` for writers that want rows (JSONL.gz), and
both answer what the export itself needs: seqs, time bounds, the split by channel.

The table's layout is :mod:`trailvault.core.entrytable`'s. pyarrow is imported on first
use, so importing this module (and so ``import trailvault``) does not load it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from trailvault.adapters.formats.rows import Entry
from trailvault.core.entrytable import entry_table
from trailvault.core.event import StoredEntry

__all__ = ["EntryColumns", "EntryList", "Page", "joined"]


class EntryList(list[Entry]):
    """A page of entries as objects.

    Both kinds of page answer, besides being sequences of entries: ``seqs()`` (in
    order), ``time_bounds()`` (earliest and latest event time in µs, None when empty)
    and ``by_channel()`` (the page split by channel, each part in seq order).
    """

    def seqs(self) -> list[int]:
        return [entry.seq for entry in self]

    def time_bounds(self) -> tuple[int, int] | None:
        if not self:
            return None
        times = [entry.time_us for entry in self]
        return min(times), max(times)

    def by_channel(self) -> dict[str, Page]:
        parts: dict[str, EntryList] = {}
        for entry in self:
            part = parts.get(entry.channel)
            if part is None:
                part = parts[entry.channel] = EntryList()
            part.append(entry)
        return dict(parts)


class EntryColumns(Sequence[Entry]):
    """A page of entries as one Arrow table made by :func:`trailvault.core.entrytable.entry_table` (needs pyarrow)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @overload
    def __getitem__(self, index: int) -> Entry: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Entry]: ...
    def __getitem__(self, index: int | slice) -> Entry | Sequence[Entry]:
        if isinstance(index, slice):
            return list(self)[index]
        size = len(self)
        if not -size <= index < size:
            raise IndexError("page index out of range")
        return next(iter(EntryColumns(self.table.slice(index % size, 1))))

    def __iter__(self) -> Iterator[Entry]:
        columns = [column.to_pylist() for column in self.table.columns]
        for seq, event_id, app, channel, time_us, received_us, body, digest in zip(*columns, strict=True):
            yield StoredEntry(seq, event_id, app, channel, time_us, received_us, body, bytes.fromhex(digest))

    def seqs(self) -> list[int]:
        return list[int](self.table.column("seq").to_pylist())

    def time_bounds(self) -> tuple[int, int] | None:
        if not len(self):
            return None
        import pyarrow.compute as pc  # type: ignore[import-untyped]  # loaded once a table exists

        bounds = pc.min_max(self.table.column("time"))
        return int(bounds["min"].as_py()), int(bounds["max"].as_py())

    def by_channel(self) -> dict[str, Page]:
        import pyarrow.compute as pc

        channels = self.table.column("channel")
        names = pc.unique(channels).to_pylist()
        if len(names) <= 1:
            return {name: self for name in names}
        return {name: EntryColumns(self.table.filter(pc.equal(channels, name))) for name in names}

    @staticmethod
    def of(entries: Sequence[Entry]) -> EntryColumns:
        """The columns of entries held as objects."""
        return EntryColumns(
            entry_table(
                [entry.seq for entry in entries],
                [entry.id for entry in entries],
                [entry.app for entry in entries],
                [entry.channel for entry in entries],
                [entry.time_us for entry in entries],
                [entry.received_us for entry in entries],
                [entry.body_json for entry in entries],
                [entry.body_sha256 for entry in entries],
            )
        )


#: A page of entries in seq order, as an export moves them.
Page = EntryList | EntryColumns


def joined(parts: Sequence[Page]) -> Page:
    """One page of consecutive parts of the same kind (Arrow tables concatenated without a copy)."""
    if len(parts) == 1:
        return parts[0]
    tables = [part.table for part in parts if isinstance(part, EntryColumns)]
    if len(tables) == len(parts):
        import pyarrow as pa

        return EntryColumns(pa.concat_tables(tables))
    return EntryList(entry for part in parts for entry in part)
