"""Masking and scopes against a running server: what a key without unmask (or without read) can learn."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

import trailvault
from tests.server.conftest import Server, start_server

#: A PIN is sensitive; its channel's time comes from a plain field.
CARDS = {
    "fields": [
        {"name": "holder", "type": "STRING"},
        {"name": "pin", "type": "STRING", "sensitive": True},
        {"name": "timestamp", "type": "TIMESTAMP"},
    ]
}
#: When a visit happened is itself sensitive, and it becomes the envelope's time.
VISITS = {
    "fields": [
        {"name": "clinic", "type": "STRING"},
        {"name": "timestamp", "type": "TIMESTAMP", "sensitive": True},
    ]
}
PLAIN = {"fields": [{"name": "note", "type": "STRING"}]}
VISIT_TIME = "2024-10-07T09:15:00Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose app has a channel with a sensitive field, one whose time is sensitive, and a plain one."""
    folder = tmp_path_factory.mktemp("masking")
    running = start_server(str(folder / "vault"), folder / "server.log", rate_limit=0)
    with running.admin() as admin:
        for name, schema in (("cards", CARDS), ("visits", VISITS), ("plain", PLAIN)):
            assert admin.put(f"/v1/channels/{name}", json=schema).status_code == 200
        for index in range(3):
            admin.post("/v1/channels/visits/events", json={"clinic": f"c{index}", "timestamp": VISIT_TIME})
    yield running
    running.stop()


def _error(response: httpx.Response) -> dict[str, Any]:
    return dict(response.json()["error"])


def _recorded(server: Server, key_token: str) -> list[dict[str, Any]]:
    """The request of every read recorded for a key, as a read key without unmask lists them."""
    with server.client(key_token) as client:
        key_id = client.get("/v1/keys/current").json()["id"]
    with server.client(server.key("read")) as reader:
        items = reader.get(
            "/v1/events", params={"channel": "trailvault.reads", "filter": f'key_id eq "{key_id}"', "limit": 1000}
        ).json()["items"]
    return [orjson.loads(item["body"]["request"]) for item in items]


# -- item 5: the reads log ------------------------------------------------------------------------


def test_recorded_reads_mask_values_compared_with_sensitive_fields(server: Server) -> None:
    """A filter or where= of an unmask key is recorded with its sensitive values masked, its other values kept."""
    token = server.key("read", "archive", "unmask")
    with server.client(token) as client:
        listed = client.get("/v1/events", params={"channel": "cards", "filter": 'pin eq "4821" and holder eq "ann"'})
        exported = client.get("/v1/export", params={"channel": "cards", "filter": 'not (pin in ("4821", "1234"))'})
    with trailvault.connect(server.url, token=token) as vault:
        vault.events("cards", where={"pin": "4821"})
    assert listed.status_code == 200 and exported.status_code == 200
    recorded = _recorded(server, token)
    assert [request["filter"] for request in recorded] == [
        '(pin eq "[masked]") and (holder eq "ann")',
        'not (pin in ("[masked]", "[masked]"))',
        'pin eq_cs "[masked]"',
    ]
    assert not any("4821" in orjson.dumps(request).decode() for request in recorded)


def test_recorded_reads_mask_time_where_it_comes_from_a_sensitive_field(server: Server) -> None:
    """from, to and a filter on time are recorded masked when a channel's time comes from a sensitive field."""
    token = server.key("read", "unmask")
    window = {"from": "2024-10-07T09:00:00Z", "to": "2024-10-07T10:00:00Z"}
    with server.client(token) as client:
        visits = client.get("/v1/events", params={"channel": "visits", **window, "filter": f'time eq "{VISIT_TIME}"'})
    assert visits.status_code == 200 and len(visits.json()["items"]) == 3
    (recorded,) = _recorded(server, token)
    assert (recorded["from"], recorded["to"], recorded["filter"]) == ("[masked]", "[masked]", 'time eq "[masked]"')


# -- item 6: hashes of the log ---------------------------------------------------------------------


def test_log_hashes_are_refused_to_a_key_without_unmask_that_sees_sensitive_fields(server: Server) -> None:
    """Receipts, inclusion and consistency proofs and checkpoints are a 403 naming unmask; with unmask, or
    with a key limited to channels without sensitive fields, they are served."""
    with server.admin() as admin:
        card = admin.post("/v1/channels/cards/events", json={"holder": "ann", "pin": "4821"}).json()["id"]
        note = admin.post("/v1/channels/plain/events", json={"note": "n"}).json()["id"]
    with server.client(server.key("read", "unmask")) as unmasked:
        signed = unmasked.get(f"/v1/events/{note}/receipt").json()["size"]  # a signed checkpoint covers both
        paths = [
            f"/v1/events/{card}/receipt",
            f"/v1/events/{note}/receipt",
            f"/v1/proofs/inclusion?event={card}",
            f"/v1/proofs/inclusion?event={note}",
            f"/v1/proofs/consistency?old_size=1&new_size={signed}",
            "/v1/checkpoint",
        ]
        served = [unmasked.get(path) for path in paths]
    with server.client(server.key("read")) as plain_reader:
        refused = [plain_reader.get(path) for path in paths]
    with server.client(server.key("read", channels=["plain"])) as limited:
        limited_served = [limited.get(path) for path in (paths[1], paths[3], paths[4], paths[5])]
    for response in refused:
        assert response.status_code == 403, response.text
        error = _error(response)
        assert error["field"] == "scopes" and "unmask" in error["message"] and "sensitive" in error["message"]
    assert [response.status_code for response in served + limited_served] == [200] * 10
    assert served[0].json()["body"]["pin"] == "4821"


# -- item 7: the idempotency oracle --------------------------------------------------------------------


