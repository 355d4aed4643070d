"""The /v1 API against a running server: keys and scopes, ingest, listing, and bad input."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import access_event
from tests.server.conftest import Server


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "field"} <= set(body["error"])
    return dict(body["error"])


def _ndjson(*bodies: Any) -> bytes:
    return b"\n".join(orjson.dumps(body) for body in bodies) + b"\n"


# -- keys and scopes ---------------------------------------------------------------------------


def test_no_key_is_401(server: Server) -> None:
    """A request without Authorization is refused with 401 and the error body."""
    with server.client() as client:
        response = client.get("/v1/events")
    assert response.status_code == 401
    assert _error(response)["code"] == "unauthorized"


def test_unknown_or_malformed_key_is_401_without_echo(server: Server) -> None:
    """A wrong token is 401, and the answer never repeats it."""
    forged = "tv_0123456789abcdef_" + "A" * 43
    for header in (f"Bearer {forged}", "Bearer not-a-key", "Basic dXNlcjpwYXNz", f"Bearer {server.admin_token}x"):
        with httpx.Client(base_url=server.url, headers={"Authorization": header}) as client:
            response = client.get("/v1/events")
        assert response.status_code == 401, header
        assert header.split(" ", 1)[1] not in response.text


def test_wrong_scope_is_403(server: Server) -> None:
    """An ingest-only key may post but not read, and reading says which scope is missing."""
    token = server.key("ingest")
    with server.client(token) as client:
        assert client.post("/v1/channels/access/events", json=access_event(1)).status_code == 201
        response = client.get("/v1/events")
    assert response.status_code == 403
    assert "read" in _error(response)["message"]


def test_another_apps_channel_and_event_are_404_like_missing_ones(server: Server) -> None:
    """Another app's channel and event answer exactly as ones that never existed."""
    with server.admin() as admin:
        event_id = admin.post("/v1/channels/access/events", json=access_event(2)).json()["id"]
    other = server.key("admin", app="other")
    with server.client(other) as client:
        foreign_event = client.get(f"/v1/events/{event_id}")
        missing_event = client.get(f"/v1/events/{uuid.uuid4()}")
        foreign_channel = client.post("/v1/channels/access/events", json=access_event(3))
        missing_channel = client.post("/v1/channels/nothing/events", json=access_event(3))
        listing = client.get("/v1/events").json()
        receipt = client.get(f"/v1/events/{event_id}/receipt")
    assert foreign_event.status_code == missing_event.status_code == 404
    assert _error(foreign_event)["code"] == _error(missing_event)["code"] == "event_not_found"
    assert foreign_channel.status_code == missing_channel.status_code == 404
    assert receipt.status_code == 404
    assert listing["items"] == []


def test_key_limited_to_channels_sees_nothing_else(server: Server) -> None:
    """A key limited to one channel gets 404 for others and lists only its own."""
    with server.admin() as admin:
        admin.put("/v1/channels/secret", json={"fields": [{"name": "x", "type": "STRING"}]})
        secret_id = admin.post("/v1/channels/secret/events", json={"x": "hidden"}).json()["id"]
        admin.post("/v1/channels/access/events", json=access_event(4))
    token = server.key("read", "ingest", channels=["access"])
    with server.client(token) as client:
        assert client.get("/v1/events", params={"channel": "secret"}).status_code == 404
        assert client.get(f"/v1/events/{secret_id}").status_code == 404
        assert client.post("/v1/channels/secret/events", json={"x": "y"}).status_code == 404
        channels = [channel["name"] for channel in client.get("/v1/channels").json()["channels"]]
        listed = {event["channel"] for event in client.get("/v1/events", params={"limit": 1000}).json()["items"]}
    assert channels == ["access"]
    assert listed == {"access"}


