"""The finding half of a :class:`~trailvault.workflows.vault.vault.Vault`: one event by id, a query's events by page."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from trailvault.core.event import (
    Event,
    EventPage,
)
from trailvault.core.query import (
    MAX_LIMIT,
    SORT_FIELDS,
    And,
    EventQuery,
    Filter,
    decode_page_token,
    encode_page_token,
    equality_filter,
    filtered_channels,
    query_time,
    typed_filter,
)
from trailvault.core.schema import FieldType, Mode, Schema, parse_schema
from trailvault.core.scim import parse_filter
from trailvault.errors import (
    EventNotFound,
    InvalidQuery,
)
from trailvault.workflows.vault.parts import OpenChannel, VaultParts

__all__ = ["Finding"]

_SORT_ORDERS = {"asc": False, "desc": True}


class Finding(VaultParts):
    """Getting and listing one app's events; mixed into :class:`~trailvault.workflows.vault.vault.Vault`."""

    def get(self, event_id: str) -> Event:
        event = self._store.get_event(self.app, str(event_id))
        if event is None:
            raise EventNotFound(f"id: no event with id {str(event_id)[:128]!r} in app {self.app!r}", field="id")
        return event

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
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidQuery(f"limit: {limit} is out of range; use 1 to {MAX_LIMIT}", field="limit")
        query = self._query(channel, time_from, time_to, where, filter, sort_by, sort_order, limit + 1)
        if page:
            query = query.starting_after(decode_page_token(page, query))
        found = self._store.find_events(query)
        if len(found) <= limit:
            return EventPage(found, None)
        shown = found[:limit]
        return EventPage(shown, encode_page_token(query, _cursor(shown[-1], query.sort_by)))

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
        query = self._query(channel, time_from, time_to, where, filter, sort_by, sort_order, MAX_LIMIT)
        while True:
            found = self._store.find_events(query)
            yield from found
            if len(found) < query.limit:
                return
            query = query.starting_after(_cursor(found[-1], query.sort_by))

    def _query(
        self,
        channel: str | None,
        time_from: datetime | str | None,
        time_to: datetime | str | None,
        where: Mapping[str, Any] | None,
        filter: str | Filter | None,  # noqa: A002
        sort_by: str,
        sort_order: str,
        limit: int,
    ) -> EventQuery:
        descending = _SORT_ORDERS.get(str(sort_order).lower())
        if descending is None:
            raise InvalidQuery(f"sort_order: use asc or desc, not {sort_order!r}", field="sort_order")
        schema = self._channel_state(channel).schema if channel is not None else None
        sort_kind = None if sort_by in SORT_FIELDS else _sort_kind(schema, sort_by)
        parts = [equality_filter(where, schema)] if where else []
        if filter is not None:
            parts.append(self._typed_filter(channel, parse_filter(filter) if isinstance(filter, str) else filter))
        return EventQuery(
            app=self.app,
            channel=channel,
            time_from=None if time_from is None else query_time(time_from, "from"),
            time_to=None if time_to is None else query_time(time_to, "to"),
            filter=None if not parts else parts[0] if len(parts) == 1 else And(tuple(parts)),
            sort_by=sort_by,
            descending=descending,
            limit=limit,
            sort_kind=sort_kind,
        )

    def _typed_filter(self, channel: str | None, tree: Filter) -> Filter:
        """Check a filter against the schemas of the channels it reads (query.typed_filter).

        Schemas are read only when the filter names a body path. A field unknown to the
        cached schema is looked for again in the stored one: another process may have added it.
        """
        if channel is None:
            # A key limited to channels lists with "channel in [...]": its filter is checked
            # against those channels only, so it learns nothing of the others' fields.
            limited = filtered_channels(tree)
            return typed_filter(
                tree, lambda: {name: s for name, s in self._app_schemas().items() if limited is None or name in limited}
            )
        state = self._channel_state(channel)
        try:
            return typed_filter(tree, lambda: {channel: state.schema})
        except InvalidQuery:
            fresh = self._fresher(channel, state)
            if fresh is None:
                raise
            return typed_filter(tree, lambda: {channel: fresh.schema})

    def _app_schemas(self) -> dict[str, Schema]:
        """Every channel's schema, parsed again only when its version changed since last read."""
        schemas = {}
        for record in self._store.list_channels(self.app):
            state = self._channels.get(record.name)
            if state is None or state.record.version != record.version:
                schema = parse_schema(record.schema_document)
                state = self._channels[record.name] = OpenChannel(record, schema, schema.timestamp_field())
            schemas[record.name] = state.schema
        return schemas


def _cursor(event: Event, sort_by: str) -> tuple[Any, int]:
    if sort_by in SORT_FIELDS:
        return ({"time": event.time_us, "received": event.received_us, "seq": event.seq}[sort_by], event.seq)
    value: Any = event.body
    for name in sort_by.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    # As the stores read it: booleans as 1/0, anything not a scalar as missing.
    if isinstance(value, bool):
        value = int(value)
    elif not isinstance(value, (int, float, str)):
        value = None
    return (value, event.seq)


_SORT_KINDS = {FieldType.INTEGER: "number", FieldType.FLOAT: "number", FieldType.BOOLEAN: "boolean"}


def _sort_kind(schema: Schema | None, sort_by: str) -> str:
    """How the channel's body field ``sort_by`` sorts; raise InvalidQuery when it cannot be sorted by."""
    if schema is None:
        raise InvalidQuery(
            f"sort_by: sorting by the body field {sort_by[:80]!r} needs a channel (its schema gives the type)",
            field="sort_by",
        )
    found = schema.field(sort_by)
    if found is None or found.type is FieldType.RECORD or found.mode is Mode.REPEATED:
        raise InvalidQuery(
            f"sort_by: {sort_by[:80]!r} is not a single-valued field of the channel's schema; use one that is, "
            f"or one of {', '.join(SORT_FIELDS)}",
            field="sort_by",
        )
    return _SORT_KINDS.get(found.type, "text")