def test_a_taken_id_answers_another_key_the_same_whatever_the_body(server: Server) -> None:
    """Only the key that posted an id gets the duplicate answer; another key's post is the same 409 whether its
    body matches or not, and names no seq."""
    event_id = f"card-{uuid.uuid4()}"
    body, guess = {"holder": "ann", "pin": "4821"}, {"holder": "ann", "pin": "0000"}
    producer, stranger = server.key("ingest"), server.key("ingest")
    with server.client(producer) as client:
        first = client.post("/v1/channels/cards/events", params={"id": event_id}, json=body)
        retry = client.post("/v1/channels/cards/events", params={"id": event_id}, json=body)
    with server.client(stranger) as client:
        right = client.post("/v1/channels/cards/events", params={"id": event_id}, json=body)
        wrong = client.post("/v1/channels/cards/events", params={"id": event_id}, json=guess)
        in_batch = client.post(
            "/v1/channels/cards/events", params={"envelope": "true"}, json=[{"id": event_id, "body": body}]
        )
    assert first.status_code == 201 and retry.status_code == 200 and retry.json()["duplicate"] is True
    assert right.status_code == wrong.status_code == in_batch.status_code == 409
    assert _error(right) == _error(wrong) == _error(in_batch)
    assert _error(right)["field"] == "id" and "is taken" in _error(right)["message"]
    assert f"seq {first.json()['seq']}" not in _error(right)["message"]


def test_a_generated_id_reposted_by_a_key_is_taken_whatever_the_body(server: Server) -> None:
    """An id trailvault generated (through a key or the Python API) answers any key's post of it with 409."""
    body = {"note": f"guessed {uuid.uuid4()}"}
    with server.admin() as admin:
        through_key = admin.post("/v1/channels/plain/events", json=body).json()["id"]
    with trailvault.open_vault(server.vault, create=False) as vault:
        through_library = vault.post("plain", body).id
    with server.client(server.key("ingest")) as client:
        answers = [
            client.post("/v1/channels/plain/events", params={"id": event_id}, json=body)
            for event_id in (through_key, through_library)
        ]
    assert [answer.status_code for answer in answers] == [409, 409]


# -- item 8: time from a sensitive field ---------------------------------------------------------------


def test_time_from_a_sensitive_field_is_masked_and_not_filterable_without_unmask(server: Server) -> None:
    """Where time comes from a sensitive field a key without unmask reads it masked, cannot filter, bound or sort
    by it (403 naming time and unmask), and pages by seq; a channel with a plain time is unaffected."""
    token = server.key("read")
    with server.client(token) as reader:
        page = reader.get("/v1/events", params={"channel": "visits", "limit": 2}).json()
        one = reader.get(f"/v1/events/{page['items'][0]['id']}").json()
        refused = {
            "filter": reader.get("/v1/events", params={"channel": "visits", "filter": f'time ge "{VISIT_TIME}"'}),
            "from": reader.get("/v1/events", params={"channel": "visits", "from": VISIT_TIME}),
            "to": reader.get("/v1/events", params={"to": VISIT_TIME}),
            "sort_by": reader.get("/v1/events", params={"channel": "visits", "sort_by": "time"}),
        }
        plain_time = reader.get("/v1/events", params={"channel": "cards", "filter": 'time ge "2000-01-01T00:00Z"'})
    with trailvault.connect(server.url, token=token) as vault:
        remote = vault.get(one["id"])
        every = list(vault.iter_events("visits"))
    with server.client(server.key("read", "unmask")) as unmasked:
        seen = unmasked.get(f"/v1/events/{one['id']}").json()
    assert {item["time"] for item in page["items"]} == {"[masked]"} and one["time"] == "[masked]"
    assert one["body"]["timestamp"] == "[masked]"
    token_text = page["next_page"] + "=" * (-len(page["next_page"]) % 4)
    assert orjson.loads(base64.urlsafe_b64decode(token_text))["k"][0] == page["items"][-1]["seq"]
    for field, response in refused.items():
        assert response.status_code == 403, (field, response.text)
        error = _error(response)
        assert error["field"] == field and "time" in error["message"] and "unmask" in error["message"]
    assert plain_time.status_code == 200 and all(item["time"] != "[masked]" for item in plain_time.json()["items"])
    assert remote.time_masked and remote.to_dict()["time"] == "[masked]"
    assert len(every) == 3 and all(event.time_masked for event in every)
    assert seen["time"] == "2024-10-07T09:15:00.000000Z"


# -- which refusal comes first: the key's rules before the request's other faults ----------------------


def test_a_limited_key_asking_by_seq_is_told_to_ask_by_id_before_its_size_is_read(server: Server) -> None:
    """A key limited to channels that asks for an inclusion proof by seq, with a bad size too, is told
    about the seq (what it may not do), not about the size."""
    with server.client(server.key("read", channels=["plain"])) as limited:
        response = limited.get("/v1/proofs/inclusion", params={"seq": 1, "size": "abc"})
    assert response.status_code == 400
    assert _error(response)["field"] == "seq" and "event id" in _error(response)["message"]


@pytest.mark.parametrize("verb", ["list-events-in-archive-batch", "get-archive-batch-proof"])
def test_archive_bodies_are_refused_before_the_request_is_read(server: Server, verb: str) -> None:
    """An archive key without unmask, in an app with sensitive fields, gets the 403 naming unmask even when
    its request also lacks the archiveId: the refusal does not depend on what it sent."""
    with server.client(server.key("archive")) as archiver:
        response = archiver.post(f"/v1/archive/{verb}", json={})
    assert response.status_code == 403, response.text
    assert _error(response)["field"] == "scopes" and "unmask" in _error(response)["message"]