def test_revoked_key_is_401(server: Server) -> None:
    """A key revoked through the API fails from the next request on."""
    with server.admin() as admin:
        created = admin.post("/v1/keys", json={"name": "temp", "scopes": ["read"]})
        assert created.status_code == 201
        token, key_id = created.json()["token"], created.json()["key"]["id"]
        with server.client(token) as client:
            assert client.get("/v1/events").status_code == 200
            assert admin.delete(f"/v1/keys/{key_id}").json()["revoked"] is not None
            assert client.get("/v1/events").status_code == 401
        listed = {key["id"]: key for key in admin.get("/v1/keys").json()["keys"]}
    assert listed[key_id]["revoked"] is not None
    assert "token" not in listed[key_id]


def test_keys_endpoint_never_shows_secrets(server: Server) -> None:
    """Listing keys shows names and scopes, never a token or its hash."""
    with server.admin() as admin:
        text = admin.get("/v1/keys").text
    assert server.admin_token not in text
    assert server.admin_token.split("_", 2)[2] not in text
    assert "sha256" not in text


# -- ingest --------------------------------------------------------------------------------------


def test_post_many_ndjson_is_all_or_nothing_with_line_numbers(server: Server) -> None:
    """One bad line refuses the whole batch; the answer names each bad line and field."""
    with server.admin() as admin:
        before = admin.get("/healthz").json()["log_size"]
        payload = _ndjson(access_event(1), access_event(2, type=None)) + b"\n" + b'{"type": "INFO"\n'
        response = admin.post(
            "/v1/channels/access/events", content=payload, headers={"content-type": "application/x-ndjson"}
        )
        after = admin.get("/healthz").json()["log_size"]
    assert response.status_code in (400, 422)
    failures = _error(response)["failures"]
    assert [(failure["line"], failure["field"]) for failure in failures] == [(2, "type"), (4, "body")]
    assert "line 2" in _error(response)["message"]
    assert after == before


def test_malformed_json_is_400(server: Server) -> None:
    """A body that is not JSON is 400 naming where it broke."""
    with server.admin() as admin:
        response = admin.post(
            "/v1/channels/access/events", content=b'{"type": ', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert _error(response)["code"] == "malformed_json"
    assert "line 1" in _error(response)["message"]


def test_schema_violation_is_422_naming_the_field(server: Server) -> None:
    """An event that breaks the schema is 422 with the field path."""
    with server.admin() as admin:
        response = admin.post(
            "/v1/channels/access/events", json=access_event(1, http_response={"status_code": "two hundred"})
        )
    assert response.status_code == 422
    assert _error(response)["field"] == "http_response.status_code"


def test_body_over_limit_is_413(server: Server) -> None:
    """A request over max_request_bytes is 413 and stores nothing."""
    with server.admin() as admin:
        before = admin.get("/healthz").json()["log_size"]
        big = _ndjson(*[access_event(i, message="x" * 1000) for i in range(1200)])
        response = admin.post(
            "/v1/channels/access/events", content=big, headers={"content-type": "application/x-ndjson"}
        )
        after = admin.get("/healthz").json()["log_size"]
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"
    assert after == before


def test_post_is_idempotent_on_the_event_id(server: Server) -> None:
    """The same id and content is a 200 duplicate with the kept seq; other content is 409."""
    event_id = f"order-{uuid.uuid4()}"
    with server.admin() as admin:
        first = admin.post("/v1/channels/access/events", params={"id": event_id}, json=access_event(5))
        again = admin.post("/v1/channels/access/events", params={"id": event_id}, json=access_event(5))
        other = admin.post("/v1/channels/access/events", params={"id": event_id}, json=access_event(6))
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}
    assert other.status_code == 409


def test_envelope_batches_keep_ids_and_times(server: Server) -> None:
    """With envelope=true each line carries its own id and time."""
    items = [{"id": f"e-{uuid.uuid4()}", "time": "2024-10-07T10:00:00Z", "body": access_event(i)} for i in range(3)]
    with server.admin() as admin:
        response = admin.post(
            "/v1/channels/access/events",
            params={"envelope": "true"},
            content=_ndjson(*items),
            headers={"content-type": "application/x-ndjson"},
        )
        assert response.status_code == 201
        got = admin.get(f"/v1/events/{items[1]['id']}").json()
    assert [event["id"] for event in response.json()["events"]] == [item["id"] for item in items]
    assert got["time"] == "2024-10-07T10:00:00.000000Z"


