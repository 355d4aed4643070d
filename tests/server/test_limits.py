"""Request timeouts and CORS, against a real uvicorn serving the app on a loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import trailvault
from tests.conftest import ACCESS, access_event
from tests.server.conftest import Server, free_port
from trailvault import NewEvent
from trailvault.core.api_key import parse_token
from trailvault.edges.server import ServerOptions, create_app


@pytest.fixture
def slow_disk_server(tmp_path: Path) -> Iterator[tuple[str, str, trailvault.Vault]]:
    """uvicorn in a thread serving a vault whose commits take 1.5 s (a stalled disk), request_timeout 0.3 s."""
    vault = trailvault.open_vault(tmp_path / "vault")
    vault.open("access", ACCESS)
    token = vault.create_key("admin", ["admin"])[1]
    append = vault._store.append

    def slow_append(batches: Sequence[Any]) -> Any:
        time.sleep(1.5)
        return append(batches)

    vault._committer._append = slow_append
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(vault, ServerOptions(request_timeout=0.3, audit_reads=False)), port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", token, vault
    server.should_exit = True
    thread.join(timeout=30)
    vault.close()


def test_a_request_over_the_timeout_is_503_and_its_resend_is_recognised(
    slow_disk_server: tuple[str, str, trailvault.Vault],
) -> None:
    """A post that outlives request_timeout answers 503 saying to resend by id; it still commits,
    and the same key posting it again is recognised as a duplicate, not stored twice."""
    url, token, vault = slow_disk_server
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        first = client.post("/v1/channels/access/events", params={"id": "slow-1"}, json=access_event(1))
        health = client.get("/healthz")
    assert first.status_code == 503
    assert first.json()["error"]["code"] == "store_unavailable"
    assert "resend" in first.json()["error"]["message"]
    assert health.status_code == 200
    deadline = time.monotonic() + 10
    while not vault.events("access").events and time.monotonic() < deadline:
        time.sleep(0.1)
    resent = vault.post_many_nowait("access", [NewEvent(access_event(1), id="slow-1")], posted_by=parse_token(token)[0])
    assert resent.result()[0].duplicate
    assert [event.id for event in vault.events("access")] == ["slow-1"]


def test_cors_allows_only_the_configured_origins(own_server: Callable[..., Server]) -> None:
    """With cors_origins set, a listed origin gets the CORS headers and another does not."""
    running = own_server(cors_origins="https://audit.example.com")
    allowed = httpx.options(
        f"{running.url}/v1/events",
        headers={"Origin": "https://audit.example.com", "Access-Control-Request-Method": "GET"},
    )
    other = httpx.options(
        f"{running.url}/v1/events",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert allowed.headers.get("access-control-allow-origin") == "https://audit.example.com"
    assert "access-control-allow-origin" not in other.headers
