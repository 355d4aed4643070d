"""Importing records from another system's files: batches posted through the Vault API.

An importer (``trailvault.adapters.importers``) yields records, each with its own
event id, its body and where it was read, or a problem with where it was read.
:func:`import_records` posts them in batches with their ids as idempotency keys, so
importing the same file twice stores each event once (the second time as
duplicates). A batch is all or nothing in the vault; when some of its records are
refused, they are set aside, named with their position and field, and the rest of
the batch is posted again, so a refused record is never stored, not even in part. A
record whose id is kept already with another body (IdConflict) is refused the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from trailvault.core.event import NewEvent
from trailvault.errors import BatchRejected, ChannelNotFound, IdConflict, InvalidInput
from trailvault.workflows.api import VaultAPI

__all__ = ["ImportResult", "ImportedRecord", "RecordProblem", "Refusal", "import_records", "open_if_missing"]


class ImportedRecord(Protocol):
    """A record an importer read: the event's id, its body, and where it was read."""

    @property
    def id(self) -> str: ...
    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def position(self) -> str: ...


@runtime_checkable
class RecordProblem(Protocol):
    """A record an importer could not read as an event."""

    @property
    def position(self) -> str: ...
    @property
    def field(self) -> str | None: ...
    @property
    def message(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused record: where it was read, the field at fault (None: the record itself), and why."""

    position: str
    field: str | None
    message: str


@dataclass
class ImportResult:
    """The counts of an import, and each refused record in input order."""

    imported: int = 0
    duplicates: int = 0
    refused: list[Refusal] = field(default_factory=list)


def open_if_missing(vault: VaultAPI, channel: str, schema: str) -> bool:
    """Open ``channel`` with ``schema`` (such as ``builtin:datasafe``) unless it exists; True when opened.

    An existing channel is used as it is: its schema (perhaps a later version with
    more fields) checks the records.
    """
    try:
        vault.channel(channel)
    except ChannelNotFound:
        vault.open(channel, schema)
        return True
    return False


def import_records(
    vault: VaultAPI,
    channel: str,
    records: Iterable[ImportedRecord | RecordProblem],
    *,
    batch_size: int = 1000,
    on_batch: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Post every record to ``channel`` in batches of ``batch_size``; return the counts.

    Records the importer already refused, and records the vault refuses (each named
    by the vault's message, which starts with the field), go to ``refused``; the
    others are stored or found stored already (``duplicates``). ``on_batch`` is
    called with the running result after each batch. Errors other than a refused
    record (no such channel, a server that does not answer) are raised; what earlier
    batches stored stays stored, and importing again completes it.
    """
    result = ImportResult()
    batch: list[ImportedRecord | RecordProblem] = []
    for record in records:
        batch.append(record)
        if len(batch) >= batch_size:
            _post_batch(vault, channel, batch, result)
            batch = []
            if on_batch is not None:
                on_batch(result)
    if batch:
        _post_batch(vault, channel, batch, result)
        if on_batch is not None:
            on_batch(result)
    return result


def _post_batch(
    vault: VaultAPI, channel: str, batch: list[ImportedRecord | RecordProblem], result: ImportResult
) -> None:
    pending: list[ImportedRecord] = []
    refused: list[Refusal] = []
    for record in batch:
        if isinstance(record, RecordProblem):
            message = f"{record.field}: {record.message}" if record.field else record.message
            refused.append(Refusal(record.position, record.field, message))
        else:
            pending.append(record)
    # Each round sets aside at least one record, so this ends.
    while pending:
        try:
            posted = vault.post_many(channel, [NewEvent(record.body, id=record.id) for record in pending])
        except BatchRejected as exc:
            failed = {index for index, _ in exc.failures if 0 <= index < len(pending)}
            if not failed:
                raise
            for index, error in exc.failures:
                if index in failed:
                    refused.append(Refusal(pending[index].position, error.field, error.message))
            pending = [record for index, record in enumerate(pending) if index not in failed]
            continue
        except IdConflict:
            # An id kept with another body fails the whole batch without saying which
            # record; one at a time, each tells.
            _post_one_by_one(vault, channel, pending, result, refused)
            break
        result.duplicates += sum(1 for p in posted if p.duplicate)
        result.imported += sum(1 for p in posted if not p.duplicate)
        break
    positions = {record.position: order for order, record in enumerate(batch)}
    result.refused.extend(sorted(refused, key=lambda refusal: positions[refusal.position]))


def _post_one_by_one(
    vault: VaultAPI, channel: str, records: list[ImportedRecord], result: ImportResult, refused: list[Refusal]
) -> None:
    for record in records:
        try:
            posted = vault.post(channel, record.body, id=record.id)
        except (IdConflict, InvalidInput) as error:
            refused.append(Refusal(record.position, error.field, error.message))
            continue
        if posted.duplicate:
            result.duplicates += 1
        else:
            result.imported += 1
