"""Every rule of a key's view of its app, in-process: visibility, masking, refused filters and sorts, log hashes,
whole bodies, archiving, keys, and the record of reads (trailvault.keyview, no HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import trailvault
from tests.server.test_masking import CARDS, PLAIN, VISITS
from trailvault.core.api_key import ApiKey
from trailvault.core.batches import ArchiveSettings
from trailvault.core.channel import READS_CHANNEL
from trailvault.core.integrity.note import Verifier
from trailvault.core.integrity.receipt import check_receipt
from trailvault.core.schema.model import MASKED
from trailvault.errors import (
    ChannelNotFound,
    Conflict,
    EventNotFound,
    Forbidden,
    IdConflict,
    InvalidQuery,
    NotFound,
    TrailvaultError,
)
from trailvault.workflows.keyview import KeyView
from trailvault.workflows.vault.vault import Vault

FROM, TO = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    """A SQLite vault whose app has cards (a sensitive PIN), visits (a sensitive time) and plain channels."""
    with trailvault.open_vault(tmp_path / "vault", archive=ArchiveSettings(retention=0)) as opened:
        for name, schema in (("cards", CARDS), ("visits", VISITS), ("plain", PLAIN)):
            opened.open(name, schema)
        opened.post("cards", {"holder": "ann", "pin": "1234", "timestamp": "2024-10-07T09:00:00Z"}, id="card-1")
        for index in range(3):
            opened.post("visits", {"clinic": f"c{index}", "timestamp": f"2024-10-0{7 - index}T09:15:00Z"})
        opened.post("plain", {"note": "hello"}, id="plain-1")
        yield opened


def view(vault: Vault, scopes: list[str], channels: list[str] | None = None, **options: Any) -> KeyView:
    """A view for a new key of the vault's app, made through the vault's key API."""
    key, _ = vault.create_key("test", scopes, channels)
    return KeyView(vault, key, **options)


def reads(vault: Vault, key: ApiKey) -> list[tuple[str, dict[str, Any]]]:
    """(action, request) of every read recorded for ``key``, oldest first."""
    if READS_CHANNEL not in {channel.name for channel in vault.channels()}:
        return []
    found = vault.events(READS_CHANNEL, filter=f'key_id eq "{key.id}"', sort_by="seq", limit=1000)
    return [(event.body["action"], orjson.loads(event.body["request"] or "{}")) for event in found]  # type: ignore[index]


def refused(error: type[TrailvaultError], field: str | None, call: Any, *args: Any, **kwargs: Any) -> str:
    """Call, expect ``error`` naming ``field``; return its message."""
    with pytest.raises(error) as caught:
        result = call(*args, **kwargs)
        if isinstance(result, Iterator):
            next(result)
    assert caught.value.field == field, caught.value
    return caught.value.message


# -- visibility ---------------------------------------------------------------------------------


def test_a_key_limited_to_channels_sees_only_those_channels(vault: Vault) -> None:
    """channels() lists only the key's channels; a key of every channel lists them all."""
    assert [channel.name for channel in view(vault, ["read"], ["plain"]).channels()] == ["plain"]
    assert {channel.name for channel in view(vault, ["read"]).channels()} >= {"cards", "visits", "plain"}


def test_a_channel_the_key_may_not_use_is_answered_as_one_never_opened(vault: Vault) -> None:
    """show, open, post, list and export of another channel raise ChannelNotFound like a channel never opened."""
    limited = view(vault, ["admin", "unmask"], ["plain"])
    hidden = refused(ChannelNotFound, "channel", limited.channel, "cards")
    assert hidden == refused(ChannelNotFound, "channel", limited.visible, "cards")
    assert "cards" in hidden and "never opened" in hidden
    refused(ChannelNotFound, "channel", limited.open, "cards", CARDS)
    refused(ChannelNotFound, "channel", limited.post_nowait, "cards", [{"holder": "bob"}])
    refused(ChannelNotFound, "channel", limited.events, "cards")
    refused(ChannelNotFound, "channel", limited.export_lines, "cards")
    assert len(vault.events("cards")) == 1


def test_an_event_of_a_channel_the_key_may_not_use_is_answered_as_one_that_does_not_exist(vault: Vault) -> None:
    """get, receipt, redact and an inclusion proof of a hidden event raise the EventNotFound of an unknown id."""
    limited = view(vault, ["admin", "unmask"], ["plain"])
    unknown = refused(EventNotFound, "id", limited.get, "no-such-id").replace("no-such-id", "card-1")
    assert refused(EventNotFound, "id", limited.get, "card-1") == unknown
    for call in (limited.receipt, lambda event_id: limited.redact(event_id, "why"), limited.inclusion_proof):
        assert refused(EventNotFound, "id", call, "card-1") == unknown
    assert vault.get("card-1").body is not None


