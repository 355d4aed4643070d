"""The real `oci` CLI against `trailvault serve`: Data Safe's audit-event listing, unchanged but for its endpoint.

The CLI lives in a venv of its own (it pins an older click; `make test` installs it and
names it in TRAILVAULT_TEST_OCI_CLI). It signs every request with the key pair of an OCI
config file the test writes, whose public key is registered on a trailvault API key.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.test_oci_face import COMPARTMENT, EVENT_COUNT, Faces, started_faces

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faces]:
    """The OCI face on a SQLite vault with app dbsec's Data Safe events (see started_faces)."""
    folder = tmp_path_factory.mktemp("oci-cli")
    with started_faces(str(folder / "vault"), folder) as started:
        yield started


def run_oci(oci_cli: Path, faces: Faces, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run `oci data-safe audit-event-summary list-audit-events` as the reader key, against the server."""
    home = faces.configs[faces.reader].parent
    env = {
        **os.environ,
        "HOME": str(home),
        "OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING": "True",
        "SUPPRESS_LABEL_WARNING": "True",
    }
    command = [
        str(oci_cli), "data-safe", "audit-event-summary", "list-audit-events",
        "--config-file", str(faces.configs[faces.reader]), "--profile", "DEFAULT",
        "--endpoint", faces.server.url, "--no-retry", "--compartment-id", COMPARTMENT, *arguments,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def _answer(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_the_cli_lists_every_event_with_all(oci_cli: Path, faces: Faces) -> None:
    """`--all` (pages of 3) follows opc-next-page to the end: every event once, in the CLI's output shape."""
    items = _answer(run_oci(oci_cli, faces, "--all", "--page-size", "3"))["data"]["items"]
    assert sorted(item["id"] for item in items) == faces.ids and len(items) == EVENT_COUNT
    assert {item["compartment-id"] for item in items} == {COMPARTMENT}


def test_the_cli_pages_with_limit_and_page(oci_cli: Path, faces: Faces) -> None:
    """`--limit 2` answers two events and the next page's token; `--page` with it continues after them."""
    first = _answer(run_oci(oci_cli, faces, "--limit", "2", "--sort-by", "dbUserName", "--sort-order", "DESC"))
    token = first["opc-next-page"]
    second = _answer(
        run_oci(oci_cli, faces, "--limit", "2", "--sort-by", "dbUserName", "--sort-order", "DESC", "--page", token)
    )
    seen = [item["id"] for item in first["data"]["items"] + second["data"]["items"]]
    names = [item["db-user-name"] for item in first["data"]["items"] + second["data"]["items"]]
    assert len(set(seen)) == 4 and names == sorted(names, reverse=True)


def test_the_cli_reports_a_bad_scim_query_as_oci_does(oci_cli: Path, faces: Faces) -> None:
    """A scimQuery that does not parse exits non-zero with InvalidParameter and a message naming scimQuery."""
    done = run_oci(oci_cli, faces, "--scim-query", 'operation eq "LOGON" and')
    assert done.returncode != 0
    assert "InvalidParameter" in done.stderr and "scimQuery" in done.stderr