def test_a_json_array_of_envelopes_names_each_bad_item(server: Server) -> None:
    """With envelope=true a JSON array with bad items is refused whole, each bad item named by index as NDJSON does."""
    items = [{"body": access_event(0)}, {"id": "a"}, {"body": access_event(2)}, {"body": {}, "extra": 1}]
    with server.admin() as admin:
        before = admin.get("/healthz").json()["log_size"]
        response = admin.post("/v1/channels/access/events", params={"envelope": "true"}, json=items)
        after = admin.get("/healthz").json()["log_size"]
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "batch_rejected" and "2 of 4 events refused" in error["message"]
    assert [(failure["index"], failure["field"]) for failure in error["failures"]] == [(1, "[1]"), (3, "[3]")]
    assert after == before


def test_deep_nesting_and_huge_numbers_are_bounded(server: Server) -> None:
    """JSON nested thousands deep, or numbers beyond 64 bits, are refused as bad input, never a 5xx."""
    deep = b'{"type": "INFO", "message": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    huge = b'{"type": "INFO", "http_response": {"status_code": 1' + b"0" * 400 + b"}}"
    with server.admin() as admin:
        for payload in (deep, huge, b'{"type": "INFO", "http_response": {"status_code": 1e999}}'):
            response = admin.post(
                "/v1/channels/access/events", content=payload, headers={"content-type": "application/json"}
            )
            assert 400 <= response.status_code < 500, response.text
            _error(response)


# -- listing ---------------------------------------------------------------------------------------


def test_filter_injection_attempts_are_400_or_exact(server: Server) -> None:
    """Quotes, semicolons, comments and unicode tricks in a filter never reach SQL as code."""
    marker = f"inj-{uuid.uuid4().hex[:8]}"
    with server.admin() as admin:
        admin.post("/v1/channels/access/events", json=access_event(1, message=f"{marker}'; DROP TABLE events; --"))
        attempts = [
            f'message eq "{marker}\'; DROP TABLE events; --"',
            'message eq "x" or 1=1',
            'message eq "x"; DELETE FROM events',
            'message eq "x" -- comment',
            'message eq "x" /* c */',
            "user.email) or (1 eq 1",
            'message eq "\\u0000"',
            'mess\u0430ge eq "x"',  # Cyrillic a
            'message eq "x\uff02 or \uff02a\uff02 eq \uff02a"',  # full-width quotes
            '"; select 1',
        ]
        for text in attempts:
            response = admin.get("/v1/events", params={"filter": text, "channel": "access"})
            assert response.status_code in (200, 400), (text, response.text)
            if response.status_code == 400:
                assert _error(response)["code"] == "invalid_query"
        exact = admin.get("/v1/events", params={"filter": attempts[0], "channel": "access"}).json()["items"]
        assert admin.get("/healthz").status_code == 200
    assert [event["body"]["message"] for event in exact] == [f"{marker}'; DROP TABLE events; --"]


def test_filter_parse_error_points_at_the_column(server: Server) -> None:
    """A filter that does not parse is 400 with the column in the message."""
    with server.admin() as admin:
        response = admin.get("/v1/events", params={"filter": 'message eq "a" and'})
    assert response.status_code == 400
    assert "column" in _error(response)["message"]


def test_pages_stay_exact_while_events_arrive(server: Server) -> None:
    """Paging through a channel while another client posts with equal timestamps skips and repeats nothing."""
    channel = f"paging{uuid.uuid4().hex[:6]}"
    with server.admin() as admin:
        admin.put(f"/v1/channels/{channel}", json={"fields": [{"name": "n", "type": "INTEGER"}]})
        same_time = [{"time": "2024-01-01T00:00:00Z", "body": {"n": n}} for n in range(300)]
        admin.post(f"/v1/channels/{channel}/events", params={"envelope": "true"}, json=same_time)
        stop = threading.Event()

        def keep_posting() -> None:
            with server.admin() as writer:
                n = 1000
                while not stop.is_set():
                    writer.post(
                        f"/v1/channels/{channel}/events", params={"time": "2024-01-01T00:00:00Z"}, json={"n": n}
                    )
                    n += 1

        writer = threading.Thread(target=keep_posting)
        writer.start()
        try:
            seen: list[int] = []
            page = None
            while True:
                answer = admin.get("/v1/events", params={"channel": channel, "limit": 7, "page": page}).json()
                seen.extend(event["seq"] for event in answer["items"])
                page = answer["next_page"]
                if page is None:
                    break
        finally:
            stop.set()
            writer.join()
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert len(seen) >= 300


def test_reads_are_recorded_as_events(server: Server) -> None:
    """Every read answered is recorded in trailvault.reads with the key and the query."""
    token = server.key("read")
    with server.client(token) as reader:
        key_id = reader.get("/v1/keys/current").json()["id"]
        reader.get("/v1/events", params={"channel": "access", "filter": 'type eq "INFO"'})
    with server.admin() as admin:
        records = admin.get(
            "/v1/events", params={"channel": "trailvault.reads", "filter": f'key_id eq "{key_id}"'}
        ).json()["items"]
    assert [record["body"]["action"] for record in records] == ["events.list"]
    assert orjson.loads(records[0]["body"]["request"]) == {"channel": "access", "filter": 'type eq "INFO"'}


# -- service endpoints -------------------------------------------------------------------------------


def test_metrics_count_ingest(server: Server) -> None:
    """/metrics is Prometheus text whose ingest counter grows with posts."""

    def ingested() -> float:
        text = httpx.get(server.url + "/metrics").text
        line = next(line for line in text.splitlines() if line.startswith("trailvault_events_ingested_total"))
        return float(line.split()[-1])

    before = ingested()
    with server.admin() as admin:
        admin.post("/v1/channels/access/events", json=[access_event(1), access_event(2)])
    assert ingested() == before + 2
    assert "trailvault_commit_queue_depth" in httpx.get(server.url + "/metrics").text


def test_openapi_lists_every_route(server: Server) -> None:
    """The OpenAPI document describes every route the app serves, with its methods."""
    from trailvault.edges.server.archive_routes import ARCHIVE_ROUTES
    from trailvault.edges.server.routes import ROUTES

    document = httpx.get(server.url + "/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    for route in ROUTES + ARCHIVE_ROUTES:
        assert route.method.lower() in document["paths"][route.path], route.path


def test_cors_is_off_by_default(server: Server) -> None:
    """Without cors_origins no Access-Control-Allow-Origin header is sent, even to a preflight."""
    with server.admin() as admin:
        response = admin.get("/v1/events", headers={"Origin": "https://evil.example"})
        preflight = admin.options(
            "/v1/events", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers


def test_unknown_route_has_the_error_body(server: Server) -> None:
    """Even Starlette's own 404 and 405 answers have the error body."""
    with server.admin() as admin:
        missing = admin.get("/v1/nothing")
        wrong_method = admin.delete("/v1/events")
    assert missing.status_code == 404 and _error(missing)["code"] == "not_found"
    assert wrong_method.status_code == 405 and _error(wrong_method)["code"] == "method_not_allowed"


@pytest.mark.system
def test_schemathesis_finds_no_server_error(server: Server, tmp_path: Path) -> None:
    """A time-bounded schemathesis run over the OpenAPI document (every phase) gets no 5xx answer.

    Revoking keys is left out: the run would revoke its own key and test nothing after.
    """
    token = server.key("admin")
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{server.url}/v1/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error",
            "--exclude-method",
            "DELETE",
            "--max-examples",
            "25",
            "--max-time",
            "30",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert "passed" in run.stdout


def test_sensitive_fields_are_masked_without_unmask(server: Server) -> None:
    """A reader without unmask sees sensitive values masked, may not filter on them, and gets no receipt
    (its hashes would test guesses); a reader with unmask sees everything."""
    with server.admin() as admin:
        event_id = admin.post("/v1/channels/access/events", json=access_event(1, message="m")).json()["id"]
    plain, unmasked = server.key("read"), server.key("read", "unmask")
    with server.client(plain) as reader:
        seen = reader.get(f"/v1/events/{event_id}").json()["body"]["user"]
        listed = reader.get("/v1/events", params={"channel": "access", "limit": 1000}).json()["items"]
        refused = reader.get("/v1/events", params={"filter": 'user.ip eq "10.0.0.1"'})
        receipt = reader.get(f"/v1/events/{event_id}/receipt")
    with server.client(unmasked) as reader:
        full = reader.get(f"/v1/events/{event_id}").json()["body"]["user"]
        full_receipt = reader.get(f"/v1/events/{event_id}/receipt").json()
        allowed = reader.get("/v1/events", params={"filter": 'user.ip eq "10.0.0.1"', "channel": "access"})
    assert seen["ip"] == "[masked]" and seen["email"] == "user1@example.com"
    assert all(item["body"]["user"]["ip"] == "[masked]" for item in listed if item["body"])
    assert refused.status_code == 403 and _error(refused)["field"] == "filter"
    assert receipt.status_code == 403 and _error(receipt)["field"] == "scopes"
    assert full_receipt["body"]["user"]["ip"] == "10.0.0.1" and full_receipt["entry"]["id"] == event_id
    assert full["ip"] == "10.0.0.1"
    assert allowed.status_code == 200 and allowed.json()["items"]


def test_no_key_gives_a_scope_it_lacks(server: Server) -> None:
    """An admin without unmask cannot give unmask, however the scope is spelled."""
    token = server.key("admin")
    with server.client(token) as admin:
        for scopes in (["unmask"], ["UNMASK", "read"], ["read,unmask"], [" unmask", "read"]):
            response = admin.post("/v1/keys", json={"name": "x", "scopes": scopes})
            assert response.status_code == 403, (scopes, response.text)
        assert admin.post("/v1/keys", json={"name": "x", "scopes": ["READ"]}).status_code == 201


def test_sorting_or_filtering_near_a_sensitive_field_needs_unmask(server: Server) -> None:
    """sort_by a sensitive field, or a filter on the record holding one, is refused without unmask."""
    token = server.key("read")
    with server.client(token) as reader:
        by_sort = reader.get("/v1/events", params={"channel": "access", "sort_by": "user.ip", "limit": 1})
        by_parent = reader.get("/v1/events", params={"channel": "access", "filter": 'user co "10.0"'})
        plain_sort = reader.get("/v1/events", params={"channel": "access", "sort_by": "user.email", "limit": 1})
    assert by_sort.status_code == 403 and _error(by_sort)["field"] == "sort_by"
    assert by_parent.status_code == 403 and _error(by_parent)["field"] == "filter"
    assert plain_sort.status_code == 200


def test_trailvaults_own_channels_cannot_be_written(server: Server) -> None:
    """No key may open or post to trailvault.reads or trailvault.redactions."""
    with server.admin() as admin:
        opened = admin.put("/v1/channels/trailvault.reads", json={"fields": [{"name": "x", "type": "STRING"}]})
        posted = admin.post("/v1/channels/trailvault.redactions/events", json={"redacted_id": "x"})
    assert opened.status_code == posted.status_code == 403


def test_a_channel_limited_admin_manages_only_its_own_keys(server: Server) -> None:
    """It lists only keys within its channels and cannot revoke others (404, like a missing key)."""
    limited = server.key("admin", channels=["access"])
    with server.admin() as admin:
        root_id = admin.get("/v1/keys/current").json()["id"]
    with server.client(limited) as client:
        created = client.post("/v1/keys", json={"name": "sub", "scopes": ["read"], "channels": ["access"]})
        listed = {key["id"] for key in client.get("/v1/keys").json()["keys"]}
        refused = client.delete(f"/v1/keys/{root_id}")
        allowed = client.delete(f"/v1/keys/{created.json()['key']['id']}")
    assert root_id not in listed and created.json()["key"]["id"] in listed
    assert refused.status_code == 404 and allowed.status_code == 200
    with server.admin() as admin:
        assert admin.get("/v1/keys/current").status_code == 200