def test_a_key_acts_only_in_its_own_app(vault: Vault) -> None:
    """A view of another app's key over this app's vault sees that app's channels and events, not these."""
    other = vault.for_app("other")
    other.open("plain", PLAIN)
    key, _ = other.create_key("other", ["read", "unmask"])
    foreign = KeyView(vault, key)
    assert [channel.name for channel in foreign.channels()] == ["plain"]
    refused(EventNotFound, "id", foreign.get, "plain-1")
    assert foreign.events().events == []


def test_a_listing_without_a_channel_holds_only_the_keys_channels(vault: Vault) -> None:
    """A key limited to channels lists only their events when it names no channel."""
    assert {event.channel for event in view(vault, ["read"], ["plain"]).events()} == {"plain"}
    assert {event.channel for event in view(vault, ["read"]).events()} >= {"cards", "visits", "plain"}


# -- masking --------------------------------------------------------------------------------------


def test_sensitive_values_read_masked_in_listings_and_gets_without_unmask(vault: Vault) -> None:
    """Without unmask a listing and a get show the PIN as [masked], the other fields as posted."""
    reader = view(vault, ["read"])
    (listed,) = reader.events("cards")
    got = reader.get("card-1")
    for event in (listed, got):
        assert event.body is not None and (event.body["holder"], event.body["pin"]) == ("ann", MASKED)
        assert event.to_dict()["time"].startswith("2024-10-07T09:00:00")


def test_time_from_a_sensitive_field_reads_masked_and_lists_in_log_order(vault: Vault) -> None:
    """Where time comes from a sensitive field it reads [masked] and a listing's default order is seq, not time."""
    page = view(vault, ["read"]).events("visits")
    assert [event.to_dict()["time"] for event in page] == [MASKED] * 3
    assert [event.body["clinic"] for event in page] == ["c0", "c1", "c2"]  # type: ignore[index]


def test_unmask_lifts_masking(vault: Vault) -> None:
    """With unmask, listings and gets show sensitive values and times as posted, ordered by time."""
    unmasked = view(vault, ["read", "unmask"])
    assert unmasked.get("card-1").body["pin"] == "1234"  # type: ignore[index]
    page = unmasked.events("visits")
    assert [event.body["clinic"] for event in page] == ["c2", "c1", "c0"]  # type: ignore[index]
    assert MASKED not in [event.to_dict()["time"] for event in page]


def test_filters_and_sorts_on_a_masked_field_are_refused(vault: Vault) -> None:
    """A filter on a sensitive field (or a pr test of it) and a sort by it are Forbidden, naming the parameter."""
    reader = view(vault, ["read"])
    assert "unmask" in refused(Forbidden, "filter", reader.events, "cards", filter='pin eq "1234"')
    refused(Forbidden, "filter", reader.events, filter='holder eq "ann" or pin pr')
    refused(Forbidden, "sort_by", reader.events, "cards", sort_by="pin")
    assert [event.id for event in reader.events("cards", filter='holder eq "ann"', sort_by="holder")] == ["card-1"]


def test_time_bounds_sorts_and_filters_are_refused_where_time_is_masked(vault: Vault) -> None:
    """Where time comes from a sensitive field, from, to, sort_by=time and a filter on time are Forbidden."""
    reader = view(vault, ["read"])
    assert "comes from a sensitive field" in refused(Forbidden, "from", reader.events, "visits", time_from=FROM)
    refused(Forbidden, "to", reader.events, "visits", time_to=TO)
    refused(Forbidden, "sort_by", reader.events, "visits", sort_by="time")
    refused(Forbidden, "filter", reader.events, "visits", filter=f'time lt "{TO}"')
    assert len(reader.events("cards", time_from=FROM, time_to=TO)) == 1  # time of cards is plain


def test_unmask_allows_filters_sorts_and_bounds_on_sensitive_fields(vault: Vault) -> None:
    """With unmask a filter and sort on the PIN and time bounds on visits are answered."""
    unmasked = view(vault, ["read", "unmask"])
    assert [event.id for event in unmasked.events("cards", filter='pin eq "1234"', sort_by="pin")] == ["card-1"]
    assert len(unmasked.events("visits", time_from="2024-10-06T00:00:00Z", time_to=TO)) == 2


# -- whole bodies: export and archive lines ---------------------------------------------------------


