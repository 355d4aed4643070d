"""Where an export's entries come from: a store read page by page, or a server's export stream.

An export engine sees only a :class:`Source`: the entries of its query in seq order, the
schema of each channel, and at the end the proof of the seqs it saw. :class:`StoreSource`
reads a store (what ``vault.export`` and a server's export stream use);
:class:`~trailvault.workflows.export.stream.StreamSource` reads the stream a server sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from trailvault.adapters.formats.columns import EntryColumns, EntryList, Page
from trailvault.adapters.store.contract.log import LogStore
from trailvault.core.query import And, Compare, EventQuery, Filter, Op
from trailvault.core.schema import Schema
from trailvault.core.scim import parse_filter
from trailvault.workflows.proofs import proof_hashes

__all__ = ["PAGE_ROWS", "Progress", "Source", "StoreSource", "page_rows", "up_to"]

#: Events in a page of an export to JSONL.gz alone (a typed export shares them among its formats).
PAGE_ROWS = 10_000
_TYPED = ("parquet", "csv")

#: Called with (events written, the seq reached, the last seq the export can reach).
Progress = Callable[[int, int, int], None]


def page_rows(formats: tuple[str, ...]) -> int:
    """Events a page of an export to ``formats`` holds: 10,000 shared among the typed files,
    whose prepared tables (a few megabytes each) are what a page costs in memory."""
    return PAGE_ROWS // max(1, sum(fmt in _TYPED for fmt in formats))


def up_to(filter_text: str | None, size: int) -> Filter:
    """The export's filter: ``filter_text`` (SCIM), and only entries a checkpoint of ``size`` covers."""
    bound: Filter = Compare("seq", Op.LE, size)
    return bound if filter_text is None else And((parse_filter(filter_text), bound))


class Source(Protocol):
    """Where an export's entries come from: a store, or a server's export stream."""

    app: str

    def vault_id(self) -> str: ...

    def pages(self) -> Iterator[Page]:
        """The query's entries in seq order, a page at a time."""

    def schema(self, channel: str) -> Schema: ...

    def proof(self, seqs: Sequence[int]) -> Iterator[bytes]:
        """The hashes of the multi-entry proof of ``seqs`` (after :meth:`pages` is exhausted)."""


class StoreSource:
    """A query's entries read from a store a page at a time, and their proof from its tree.

    ``listing`` makes the listing (in seq order, ``limit`` entries a page, already bounded to
    the first ``size`` entries by :func:`up_to`) when the first page is read, so a request
    refused for another reason (its folder, its database) is refused for that one first.
    ``schemas`` gives a channel's schema. Pages are Arrow columns when ``columns`` (typed
    formats), else entry objects.
    """

    def __init__(
        self,
        store: LogStore,
        listing: Callable[[], EventQuery],
        size: int,
        schemas: Callable[[str], Schema],
        *,
        app: str,
        columns: bool = False,
    ) -> None:
        self.app = app
        self.store, self.listing, self.size, self.schemas = store, listing, size, schemas
        self.columns = columns

    def vault_id(self) -> str:
        return self.store.vault_id()

    def pages(self) -> Iterator[Page]:
        query = self.listing()
        if self.columns:
            # The store pages typed exports itself: a long one may be read another way (SQLite:
            # in a separate process), and the export only sees pages in seq order either way.
            yield from map(EntryColumns, self.store.entry_pages(query, expected=self.size))
            return
        while True:
            page = EntryList(self.store.find_entries(query))
            yield page
            if len(page) < query.limit:
                return
            last = page[-1].seq
            query = query.starting_after((last, last))

    def schema(self, channel: str) -> Schema:
        return self.schemas(channel)

    def proof(self, seqs: Sequence[int]) -> Iterator[bytes]:
        return proof_hashes(self.store, seqs, self.size)
