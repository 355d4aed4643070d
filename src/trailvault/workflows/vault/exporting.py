"""The export half of a :class:`~trailvault.workflows.vault.vault.Vault`: a query's events to files or a stream.

The half signs (or takes) the checkpoint an export is proven against, turns the export's
arguments into a store listing bounded to that checkpoint (:class:`StoreSource`), and hands
it to the export engine (:mod:`trailvault.workflows.export.write`), which knows no Vault.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from trailvault.adapters.formats import parse_formats, require_formats, require_pyarrow
from trailvault.adapters.store.base import StoredCheckpoint
from trailvault.core.query import EventQuery
from trailvault.core.schema import Schema
from trailvault.errors import InvalidInput, NotFound
from trailvault.workflows.export.source import Progress, StoreSource, page_rows, up_to
from trailvault.workflows.export.stream import STREAM_FORMAT, stream_lines
from trailvault.workflows.export.write import export_into, load_into_database, query_record, require_empty
from trailvault.workflows.vault.parts import VaultParts

__all__ = ["Exporting"]


class Exporting(VaultParts):
    """``export``, mixed into :class:`~trailvault.workflows.vault.vault.Vault`."""

    def export(
        self,
        out: str | Path | None = None,
        *,
        channel: str | None = None,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
        filter: str | None = None,  # noqa: A002 - the listing parameter's name everywhere
        formats: str | tuple[str, ...] = ("parquet", "csv", "jsonl.gz"),
        progress: Progress | None = None,
        to_db: str | None = None,
    ) -> dict[str, Any]:
        if (out is None) == (to_db is None):
            raise InvalidInput(
                "out: give a folder (--out, out=) or a database (--to-db, to_db=), one of the two", field="out"
            )
        if to_db is not None:
            require_pyarrow("to_db", "loading into a database needs")
            checkpoint = _checkpoint_for_export(self)
            query = query_record(channel, time_from, time_to, filter)
            source = _store_source(self, query, checkpoint.size, ("csv",))
            return load_into_database(source, to_db, checkpoint.size, checkpoint.note, query, progress)
        assert out is not None
        chosen = parse_formats(formats)
        # Checked before the checkpoint is signed: a refused export changes nothing.
        require_formats(chosen)
        folder = require_empty(out)
        checkpoint = _checkpoint_for_export(self)
        query = query_record(channel, time_from, time_to, filter)
        source = _store_source(self, query, checkpoint.size, chosen)
        return export_into(source, folder, chosen, checkpoint.size, checkpoint.note, query, progress)

    def export_stream(
        self,
        channel: str | None = None,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
        filter: str | None = None,  # noqa: A002
        visible: tuple[str, ...] | None = None,
    ) -> Iterator[bytes]:
        """Yield an export as a server streams it (:mod:`trailvault.workflows.export.stream`): what a
        server sends for ``GET /v1/export``.

        :meth:`trailvault.workflows.client.RemoteVault.export` turns the stream into the same files and
        manifest as a local export, so ``verify export`` proves them the same way. ``visible`` (a
        key's channels) keeps other channels' names and schemas out of the header.
        """
        # Everything that can refuse the request runs now, before the answer's status is sent.
        checkpoint = _checkpoint_for_export(self)
        query = query_record(channel, time_from, time_to, filter)
        source = _store_source(self, query, checkpoint.size, ("jsonl.gz",))
        pages = source.pages()
        first = next(pages)
        # The schemas go first, so the client can type Parquet and CSV without another request.
        schemas = {
            item.name: item.schema.to_document()
            for item in self.channels()
            if channel in (None, item.name) and (visible is None or item.name in visible)
        }
        header = {
            "format": STREAM_FORMAT, "vault": source.vault_id(), "app": self.app, "query": query,
            "checkpoint": checkpoint.note, "size": checkpoint.size, "schemas": schemas,
        }  # fmt: skip
        return stream_lines(source, header, first, pages)


def _store_source(vault: VaultParts, query: dict[str, Any], size: int, formats: tuple[str, ...]) -> StoreSource:
    """The vault's entries that ``query`` (as :func:`query_record` keeps it) selects, up to ``size``."""

    def listing() -> EventQuery:
        return vault._query(
            query["channel"], query["from"], query["to"], None, up_to(query["filter"], size), "seq", "asc",
            page_rows(formats),
        )  # fmt: skip

    def schema(name: str) -> Schema:
        return vault.channel(name).schema

    return StoreSource(vault._store, listing, size, schema, app=vault.app, columns=formats != ("jsonl.gz",))


def _checkpoint_for_export(vault: VaultParts) -> StoredCheckpoint:
    if vault._checkpointer is not None:
        return vault.issue_checkpoint()
    try:
        return vault.checkpoint()
    except NotFound:
        raise NotFound(
            "checkpoint: this vault has no signed checkpoint to prove an export with; open it with its key",
            field="checkpoint",
        ) from None
