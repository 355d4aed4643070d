"""The Vault: one app's view of one store; its channels and recording live here.

A :class:`Vault` checks every event against its channel's schema, gives it its envelope
and canonical bytes, and hands it to the group committer. Its other halves sit beside
this module (finding, proving, API keys, exporting, archiving; see ``parts.py``), and
its contract is declared once in :class:`~trailvault.workflows.api.VaultAPI`.
"""

from __future__ import annotations

import hashlib
import threading
import time as clock
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, overload

import orjson
import uuid_utils

from trailvault.adapters.sources import read_schema_document
from trailvault.adapters.store import Store
from trailvault.adapters.store.base import ChannelRecord
from trailvault.core.batches import ArchiveSettings
from trailvault.core.channel import BATCHES_CHANNEL, PURGES_CHANNEL, REDACTIONS_CHANNEL, RESERVED_PREFIX, Channel
from trailvault.core.event import (
    NewEvent,
    PendingEvent,
    Posted,
    check_id,
    check_name,
    fingerprint,
    nul_path,
)
from trailvault.core.jsontext import decode_json
from trailvault.core.schema import Schema, evolve, parse_schema
from trailvault.core.timestamps import format_timestamp, parse_timestamp
from trailvault.errors import (
    BatchRejected,
    ChannelNotFound,
    Conflict,
    EventTooLarge,
    Forbidden,
    InvalidInput,
    TimeSkew,
    TrailvaultError,
    ValidationFailed,
)
from trailvault.workflows.api import SchemaSource, VaultAPI
from trailvault.workflows.vault.api_keys import ApiKeys
from trailvault.workflows.vault.archiving import Archiving
from trailvault.workflows.vault.checkpointer import Checkpointer
from trailvault.workflows.vault.commit import GroupCommitter
from trailvault.workflows.vault.exporting import Exporting
from trailvault.workflows.vault.finding import Finding
from trailvault.workflows.vault.parts import OpenChannel
from trailvault.workflows.vault.proving import Proving

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "DEFAULT_MAX_FUTURE_SKEW", "Vault"]

