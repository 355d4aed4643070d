"""The public Vault API: channels, posting, idempotency, listing and paging."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

import trailvault
from trailvault import NewEvent, Vault
from trailvault.core.timestamps import parse_timestamp
from trailvault.errors import (
    BatchRejected,
    ChannelNotFound,
    EventNotFound,
    EventTooLarge,
    IdConflict,
    InvalidQuery,
    InvalidSchema,
    MalformedJSON,
    SchemaChangeRefused,
    TimeSkew,
    ValidationFailed,
    VaultNotFound,
)

from .conftest import ACCESS, EXAMPLES, MYINDEX, access_event


def test_open_creates_channel_and_returns_true(vault: Vault) -> None:
    """open() creates a channel from a schema document and returns True."""
    assert vault.open("myindex", MYINDEX) is True
    assert [channel.name for channel in vault.channels()] == ["myindex"]


def test_open_is_idempotent(vault: Vault) -> None:
    """Opening again with the same schema keeps version 1."""
    vault.open("myindex", MYINDEX)
    assert vault.open("myindex", MYINDEX) is True
    assert vault.channel("myindex").version == 1


def test_open_accepts_file_uri_and_path(vault: Vault) -> None:
    """A schema can be given as a file: URI or a plain path."""
    vault.open("a", (EXAMPLES / "myindex.json").as_uri())
    vault.open("b", str(EXAMPLES / "es-myindex.json"))
    assert vault.channel("a").schema.field("taxes.taxrate") is not None
    assert vault.channel("b").schema.field("taxes.taxrate") is not None


def test_open_without_schema_confirms_existing_channel(myindex: Vault) -> None:
    """open(id) with no schema is True for an existing channel (Platform 6's Groovy example)."""
    assert myindex.open("myindex") is True


def test_open_without_schema_refuses_unknown_channel(vault: Vault) -> None:
    """open(id) with no schema names the missing channel."""
    with pytest.raises(ChannelNotFound, match="'nope' was never opened"):
        vault.open("nope")


def test_adding_nullable_field_makes_new_version(myindex: Vault) -> None:
    """A schema that adds a NULLABLE field becomes version 2 and accepts the new field."""
    myindex.open("myindex", [*MYINDEX, {"name": "currency", "type": "STRING"}])
    assert myindex.channel("myindex").version == 2
    assert myindex.post("myindex", {"company": "A", "currency": "EUR"}).seq == 1


def test_other_schema_change_is_refused(myindex: Vault) -> None:
    """Changing a field's type is refused and the channel keeps its version."""
    changed = [dict(MYINDEX[0]), {"name": "amount", "type": "STRING"}, MYINDEX[2]]
    with pytest.raises(SchemaChangeRefused, match="amount"):
        myindex.open("myindex", changed)
    assert myindex.channel("myindex").version == 1


def test_second_vault_object_sees_new_schema_version(vault_location: str | Path, myindex: Vault) -> None:
    """A vault whose cached schema is stale reloads it when an event uses a newly added field."""
    with trailvault.open_vault(vault_location) as other:
        other.post("myindex", {"company": "warm the cache"})
        myindex.open("myindex", [*MYINDEX, {"name": "currency", "type": "STRING"}])
        assert other.post("myindex", {"company": "A", "currency": "EUR"}).seq == 2


def test_post_returns_consecutive_seqs(myindex: Vault) -> None:
    """Each post gets the next seq and a UUIDv7 id."""
    first = myindex.post("myindex", {"company": "Amalto", "amount": 101.12})
    second = myindex.post("myindex", '{"company": "Amalto"}')
    assert (first.seq, second.seq) == (1, 2)
    assert first.id[14] == "7"  # the UUID version digit


def test_post_keeps_normalised_body(myindex: Vault) -> None:
    """Integers given for FLOAT fields are kept as floats."""
    posted = myindex.post("myindex", {"company": "Amalto", "taxes": [{"salestax": 12.35, "taxrate": 10}]})
    assert myindex.get(posted.id).body == {"company": "Amalto", "taxes": [{"salestax": 12.35, "taxrate": 10.0}]}


def test_get_returns_envelope(myindex: Vault) -> None:
    """get() returns the envelope: app, channel, seq, time and received."""
    when = datetime(2024, 10, 7, 1, 0, tzinfo=UTC)
    posted = myindex.post("myindex", {"company": "Amalto"}, time=when)
    event = myindex.get(posted.id)
    assert (event.app, event.channel, event.seq, event.time) == ("default", "myindex", 1, when)
    assert event.received > when


def test_get_unknown_id(myindex: Vault) -> None:
    """get() of an unknown id raises EventNotFound naming it."""
    with pytest.raises(EventNotFound, match="no-such-id"):
        myindex.get("no-such-id")


def test_same_id_same_content_returns_existing_seq(myindex: Vault) -> None:
    """Re-posting an id with identical content stores nothing and returns the kept seq."""
    first = myindex.post("myindex", {"company": "A"}, id="order-1")
    again = myindex.post("myindex", {"company": "A"}, id="order-1")
    assert (again.seq, again.duplicate, first.duplicate) == (first.seq, True, False)
    assert len(myindex.events("myindex")) == 1


def test_repost_of_generated_id_is_a_duplicate(myindex: Vault) -> None:
    """A client that re-sends a trailvault-generated id with the same body gets the kept seq."""
    first = myindex.post("myindex", {"company": "A"})
    again = myindex.post("myindex", {"company": "A"}, id=first.id)
    assert (again.seq, again.duplicate) == (first.seq, True)


def test_a_taken_id_is_a_duplicate_only_for_the_key_that_posted_it(myindex: Vault) -> None:
    """With posted_by, only the same key's retry is a duplicate; any other post is one IdConflict, body right or not."""

    def post(body: dict[str, str], by: str | None) -> trailvault.Posted:
        (posted,) = myindex.post_many_nowait("myindex", [NewEvent(body, id="order-1")], posted_by=by).result()
        return posted

    first = post({"company": "A"}, "key-a")
    assert post({"company": "A"}, "key-a") == (first.id, first.seq, True)
    refusals = []
    for body, by in (({"company": "A"}, "key-b"), ({"company": "B"}, "key-b"), ({"company": "A"}, None)):
        with pytest.raises(IdConflict) as caught:
            post(body, by)
        refusals.append(caught.value.message)
    assert len(set(refusals)) == 1 and "seq 1" not in refusals[0]
    assert len(myindex.events("myindex")) == 1


def test_a_generated_id_is_taken_for_a_key_whatever_the_body(myindex: Vault) -> None:
    """A key re-posting an id trailvault generated gets IdConflict even with the very same body."""
    first = myindex.post("myindex", {"company": "A"})
    with pytest.raises(IdConflict):
        myindex.post_many_nowait("myindex", [NewEvent({"company": "A"}, id=first.id)], posted_by="key-a").result()


def test_recorded_reads_hold_no_sensitive_value(vault: Vault) -> None:
    """record_read masks values compared with sensitive fields (and time from one) in a filter, and from/to."""
    vault.open("visits", {"fields": [
        {"name": "pin", "type": "STRING", "sensitive": True},
        {"name": "timestamp", "type": "TIMESTAMP", "sensitive": True},
    ]})  # fmt: skip
    key, _ = vault.create_key("auditor", ["read", "unmask"])
    request = {"filter": 'pin eq "4821" or seq gt 3', "from": "2024-10-07T00:00Z", "to": None}
    vault.record_read(key, "events.list", request, 0)
    (record,) = vault.events("trailvault.reads")
    assert record.body is not None
    assert orjson.loads(record.body["request"]) == {"filter": '(pin eq "[masked]") or (seq gt 3)', "from": "[masked]"}


def test_duplicate_id_different_content_is_refused(myindex: Vault) -> None:
    """An existing id with different content raises IdConflict and stores nothing."""
    myindex.post("myindex", {"company": "A"}, id="order-1")
    with pytest.raises(IdConflict) as caught:
        myindex.post("myindex", {"company": "B"}, id="order-1")
    assert caught.value.field == "id"
    assert [event.body for event in myindex.events("myindex")] == [{"company": "A"}]


def test_duplicate_id_within_one_batch(myindex: Vault) -> None:
    """The same id twice in one batch with the same content is stored once."""
    posted = myindex.post_many("myindex", [NewEvent({"company": "A"}, id="x"), NewEvent({"company": "A"}, id="x")])
    assert [(p.seq, p.duplicate) for p in posted] == [(1, False), (1, True)]


def test_post_many_is_all_or_nothing(myindex: Vault) -> None:
    """A post_many with one bad event stores none of its events and names the bad one."""
    with pytest.raises(BatchRejected) as caught:
        myindex.post_many("myindex", [{"company": "A"}, {"amount": 1.0}, {"company": "C"}])
    assert [index for index, _ in caught.value.failures] == [1]
    assert caught.value.failures[0][1].field == "company"
    assert len(myindex.events("myindex")) == 0


def test_post_many_conflict_keeps_whole_batch_out(myindex: Vault) -> None:
    """A batch holding a conflicting id is refused whole."""
    myindex.post("myindex", {"company": "A"}, id="taken")
    with pytest.raises(IdConflict):
        myindex.post_many("myindex", [{"company": "new"}, NewEvent({"company": "other"}, id="taken")])
    assert myindex.events("myindex")[-1].seq == 1


# -- bad input, one test each ------------------------------------------------------


def test_missing_required_field(myindex: Vault) -> None:
    """A missing REQUIRED field is refused naming it."""
    with pytest.raises(ValidationFailed) as caught:
        myindex.post("myindex", {"amount": 1.0})
    assert caught.value.field == "company"
    assert "REQUIRED" in caught.value.message


def test_wrong_type(myindex: Vault) -> None:
    """A value of the wrong type is refused naming the field and the expected type."""
    with pytest.raises(ValidationFailed) as caught:
        myindex.post("myindex", {"company": "A", "amount": "lots"})
    assert caught.value.field == "amount"
    assert "FLOAT" in caught.value.message


def test_error_inside_nested_record(myindex: Vault) -> None:
    """An error inside a REPEATED RECORD names the element's path."""
    with pytest.raises(ValidationFailed) as caught:
        myindex.post("myindex", {"company": "A", "taxes": [{"taxrate": 1.0}, {"taxrate": "x"}]})
    assert caught.value.field == "taxes[1].taxrate"


def test_repeated_given_a_scalar(myindex: Vault) -> None:
    """A scalar for a REPEATED field is refused naming the field."""
    with pytest.raises(ValidationFailed) as caught:
        myindex.post("myindex", {"company": "A", "taxes": 5})
    assert caught.value.field == "taxes"
    assert "list" in caught.value.message


def test_unknown_field(myindex: Vault) -> None:
    """A field the schema does not declare is refused."""
    with pytest.raises(ValidationFailed) as caught:
        myindex.post("myindex", {"company": "A", "colour": "red"})
    assert caught.value.field == "colour"


def test_unknown_field_allowed_with_additional_fields(vault: Vault) -> None:
    """A schema with additional_fields keeps undeclared fields as given."""
    vault.open("open", {"fields": MYINDEX, "additional_fields": True})
    posted = vault.post("open", {"company": "A", "colour": "red"})
    assert vault.get(posted.id).body == {"company": "A", "colour": "red"}


def test_malformed_json_gives_position(myindex: Vault) -> None:
    """A malformed JSON string is refused with its line and column."""
    with pytest.raises(MalformedJSON, match="line 1 column 13"):
        myindex.post("myindex", '{"company": }')


def test_unreadable_schema_file(vault: Vault, tmp_path: Path) -> None:
    """A schema path that cannot be read is refused naming the path."""
    missing = tmp_path / "missing.json"
    with pytest.raises(InvalidSchema, match=r"missing\.json"):
        vault.open("myindex", str(missing))


def test_invalid_schema_unknown_type(vault: Vault) -> None:
    """A schema with an unknown type is refused naming the field."""
    with pytest.raises(InvalidSchema, match="amount"):
        vault.open("myindex", [{"name": "amount", "type": "MONEY"}])


def test_invalid_schema_unknown_mode(vault: Vault) -> None:
    """A schema with an unknown mode is refused naming the mode."""
    with pytest.raises(InvalidSchema, match="OPTIONAL"):
        vault.open("myindex", [{"name": "amount", "type": "FLOAT", "mode": "OPTIONAL"}])


def test_channel_not_opened(vault: Vault) -> None:
    """Posting to a channel that was never opened says so and how to open it."""
    with pytest.raises(ChannelNotFound, match="channels open"):
        vault.post("nowhere", {"company": "A"})


def test_time_too_far_in_future(vault_dir: Path) -> None:
    """A time beyond max_future_skew is refused naming time and the setting."""
    with trailvault.open_vault(vault_dir, max_future_skew=60) as vault:
        vault.open("myindex", MYINDEX)
        vault.post("myindex", {"company": "A"}, time=datetime.now(UTC) + timedelta(seconds=30))
        with pytest.raises(TimeSkew, match="max_future_skew") as caught:
            vault.post("myindex", {"company": "A"}, time=datetime.now(UTC) + timedelta(seconds=120))
    assert caught.value.field == "time"


def test_event_over_size_limit(vault_dir: Path) -> None:
    """An event over max_event_bytes is refused with its size."""
    with trailvault.open_vault(vault_dir, max_event_bytes=1000) as vault:
        vault.open("myindex", MYINDEX)
        vault.post("myindex", {"company": "x" * 900})
        with pytest.raises(EventTooLarge, match="max_event_bytes = 1,000"):
            vault.post("myindex", {"company": "x" * 1000})


def test_default_size_limit_is_one_mebibyte(myindex: Vault) -> None:
    """By default an event of just over 1 MiB is refused."""
    with pytest.raises(EventTooLarge):
        myindex.post("myindex", {"company": "x" * (1 << 20)})


def test_non_utc_time_normalised(myindex: Vault) -> None:
    """A time with a non-UTC offset is kept in UTC."""
    posted = myindex.post("myindex", {"company": "A"}, time="2024-10-07T03:00:00+02:00")
    assert myindex.get(posted.id).to_dict()["time"] == "2024-10-07T01:00:00.000000Z"


def test_naive_time_refused(myindex: Vault) -> None:
    """A time without an offset is refused rather than guessed."""
    with pytest.raises(trailvault.errors.InvalidInput, match="no UTC offset"):
        myindex.post("myindex", {"company": "A"}, time=datetime(2024, 1, 1))


def test_body_timestamp_becomes_event_time(vault: Vault) -> None:
    """With the Elasticsearch example, the body's timestamp (Java pattern, +0100) is the event time in UTC."""
    vault.open("es", str(EXAMPLES / "es-myindex.json"))
    posted = vault.post("es", {"company": "A", "timestamp": "2024-12-30 10:00:00.000+0100"})
    event = vault.get(posted.id)
    assert event.to_dict()["time"] == "2024-12-30T09:00:00.000000Z"
    assert event.body is not None and event.body["timestamp"] == "2024-12-30T09:00:00.000000Z"


def test_missing_body_timestamp_is_filled_in(vault: Vault) -> None:
    """Like Platform 6's client, a missing timestamp field is filled with the event time."""
    vault.open("es", str(EXAMPLES / "es-myindex.json"))
    posted = vault.post("es", {"company": "A"}, time="2024-10-07T01:00:00Z")
    body = vault.get(posted.id).body
    assert body is not None and body["timestamp"] == "2024-10-07T01:00:00.000000Z"


def test_filled_in_timestamp_does_not_break_idempotency(vault: Vault) -> None:
    """A retried post with its own id and no time is a duplicate, though the filled-in time differs."""
    vault.open("es", str(EXAMPLES / "es-myindex.json"))
    first = vault.post("es", {"company": "A"}, id="retry-me")
    again = vault.post("es", {"company": "A"}, id="retry-me")
    assert (again.seq, again.duplicate) == (first.seq, True)


# -- listing -----------------------------------------------------------------------


@pytest.fixture
def access(vault: Vault) -> Vault:
    vault.open("access", ACCESS)
    vault.open("myindex", MYINDEX)
    start = parse_timestamp("2024-10-07T00:00:00Z")
    for index in range(30):
        vault.post("access", access_event(index), time=_at(start + index * 60_000_000))
    vault.post("myindex", {"company": "Amalto"}, time="2024-10-07T00:10:30Z")
    return vault


def _at(micros: int) -> datetime:
    from trailvault.core.timestamps import to_datetime

    return to_datetime(micros)


def test_events_filters_by_channel(access: Vault) -> None:
    """events(channel) returns only that channel's events."""
    assert {event.channel for event in access.events("myindex")} == {"myindex"}
    assert len(access.events("access", limit=1000)) == 30


def test_events_time_range_is_half_open(access: Vault) -> None:
    """The time range includes from and excludes to."""
    page = access.events("access", time_from="2024-10-07T00:05:00Z", time_to="2024-10-07T00:10:00Z")
    assert [event.to_dict()["time"][11:16] for event in page] == ["00:05", "00:06", "00:07", "00:08", "00:09"]


def test_events_sorted_by_time_across_channels(access: Vault) -> None:
    """Without a channel, events of all channels interleave by time."""
    times = [event.time_us for event in access.events(limit=1000)]
    assert times == sorted(times)
    assert access.events(limit=1000)[11].channel == "myindex"


def test_events_descending(access: Vault) -> None:
    """sort_order desc returns the newest first."""
    page = access.events("access", sort_order="desc", limit=3)
    assert [event.to_dict()["time"][11:16] for event in page] == ["00:29", "00:28", "00:27"]


def test_events_where_body_path(access: Vault) -> None:
    """where on a dotted body path keeps only equal values (an indexed field here)."""
    page = access.events("access", where={"user.email": "user3@example.com"})
    assert [event.body["message"] for event in page if event.body] == [
        "Retrieve Order 3",
        "Retrieve Order 10",
        "Retrieve Order 17",
        "Retrieve Order 24",
    ]


def test_events_where_typed_from_schema(access: Vault) -> None:
    """A text value is read as the field's type: status_code=200 matches the INTEGER 200."""
    assert len(access.events("access", where={"http_response.status_code": "200"}, limit=1000)) == 30
    assert len(access.events("access", where={"http_response.status_code": "404"})) == 0


def test_events_where_without_channel_matches_numbers(access: Vault) -> None:
    """Without a channel, a text value also matches the number it spells."""
    assert len(access.events(where={"http_response.status_code": "200"}, limit=1000)) == 30


def test_events_where_envelope_field(access: Vault) -> None:
    """where on an envelope field (seq) works."""
    assert [event.seq for event in access.events(where={"seq": "5"})] == [5]


def test_events_where_unknown_field(access: Vault) -> None:
    """where on a field the channel does not have is refused naming it."""
    with pytest.raises(InvalidQuery, match=r"user\.phone"):
        access.events("access", where={"user.phone": "1"})


def test_events_where_injection_is_just_a_value(access: Vault) -> None:
    """Quotes and SQL in a value are compared as text, not executed."""
    assert len(access.events(where={"message": "x' OR '1'='1"})) == 0
    with pytest.raises(InvalidQuery):
        access.events(where={"message') OR 1=1 --": "x"})


def test_paging_walks_everything_once(access: Vault) -> None:
    """Following next_page returns every event exactly once, then None."""
    seen, page = [], access.events("access", limit=7)
    while True:
        seen.extend(event.seq for event in page)
        if page.next_page is None:
            break
        page = access.events("access", limit=7, page=page.next_page)
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 30


def test_paging_is_exact_while_events_arrive(vault: Vault) -> None:
    """Events with the same time posted between pages are neither skipped nor repeated."""
    vault.open("myindex", MYINDEX)
    same = "2024-10-07T00:00:00Z"
    vault.post_many("myindex", [NewEvent({"company": str(i)}, time=same) for i in range(5)])
    first = vault.events("myindex", limit=3)
    vault.post_many("myindex", [NewEvent({"company": str(i)}, time=same) for i in range(5, 8)])
    rest = vault.events("myindex", limit=100, page=first.next_page)
    assert [e.body["company"] for e in [*first, *rest] if e.body] == [str(i) for i in range(8)]


def test_page_token_of_other_query_refused(access: Vault) -> None:
    """A page token only continues the query it came from."""
    token = access.events("access", limit=2).next_page
    assert token is not None
    with pytest.raises(InvalidQuery, match="different query"):
        access.events("myindex", page=token)


def test_garbage_page_token_refused(access: Vault) -> None:
    """A token that is not trailvault's is refused naming page."""
    with pytest.raises(InvalidQuery) as caught:
        access.events(page="not-a-token")
    assert caught.value.field == "page"


def test_iter_events_returns_everything(vault: Vault) -> None:
    """iter_events walks past the page size."""
    vault.open("myindex", MYINDEX)
    vault.post_many("myindex", [{"company": str(i)} for i in range(2500)])
    assert sum(1 for _ in vault.iter_events("myindex")) == 2500


def test_limit_bounds(access: Vault) -> None:
    """limit must be 1 to 1000."""
    with pytest.raises(InvalidQuery, match="limit"):
        access.events(limit=0)
    with pytest.raises(InvalidQuery, match="limit"):
        access.events(limit=1001)


def test_apps_are_separate(vault_dir: Path) -> None:
    """One app cannot see another app's channels or events."""
    with trailvault.open_vault(vault_dir, app="one") as one, trailvault.open_vault(vault_dir, app="two") as two:
        one.open("myindex", MYINDEX)
        posted = one.post("myindex", {"company": "A"}, id="shared-id")
        with pytest.raises(ChannelNotFound):
            two.post("myindex", {"company": "A"})
        two.open("myindex", MYINDEX)
        other = two.post("myindex", {"company": "B"}, id="shared-id")
        assert other.seq == posted.seq + 1
        assert two.get("shared-id").body == {"company": "B"}
        assert len(two.events()) == 1


def test_open_vault_without_create_refuses_missing(tmp_path: Path) -> None:
    """open_vault(create=False) on a missing vault names the path and `trailvault init`."""
    with pytest.raises(VaultNotFound, match="trailvault init"):
        trailvault.open_vault(tmp_path / "absent", create=False)


def test_vault_survives_reopen(vault_dir: Path) -> None:
    """Events and channels are there after the vault is closed and opened again."""
    with trailvault.open_vault(vault_dir) as vault:
        vault.open("myindex", MYINDEX)
        vault.post("myindex", {"company": "A"})
    with trailvault.open_vault(vault_dir, create=False) as vault:
        assert [event.body for event in vault.events("myindex")] == [{"company": "A"}]
        assert vault.post("myindex", {"company": "B"}).seq == 2


def test_concurrent_posts_all_kept_with_gap_free_seqs(myindex: Vault) -> None:
    """Eight threads posting at once get distinct, gap-free seqs."""
    results: list[int] = []

    def work() -> None:
        for i in range(50):
            results.append(myindex.post("myindex", {"company": str(i)}).seq)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(1, 401))


