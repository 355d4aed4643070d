"""Fixtures that start real components: SQLite vault files and the installed CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import trailvault
from trailvault import Vault

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "platform6"
CLI = Path(sys.executable).parent / "trailvault"

#: The Platform 6 BigQuery-style example schema, as a document.
MYINDEX = [
    {"name": "company", "type": "STRING", "mode": "REQUIRED", "nested": []},
    {"name": "amount", "type": "FLOAT", "mode": "NULLABLE", "nested": []},
    {
        "name": "taxes",
        "type": "RECORD",
        "mode": "REPEATED",
        "nested": [
            {"name": "salestax", "type": "FLOAT", "mode": "NULLABLE", "nested": []},
            {"name": "taxrate", "type": "FLOAT", "mode": "NULLABLE", "nested": []},
        ],
    },
]

#: A realistic audit schema (datapunt AuditLogger's shape) with an indexed field.
ACCESS = {
    "fields": [
        {"name": "type", "type": "STRING", "mode": "REQUIRED"},
        {"name": "message", "type": "STRING"},
        {"name": "occurred", "type": "TIMESTAMP"},
        {
            "name": "user",
            "type": "RECORD",
            "fields": [
                {"name": "email", "type": "STRING", "index": True},
                {"name": "authenticated", "type": "BOOLEAN"},
                {"name": "roles", "type": "STRING", "mode": "REPEATED"},
                {"name": "ip", "type": "STRING", "sensitive": True},
            ],
        },
        {
            "name": "http_response",
            "type": "RECORD",
            "fields": [{"name": "status_code", "type": "INTEGER"}, {"name": "reason", "type": "STRING"}],
        },
    ]
}


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def vault(vault_dir: Path) -> Iterator[Vault]:
    with trailvault.open_vault(vault_dir) as opened:
        yield opened


@pytest.fixture
def myindex(vault: Vault) -> Vault:
    vault.open("myindex", MYINDEX)
    return vault


def run_cli(
    *args: str,
    vault: Path | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``trailvault`` console script as a real subprocess."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("TRAILVAULT_")}
    full_env.update(env or {})
    if vault is not None:
        full_env["TRAILVAULT_VAULT"] = str(vault)
    return subprocess.run(
        [str(CLI), *args], input=stdin, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120
    )


def access_event(index: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "INFO",
        "message": f"Retrieve Order {index}",
        "user": {
            "email": f"user{index % 7}@example.com",
            "authenticated": True,
            "roles": ["auditor"],
            "ip": "10.0.0.1",
        },
        "http_response": {"status_code": 200, "reason": "OK"},
    }
    body.update(changes)
    return body
