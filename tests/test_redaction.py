"""Redaction: a body removed for an erasure request, while the log, its proofs and verify still hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import trailvault
from trailvault import Vault
from trailvault.core.integrity.checkpoint import open_checkpoint
from trailvault.core.integrity.merkle import verify_inclusion
from trailvault.core.integrity.note import Verifier
from trailvault.core.integrity.receipt import check_receipt
from trailvault.errors import Conflict, Forbidden, InvalidInput

from .conftest import EXAMPLES, run_cli


@pytest.fixture
def redacted(myindex: Vault) -> Vault:
    myindex.post_many("myindex", [{"company": f"c{i}"} for i in range(10)])
    myindex.post("myindex", {"company": "Jane Doe Ltd"}, id="personal")
    myindex.post_many("myindex", [{"company": f"d{i}"} for i in range(10)])
    myindex.issue_checkpoint()
    myindex.redact("personal", "GDPR erasure request #4411")
    return myindex


def test_body_is_gone_envelope_stays(redacted: Vault) -> None:
    """The body reads as None; id, seq and channel stay."""
    event = redacted.get("personal")
    assert event.body is None and event.seq == 11 and event.channel == "myindex"


def test_redaction_is_itself_an_event(redacted: Vault) -> None:
    """The redaction is recorded in trailvault.redactions with the id, seq and reason."""
    (record,) = redacted.events("trailvault.redactions")
    assert record.body == {"redacted_id": "personal", "redacted_seq": 11, "reason": "GDPR erasure request #4411"}
    assert record.seq == 22


def test_verify_and_proofs_still_hold(redacted: Vault) -> None:
    """verify passes, the old checkpoint still matches, and the redacted entry's proof and receipt verify."""
    assert redacted.verify().ok
    verifier = Verifier.parse(redacted.verifier_key())
    proof = redacted.prove_inclusion("personal")
    root = open_checkpoint(proof.checkpoint or "", verifier).root
    assert verify_inclusion(proof.index, proof.size, proof.leaf_hash, proof.hashes, root)
    receipt = redacted.receipt("personal")
    assert receipt["body"] is None
    check_receipt(receipt, verifier)


def test_cannot_redact_twice_or_without_reason(redacted: Vault) -> None:
    """A second redaction, a blank reason, or redacting a redaction record are refused."""
    with pytest.raises(Conflict):
        redacted.redact("personal", "again")
    with pytest.raises(InvalidInput, match="reason"):
        redacted.redact(redacted.events("myindex")[0].id, "  ")
    record = redacted.events("trailvault.redactions")[0]
    with pytest.raises(InvalidInput, match=r"records of trailvault\.redactions cannot be redacted"):
        redacted.redact(record.id, "hide the trail")


def test_other_apps_event_cannot_be_redacted(redacted: Vault, vault_dir: Path) -> None:
    """Another app cannot redact this app's event (it does not see it)."""
    with trailvault.open_vault(vault_dir, app="other") as other, pytest.raises(trailvault.errors.EventNotFound):
        other.redact("personal", "not mine")


def test_cli_redact(vault_dir: Path) -> None:
    """events redact removes the body and verify still passes."""
    run_cli("init", vault=vault_dir)
    run_cli("channels", "open", "myindex", "--schema", str(EXAMPLES / "myindex.json"), vault=vault_dir)
    run_cli("post", "myindex", '{"company": "A"}', "--id", "x", vault=vault_dir)
    done = run_cli("events", "redact", "x", "--reason", "erasure", vault=vault_dir)
    assert done.returncode == 0, done.stderr
    assert json.loads(run_cli("events", "get", "x", "--output", "json", vault=vault_dir).stdout)["body"] is None
    assert run_cli("verify", vault=vault_dir).returncode == 0


def test_trailvaults_own_channels_refuse_writes_from_the_library(vault_dir: Path) -> None:
    """open with a schema and post on trailvault.* are refused in Python too; redaction still records itself."""
    with trailvault.open_vault(vault_dir) as vault:
        vault.open("notes", {"fields": [{"name": "text", "type": "STRING"}]})
        posted = vault.post("notes", {"text": "secret"})
        vault.redact(posted.id, "erasure")
        with pytest.raises(Forbidden):
            vault.open("trailvault.redactions", {"fields": [{"name": "x", "type": "STRING", "mode": "REQUIRED"}]})
        with pytest.raises(Forbidden):
            vault.post("trailvault.redactions", {"redacted_id": "x", "redacted_seq": 1, "reason": "forged"})
        assert [event.body["redacted_id"] for event in vault.events("trailvault.redactions")] == [posted.id]