def test_export_lines_are_refused_without_unmask_when_the_app_has_sensitive_fields(vault: Vault) -> None:
    """An export carries bodies as hashed, so a key without unmask is refused, even one limited to a plain channel."""
    for exporter in (view(vault, ["archive"]), view(vault, ["archive"], ["plain"])):
        assert "an export carries bodies" in refused(Forbidden, "scopes", exporter.export_lines)


def test_export_lines_with_unmask_carry_bodies_as_posted_of_the_keys_channels_only(vault: Vault) -> None:
    """With unmask the lines carry the PIN as posted; a key limited to channels gets only theirs and their schemas."""
    everything = b"".join(view(vault, ["archive", "unmask"]).export_lines(channel="cards"))
    assert b'"1234"' in everything
    lines = [orjson.loads(line) for line in view(vault, ["archive", "unmask"], ["plain"]).export_lines()]
    assert set(lines[0]["schemas"]) == {"plain"}
    assert lines[-1]["count"] == 1 and b"hello" in orjson.dumps(lines[1:-1])


def archive_id(vault: Vault) -> str:
    task_id = vault.batch_events_for_archiving(FROM, TO, wait=True)
    (batch,) = vault.get_batch_events_for_archiving_status(task_id).batches
    return batch.archive_id


def test_archive_lines_need_a_key_of_the_whole_app_that_holds_unmask(vault: Vault) -> None:
    """Archive lines and proofs are Forbidden to a key limited to channels, and without unmask to any key."""
    batch = archive_id(vault)
    limited = view(vault, ["archive", "unmask"], ["plain"])
    for call in (limited.archive_lines, limited.archive_proof):
        assert "not limited to channels" in refused(Forbidden, "channels", call, batch)
    refused(Forbidden, "channels", limited.require_whole_app)
    masked = view(vault, ["archive"])
    for call in (masked.archive_lines, masked.archive_proof):
        assert "archive files carry bodies" in refused(Forbidden, "scopes", call, batch)


def test_archive_lines_with_unmask_carry_bodies_as_posted(vault: Vault) -> None:
    """With unmask the batch's lines carry the PIN as posted; a proof for a changed batch is a Conflict."""
    batch = archive_id(vault)
    archiver = view(vault, ["archive", "unmask"])
    lines = list(archiver.archive_lines(batch))
    assert any(b'"1234"' in line for _, line in lines)
    assert archiver.archive_proof(batch, len(lines), lines[-1][0])["checkpoint"]
    refused(Conflict, "archiveId", archiver.archive_proof, batch, len(lines) + 1, lines[-1][0])


# -- log hashes: receipts, proofs, checkpoints -------------------------------------------------------


def test_log_hashes_are_refused_without_unmask_to_a_key_that_sees_sensitive_fields(vault: Vault) -> None:
    """Receipts, inclusion and consistency proofs and checkpoints are Forbidden, naming the channel and unmask."""
    reader = view(vault, ["read"])
    message = refused(Forbidden, "scopes", reader.receipt, "plain-1")
    assert "a receipt holds hashes of the log" in message and "'cards'" in message and "unmask" in message
    refused(Forbidden, "scopes", reader.inclusion_proof, "plain-1")
    refused(Forbidden, "scopes", reader.consistency_proof, 1, 2)
    refused(Forbidden, "scopes", reader.checkpoint)


def test_receipts_go_to_a_key_of_channels_without_sensitive_fields_or_one_with_unmask(vault: Vault) -> None:
    """A key limited to the plain channel, and a key with unmask, get receipts that check offline."""
    verifier = Verifier.parse(vault.verifier_key())
    check_receipt(view(vault, ["read"], ["plain"]).receipt("plain-1"), verifier)
    check_receipt(view(vault, ["read", "unmask"]).receipt("card-1"), verifier)
    plain = view(vault, ["read"], ["plain"])
    assert plain.inclusion_proof("plain-1").to_dict()["seq"] == vault.get("plain-1").seq
    assert plain.checkpoint().size >= 1


def test_a_key_limited_to_channels_asks_for_inclusion_by_event_id(vault: Vault) -> None:
    """An inclusion proof by seq is refused (InvalidQuery on seq) to a key limited to channels."""
    assert "by event id" in refused(InvalidQuery, "seq", view(vault, ["read"], ["plain"]).inclusion_proof, seq=1)
    assert view(vault, ["read", "unmask"]).inclusion_proof(seq=1).to_dict()["seq"] == 1


# -- recorded reads -----------------------------------------------------------------------------------


