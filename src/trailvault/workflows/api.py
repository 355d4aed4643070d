"""The Vault API, declared once: what a local vault and a remote one both offer, with the same names.

:class:`~trailvault.workflows.vault.vault.Vault` (a store on this machine) and
:class:`~trailvault.workflows.client.RemoteVault` (a trailvault server over HTTP) both
subclass :class:`VaultAPI`: the signatures, overloads and contracts live here, and the two
implement them without repeating them (``help(Vault.post)`` shows this docstring). A
test compares every method's signature with this declaration, name by name. Code that
works with either one (the CLI, automated archiving, ``verify export``) names this type.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, overload

from trailvault.adapters.store.base import StoredCheckpoint
from trailvault.core.api_key import ApiKey, Scope
from trailvault.core.batches import ArchiveBatch, ArchiveFile, ArchiveTask, BatchPage, LegalHold, PurgeReport
from trailvault.core.channel import Channel
from trailvault.core.event import Event, EventPage, NewEvent, Posted
from trailvault.core.integrity.findings import MAX_UNCOVERED_AGE, VerifyReport
from trailvault.core.query import Filter
from trailvault.workflows.export.source import Progress
from trailvault.workflows.proofs import ConsistencyProof, InclusionProof

__all__ = ["SchemaSource", "VaultAPI"]

#: A channel schema as ``open`` takes it: the document, its JSON text, or a path or URI to it.
SchemaSource = Mapping[str, Any] | Sequence[Any] | str | Path


class VaultAPI(Protocol):
    """One app's view of a vault: channels, recording, finding, proving, taking out, keys, archiving."""

    #: The app (tenant) this view writes and reads as.
    app: str

    # -- the vault ---------------------------------------------------------------------------

    @property
    def location(self) -> str:
        """Where the vault is: its store's location, or a server's URL (safe to show: no password, no token)."""
        ...

    def close(self) -> None:
        """Let the vault go: a local one signs what the log gained since the last checkpoint and
        closes its store; a remote one closes its connections. Also the end of ``with``."""
        ...

    # -- channels ----------------------------------------------------------------------------

    def open(self, channel: str, schema: SchemaSource | None = None) -> bool:
        """Create the channel, or confirm it exists; return True (Platform 6's ``open``).

        ``schema`` is a ``file:`` URI, a path or URL, the parsed document (a
        BigQuery-style list, an Elasticsearch mapping, or ``{"fields": [...]}``), or a
        built-in schema's name: ``builtin:datasafe`` always, a bare ``datasafe`` when no
        file of that name exists (a remote vault sends the built-in's document).
        Opening again with the same schema changes nothing; a schema that only adds
        NULLABLE fields (or turns on ``index``/``sensitive``) becomes a new version;
        any other change raises SchemaChangeRefused. Without a schema the channel
        must already exist. trailvault's own channels (``trailvault.*``) are refused (Forbidden).
        """
        ...

    def channels(self) -> list[Channel]:
        """Return this app's channels, ordered by name."""
        ...

    def channel(self, name: str) -> Channel:
        """Return one channel, or raise ChannelNotFound."""
        ...

    # -- recording ---------------------------------------------------------------------------

    @overload
    def post(
        self,
        channel: str,
        values: Mapping[str, Any] | str | bytes,
        *,
        id: str | None = None,
        time: datetime | str | None = None,
        wait: Literal[False] = False,
    ) -> Posted: ...

    @overload
    def post(
        self,
        channel: str,
        values: Mapping[str, Any] | str | bytes,
        *,
        id: str | None = None,
        time: datetime | str | None = None,
        wait: Literal[True],
    ) -> dict[str, Any]: ...

    def post(
        self,
        channel: str,
        values: Mapping[str, Any] | str | bytes,
        *,
        id: str | None = None,  # noqa: A002 - the envelope's own word
        time: datetime | str | None = None,
        wait: bool = False,
    ) -> Posted | dict[str, Any]:
        """Record one event (a dict or a JSON object text) and return its id and seq.

        Durable when it returns. Posting an ``id`` that exists with the same content
        returns the kept seq with ``duplicate=True``; with other content it raises
        IdConflict. Raises ValidationFailed, MalformedJSON, EventTooLarge, TimeSkew
        or ChannelNotFound for bad input, naming the field. With ``wait=True`` it
        waits for a signed checkpoint covering the event and returns its receipt
        (see :meth:`receipt`) instead.
        """
        ...

    def post_many(
        self,
        channel: str,
        items: Iterable[Mapping[str, Any] | str | bytes | NewEvent],
    ) -> list[Posted]:
        """Record several events all or nothing, in one transaction; return one Posted each.

        Items are bodies (dicts or JSON texts) or :class:`NewEvent` with the producer's
        own id or time. When any item is refused nothing is stored and BatchRejected
        lists every refused item by its index (starting at 0).
        """
        ...

    def redact(self, event_id: str, reason: str) -> Posted:
        """Remove an event's body (an erasure request) and record why, as an event itself.

        The entry keeps its envelope and body hash, so the tree, every checkpoint and
        every proof still verify; the body reads as None from then on. The redaction is
        an event in the channel ``trailvault.redactions`` (``redacted_id``,
        ``redacted_seq``, ``reason``), appended in the same transaction. Returns it.
        """
        ...

    # -- finding -----------------------------------------------------------------------------

    def get(self, event_id: str) -> Event:
        """Return this app's event with ``event_id``, or raise EventNotFound."""
        ...

    def events(
        self,
        channel: str | None = None,
        *,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
        filter: str | Filter | None = None,  # noqa: A002 - the listing parameter's name everywhere
        sort_by: str = "time",
        sort_order: str = "asc",
        limit: int = 100,
        page: str | None = None,
    ) -> EventPage:
        """Return one page of this app's events, in ``(sort_by, seq)`` order.

        ``time_from``/``time_to`` bound ``time`` as ``[from, to)``. ``where`` maps
        envelope fields or dotted body paths to values that must be equal (values
        are read as the channel schema's types). ``filter`` is a SCIM filter
        (:mod:`trailvault.core.scim`), such as ``'(time ge "2024-10-07T00:00Z") and
        (user.email eq "a@example.com")'``, or an already built filter tree; it and
        ``where`` must both hold. ``page`` is the ``next_page`` of the previous page of
        the same query; pages stay exact while events arrive. Over HTTP a filter tree is sent
        as its SCIM text, and ``sort_by="time"`` leaves the order to the server, which sorts
        by ``seq`` where the key reads ``time`` masked (docs/server.md, "Masking").
        """
        ...

    def iter_events(
        self,
        channel: str | None = None,
        *,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
        filter: str | Filter | None = None,  # noqa: A002 - the listing parameter's name everywhere
        sort_by: str = "time",
        sort_order: str = "asc",
    ) -> Iterator[Event]:
        """Yield every matching event, fetching pages as it goes (constant memory); arguments as :meth:`events`.

        Over HTTP a page holds 1,000 events.
        """
        ...

    # -- proving -----------------------------------------------------------------------------

    def log_size(self) -> int:
        """Return the number of entries in the vault's log (every app's events)."""
        ...

    def verifier_key(self) -> str:
        """Return the vault's public key as a signed-note verifier key (``trailvault key show``)."""
        ...

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint:
        """Return the latest signed checkpoint, or the latest of exactly ``size`` entries.

        Its size, root and time are read from the signed note (IntegrityFailure when the
        copies kept beside it disagree).
        """
        ...

    def prove_inclusion(self, event: str | int, size: int | None = None) -> InclusionProof:
        """Prove that an event (by id, or by seq) is entry ``seq - 1`` of the tree of a signed checkpoint.

        Without ``size`` the proof is against the earliest checkpoint that covers the
        event (one is issued now when none does yet); with ``size``, against the
        checkpoint of exactly that size. Only signed checkpoints are used, opened from
        their notes, and the proof is checked against the signed root before it is
        returned: a size no checkpoint has is refused (InvalidQuery), and a stored tree
        that does not match the signed root is an IntegrityFailure.
        """
        ...

    def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Prove that the log of ``new_size`` entries extends the log of ``old_size`` entries.

        ``new_size`` must be a signed checkpoint's size; the proof is checked against its
        signed root (and the old root against a signed checkpoint of ``old_size``, when one
        is kept) before it is returned, so the old root it reports is vouched for by it.
        """
        ...

    def receipt(self, event: str | int) -> dict[str, Any]:
        """Return a self-contained receipt for an event (by id, or by seq on a local vault): entry, body,
        proof, checkpoint.

        ``trailvault verify receipt`` (or :func:`trailvault.core.integrity.receipt.check_receipt`)
        checks it with nothing but the vault's verifier key. The proof is against a signed
        checkpoint (see :meth:`prove_inclusion`), and an entry that no longer matches its
        leaf is refused (IntegrityFailure) rather than handed out.
        """
        ...

    def verify(
        self,
        trusted_checkpoint: str | None = None,
        key: str | None = None,
        *,
        jobs: int = 1,
        max_uncovered_age: float = MAX_UNCOVERED_AGE,
    ) -> VerifyReport:
        """Recompute every leaf, rebuild the tree, and check it against every kept checkpoint's signed root.

        ``key`` is the verifier key to trust (default: the one recorded in the vault, which
        someone holding the database could have replaced: pass the key you were given).
        ``trusted_checkpoint`` is a checkpoint note kept elsewhere: the log must extend it.
        ``jobs`` above 1 checks segments of 65,536 entries in that many worker processes
        (started with ``spawn``, so a script calling this needs the usual
        ``if __name__ == "__main__":`` guard). Streams the log in constant memory; the
        report names the first bad seq or check. Entries past the newest signed checkpoint
        are counted (``uncovered``); they fail verify when that checkpoint was signed more
        than ``max_uncovered_age`` seconds ago, or when the vault keeps no checkpoint at all.
        Where the signing key is at hand, the checkpoint the signer keeps beside it is
        checked too, as a trusted checkpoint is (it catches a truncated tail whose
        checkpoints were deleted with it). Over HTTP the server verifies its own vault in the
        background (an ``admin`` key; ``jobs`` is the server's choice) and this follows the
        job until it is done, however long that takes.
        """
        ...

    # -- taking out --------------------------------------------------------------------------

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
        """Write the query's events into the new or empty folder ``out``; return the manifest.

        The query is :meth:`Vault.events`' (``channel``, ``time_from``, ``time_to``,
        ``filter``), in seq order. On any error the files written so far are removed.
        With ``to_db`` (``sqlite:///FILE`` or ``postgresql://...``) instead of ``out``, the
        events are loaded into one table per channel (:mod:`trailvault.adapters.formats.database`)
        and a summary is returned. Over HTTP the server streams the export (an ``archive`` key)
        and the client writes the same files and manifest.
        """
        ...

    # -- API keys ----------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        scopes: Iterable[str | Scope],
        channels: Iterable[str] | None = None,
        oci_public_key: str | None = None,
    ) -> tuple[ApiKey, str]:
        """Create an API key of this app; return it and its token, which is shown this once only.

        ``scopes`` are :class:`~trailvault.core.api_key.Scope` names (``ingest``, ``read``,
        ``archive``, ``admin``, ``unmask``); ``channels`` limits the key to those
        channels (None: every channel of the app). ``oci_public_key`` (PEM, RSA of at
        least 2048 bits) lets the key's holder sign requests as OCI clients do instead of
        sending the token; the key's ``oci_fingerprint`` names it. InvalidInput names
        ``oci_public_key`` for any other text, Conflict when another key has that public key.
        """
        ...

    def keys(self) -> list[ApiKey]:
        """Return this app's API keys, revoked ones included, oldest first."""
        ...

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke one of this app's keys; it fails from the next request on. Revoking twice keeps the first time."""
        ...

    # -- archiving (Cloudera CDP's verbs), purge and legal holds -----------------------------

    def batch_events_for_archiving(
        self, from_timestamp: datetime | str, to_timestamp: datetime | str, *, wait: bool = False
    ) -> str:
        """Start grouping the app's events of ``[from_timestamp, to_timestamp)`` into batches; return the task id.

        Raises Conflict while another batching task of the app is OPEN. The task runs in
        a background thread, or in this one with ``wait=True`` (over HTTP: the server runs it,
        and ``wait=True`` returns once it is no longer OPEN).
        """
        ...

    def get_batch_events_for_archiving_status(self, task_id: str) -> ArchiveTask:
        """Return the task's status and, once COMPLETED, its batches. Raises NotFound for another app's task."""
        ...

    def list_outstanding_archive_batches(
        self,
        from_timestamp: datetime | str | None = None,
        to_timestamp: datetime | str | None = None,
        *,
        page_size: int = 100,
        starting_token: str | None = None,
    ) -> BatchPage:
        """Return a page of the app's batches not marked archived yet, oldest first, overlapping the range."""
        ...

    def archive_batch(self, archive_id: str) -> ArchiveBatch:
        """Return one of the app's batches, marked or not; NotFound otherwise."""
        ...

    def list_events_in_archive_batch(self, archive_id: str) -> Iterator[dict[str, Any]]:
        """Stream the outstanding batch's events, in seq order, as the archive file's JSON objects.

        Raises NotFound for an unknown batch and BatchArchived for one marked archived.
        """
        ...

    def archive_lines(self, archive_id: str) -> Iterator[tuple[int, bytes]]:
        """Stream (seq, JSON line) of the outstanding batch's events; raises NotFound or BatchArchived now,
        not when iterated."""
        ...

    def write_archive_batch(
        self,
        archive_id: str,
        destination: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        dated: bool = False,
    ) -> ArchiveFile:
        """Write the batch as ``<accountId>_<YYYYmmddTHHMM>Z_<archiveId>.json.gz`` plus manifest.

        ``destination`` is a folder or any fsspec URL (``s3://bucket/prefix`` with
        ``storage_options``); ``dated`` puts the files under ``<app>/yyyy/MM/dd/`` (UTC
        date of writing), as automated archiving does. A batch marked archived is
        refused (BatchArchived), as listing it is; so is one partly purged, which only a
        marked batch can be, so no file is ever written incomplete.
        """
        ...

    def mark_archive_batches_as_successful(self, archive_ids: list[str]) -> dict[str, Any]:
        """Mark batches archived (all or none), so that purge may remove their events after ``retention``.

        Returns CDP's answer: ``archiveIds`` and ``archiveTimestamp`` (RFC 3339). Marking
        a batch again keeps its first time.
        """
        ...

    def purge(self, *, now: datetime | str | None = None) -> PurgeReport:
        """Remove the rows of the app's events that are archived, past retention and under no hold.

        Each batch's purge is one transaction with its record in ``trailvault.purges``.
        Safe to run at any time, from any number of processes. ``now`` stands in for the
        clock of a local vault (tests, replays); a server purges by its own clock and a
        :class:`RemoteVault` refuses ``now``.
        """
        ...

    def set_hold(
        self,
        name: str,
        reason: str,
        *,
        channel: str | None = None,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
    ) -> LegalHold:
        """Set a legal hold: purge keeps the app's events (of ``channel``, in the time range) until it is cleared."""
        ...

    def clear_hold(self, name: str) -> LegalHold:
        """Clear the app's legal hold ``name``; it stays on record with the time it was cleared."""
        ...

    def holds(self, *, include_cleared: bool = False) -> list[LegalHold]:
        """Return the app's legal holds that are set (and the cleared ones with ``include_cleared``)."""
        ...
