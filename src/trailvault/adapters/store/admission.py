"""Admission of batches into the log, shared by every store backend.

Inside the store's append transaction (after it has locked the sequence), each batch
gets consecutive seqs and its leaf hashes, or is kept out whole when one of its
producer-given ids is already taken by another post. An id taken by the same post (same
fingerprint: content, and the API key that posted it) is a retry: it gets the kept seq
back, marked ``duplicate``. The refusal says only that the id is taken, never whether the
content matched, so it answers no guess about what is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from trailvault.adapters.store.base import AppendOutcome
from trailvault.core.event import PendingEvent, Posted, fingerprint
from trailvault.core.integrity.log import LeafParts, entry_leaf, leaf_from_parts
from trailvault.errors import IdConflict

__all__ = ["Admitted", "Kept", "admit", "given_ids"]


class Kept(NamedTuple):
    """What an idempotency check needs to know about an event already in the log."""

    seq: int
    channel_key: int
    body_sha256: bytes
    fingerprint: bytes | None


class Admitted(NamedTuple):
    """An outcome per batch; the event rows to insert (in the events table's column order), their
    leaves, and where each row's event was among all the batches' events (counted across batches)."""

    outcomes: list[AppendOutcome]
    rows: list[tuple[Any, ...]]
    leaves: list[bytes]
    origins: list[int]


#: (app, channel) of an event to (app_key, channel_key); raises ChannelNotFound.
KeysFor = Callable[[PendingEvent], tuple[int, int]]
#: The kept events among a batch's producer-given ids, by (app_key, id).
KeptIds = Callable[[Sequence[PendingEvent]], Mapping[tuple[int, str], Kept]]


def admit(
    batches: Sequence[Sequence[PendingEvent]],
    next_seq: int,
    keys_for: KeysFor,
    kept_ids: KeptIds,
    parts: Sequence[Sequence[LeafParts]] | None = None,
) -> Admitted:
    """Give each batch's new events their seqs (from ``next_seq``) and leaf hashes; keep out conflicting batches.

    ``parts`` (shaped like ``batches``) holds each event's :func:`leaf_parts`, computed
    before the caller locked the sequence; without it the leaves are computed whole here.
    """
    admitted = Admitted([], [], [], [])
    accepted: dict[tuple[int, str], Kept] = {}
    first_of_batch = 0
    for number, batch in enumerate(batches):
        batch_parts = parts[number] if parts is not None else None
        staged_origins: list[int] = []
        staged: list[tuple[Any, ...]] = []
        staged_leaves: list[bytes] = []
        staged_ids: dict[tuple[int, str], Kept] = {}
        posted: list[Posted] = []
        kept = kept_ids(batch) if any(event.fingerprint is not None for event in batch) else {}
        conflict: IdConflict | None = None
        last_names: tuple[str, str] | None = None
        app_key = channel_key = 0
        for position, event in enumerate(batch):
            if (event.app, event.channel) != last_names:
                app_key, channel_key = keys_for(event)
                last_names = (event.app, event.channel)
            if event.fingerprint is not None:
                key = (app_key, event.id)
                prior = staged_ids.get(key) or accepted.get(key) or kept.get(key)
                if prior is not None:
                    if not _same_content(prior, channel_key, event):
                        conflict = IdConflict(
                            f"id: {event.id!r} is taken in this app; use a new id (only the same post, "
                            "repeated exactly by the same key, is a retry that answers the kept seq)",
                            field="id",
                        )
                        break
                    posted.append(Posted(event.id, prior.seq, True))
                    continue
                staged_ids[key] = Kept(next_seq + len(staged), channel_key, event.body_sha256, event.fingerprint)
            seq = next_seq + len(staged)
            # PendingEvent ends with the remaining columns, in the table's order.
            staged.append((seq, event.id, app_key, channel_key, *event[3:]))
            if batch_parts is not None:
                staged_leaves.append(leaf_from_parts(batch_parts[position], seq))
            else:
                staged_leaves.append(entry_leaf(event, seq, event.body_sha256))
            staged_origins.append(first_of_batch + position)
            posted.append(Posted(event.id, seq))
        first_of_batch += len(batch)
        if conflict is not None:
            admitted.outcomes.append(conflict)
            continue
        admitted.rows.extend(staged)
        admitted.leaves.extend(staged_leaves)
        admitted.origins.extend(staged_origins)
        accepted.update(staged_ids)
        next_seq += len(staged)
        admitted.outcomes.append(posted)
    return admitted


def given_ids(batch: Sequence[PendingEvent]) -> dict[str, list[str]]:
    """Return the producer-given ids of a batch, by app (generated ids cannot have been posted before)."""
    given: dict[str, list[str]] = {}
    for event in batch:
        if event.fingerprint is not None:
            given.setdefault(event.app, []).append(event.id)
    return given


def _same_content(prior: Kept, channel_key: int, event: PendingEvent) -> bool:
    if prior.fingerprint is not None:
        return prior.fingerprint == event.fingerprint
    # The kept event's id was generated here: it matches a post of the same body to the same
    # channel with no time, through the Python API (a key's fingerprint also holds the key).
    return prior.channel_key == channel_key and fingerprint(event.channel, None, prior.body_sha256) == event.fingerprint