def test_reads_of_events_receipts_proofs_exports_and_archive_lines_are_recorded(vault: Vault) -> None:
    """Listing, get, receipt, inclusion proof, export and archive lines each record one read, with its request."""
    reader = view(vault, ["admin", "unmask"])
    reader.events("cards", filter='holder eq "ann"', limit=5)
    reader.get("card-1")
    reader.receipt("card-1")
    reader.inclusion_proof("card-1", size=None)
    list(reader.export_lines(channel="plain"))
    batch = archive_id(vault)
    list(reader.archive_lines(batch))
    assert reads(vault, reader.key) == [
        ("events.list", {"channel": "cards", "filter": 'holder eq "ann"', "limit": "5"}),
        ("events.get", {"id": "card-1"}),
        ("events.receipt", {"id": "card-1"}),
        ("proofs.inclusion", {"event": "card-1"}),
        ("export", {"channel": "plain"}),
        ("archive.list-events-in-archive-batch", {"archiveId": batch}),
    ]


def test_channels_checkpoints_consistency_proofs_and_refused_reads_are_not_recorded(vault: Vault) -> None:
    """Channels, checkpoints, consistency proofs, archive proofs and a read refused before it ran record nothing."""
    reader = view(vault, ["admin", "unmask"], ["cards", "plain"])
    reader.channels()
    reader.channel("cards")
    vault.issue_checkpoint()
    reader.consistency_proof(1, reader.checkpoint().size)
    reader.keys()
    refused(EventNotFound, "id", reader.get, "no-such-id")
    refused(ChannelNotFound, "channel", reader.events, "visits")
    refused(Forbidden, "channels", reader.archive_lines, "no-such-batch")
    assert reads(vault, reader.key) == []


def test_reads_are_not_recorded_when_record_reads_is_off(vault: Vault) -> None:
    """record_reads=False (the server's audit_reads = false) answers reads and records none."""
    quiet = view(vault, ["read", "unmask"], record_reads=False)
    quiet.events()
    quiet.get("card-1")
    quiet.receipt("card-1")
    assert reads(vault, quiet.key) == []


def test_recorded_reads_hold_no_sensitive_value(vault: Vault) -> None:
    """A key with unmask filtering on the PIN is recorded with the value masked."""
    unmasked = view(vault, ["read", "unmask"])
    unmasked.events("cards", filter='pin eq "1234"')
    assert reads(vault, unmasked.key) == [("events.list", {"channel": "cards", "filter": f'pin eq "{MASKED}"'})]


# -- posting and keys ---------------------------------------------------------------------------------


def test_posts_are_made_as_the_key(vault: Vault) -> None:
    """A post through a view is the key's: its retry is a duplicate, another key's post of the id is IdConflict."""
    first, second = view(vault, ["ingest"]), view(vault, ["ingest"])
    item = trailvault.NewEvent({"note": "n"}, "note-1")
    assert first.post_nowait("plain", [item]).result()[0].duplicate is False
    assert first.post_nowait("plain", [item]).result()[0].duplicate is True
    with pytest.raises(IdConflict):
        second.post_nowait("plain", [item]).result()


def test_a_key_limited_to_channels_manages_only_keys_within_them(vault: Vault) -> None:
    """It lists and revokes only keys limited to its channels, and creates only such keys."""
    admin = view(vault, ["admin"], ["plain", "cards"])
    wide, _ = vault.create_key("wide", ["read"])
    narrow, _ = vault.create_key("narrow", ["read"], ["plain"])
    listed = {key.id for key in admin.keys()}
    assert narrow.id in listed and wide.id not in listed and admin.key.id in listed
    unknown = refused(NotFound, "id", admin.revoke_key, "0" * 16)
    assert refused(NotFound, "id", admin.revoke_key, wide.id) == unknown.replace("0" * 16, wide.id)
    assert admin.revoke_key(narrow.id).revoked_us is not None
    refused(Forbidden, None, admin.create_key, "all", ["read"], None)
    refused(Forbidden, None, admin.create_key, "other", ["read"], ["visits"])
    assert admin.create_key("mine", ["read"], ["plain"])[0].channels == ("plain",)


def test_a_key_gives_no_scope_it_lacks(vault: Vault) -> None:
    """An admin key without unmask cannot create a key with unmask; with it, it can."""
    assert "cannot give unmask" in refused(Forbidden, "scopes", view(vault, ["admin"]).create_key, "u", ["unmask"])
    assert "unmask" in view(vault, ["admin", "unmask"]).create_key("u", ["read", "unmask"])[0].scopes
