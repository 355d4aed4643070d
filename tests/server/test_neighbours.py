"""One app cannot take the server from another: statement_timeout, app_concurrency, verify in the background."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import trailvault
from tests.conftest import BACKENDS, access_event, run_cli
from tests.server.conftest import Server
from tests.store.test_timelimit import SLOW_FILTER, fill
from trailvault.edges.server.verifying import Verifications
from trailvault.errors import Conflict, NotFound


def _location(backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # a PostgreSQL vault's signing key
    return str(tmp_path / "vault") if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))


def _neighbours(location: str, events: int) -> None:
    """App b with ``events`` events, app a with 20."""
    with trailvault.open_vault(location, app="b") as vault:
        fill(vault, events)
    with trailvault.open_vault(location, app="a") as vault:
        fill(vault, 20)


def _active_listings(url: str) -> list[str]:
    """The listing statements PostgreSQL is running for the vault's database right now."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
            "AND pid <> pg_backend_pid() AND query ILIKE '%LIKE%'"
        ).fetchall()
    return [str(row[0]) for row in rows]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slow_filter_is_cancelled_at_statement_timeout_and_stops_using_the_database(
    backend: str,
    own_server: Callable[..., Server],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """App b's filter that would run for seconds is answered 503 query_timeout at statement_timeout, its
    statement no longer runs in the database, and app a's listing is answered."""
    location = _location(backend, tmp_path, request, monkeypatch)
    _neighbours(location, 10_000)
    running = own_server(location, statement_timeout=0.3, rate_limit=0)
    with running.client(running.key("read", app="b")) as app_b:
        slow = app_b.get("/v1/events", params={"channel": "access", "filter": SLOW_FILTER, "limit": 10})
    assert slow.status_code == 503, slow.text
    error = slow.json()["error"]
    assert error["code"] == "query_timeout" and error["field"] == "statement_timeout" and "narrow" in error["message"]
    if backend == "postgresql":
        assert _active_listings(location) == []
    with running.client(running.key("read", app="a")) as app_a:
        listed = app_a.get("/v1/events", params={"channel": "access", "limit": 5})
    assert listed.status_code == 200 and len(listed.json()["items"]) == 5


def test_an_apps_requests_over_app_concurrency_get_429_while_another_app_is_served(
    own_server: Callable[..., Server], tmp_path: Path
) -> None:
    """With app_concurrency 1, app b's requests beyond its running slow one wait, then get 429 with Retry-After
    and an error body naming app_concurrency; app a's listing meanwhile is answered 200."""
    location = str(tmp_path / "vault")
    _neighbours(location, 40_000)
    running = own_server(location, statement_timeout=3, app_concurrency=1, rate_limit=0)
    token_b, token_a = running.key("read", app="b"), running.key("read", app="a")
    answers: list[httpx.Response] = []

    def slow_read() -> None:
        with running.client(token_b) as app_b:
            answers.append(app_b.get("/v1/events", params={"channel": "access", "filter": SLOW_FILTER}))

    first = threading.Thread(target=slow_read)
    first.start()
    time.sleep(0.3)  # the first holds app b's one slot
    others = [threading.Thread(target=slow_read) for _ in range(2)]
    for thread in others:
        thread.start()
    with running.client(token_a) as app_a:
        listed = app_a.get("/v1/events", params={"channel": "access", "limit": 5})
    for thread in [first, *others]:
        thread.join(timeout=60)
    assert listed.status_code == 200
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused, [answer.status_code for answer in answers]
    assert int(refused[0].headers["retry-after"]) >= 1
    assert refused[0].json()["error"]["code"] == "rate_limited" and "app_concurrency" in refused[0].text


def test_a_streamed_export_holds_its_apps_slot_until_it_ends(
    own_server: Callable[..., Server], tmp_path: Path
) -> None:
    """An export streaming its pages keeps app b's one slot (its later pages read the vault too): another
    request of app b meanwhile waits, then is 429; once the client leaves the stream the slot is free."""
    location = str(tmp_path / "vault")
    _neighbours(location, 20_000)
    running = own_server(location, app_concurrency=1, rate_limit=0)
    exporter, reader = running.key("archive", "unmask", app="b"), running.key("read", app="b")
    # A small receive buffer, so the server cannot hand the whole export to the kernel at once.
    small = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)])
    with running.client(exporter, transport=small) as app_b, app_b.stream("GET", "/v1/export") as export:
        assert export.status_code == 200
        chunks = export.iter_raw(1024)  # kept: a dropped iterator would close the response
        assert next(chunks)  # the stream is under way; the client reads no more for now
        with running.client(reader) as other:
            refused = other.get("/v1/events", params={"channel": "access", "limit": 1})
    assert refused.status_code == 429 and "app_concurrency" in refused.text
    deadline = time.monotonic() + 10
    with running.client(reader) as other:
        while (answer := other.get("/v1/events", params={"channel": "access", "limit": 1})).status_code == 429:
            assert time.monotonic() < deadline, "the slot was not given back after the client left the stream"
    assert answer.status_code == 200


