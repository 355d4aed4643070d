"""Receipts: produced by post(wait=True) and `post --receipt`, checked offline with only the key."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from trailvault import Vault
from trailvault.core.integrity.note import Verifier
from trailvault.core.integrity.receipt import check_receipt
from trailvault.errors import InvalidInput

from .conftest import EXAMPLES, run_cli


@pytest.fixture
def receipt(myindex: Vault) -> dict[str, Any]:
    myindex.post_many("myindex", [{"company": str(i)} for i in range(30)])
    return myindex.post("myindex", {"company": "Amalto", "amount": 101.12}, id="inv-1", wait=True)


def test_post_wait_returns_a_receipt_that_checks(myindex: Vault, receipt: dict[str, Any]) -> None:
    """post(wait=True) returns a receipt for the event that checks with the vault's key."""
    checkpoint = check_receipt(receipt, Verifier.parse(myindex.verifier_key()))
    assert receipt["entry"]["id"] == "inv-1" and receipt["entry"]["seq"] == 31
    assert receipt["body"] == {"company": "Amalto", "amount": 101.12}
    assert checkpoint.size >= 31


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r["body"].update(amount=1.0), "body"),
        (lambda r: r["entry"].update(channel="other"), "entry"),
        (lambda r: r.update(index=r["index"] - 1), "index"),
        (lambda r: r["hashes"].__setitem__(0, "00" * 32), "hashes"),
        (lambda r: r.update(size=r["size"] + 1), "size"),
    ],
)
def test_altered_receipt_fails(myindex: Vault, receipt: dict[str, Any], change: Any, field: str) -> None:
    """Any change to the receipt's body, entry, index, proof or size is caught and named."""
    altered = copy.deepcopy(receipt)
    change(altered)
    with pytest.raises(InvalidInput) as caught:
        check_receipt(altered, Verifier.parse(myindex.verifier_key()))
    assert caught.value.field == field


def test_receipt_with_another_vaults_key_fails(receipt: dict[str, Any], tmp_path: Path) -> None:
    """A receipt checked with another vault's key is refused."""
    import trailvault

    with trailvault.open_vault(tmp_path / "other") as other:
        foreign = Verifier.parse(other.verifier_key())
    with pytest.raises(InvalidInput, match="not signed by the key"):
        check_receipt(receipt, foreign)


def test_cli_receipt_round_trip(vault_dir: Path, tmp_path: Path) -> None:
    """`post --receipt` writes a receipt that `verify receipt --key @FILE` accepts with no vault at hand."""
    run_cli("init", vault=vault_dir)
    run_cli("channels", "open", "myindex", "--schema", str(EXAMPLES / "myindex.json"), vault=vault_dir)
    receipt = tmp_path / "receipt.json"
    posted = run_cli("post", "myindex", '{"company": "Amalto"}', "--receipt", str(receipt), vault=vault_dir)
    assert posted.returncode == 0, posted.stderr
    key = tmp_path / "vault.pub"
    key.write_text(run_cli("key", "show", vault=vault_dir).stdout)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    checked = run_cli("verify", "receipt", str(receipt), "--key", f"@{key}", cwd=elsewhere)
    assert checked.returncode == 0 and "ok: event" in checked.stdout
    document = json.loads(receipt.read_text())
    document["body"]["company"] = "Forged"
    receipt.write_text(json.dumps(document))
    forged = run_cli("verify", "receipt", str(receipt), "--key", f"@{key}", cwd=elsewhere)
    assert forged.returncode == 1 and "body" in forged.stderr
