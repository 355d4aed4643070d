"""A post that has returned survives the process being killed at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import trailvault

from ..conftest import MYINDEX

WRITER = """
import json, os, signal, sys, trailvault
vault = trailvault.open_vault(sys.argv[1])
for i in range(200):
    posted = vault.post("myindex", {"company": str(i)})
    print(json.dumps({"seq": posted.seq, "id": posted.id}), flush=True)
    if i == 149:
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.system
def test_acknowledged_posts_survive_sigkill(vault_dir: Path) -> None:
    """Every post acknowledged before SIGKILL is in the vault afterwards, and nothing after it."""
    with trailvault.open_vault(vault_dir) as vault:
        vault.open("myindex", MYINDEX)
    result = subprocess.run([sys.executable, "-c", WRITER, str(vault_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGKILL
    acknowledged = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(acknowledged) == 150
    with trailvault.open_vault(vault_dir, create=False) as vault:
        kept = {event.id: event.seq for event in vault.iter_events("myindex")}
    assert kept == {item["id"]: item["seq"] for item in acknowledged}
