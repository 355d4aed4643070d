"""Bad input over HTTP is a 4xx naming what was wrong, never a 5xx or a silent wrong answer: filters no
store can run, numbers and keys JSON text cannot carry faithfully, and parameters a route does not take."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ACCESS, access_event
from tests.server.conftest import Server
from trailvault.edges.server.archive_routes import ARCHIVE_ROUTES
from trailvault.edges.server.openapi import accepted
from trailvault.edges.server.routes import ROUTES


def _error(response: httpx.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"error"}
    return dict(body["error"])


#: Filters that parse but gave 500 (OverflowError, RecursionError), 503 (SQLite's parser stack) or the
#: wrong message; each is a 400 naming the problem, or (for runs of not) an answer.
FILTERS = [
    ("seq gt 9223372036854775808", 400, "outside the signed 64-bit range"),
    ("not " * 31 + "seq ge 1", 200, None),
    ("not " * 1000 + "seq ge 1", 200, None),
    ("http_response.status_code gt 1e400", 400, "1e400: the number is out of range"),
    ('user.emial eq "a"', 400, "did you mean user.email"),
    ('occurred gt "yesterday"', 400, "occurred is a TIMESTAMP"),
]


def _check_filters(client: httpx.Client) -> None:
    for text, status, words in FILTERS:
        response = client.get("/v1/events", params={"filter": text, "channel": "access"})
        assert response.status_code == status, (text[:40], response.text)
        if words is not None:
            error = _error(response)
            assert error["code"] == "invalid_query" and error["field"] == "filter"
            assert words in error["message"]


def test_filters_no_store_can_run_are_400_naming_the_problem(server: Server) -> None:
    """Each filter of FILTERS is answered with its status and message on a SQLite vault."""
    with server.admin() as admin:
        _check_filters(admin)


def test_filters_no_store_can_run_are_400_on_postgresql(
    own_server: Callable[..., Server], postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each filter of FILTERS is answered with its status and message on a PostgreSQL vault."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    running = own_server(postgres_url)
    with running.admin() as admin:
        assert admin.put("/v1/channels/access", json=ACCESS).status_code == 200
        _check_filters(admin)


def test_a_key_limited_to_channels_learns_nothing_of_other_channels_fields(server: Server) -> None:
    """A field only a channel hidden from the key has is refused like one no channel has, not answered."""
    with server.admin() as admin:
        assert admin.put("/v1/channels/hidden", json={"fields": [{"name": "secret_flag", "type": "BOOLEAN"}]})
    with server.client(server.key("read", channels=["access"])) as limited:
        error = _error(limited.get("/v1/events", params={"filter": "secret_flag pr"}))
    assert "'secret_flag'" in error["message"] and "hidden" not in error["message"]


def test_a_timestamp_field_filters_as_an_instant(server: Server) -> None:
    """occurred (a TIMESTAMP) sent with other offsets and precisions matches the same instant in a filter."""
    marker = f"instant-{uuid.uuid4().hex[:8]}"
    stamps = ["2023-01-16T20:00:00+01:00", "2023-01-16T19:00:00Z", "2023-01-16T18:59:59.999Z"]
    with server.admin() as admin:
        for stamp in stamps:
            assert admin.post("/v1/channels/access/events", json=access_event(1, message=marker, occurred=stamp))
        text = f'message eq "{marker}" and occurred ge "2023-01-16T19:00:00.000Z"'
        found = admin.get("/v1/events", params={"filter": text, "channel": "access"}).json()["items"]
    assert [event["body"]["occurred"] for event in found] == ["2023-01-16T19:00:00.000000Z"] * 2


@pytest.mark.parametrize(
    ("payload", "content_type", "words"),
    [
        (b'{"type": "INFO", "type": "DEBUG"}', "application/json", 'the key "type" appears more than once'),
        (
            b'{"type": "INFO", "http_response": {"status_code": -9223372036854775809}}',
            "application/json",
            "-9223372036854775809 (at http_response.status_code) is outside the signed 64-bit integer range",
        ),
        (
            b'{"type": "INFO"}\n{"type": "INFO", "user": {"email": "a", "email": "b"}}\n',
            "application/x-ndjson",
            'line 2: body: the key "email" appears more than once in the same object (at user)',
        ),
    ],
)
def test_json_orjson_would_change_is_refused_and_nothing_is_stored(
    server: Server, payload: bytes, content_type: str, words: str
) -> None:
    """A repeated key or an integer beyond 64 bits is a 400 naming it; no event of the request is kept."""
    with server.admin() as admin:
        before = admin.get("/healthz").json()["log_size"]
        response = admin.post("/v1/channels/access/events", content=payload, headers={"content-type": content_type})
        assert words in _error(response)["message"]
        assert admin.get("/healthz").json()["log_size"] == before


# -- parameters a route does not take ------------------------------------------------------------------


def test_an_unknown_query_parameter_is_400_naming_it_and_the_accepted_ones(server: Server) -> None:
    """?filtre= and ?scimQuery= answered every event as if unfiltered; now they are refused by name."""
    with server.admin() as admin:
        for name in ("filtre", "scimQuery"):
            error = _error(admin.get("/v1/events", params={name: 'type eq "NONE"'}))
            assert error["code"] == "invalid_query" and error["field"] == name
            takes = "GET /v1/events; it takes channel, filter, from, limit, page, sort_by, sort_order, to"
            assert takes in error["message"]
        twice = _error(admin.get("/v1/events?filter=seq%20ge%201&filter=seq%20ge%202"))
    assert twice["field"] == "filter" and "given more than once" in twice["message"]


@pytest.mark.parametrize(
    ("path", "document"),
    [
        ("/v1/archive/list-outstanding-archive-batches", {"pageSize": 10, "page_size": 10}),
        ("/v1/archive/batch-events-for-archiving", {"fromTimestamp": "2024-01-01T00:00Z", "toTimestmp": "x"}),
        ("/v1/keys", {"name": "k", "scopes": ["read"], "scope": "admin"}),
        ("/v1/verify", {"trusted": "x"}),
    ],
)
def test_an_unknown_body_key_is_400_naming_it(server: Server, path: str, document: dict[str, Any]) -> None:
    """A body key the verb does not take is refused by name, with the keys it takes."""
    unknown = next(key for key in document if key not in (accepted("POST", path).body or ()))
    with server.admin() as admin:
        error = _error(admin.post(path, json=document))
    assert error["field"] == unknown and f"{unknown}: an unknown key in the body of POST {path}" in error["message"]


def test_every_route_refuses_what_the_openapi_document_does_not_list(server: Server) -> None:
    """Every /v1 operation answers an unknown query parameter (and, where its body is closed, an unknown
    body key) with a 400 naming it: the document and the server agree."""
    with server.admin() as admin:
        for route in ROUTES + ARCHIVE_ROUTES:
            if route.method == "DELETE":
                continue  # a revoked admin key would stop the test; DELETE routes share the same check
            path = route.path.replace("{channel}", "access").replace("{id}", "nothing").replace("{name}", "none")
            takes = accepted(route.method, route.path)
            response = admin.request(route.method, path, params={"unknown_parameter": "1"})
            assert _error(response)["field"] == "unknown_parameter", (route.method, route.path)
            if takes.body is not None:
                response = admin.request(route.method, path, content=orjson.dumps({"unknown_key": 1}))
                assert _error(response)["field"] == "unknown_key", (route.method, route.path)
