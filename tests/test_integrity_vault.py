"""The vault's signing key, its checkpoints, and the proofs it gives, checked with the pure verifiers."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

import trailvault
from trailvault import Vault
from trailvault.core.integrity.checkpoint import open_checkpoint
from trailvault.core.integrity.merkle import verify_consistency, verify_inclusion
from trailvault.core.integrity.note import Verifier
from trailvault.errors import Conflict, InvalidQuery

from .conftest import MYINDEX


def test_new_vault_gets_a_private_key_file(vault: Vault, vault_location: str | Path, tmp_path: Path) -> None:
    """A new vault has an Ed25519 key readable only by its owner: beside a SQLite database, or
    in the configuration folder under the vault id for a PostgreSQL vault."""
    vault_id = vault.verifier_key().split("+")[0].split("/")[1]
    if isinstance(vault_location, Path):
        key = vault_location / "vault.key"
    else:
        key = tmp_path / "config" / "trailvault" / "keys" / f"{vault_id}.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()


def test_verifier_key_names_the_origin(vault: Vault) -> None:
    """The verifier key is <log_name>/<vault id>+<key id>+<key>, and parses."""
    text = vault.verifier_key()
    verifier = Verifier.parse(text)
    assert verifier.name.startswith("trailvault/") and len(verifier.name) == len("trailvault/") + 36


def test_closing_signs_what_was_posted(vault_dir: Path) -> None:
    """A vault that posted and closed leaves a checkpoint covering every event."""
    with trailvault.open_vault(vault_dir) as vault:
        vault.open("myindex", MYINDEX)
        vault.post_many("myindex", [{"company": str(i)} for i in range(10)])
        key = vault.verifier_key()
    with trailvault.open_vault(vault_dir) as vault:
        latest = vault.checkpoint()
    checkpoint = open_checkpoint(latest.note, Verifier.parse(key))
    assert checkpoint.size == 10 and checkpoint.timestamp is not None
    assert abs(checkpoint.timestamp - time.time()) < 60


def test_checkpoints_follow_posts_in_the_background(myindex: Vault) -> None:
    """While a vault is open, a checkpoint covering a post appears within a second, unasked."""
    posted = myindex.post("myindex", {"company": "A"})
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            if myindex.checkpoint().size >= posted.seq:
                return
        except trailvault.errors.NotFound:
            pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint covered the post within 2 s")


def test_inclusion_proof_verifies_offline(myindex: Vault) -> None:
    """An inclusion proof verifies against the root of the checkpoint it carries."""
    myindex.post_many("myindex", [{"company": str(i)} for i in range(37)])
    target = myindex.post("myindex", {"company": "target"}, id="the-one")
    myindex.post_many("myindex", [{"company": str(i)} for i in range(20)])
    proof = myindex.prove_inclusion("the-one")
    checkpoint = open_checkpoint(proof.checkpoint or "", Verifier.parse(myindex.verifier_key()))
    assert proof.index == target.seq - 1 and proof.size == checkpoint.size
    assert verify_inclusion(proof.index, proof.size, proof.leaf_hash, proof.hashes, checkpoint.root)


def test_inclusion_proof_for_a_given_size(myindex: Vault) -> None:
    """A proof at the size of a signed checkpoint verifies against that checkpoint's root."""
    myindex.post_many("myindex", [{"company": str(i)} for i in range(20)])
    at20 = myindex.issue_checkpoint()
    myindex.post_many("myindex", [{"company": str(i)} for i in range(10)])
    proof = myindex.prove_inclusion(5, size=20)
    assert proof.checkpoint == at20.note
    assert verify_inclusion(4, 20, proof.leaf_hash, proof.hashes, at20.root)
    with pytest.raises(InvalidQuery):
        myindex.prove_inclusion(25, size=20)


def test_proofs_against_unsigned_sizes_are_refused(myindex: Vault) -> None:
    """A size no signed checkpoint has gives no inclusion or consistency proof, naming size."""
    myindex.post_many("myindex", [{"company": str(i)} for i in range(20)])
    myindex.issue_checkpoint()
    myindex.post_many("myindex", [{"company": str(i)} for i in range(10)])
    with pytest.raises(InvalidQuery, match="no signed checkpoint of size 25") as refused:
        myindex.prove_inclusion(5, size=25)
    assert refused.value.field == "size"
    with pytest.raises(InvalidQuery, match="no signed checkpoint of size 25"):
        myindex.prove_consistency(10, 25)


def test_consistency_proof_verifies(myindex: Vault) -> None:
    """A consistency proof between two sizes verifies, and fails for another old root."""
    myindex.post_many("myindex", [{"company": str(i)} for i in range(50)])
    myindex.issue_checkpoint()
    proof = myindex.prove_consistency(13, 50)
    assert verify_consistency(13, 50, proof.old_root, proof.new_root, proof.hashes)
    other = myindex.prove_consistency(14, 50)
    assert not verify_consistency(13, 50, other.old_root, proof.new_root, proof.hashes)


def test_foreign_key_file_is_refused(vault_dir: Path, tmp_path: Path) -> None:
    """Opening a vault with another vault's key is refused naming signing_key."""
    with trailvault.open_vault(vault_dir):
        pass
    with trailvault.open_vault(tmp_path / "other"):
        pass
    with pytest.raises(Conflict, match="signing_key"):
        trailvault.open_vault(vault_dir, signing_key=tmp_path / "other" / "vault.key")


def test_vault_without_its_key_still_proves(vault_dir: Path) -> None:
    """A reader without the key file proves against the checkpoints already kept."""
    with trailvault.open_vault(vault_dir) as vault:
        vault.open("myindex", MYINDEX)
        vault.post_many("myindex", [{"company": str(i)} for i in range(5)])
    (vault_dir / "vault.key").rename(vault_dir / "elsewhere.key")
    with trailvault.open_vault(vault_dir, create=False) as reader:
        proof = reader.prove_inclusion(3)
        root = open_checkpoint(proof.checkpoint or "", Verifier.parse(reader.verifier_key())).root
        assert verify_inclusion(2, proof.size, proof.leaf_hash, proof.hashes, root)
        with pytest.raises(trailvault.errors.NotFound, match="signing_key"):
            reader.issue_checkpoint()


def test_proofs_are_scoped_to_the_app(myindex: Vault, vault_dir: Path) -> None:
    """Another app cannot get a proof or receipt for this app's entry by its seq."""
    myindex.post("myindex", {"company": "A"})
    with trailvault.open_vault(vault_dir, app="other") as other:
        with pytest.raises(trailvault.errors.EventNotFound):
            other.prove_inclusion(1)
        with pytest.raises(trailvault.errors.EventNotFound):
            other.receipt(1)