def test_verify_over_http_runs_in_the_background_behind_a_status_resource(
    own_server: Callable[..., Server], tmp_path: Path
) -> None:
    """POST /v1/verify answers 202 with a status resource that reaches done with the report; keys without admin
    are refused both; the CLI's remote verify follows it to its answer."""
    running = own_server()
    with running.admin() as admin:
        admin.put("/v1/channels/access", json={"fields": [], "additional_fields": True})
        admin.post("/v1/channels/access/events", json=[access_event(i) for i in range(20)])
        signed = time.monotonic() + 30  # the checkpointer signs what was posted within a moment
        size = admin.get("/healthz").json()["log_size"]
        while admin.get("/v1/checkpoint").json().get("size", 0) < size:
            assert time.monotonic() < signed
            time.sleep(0.1)
        started = admin.post("/v1/verify", json={})
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["status"] in ("running", "done") and started.headers["location"] == f"/v1/verify/{job['id']}"
        deadline = time.monotonic() + 60
        while job["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
            job = admin.get(f"/v1/verify/{job['id']}").json()
    assert job["status"] == "done" and job["report"]["ok"] is True and job["error"] is None
    with running.client(running.key("read", "archive", "ingest")) as reader:
        assert reader.post("/v1/verify", json={}).status_code == 403
        assert reader.get(f"/v1/verify/{job['id']}").status_code == 403
    with running.client(running.key("admin", app="other")) as other:
        assert other.get(f"/v1/verify/{job['id']}").status_code == 404
    checked = run_cli("verify", env={"TRAILVAULT_SERVER": running.url, "TRAILVAULT_TOKEN": running.admin_token})
    assert checked.returncode == 0, checked.stderr


def test_one_verification_runs_at_a_time() -> None:
    """While one runs, the same request joins it, another is refused (naming the job only to its app); once
    done, its status holds the report and the next may start."""
    jobs = Verifications()
    release = threading.Event()

    def work() -> dict[str, bool]:
        release.wait(30)
        return {"ok": True}

    job = jobs.start("a", {"key": None}, work)
    assert jobs.start("a", {"key": None}, work) is job
    with pytest.raises(Conflict, match=job.id):
        jobs.start("a", {"key": "other"}, work)
    with pytest.raises(Conflict) as refused:
        jobs.start("b", {"key": None}, work)
    assert job.id not in refused.value.message
    with pytest.raises(NotFound):
        jobs.get("b", job.id)
    release.set()
    assert job.done.wait(30)
    assert jobs.get("a", job.id).to_dict()["report"] == {"ok": True}
    assert jobs.start("a", {"key": None}, lambda: {"ok": False}) is not job


def test_verifications_run_in_one_long_lived_thread() -> None:
    """Every job runs on the same thread (a thread per job left a store reader connection behind each)."""
    import threading

    from trailvault.edges.server.verifying import Verifications

    verifications = Verifications()
    threads = []
    for index in range(3):
        job = verifications.start("app", {"n": index}, lambda: {"thread": threads.append(threading.get_ident())})
        assert job.done.wait(10) and job.status == "done"
    assert len(threads) == 3 and len(set(threads)) == 1
