"""One API key's view of its app: every rule that depends on the key, in one place.

``KeyView(vault, key)`` wraps the vault of the key's app (``vault.for_app(key.app)``)
and answers what the key asks, with the key's rules applied:

- **Visibility.** A channel the key is not limited to, or an event of one, is answered
  exactly like one that does not exist (ChannelNotFound, EventNotFound).
- **Masking.** Without the ``unmask`` scope the values of ``sensitive`` fields read
  ``[masked]``, and so does ``time`` where it comes from one. A filter, sort or time
  bound on a masked field is refused (Forbidden, naming the parameter): its answers
  would reveal the values.
- **Hashes of the log** (receipts, proofs, checkpoints) are refused to a key without
  ``unmask`` that sees a channel with sensitive fields: each would test guesses at a
  sensitive value offline. **Whole bodies** (export and archive lines) are refused to
  it when the app has sensitive fields.
- **Archiving** acts on the whole app: it needs a key not limited to channels.
- **Keys.** A key manages only keys limited to (some of) its own channels, and gives
  no scope it lacks.
- **Reads** (listing, get, receipt, inclusion proof, export, archive lines) are
  recorded in the app's channel ``trailvault.reads`` unless ``record_reads`` is off.

The scope each operation needs (``read``, ``ingest``, ``archive``, ``admin``) is
checked by whoever routes the call before it reaches the view (the server's route
table); the view applies what depends on the key's channels and ``unmask``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from trailvault.adapters.store.base import StoredCheckpoint
from trailvault.core.api_key import ApiKey, Scope, parse_scopes
from trailvault.core.channel import Channel
from trailvault.core.event import Event, EventPage, Posted
from trailvault.core.query import And, Compare, Filter, Not, Op, Present, overlaps
from trailvault.core.scim import parse_filter
from trailvault.errors import ChannelNotFound, Conflict, EventNotFound, Forbidden, InvalidQuery, NotFound
from trailvault.workflows.proofs import ConsistencyProof, InclusionProof
from trailvault.workflows.vault.vault import Vault

__all__ = ["KeyView"]


class KeyView:
    """What one API key may see and do in its app's vault (see the module docstring for the rules).

    Thread-safe as the vault is; cheap to make (a server makes one a request).
    """

    def __init__(self, vault: Vault, key: ApiKey, *, record_reads: bool = True) -> None:
        self.vault = vault.for_app(key.app)  # a key acts only in its own app
        self.key = key
        self._record_reads = record_reads

    # -- rules ------------------------------------------------------------------------------

    def visible(self, channel: str) -> str:
        """Return ``channel`` when the key may use it; otherwise raise ChannelNotFound as if it did not exist."""
        if not self.key.sees(channel):
            raise ChannelNotFound(f"channel: {channel[:128]!r} was never opened", field="channel")
        return channel

    def require_whole_app(self) -> None:
        """Refuse (Forbidden) a key limited to channels: archiving acts on every channel of the app."""
        if self.key.channels is not None:
            raise Forbidden(
                "channels: archiving acts on every channel of the app; use a key that is not limited to channels",
                field="channels",
            )

    @property
    def unmasked(self) -> bool:
        """Whether the key reads sensitive values as posted (it holds ``unmask``)."""
        return self.key.allows(Scope.UNMASK)

    def masked_fields(self, channel: str | None = None) -> set[str]:
        """What this key reads masked (in ``channel`` only, when given): nothing with ``unmask``, else the
        sensitive fields, and ``time`` where it comes from one."""
        return set() if self.unmasked else self.vault.sensitive_fields(channel)

    def shown(self, event: Event) -> Event:
        """The event as this key may see it: sensitive values masked unless it holds ``unmask``."""
        return event if self.unmasked else self.vault.mask(event)

    def _event(self, event_id: str) -> Event:
        """The app's event, unmasked, when the key may see its channel; otherwise EventNotFound."""
        event = self.vault.get(event_id)
        if not self.key.sees(event.channel):
            raise EventNotFound(f"id: no event with id {event_id[:128]!r} in app {self.vault.app!r}", field="id")
        return event

    def _check_attributes(self, attributes: Iterable[str], field: str, masked: set[str]) -> None:
        """Refuse a filter, sort or bound on a masked field, on anything below one, or on a record holding one."""
        for attribute in attributes:
            for path in masked:
                if overlaps(attribute, path):
                    held = "comes from" if attribute == "time" else "is or holds"
                    raise Forbidden(
                        f"{field}: {attribute} {held} a sensitive field; filtering or sorting on it needs a key "
                        "with the unmask scope",
                        field=field,
                    )

    def _check_log_hashes(self, what: str) -> None:
        """Refuse hashes of the log to a key without ``unmask`` that sees a channel with sensitive fields.

        Leaves, proof nodes and roots are hashes over bodies as posted: with the rest of an
        entry in view (its masked body), each one would test guesses at a sensitive value
        offline. docs/integrity.md, "Masking and proofs", has why this is refused, not salted.
        """
        if self.unmasked:
            return
        for channel in self.vault.channels():
            if self.key.sees(channel.name) and channel.schema.sensitive_paths():
                raise Forbidden(
                    f"scopes: {what} holds hashes of the log, which would test guesses at the sensitive fields "
                    f"of channel {channel.name!r}; use a key that also holds the unmask scope "
                    "(or one limited to channels without sensitive fields)",
                    field="scopes",
                )

    def _check_whole_bodies(self, what_carries: str, who_needs: str) -> None:
        """Refuse bodies as the log hashed them to a key without ``unmask`` when the app has sensitive fields."""
        if not self.unmasked and self.vault.sensitive_fields():
            raise Forbidden(
                f"scopes: {what_carries} bodies exactly as the log hashed them; with sensitive fields in the app "
                f"{who_needs} a key that also holds unmask",
                field="scopes",
            )

    def _record(self, action: str, request: dict[str, Any], results: int | None) -> None:
        if self._record_reads:
            self.vault.record_read(self.key, action, request, results)

    # -- channels ---------------------------------------------------------------------------

    def channels(self) -> list[Channel]:
        """The app's channels the key may use."""
        return [channel for channel in self.vault.channels() if self.key.sees(channel.name)]

    def channel(self, name: str) -> Channel:
        """One channel the key may use; ChannelNotFound for any other."""
        return self.vault.channel(self.visible(name))

    def open(self, name: str, schema: dict[str, Any] | list[Any]) -> Channel:
        """Open (or evolve) a channel the key may use with ``schema``; return it as it now is."""
        self.vault.open(self.visible(name), schema)
        return self.vault.channel(name)

    # -- events -----------------------------------------------------------------------------

    def post_nowait(self, channel: str, items: list[Any]) -> Future[list[Posted]]:
        """Check and queue ``items`` for a channel the key may use, posted by the key (see
        :meth:`~trailvault.workflows.vault.vault.Vault.post_many_nowait`); the future holds their Posted."""
        return self.vault.post_many_nowait(self.visible(channel), items, posted_by=self.key.id)

    def events(
        self,
        channel: str | None = None,
        *,
        time_from: str | None = None,
        time_to: str | None = None,
        filter: str | None = None,  # noqa: A002 - the listing parameter's name everywhere
        sort_by: str | None = None,
        sort_order: str | None = None,
        limit: int | None = None,
        page: str | None = None,
    ) -> EventPage:
        """One page of the events the key may see, masked for it, recorded as a read (``events.list``).

        ``limit`` is 100 when None. Without ``channel`` a key limited to channels lists only
        those. Time bounds and the sort need an unmasked field (a masked ``time`` is
        found by halving; a page token carries the last sort value); where ``time`` is
        masked the default order is the log's own (``seq``).
        """
        if channel is not None:
            self.visible(channel)
        masked = self.masked_fields(channel)
        for bound, value in (("from", time_from), ("to", time_to)):
            if value is not None:
                self._check_attributes(["time"], bound, masked)
        order = sort_by or ("seq" if "time" in masked else "time")
        if order not in ("received", "seq"):
            self._check_attributes([order], "sort_by", masked)
        found = self.vault.events(
            channel,
            time_from=time_from,
            time_to=time_to,
            filter=self._listing_filter(channel, filter, masked),
            sort_by=order,
            sort_order=sort_order or "asc",
            limit=100 if limit is None else limit,
            page=page,
        )
        # The request as the key sent it (not the defaults); a page token is not worth keeping.
        request = {
            "channel": channel, "from": time_from, "to": time_to, "filter": filter, "sort_by": sort_by,
            "sort_order": sort_order, "limit": None if limit is None else str(limit),
        }  # fmt: skip
        self._record("events.list", request, len(found))
        return EventPage([self.shown(event) for event in found], found.next_page)

    def _listing_filter(self, channel: str | None, text: str | None, masked: set[str]) -> Filter | None:
        """The key's filter (refused on a masked field), and its channels when no channel is named."""
        parts: list[Filter] = []
        if text is not None:
            parsed = parse_filter(text)
            self._check_attributes(_attributes(parsed), "filter", masked)
            parts.append(parsed)
        if self.key.channels is not None and channel is None:
            parts.append(Compare("channel", Op.IN, self.key.channels))
        return None if not parts else parts[0] if len(parts) == 1 else And(tuple(parts))

    def get(self, event_id: str) -> Event:
        """One event of a channel the key may see (EventNotFound otherwise), masked for it, recorded as a read."""
        event = self._event(event_id)
        self._record("events.get", {"id": event_id}, 1)
        return self.shown(event)

    def redact(self, event_id: str, reason: str) -> Posted:
        """Remove the body of an event of a channel the key may see (EventNotFound otherwise), saying why."""
        self._event(event_id)
        return self.vault.redact(event_id, reason)

    def export_lines(
        self,
        channel: str | None = None,
        time_from: str | None = None,
        time_to: str | None = None,
        filter: str | None = None,  # noqa: A002 - the listing parameter's name everywhere
    ) -> Iterator[bytes]:
        """The NDJSON lines of an export stream (:meth:`~.vault.exporting.Exporting.export_stream`) the key sees.

        Refused (Forbidden) without ``unmask`` when the app has sensitive fields: an export
        carries bodies as the log hashed them. A key limited to channels exports only
        those, and its header names only their schemas. Recorded as a read (``export``)
        before the lines are made. Bad input raises now, not while the lines are read.
        """
        if channel is not None:
            self.visible(channel)
        self._check_whole_bodies("an export carries", "it needs")
        text = filter
        if text is not None:
            parse_filter(text)
        if self.key.channels is not None and channel is None:
            listed = ", ".join(f'"{name}"' for name in self.key.channels)
            text = f"(channel in [{listed}])" + (f" and ({text})" if text else "")
        self._record("export", {"channel": channel, "from": time_from, "to": time_to, "filter": filter}, None)
        return self.vault.export_stream(channel, time_from, time_to, text, self.key.channels)

    # -- integrity --------------------------------------------------------------------------

    def receipt(self, event_id: str) -> dict[str, Any]:
        """The receipt of an event the key may see (:meth:`~.api.VaultAPI.receipt`), recorded as a read.

        Refused (Forbidden) to a key without ``unmask`` that sees sensitive fields.
        """
        event = self._event(event_id)
        self._check_log_hashes("a receipt")
        receipt = self.vault.receipt(event.seq)
        self._record("events.receipt", {"id": event_id}, 1)
        return receipt

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint:
        """The signed checkpoint (of ``size``, or the latest); refused like :meth:`receipt`."""
        self._check_log_hashes("a checkpoint")
        return self.vault.checkpoint(size)

    def inclusion_proof(
        self, event_id: str | None = None, seq: int | None = None, size: int | None = None
    ) -> InclusionProof:
        """Prove an event (by id, or by seq for a key not limited to channels) is in the log; refused like
        :meth:`receipt`; recorded as a read (``proofs.inclusion``)."""
        self.require_seq_allowed(seq)
        found = self._event(event_id).seq if event_id is not None else seq or 0
        self._check_log_hashes("an inclusion proof")
        proof = self.vault.prove_inclusion(found, size)
        self._record("proofs.inclusion", {"event": event_id, "seq": seq, "size": size}, 1)
        return proof

    def require_seq_allowed(self, seq: int | None) -> None:
        """Refuse (InvalidQuery) an event asked by seq from a key limited to channels: seqs are the whole log's."""
        if seq is not None and self.key.channels is not None:
            raise InvalidQuery("seq: a key limited to channels asks by event id", field="seq")

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Prove the log of ``old_size`` is a prefix of that of ``new_size``; refused like :meth:`receipt`."""
        self._check_log_hashes("a consistency proof")
        return self.vault.prove_consistency(old_size, new_size)

    # -- archive ----------------------------------------------------------------------------

    def require_archive_bodies(self) -> None:
        """Refuse (Forbidden) archive files' bodies to a key limited to channels, or one without ``unmask``
        when the app has sensitive fields (the files carry bodies exactly as the log hashed them)."""
        self.require_whole_app()
        self._check_whole_bodies("archive files carry", "reading them needs")

    def archive_lines(self, archive_id: str) -> Iterator[tuple[int, bytes]]:
        """(seq, JSON line) of an outstanding batch's events, for a key not limited to channels that holds
        ``unmask`` when the app has sensitive fields; recorded as a read once the batch is found."""
        self.require_archive_bodies()
        lines = self.vault.archive_lines(archive_id)
        self._record("archive.list-events-in-archive-batch", {"archiveId": archive_id}, None)
        return lines

    def archive_proof(self, archive_id: str, event_count: Any = None, last_seq: Any = None) -> dict[str, Any]:
        """The manifest's proving part for the batch's events still kept; allowed as :meth:`archive_lines`.

        With ``event_count`` (and ``last_seq``, what the client wrote), a batch whose events
        changed meanwhile (purged) is a Conflict, so the client writes it again.
        """
        self.require_archive_bodies()
        seqs: array[int] = array("q", (seq for seq, _ in self.vault.archive_lines(archive_id)))
        if event_count is not None and (len(seqs) != event_count or (seqs and seqs[-1] != last_seq)):
            raise Conflict(
                "archiveId: the batch changed while it was read (its events were purged); write it again",
                field="archiveId",
            )
        return self.vault.archive_proof(archive_id, seqs)

    # -- keys -------------------------------------------------------------------------------

    def manages(self, other: ApiKey) -> bool:
        """A key limited to channels manages only keys limited to (some of) the same channels."""
        return self.key.channels is None or (
            other.channels is not None and set(other.channels) <= set(self.key.channels)
        )

    def keys(self) -> list[ApiKey]:
        """The app's keys this key manages, revoked ones included, oldest first."""
        return [key for key in self.vault.keys() if self.manages(key)]

    def create_key(
        self, name: str, scopes: list[str], channels: list[str] | None = None, oci_public_key: str | None = None
    ) -> tuple[ApiKey, str]:
        """Create a key (and return its token) with no scope this key lacks, limited to channels it may use."""
        if self.key.channels is not None and (channels is None or not set(channels) <= set(self.key.channels)):
            raise Forbidden("channels: a key limited to some channels may only create keys limited to those channels")
        granted = parse_scopes(scopes)
        # A key gives no scope it lacks itself (admin holds ingest, read and archive; unmask only explicitly).
        missing = sorted(scope.value for scope in granted if not self.key.allows(scope))
        if missing:
            given = ", ".join(missing)
            raise Forbidden(f"scopes: this key cannot give {given}, which it does not hold", field="scopes")
        return self.vault.create_key(name, scopes, channels, oci_public_key)

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key this key manages; NotFound for any other, as for one that does not exist."""
        target = next((key for key in self.vault.keys() if key.id == key_id), None)
        if target is None or not self.manages(target):
            raise NotFound(f"id: app {self.vault.app!r} has no API key {key_id[:40]!r}", field="id")
        return self.vault.revoke_key(key_id)


def _attributes(tree: Filter) -> Iterator[str]:
    if isinstance(tree, (Compare, Present)):
        yield tree.attribute
    elif isinstance(tree, Not):
        yield from _attributes(tree.item)
    else:
        for item in tree.items:
            yield from _attributes(item)