def test_sensitive_and_index_flags_are_kept(vault: Vault) -> None:
    """The schema's sensitive and index flags survive storage, for masking and query fast paths."""
    vault.open("access", ACCESS)
    schema = vault.channel("access").schema
    assert schema.sensitive_paths() == [("user", "ip")]
    assert schema.index_paths() == [("user", "email")]


def test_concurrent_posts_share_transactions(myindex: Vault) -> None:
    """Posts from eight threads at once are committed in fewer transactions than posts."""
    start = myindex._committer.transactions

    def work() -> None:
        for i in range(40):
            myindex.post("myindex", {"company": str(i)})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert myindex._committer.transactions - start < 320


def test_nul_character_refused_on_every_backend(vault: Vault) -> None:
    """U+0000 in any text is refused with its path (PostgreSQL's jsonb cannot hold it), before any store
    sees it; the six characters backslash-u-0-0-0-0 are ordinary text."""
    vault.open(
        "notes",
        {"fields": [{"name": "text", "type": "STRING"}, {"name": "tags", "type": "STRING", "mode": "REPEATED"}]},
    )
    with pytest.raises(ValidationFailed) as one:
        vault.post("notes", {"text": "x\x00y"})
    assert one.value.field == "text" and "U+0000" in one.value.message
    with pytest.raises(BatchRejected, match=r"event 1: tags\[1\]: text may not contain the NUL"):
        vault.post_many("notes", [{"text": "fine"}, {"tags": ["a", "b\x00"]}])
    assert vault.events("notes").events == []
    assert vault.post("notes", {"text": "a literal \\u0000"}).seq == 1
    assert vault.events("notes").events[0].body == {"text": "a literal \\u0000"}