DEFAULT_MAX_EVENT_BYTES = 1 << 20
DEFAULT_MAX_FUTURE_SKEW = 300.0
_MAX_REPORTED_FAILURES = 100
_SORTED = orjson.OPT_SORT_KEYS
_REDACTION_SCHEMA = {
    "fields": [
        {"name": "redacted_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "redacted_seq", "type": "INTEGER", "mode": "REQUIRED"},
        {"name": "reason", "type": "STRING", "mode": "REQUIRED"},
    ]
}


class Vault(Finding, Proving, ApiKeys, Exporting, Archiving, VaultAPI):
    """One app's view of a vault.

    Thread-safe: posts from many threads share transactions (group commit).
    Use as a context manager, or call :meth:`close`. :meth:`for_app` gives the
    view of another app over the same store (what a server holds per app).
    """

    def __init__(
        self,
        store: Store,
        *,
        app: str = "default",
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW,
        checkpointer: Checkpointer | None = None,
        reopen: Callable[[], Store] | None = None,
        committer: GroupCommitter | None = None,
        archive: ArchiveSettings | None = None,
        signer_record: Path | None = None,
    ) -> None:
        self.app = check_name(app, field="app")
        self.archive_settings = archive or ArchiveSettings()
        self._batching = []
        self._store = store
        # Opens another connection to the same store in a worker process (verify's jobs).
        self._reopen = reopen
        self._checkpointer = checkpointer
        self._signer_record = signer_record
        self._max_event_bytes = max_event_bytes
        self._max_future_skew_us = int(max_future_skew * 1_000_000)
        # A view made by for_app shares its origin's committer, so posts of every app
        # share transactions, and leaves closing the store to its origin.
        self._owns_store = committer is None
        self._committer = GroupCommitter(store.append) if committer is None else committer
        self._channels: dict[str, OpenChannel] = {}
        self._open_lock = threading.Lock()
        self._views: dict[str, Vault] = {self.app: self}

    def for_app(self, app: str) -> Vault:
        """Return the view of app ``app`` over the same store: same committer, checkpoints and limits.

        Views are kept and reused; closing one does nothing (close this vault instead).
        """
        view = self._views.get(app)
        if view is None:
            with self._open_lock:
                view = self._views.get(app)
                if view is None:
                    view = Vault(
                        self._store,
                        app=app,
                        max_event_bytes=self._max_event_bytes,
                        max_future_skew=self._max_future_skew_us / 1_000_000,
                        checkpointer=self._checkpointer,
                        reopen=self._reopen,
                        committer=self._committer,
                        archive=self.archive_settings,
                        signer_record=self._signer_record,
                    )
                    view._views = self._views
                    self._views[app] = view
        return view

    def apps(self) -> list[str]:
        """Return every app of the vault (for vault-wide work such as automated archiving), sorted."""
        return self._store.app_names()

    @property
    def queue_depth(self) -> int:
        """Batches waiting for the group committer (for metrics)."""
        return self._committer.queue_depth

    @property
    def location(self) -> str:
        return self._store.location

    def close(self) -> None:
        for view in list(self._views.values()):
            view.wait_for_batching()
        if not self._owns_store:
            return
        try:
            if self._checkpointer is not None:
                self._checkpointer.stop()
        finally:
            self._store.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- channels ----------------------------------------------------------------

    def open(self, channel: str, schema: SchemaSource | None = None) -> bool:
        if schema is not None:
            _refuse_reserved(channel)
        return self._open(channel, schema)

    def _open(self, channel: str, schema: SchemaSource | None) -> bool:
        check_name(channel, field="channel")
        if schema is None:
            self._channel_state(channel)
            return True
        document = schema if not isinstance(schema, (str, Path)) else read_schema_document(schema)
        proposed = parse_schema(document)
        with self._open_lock:
            for attempt in range(2):
                try:
                    self._save_schema(channel, proposed)
                    break
                except Conflict:
                    if attempt:
                        raise
            self._channels.pop(channel, None)
        return True

    def _save_schema(self, channel: str, proposed: Schema) -> None:
        record = self._store.get_channel(self.app, channel)
        now = _now_us()
        if record is None:
            self._store.save_channel_version(self.app, channel, 1, proposed.to_document(), proposed.index_paths(), now)
            return
        evolved = evolve(parse_schema(record.schema_document), proposed)
        if evolved is not None:
            self._store.save_channel_version(
                self.app, channel, record.version + 1, evolved.to_document(), evolved.index_paths(), now
            )

    def channels(self) -> list[Channel]:
        return [_channel(record) for record in self._store.list_channels(self.app)]

    def channel(self, name: str) -> Channel:
        return _channel(self._channel_state(name, refresh=True).record)

    def _channel_state(self, name: str, *, refresh: bool = False) -> OpenChannel:
        state = None if refresh else self._channels.get(name)
        if state is None:
            record = self._store.get_channel(self.app, name)
            if record is None:
                raise ChannelNotFound(
                    f"channel: {name!r} was never opened; open it first with a schema "
                    f"(trailvault channels open {name} --schema FILE)",
                    field="channel",
                )
            schema = parse_schema(record.schema_document)
            state = OpenChannel(record, schema, schema.timestamp_field())
            self._channels[name] = state
        return state

    # -- posting -----------------------------------------------------------------

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
        _refuse_reserved(channel)
        state = self._channel_state(channel)
        received_us = _now_us()
        try:
            pending = self._prepare(state, values, id, time, received_us)
        except ValidationFailed:
            fresh = self._fresher(channel, state)
            if fresh is None:
                raise
            pending = self._prepare(fresh, values, id, time, received_us)
        posted = self._committer.submit((pending,))[0]
        return self.receipt(posted.seq) if wait else posted

    def _fresher(self, channel: str, state: OpenChannel) -> OpenChannel | None:
        """Return the channel's newer schema version when another writer added one, else None."""
        fresh = self._channel_state(channel, refresh=True)
        return None if fresh.record.version == state.record.version else fresh

    def post_many(
        self,
        channel: str,
        items: Iterable[Mapping[str, Any] | str | bytes | NewEvent],
    ) -> list[Posted]:
        return self._committer.submit(self._checked(channel, items))

    def post_many_nowait(
        self,
        channel: str,
        items: Iterable[Mapping[str, Any] | str | bytes | NewEvent],
        *,
        posted_by: str | None = None,
    ) -> Future[list[Posted]]:
        """Check the items here and now (raising as :meth:`post_many` does), then return a future of
        their Posted without waiting for the disk: for event loops, which must not block.

        ``posted_by`` is the id of the API key posting (a server passes it): a taken id is then a
        ``duplicate`` only for the same key's retry, and IdConflict for any other post, so a key
        learns nothing of stored content from the answer (:func:`~trailvault.core.event.fingerprint`)."""
        return self._committer.submit_nowait(self._checked(channel, items, posted_by))

    def _checked(self, channel: str, items: Iterable[Any], posted_by: str | None = None) -> list[PendingEvent]:
        _refuse_reserved(channel)
        state = self._channel_state(channel)
        batch = list(items)
        received_us = _now_us()
        try:
            return self._prepare_all(state, batch, received_us, posted_by)
        except BatchRejected:
            # Another process may have added fields to the schema since we loaded it.
            fresh = self._fresher(channel, state)
            if fresh is None:
                raise
            return self._prepare_all(fresh, batch, received_us, posted_by)

    def _prepare_all(
        self, state: OpenChannel, batch: list[Any], received_us: int, posted_by: str | None
    ) -> list[PendingEvent]:
        pending: list[PendingEvent] = []
        failures: list[tuple[int, TrailvaultError]] = []
        for index, item in enumerate(batch):
            try:
                if isinstance(item, NewEvent):
                    pending.append(self._prepare(state, item.body, item.id, item.time, received_us, posted_by))
                else:
                    pending.append(self._prepare(state, item, None, None, received_us))
            except TrailvaultError as exc:
                failures.append((index, exc))
                if len(failures) >= _MAX_REPORTED_FAILURES:
                    break
        if failures:
            raise BatchRejected(failures, len(batch))
        return pending

    def _prepare(
        self,
        state: OpenChannel,
        values: Any,
        event_id: Any,
        given_time: datetime | str | None,
        received_us: int,
        posted_by: str | None = None,
    ) -> PendingEvent:
        """Check one event against its channel and encode it; the hot path of ingest."""
        if isinstance(values, (str, bytes)):
            if len(values) > 4 * self._max_event_bytes:
                raise self._too_large(len(values))
            values = decode_json(values, field="body")
        body = state.schema.validate(values)
        time_field = state.timestamp_field
        if given_time is not None:
            time_us = parse_timestamp(given_time, field="time")
        elif time_field is not None and body.get(time_field) is not None:
            time_us = parse_timestamp(body[time_field], field=time_field)
        else:
            time_us = received_us
        if time_us - received_us > self._max_future_skew_us:
            raise self._skew(time_us, received_us)
        posted_bytes = None
        if time_field is not None and body.get(time_field) is None:
            # Platform 6's client fills in the timestamp field when the producer leaves it out.
            if event_id is not None:
                posted_bytes = orjson.dumps(body, option=_SORTED)
            body = {**body, time_field: format_timestamp(time_us)}
        try:
            body_bytes = orjson.dumps(body, option=_SORTED)
        except TypeError as exc:
            raise ValidationFailed(f"body: cannot be stored as JSON ({exc})", field="body") from None
        if len(body_bytes) > self._max_event_bytes:
            raise self._too_large(len(body_bytes))
        if b"\\u0000" in body_bytes and (where := nul_path(body)) is not None:
            raise ValidationFailed(
                f"{where}: text may not contain the NUL character (U+0000); remove or replace it", field=where
            )
        body_sha256 = hashlib.sha256(body_bytes).digest()
        if event_id is None:
            return PendingEvent(
                str(uuid_utils.uuid7()), self.app, state.record.name, time_us, received_us,
                body_bytes.decode(), body_sha256, None,
            )  # fmt: skip
        posted_sha256 = body_sha256 if posted_bytes is None else hashlib.sha256(posted_bytes).digest()
        given_time_us = time_us if given_time is not None else None
        return PendingEvent(
            check_id(event_id), self.app, state.record.name, time_us, received_us,
            body_bytes.decode(), body_sha256, fingerprint(state.record.name, given_time_us, posted_sha256, posted_by),
        )  # fmt: skip

    def _too_large(self, size: int) -> EventTooLarge:
        return EventTooLarge(
            f"body: the event is {size:,} bytes, over max_event_bytes = {self._max_event_bytes:,}; "
            "split it into smaller events or raise max_event_bytes",
            field="body",
        )

    def _skew(self, time_us: int, received_us: int) -> TimeSkew:
        ahead = (time_us - received_us) / 1_000_000
        return TimeSkew(
            f"time: {format_timestamp(time_us)} is {ahead:,.0f} s ahead of this vault's clock, over "
            f"max_future_skew = {self._max_future_skew_us / 1_000_000:g} s; fix the producer's clock "
            "or raise max_future_skew",
            field="time",
        )

    # -- reading -----------------------------------------------------------------

    def redact(self, event_id: str, reason: str) -> Posted:
        if not reason.strip():
            raise InvalidInput("reason: say why the body is removed (kept in the log)", field="reason")
        event = self.get(event_id)
        if event.channel in (REDACTIONS_CHANNEL, PURGES_CHANNEL, BATCHES_CHANNEL):
            raise InvalidInput(
                f"id: records of {event.channel} cannot be redacted: verify needs them to account for the log",
                field="id",
            )
        if event.body is None:
            raise Conflict(f"id: the body of {event.id!r} was already removed", field="id")
        state = self._own_channel(REDACTIONS_CHANNEL, _REDACTION_SCHEMA)
        record = {"redacted_id": event.id, "redacted_seq": event.seq, "reason": reason}
        return self._store.redact(self.app, event.seq, reason, self._prepare(state, record, None, None, _now_us()))

    def _own_channel(self, channel: str, schema: dict[str, Any]) -> OpenChannel:
        """One of trailvault's own channels, opened on first use."""
        try:
            return self._channel_state(channel)
        except ChannelNotFound:
            self._open(channel, schema)
            return self._channel_state(channel)

    def _record(self, channel: str, schema: dict[str, Any], values: Mapping[str, Any]) -> Posted:
        """Post to one of trailvault's own channels (which :meth:`post` refuses)."""
        state = self._own_channel(channel, schema)
        return self._committer.submit((self._prepare(state, values, None, None, _now_us()),))[0]

def _refuse_reserved(channel: str) -> None:
    if isinstance(channel, str) and channel.startswith(RESERVED_PREFIX):
        raise Forbidden(
            f"channel: {channel[:128]!r} is kept by trailvault itself (reads, redactions); write to another channel",
            field="channel",
        )


def _now_us() -> int:
    return clock.time_ns() // 1000


def _channel(record: ChannelRecord) -> Channel:
    return Channel(record.app, record.name, record.version, record.created_us, parse_schema(record.schema_document))
