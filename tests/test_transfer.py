"""trailvault migrate: a vault copied between SQLite and PostgreSQL is the same log, proofs and all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import trailvault
from trailvault.core.integrity.note import Verifier
from trailvault.core.integrity.receipt import check_receipt
from trailvault.errors import Conflict
from trailvault.workflows.migrate import migrate_vault
from trailvault.workflows.vault.checkpointer import tree_root

from .conftest import MYINDEX, run_cli

_OCI_PUBLIC_KEY = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def _fill(location: str | Path) -> tuple[dict[str, object], str]:
    """Two channel versions with an indexed field, producer ids, a redaction, checkpoints, API keys of two
    apps (one revoked, one with an OCI public key); return a receipt."""
    with trailvault.open_vault(location) as vault:
        live = vault.create_key("reader", ["read"], ["access"], oci_public_key=_OCI_PUBLIC_KEY)[1]
        revoked = vault.for_app("billing").create_key("old", ["ingest"])[0]
        vault.for_app("billing").revoke_key(revoked.id)
        _TOKENS[str(location)] = live
        vault.open("myindex", MYINDEX)
        vault.open("access", {"fields": [{"name": "who", "type": "STRING", "index": True}]})
        vault.post_many("myindex", [{"company": f"c{i}", "amount": float(i)} for i in range(40)])
        vault.open("myindex", [*MYINDEX, {"name": "currency", "type": "STRING"}])
        vault.post("access", {"who": "alice"}, id="producer-1")
        gone = vault.post("myindex", {"company": "to erase", "currency": "EUR"})
        vault.redact(gone.id, "erasure request")
        receipt = vault.receipt(5)
        vault.post_many("access", [{"who": f"u{i}"} for i in range(25)])
        return receipt, vault.verifier_key()


_TOKENS: dict[str, str] = {}


@pytest.mark.parametrize("direction", ["sqlite to postgresql", "postgresql to sqlite"])
def test_copy_is_the_same_log(
    direction: str, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries, channels, redaction, idempotency and every checkpoint survive; the roots match; receipts hold."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    sqlite = tmp_path / "vault"
    source, target = (sqlite, postgres_url) if direction.startswith("sqlite") else (postgres_url, sqlite)
    receipt, key = _fill(source)
    with trailvault.open_vault(source, create=False) as vault:
        checkpoints = [(cp.size, cp.root) for cp in vault._store.all_checkpoints()]
        size = vault._store.log_size()
    report = migrate_vault(source, target)
    # myindex v1 and v2, access, and the channel that records redactions.
    assert (report.entries, report.channel_versions, report.checkpoints) == (size, 4, len(checkpoints))
    assert report.key_copied_to is not None
    with trailvault.open_vault(target, create=False) as copy:
        assert copy.verifier_key() == key
        assert [(cp.size, cp.root) for cp in copy._store.all_checkpoints()] == checkpoints
        assert copy.verify(key=key).ok
        # A receipt handed out by the source proves against the copy's own tree.
        signed = check_receipt(receipt, Verifier.parse(key))
        assert tree_root(copy._store, signed.size) == signed.root
        assert copy.prove_inclusion(5, size).to_dict()["size"] == size
        assert copy.channel("myindex").version == 2
        assert copy.events("access", where={"who": "alice"}).events[0].id == "producer-1"
        assert copy.post("access", {"who": "alice"}, id="producer-1").duplicate
        assert [e.body for e in copy.events("myindex", sort_order="desc", limit=1)] == [None]
        copy.issue_checkpoint()  # the copied key signs for the copied origin
        # API keys: the token still works on the copy, and the revoked key stays revoked.
        assert copy.authenticate(_TOKENS[str(source)]).channels == ("access",)
        assert [key.revoked_us is not None for key in copy.for_app("billing").keys()] == [True]
        # The OCI public key goes too: its signatures still find the key.
        (reader,) = copy.keys()
        assert reader.oci_fingerprint is not None
        assert copy._store.api_key_by_fingerprint(reader.oci_fingerprint) == (reader, _OCI_PUBLIC_KEY)
    assert report.api_keys == 2


def test_target_must_be_empty(tmp_path: Path) -> None:
    """Copying into a vault that holds anything is refused, and the target is left as it was."""
    _fill(tmp_path / "a")
    with trailvault.open_vault(tmp_path / "b") as other:
        other.open("myindex", MYINDEX)
        other.post("myindex", {"company": "mine"})
    with pytest.raises(Conflict, match="new, empty vault"):
        migrate_vault(tmp_path / "a", tmp_path / "b")
    with trailvault.open_vault(tmp_path / "b", create=False) as other:
        assert [e.body for e in other.events("myindex")] == [{"company": "mine"}]


def test_cli_migrate(tmp_path: Path, postgres_url: str) -> None:
    """trailvault migrate --from PATH --to URL prints what it copied; the target then verifies on its own."""
    _fill(tmp_path / "vault")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = run_cli("migrate", "--from", str(tmp_path / "vault"), "--to", postgres_url, env=env)
    assert result.returncode == 0, result.stderr
    copied = json.loads(result.stdout)
    assert copied["verified"] and copied["entries"] == 68 and "***" in copied["target"]
    verified = run_cli("verify", env={**env, "TRAILVAULT_VAULT": postgres_url})
    assert verified.returncode == 0 and "ok: 68 entries" in verified.stdout
    again = run_cli("migrate", "--from", str(tmp_path / "vault"), "--to", postgres_url, env=env)
    assert again.returncode == 1 and "new, empty vault" in again.stderr
