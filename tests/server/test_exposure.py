"""What the server shows without asking: the access log's lines and /healthz to a caller without a key."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import trailvault
from tests.conftest import ACCESS, CLI
from tests.server.conftest import Server, free_port


@pytest.mark.system
def test_the_access_log_has_method_path_and_status_never_the_query(tmp_path: Path) -> None:
    """serve --access-log logs `GET /v1/events 200` for a request whose query carries a filter value and a
    password=, and neither value reaches the log."""
    vault = tmp_path / "vault"
    with trailvault.open_vault(vault) as opened:
        opened.open("access", ACCESS)
        token = opened.create_key("reader", ["read"])[1]
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAILVAULT_")}
    env["TRAILVAULT_VAULT"] = str(vault)
    log = tmp_path / "server.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(CLI), "serve", "--port", str(port), "--access-log"], env=env, stdout=handle, stderr=handle
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        headers = {"Authorization": f"Bearer {token}"}
        answer = httpx.get(url + "/v1/events", params={"filter": 'user.email eq "Hidden.Person@example.com"'},
                           headers=headers)  # fmt: skip
        assert answer.status_code == 200
        # An unknown parameter is refused (400), and its value stays out of the log all the same.
        refused = httpx.get(url + "/v1/events", params={"password": "Hunter2-Secret"}, headers=headers)
        assert refused.status_code == 400
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    text = log.read_text()
    assert "GET /v1/events 200" in text and "GET /v1/events 400" in text, text
    assert "Hunter2" not in text and "Hidden.Person" not in text and "password" not in text


def test_healthz_shows_the_log_size_only_to_a_key_that_may_read(own_server: Callable[..., Server]) -> None:
    """Without a key /healthz says only that the server lives; an ingest-only key learns no more; a read key
    gets the log's size; a wrong key is 401."""
    running = own_server()
    anonymous = httpx.get(running.url + "/healthz")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
    with running.client(running.key("ingest")) as ingest:
        assert ingest.get("/healthz").json() == {"status": "ok"}
    with running.client(running.key("read")) as reader:
        assert set(reader.get("/healthz").json()) == {"status", "log_size"}
    with running.client("tv_0000000000000000_" + "A" * 43) as stranger:
        assert stranger.get("/healthz").status_code == 401
