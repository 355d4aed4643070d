"""trailvault import datasafe against a real server: the import goes through the Vault API over HTTP."""

from __future__ import annotations

import json

import orjson

from tests.conftest import run_cli
from tests.server.conftest import Server
from tests.test_import_datasafe import EVENTS, cli_page, rest, sdk_event


def test_cli_import_through_a_server(server: Server) -> None:
    """--server imports through the Vault API over HTTP: once, then as duplicates."""
    text = cli_page(EVENTS)
    args = ("--server", server.url, "--token", server.admin_token, "import", "datasafe", "-", "--channel", "ds")
    first = run_cli(*args, stdin=text)
    assert first.returncode == 0, first.stderr
    assert orjson.loads(first.stdout) == {"imported": 6, "duplicates": 0, "refused": 0}
    bad = {**rest(sdk_event(50)), "trailSource": "TAPE"}
    second = run_cli(*args, stdin=text + json.dumps([bad]))
    assert second.returncode == 1 and "trailSource" in second.stderr
    assert orjson.loads(second.stdout) == {"imported": 0, "duplicates": 6, "refused": 1}
