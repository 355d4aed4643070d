"""The Platform 6 `audit` binding, run the way a Platform 6 script would use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..conftest import EXAMPLES, run_cli

SCRIPT = f"""
from trailvault import audit
print(audit.open("myindex", "{(EXAMPLES / "myindex.json").as_uri()}"))
audit.post("myindex", {{"company": "Amalto", "amount": 101.12}})
audit.post("myindex", '{{"company": "Amalto", "amount": 123.45, "taxes": [{{"salestax": 12.35, "taxrate": 10}}]}}')
print(audit.open("myindex"))
"""


def _python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("TRAILVAULT_")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_audit_open_and_post_into_configured_vault(tmp_path: Path) -> None:
    """audit.open/post write to the vault named by TRAILVAULT_VAULT, with the app as application_id."""
    vault = tmp_path / "p6"
    result = _python(SCRIPT, {"TRAILVAULT_VAULT": str(vault), "TRAILVAULT_APP": "acme-p6"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
    listed = run_cli("--app", "acme-p6", "events", "list", "--output", "json", vault=vault)
    bodies = [item["body"] for item in json.loads(listed.stdout)["items"]]
    assert bodies == [
        {"company": "Amalto", "amount": 101.12},
        {"company": "Amalto", "amount": 123.45, "taxes": [{"salestax": 12.35, "taxrate": 10.0}]},
    ]
    other_app = run_cli("events", "list", "--output", "json", vault=vault)
    assert json.loads(other_app.stdout)["items"] == []


def test_audit_uses_config_file(tmp_path: Path) -> None:
    """Without TRAILVAULT_VAULT, the binding reads trailvault.toml."""
    (tmp_path / "trailvault.toml").write_text('vault = "configured"\napp = "p6"\n')
    assert _python(SCRIPT, {}, tmp_path).returncode == 0
    listed = run_cli("events", "list", "--output", "json", cwd=tmp_path)
    assert len(json.loads(listed.stdout)["items"]) == 2


def test_audit_post_error_names_field(tmp_path: Path) -> None:
    """A bad post raises a trailvault error naming the field."""
    code = SCRIPT + "\ntry:\n    audit.post('myindex', {'amount': 1})\nexcept Exception as exc:\n    print(exc.field)\n"
    result = _python(code, {"TRAILVAULT_VAULT": str(tmp_path / "v")}, tmp_path)
    assert result.stdout.split()[-1] == "company"
