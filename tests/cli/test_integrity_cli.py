"""trailvault key, checkpoint and proof (run_cli); their output checked with the pure verifiers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trailvault.core.integrity.checkpoint import open_checkpoint
from trailvault.core.integrity.merkle import verify_consistency, verify_inclusion
from trailvault.core.integrity.note import Verifier

from ..conftest import EXAMPLES, run_cli


@pytest.fixture
def posted(vault_dir: Path) -> Path:
    assert run_cli("init", vault=vault_dir).returncode == 0
    run_cli("channels", "open", "myindex", "--schema", str(EXAMPLES / "myindex.json"), vault=vault_dir)
    # Two posts, so checkpoints of sizes 10 and 25 are signed (each command signs at its end).
    for first, end in ((0, 10), (10, 25)):
        lines = "".join(json.dumps({"id": f"e{i}", "body": {"company": str(i)}}) + "\n" for i in range(first, end))
        assert run_cli("post", "myindex", "-", "--envelope", stdin=lines, vault=vault_dir).returncode == 0
    return vault_dir


def _verifier(vault: Path) -> Verifier:
    return Verifier.parse(run_cli("key", "show", vault=vault).stdout)


def test_init_prints_the_verifier_key(vault_dir: Path) -> None:
    """init reports the vault's verifier key, the same that key show prints."""
    created = json.loads(run_cli("init", vault=vault_dir).stdout)
    assert created["key"] == run_cli("key", "show", vault=vault_dir).stdout.strip()


def test_checkpoint_show_is_a_verifiable_note(posted: Path) -> None:
    """checkpoint show prints a signed note covering every posted event."""
    note = run_cli("checkpoint", "show", vault=posted).stdout
    assert open_checkpoint(note, _verifier(posted)).size == 25


def test_checkpoint_show_json_and_size(posted: Path) -> None:
    """--output json gives size, root and note; an unknown --size exits 1."""
    shown = json.loads(run_cli("checkpoint", "show", "--output", "json", vault=posted).stdout)
    assert shown["size"] == 25 and shown["note"].endswith("\n")
    missing = run_cli("checkpoint", "show", "--size", "7", vault=posted)
    assert missing.returncode == 1 and "no checkpoint of size 7" in missing.stderr


def test_proof_inclusion_json_verifies(posted: Path) -> None:
    """proof inclusion ID gives the leaf hash, proof hashes and checkpoint, and they verify."""
    result = json.loads(run_cli("proof", "inclusion", "e11", vault=posted).stdout)
    root = open_checkpoint(result["checkpoint"], _verifier(posted)).root
    hashes = [bytes.fromhex(item) for item in result["hashes"]]
    assert result["seq"] == 12
    assert verify_inclusion(result["index"], result["size"], bytes.fromhex(result["leaf_hash"]), hashes, root)


def test_proof_inclusion_by_seq_and_size(posted: Path) -> None:
    """--seq and --size prove an entry against an earlier signed checkpoint; a size none has exits 1."""
    result = json.loads(run_cli("proof", "inclusion", "3", "--seq", "--size", "10", vault=posted).stdout)
    assert (result["index"], result["size"]) == (2, 10)
    assert open_checkpoint(result["checkpoint"], _verifier(posted)).size == 10
    unsigned = run_cli("proof", "inclusion", "3", "--seq", "--size", "12", vault=posted)
    assert unsigned.returncode == 1 and "size: no signed checkpoint of size 12" in unsigned.stderr


def test_proof_consistency_json_verifies(posted: Path) -> None:
    """proof consistency --from --to verifies between the two roots it reports."""
    result = json.loads(run_cli("proof", "consistency", "--from", "9", "--to", "25", vault=posted).stdout)
    hashes = [bytes.fromhex(item) for item in result["hashes"]]
    assert verify_consistency(9, 25, bytes.fromhex(result["old_root"]), bytes.fromhex(result["new_root"]), hashes)
    assert open_checkpoint(result["checkpoint"], _verifier(posted)).root.hex() == result["new_root"]


def test_proof_errors(posted: Path) -> None:
    """An unknown id or an impossible range exits 1 naming the field."""
    unknown = run_cli("proof", "inclusion", "nope", vault=posted)
    assert unknown.returncode == 1 and "id:" in unknown.stderr
    backwards = run_cli("proof", "consistency", "--from", "20", "--to", "10", vault=posted)
    assert backwards.returncode == 1 and "from/to" in backwards.stderr
