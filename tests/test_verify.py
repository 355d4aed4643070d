"""verify on a real vault file, tampered with through raw sqlite3 the way an intruder would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import trailvault
import trailvault.workflows.vault.verify
from trailvault.adapters.signing_key import load_signing_key
from trailvault.core.integrity.checkpoint import sign_checkpoint

from .conftest import MYINDEX, run_cli

TRIGGERS = ("events_refuse_update", "events_refuse_delete", "merkle_tiles_only_grow", "merkle_tiles_refuse_delete",
            "checkpoints_refuse_update", "checkpoints_refuse_delete")  # fmt: skip


@pytest.fixture
def kept(vault_dir: Path) -> Path:
    """A closed vault of 40 events with checkpoints at sizes 20 and 40."""
    with trailvault.open_vault(vault_dir) as vault:
        vault.open("myindex", MYINDEX)
        vault.post_many("myindex", [{"company": f"c{i}", "amount": float(i)} for i in range(20)])
        vault.issue_checkpoint()
        vault.post_many("myindex", [{"company": f"c{i}", "amount": float(i)} for i in range(20, 40)])
    return vault_dir


@pytest.fixture
def intruder(kept: Path) -> Iterator[sqlite3.Connection]:
    """A raw connection with the append-only triggers dropped, as someone holding the file can."""
    conn = sqlite3.connect(kept / "vault.sqlite3", isolation_level=None)
    for trigger in TRIGGERS:
        conn.execute(f"DROP TRIGGER {trigger}")
    yield conn
    conn.close()


_JOBS = 1


@pytest.fixture(autouse=True, params=["whole log", "segments of 8 in 2 processes"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case runs twice: in one pass, and split into segments checked by worker processes.

    Segments of 8 put the checkpoints (sizes 20 and 40) and the tampered seqs inside
    segments, so folding segment frontiers and reporting the first problem in order
    are exercised; the workers are real spawned processes with their own connections.
    """
    global _JOBS
    if request.param == "whole log":
        _JOBS = 1
    else:
        monkeypatch.setattr(trailvault.workflows.vault.verify, "SEGMENT", 8)
        _JOBS = 2


def _verify(vault_dir: Path, trusted: str | None = None) -> trailvault.workflows.vault.verify.VerifyReport:
    """Verify as an auditor would: with the vault file but not its signing key."""
    with trailvault.open_vault(vault_dir, create=False, signing_key=vault_dir / "not-here.key") as vault:
        return vault.verify(trusted, jobs=_JOBS)


def test_untouched_vault_verifies(kept: Path) -> None:
    """A vault nobody touched verifies: every entry and every checkpoint."""
    report = _verify(kept)
    assert report.ok and report.entries == 40 and report.checkpoints >= 2


def test_problem_reports_entries_checked_before_it(kept: Path, intruder: sqlite3.Connection) -> None:
    """The report counts the good entries before the first bad one, across segments."""
    intruder.execute("UPDATE events SET time = time + 1 WHERE seq = 27")
    intruder.execute("UPDATE events SET time = time + 1 WHERE seq = 35")
    report = _verify(kept)
    assert (report.seq, report.entries) == (27, 26)
    assert "checkpoint of size 20" not in (report.problem or "")


def test_body_changed(kept: Path, intruder: sqlite3.Connection) -> None:
    """A changed body is named by its seq."""
    intruder.execute("""UPDATE events SET body = '{"amount":99.0,"company":"c6"}' WHERE seq = 7""")
    report = _verify(kept)
    assert report.seq == 7 and "body was changed" in (report.problem or "")


def test_envelope_field_changed(kept: Path, intruder: sqlite3.Connection) -> None:
    """A changed envelope field (time) is named by its seq."""
    intruder.execute("UPDATE events SET time = time + 1 WHERE seq = 12")
    assert _verify(kept).seq == 12


def test_body_and_its_hash_changed(kept: Path, intruder: sqlite3.Connection) -> None:
    """A body changed together with its stored hash still breaks the entry's leaf."""
    import hashlib

    body = '{"amount":1.0,"company":"forged"}'
    intruder.execute(
        "UPDATE events SET body = ?, body_sha256 = ? WHERE seq = 3", (body, hashlib.sha256(body.encode()).digest())
    )
    assert _verify(kept).seq == 3


def test_row_deleted(kept: Path, intruder: sqlite3.Connection) -> None:
    """A deleted row is named as the missing seq."""
    intruder.execute("DELETE FROM events WHERE seq = 15")
    report = _verify(kept)
    assert report.seq == 15 and "deleted" in (report.problem or "")


def test_rows_swapped(kept: Path, intruder: sqlite3.Connection) -> None:
    """Two rows swapped (contents exchanged between seqs) are caught at the first."""
    intruder.execute("UPDATE events SET seq = -1 WHERE seq = 9")
    intruder.execute("UPDATE events SET seq = 9 WHERE seq = 10")
    intruder.execute("UPDATE events SET seq = 10 WHERE seq = -1")
    assert _verify(kept).seq == 9


def test_row_inserted(kept: Path, intruder: sqlite3.Connection) -> None:
    """A row added at the end, outside trailvault, has no leaf in the tree."""
    intruder.execute(
        "INSERT INTO events SELECT 41, 'intruder', app_key, channel_key, time, received, body, body_sha256, NULL "
        "FROM events WHERE seq = 40"
    )
    report = _verify(kept)
    assert report.seq == 41 and "inserted" in (report.problem or "")


def test_tail_truncated_caught_with_trusted_checkpoint(kept: Path, intruder: sqlite3.Connection) -> None:
    """Truncating the tail, tree and checkpoints included, passes alone but fails against a trusted checkpoint."""
    with trailvault.open_vault(kept, create=False) as vault:
        trusted = vault.checkpoint().note
    intruder.execute("DELETE FROM events WHERE seq > 30")
    intruder.execute("DELETE FROM checkpoints WHERE size > 30")
    intruder.execute("DELETE FROM merkle_tiles")
    from trailvault.adapters.store.sqlite.tree import backfill_tiles

    backfill_tiles(intruder)
    report = _verify(kept, trusted)
    assert not report.ok and "truncated" in (report.problem or "")


def test_rewrite_by_key_holder_caught_with_trusted_checkpoint(kept: Path, intruder: sqlite3.Connection) -> None:
    """Someone with the database and the key rewrites and re-signs history: only a trusted checkpoint catches it."""
    with trailvault.open_vault(kept, create=False) as vault:
        trusted = vault.checkpoint().note
        origin = trailvault.core.integrity.note.Verifier.parse(vault.verifier_key()).name  # type: ignore[attr-defined]
    import hashlib

    body = '{"amount":1.0,"company":"rewritten"}'
    intruder.execute(
        "UPDATE events SET body = ?, body_sha256 = ? WHERE seq = 5", (body, hashlib.sha256(body.encode()).digest())
    )
    intruder.execute("DELETE FROM merkle_tiles")
    intruder.execute("DELETE FROM checkpoints")
    from trailvault.adapters.store.sqlite.tree import backfill_tiles

    backfill_tiles(intruder)
    key = load_signing_key(kept / "vault.key")
    from trailvault.adapters.store.sqlite import SQLiteStore
    from trailvault.workflows.vault.checkpointer import tree_root

    store = SQLiteStore(kept / "vault.sqlite3", create=False)
    resigned = sign_checkpoint(origin, 40, tree_root(store, 40), key, timestamp=1_700_000_000)
    store.close()
    intruder.execute("INSERT INTO checkpoints (size, root, timestamp, note) VALUES (40, ?, 1700000000, ?)",
                     (resigned.root, resigned.note))  # fmt: skip
    assert _verify(kept).ok
    report = _verify(kept, trusted)
    assert not report.ok and "trusted checkpoint" in (report.problem or "")


def test_checkpoint_signature_forged(kept: Path, intruder: sqlite3.Connection) -> None:
    """A kept checkpoint whose signature was tampered with is named."""
    (note,) = intruder.execute("SELECT note FROM checkpoints ORDER BY size LIMIT 1").fetchone()
    lines = note.split("\n")
    signature = lines[4]
    flipped = signature[:-5] + ("A" if signature[-5] != "A" else "B") + signature[-4:]
    intruder.execute("UPDATE checkpoints SET note = ? WHERE note = ?", (note.replace(signature, flipped), note))
    report = _verify(kept)
    assert not report.ok and "checkpoint of size" in (report.problem or "")


def test_checkpoint_root_altered(kept: Path, intruder: sqlite3.Connection) -> None:
    """A kept checkpoint's root column altered (note left alone) no longer matches the rebuilt tree."""
    intruder.execute("UPDATE checkpoints SET root = zeroblob(32) WHERE size = 20")
    report = _verify(kept)
    assert not report.ok and "checkpoint of size 20" in (report.problem or "")


def test_other_vaults_key(kept: Path, tmp_path: Path) -> None:
    """Verifying with another vault's key fails on the first checkpoint."""
    with trailvault.open_vault(tmp_path / "other") as other:
        foreign = other.verifier_key()
    with trailvault.open_vault(kept, create=False, signing_key=kept / "not-here.key") as vault:
        report = vault.verify(key=foreign)
    assert not report.ok and "not signed by the key" in (report.problem or "")


def test_cli_verify(kept: Path, tmp_path: Path) -> None:
    """trailvault verify exits 0 on a good vault and 1, naming the seq, on a tampered one."""
    trusted = tmp_path / "trusted.txt"
    trusted.write_text(run_cli("checkpoint", "show", vault=kept).stdout)
    (tmp_path / "vault.pub").write_text(run_cli("key", "show", vault=kept).stdout)
    good = run_cli("verify", "--trusted-checkpoint", str(trusted), "--key", f"@{tmp_path / 'vault.pub'}", vault=kept)
    assert good.returncode == 0 and "ok: 40 entries" in good.stdout
    conn = sqlite3.connect(kept / "vault.sqlite3")
    conn.execute("DROP TRIGGER events_refuse_update")
    conn.execute("UPDATE events SET received = received + 1 WHERE seq = 33")
    conn.commit()
    conn.close()
    bad = run_cli("verify", "--output", "json", vault=kept)
    assert bad.returncode == 1 and '"seq": 33' in bad.stdout


def test_earlier_changed_entry_wins_over_a_later_deleted_row(kept: Path, intruder: sqlite3.Connection) -> None:
    """An entry changed before a deleted row in the same stretch is the one named (the first bad seq)."""
    intruder.execute("UPDATE events SET time = time + 1 WHERE seq = 10")
    intruder.execute("DELETE FROM events WHERE seq = 15")
    report = _verify(kept)
    assert report.seq == 10 and "does not match its leaf" in (report.problem or "")


def test_body_removed_without_a_redaction_record(kept: Path, intruder: sqlite3.Connection) -> None:
    """A body set to NULL behind trailvault's back (the leaf keeps only its hash) is named; one removed
    through redact, which records itself in the log, is not."""
    with trailvault.open_vault(kept, create=False) as vault:
        vault.redact(vault.events("myindex", limit=1)[0].id, "erasure request")
    assert _verify(kept).ok
    intruder.execute("UPDATE events SET body = NULL WHERE seq = 23")
    report = _verify(kept)
    assert report.seq == 23 and "removed outside trailvault" in (report.problem or "")


def _rewrite_without_key(vault_dir: Path, intruder: sqlite3.Connection, seq: int) -> None:
    """Forge like a writer without the key: change a body and its hash, rebuild the tiles, and write
    the new roots into the checkpoints' unsigned size/root columns (their signed notes stay)."""
    import hashlib

    from trailvault.adapters.store.sqlite import SQLiteStore
    from trailvault.adapters.store.sqlite.tree import backfill_tiles
    from trailvault.workflows.vault.checkpointer import tree_root

    body = '{"amount":1.0,"company":"forged"}'
    intruder.execute(
        "UPDATE events SET body = ?, body_sha256 = ? WHERE seq = ?", (body, hashlib.sha256(body.encode()).digest(), seq)
    )
    intruder.execute("DELETE FROM merkle_tiles")
    backfill_tiles(intruder)
    store = SQLiteStore(vault_dir / "vault.sqlite3", create=False)
    try:
        for (size,) in intruder.execute("SELECT DISTINCT size FROM checkpoints").fetchall():
            intruder.execute("UPDATE checkpoints SET root = ? WHERE size = ?", (tree_root(store, size), size))
    finally:
        store.close()


def test_rewrite_without_key_caught_by_signed_roots(kept: Path, intruder: sqlite3.Connection) -> None:
    """A body rewritten with its hash, the tiles rebuilt and the root columns rewritten fails: verify
    compares the rebuilt tree with the roots inside the signed notes, and names the stretch."""
    _rewrite_without_key(kept, intruder, 5)
    report = _verify(kept)
    assert not report.ok
    assert "checkpoint of size 20" in (report.problem or "") and "seq 1 to 20" in (report.problem or "")


def test_rewrite_without_key_still_caught_after_new_checkpoints(kept: Path, intruder: sqlite3.Connection) -> None:
    """Opening the forged vault with its key signs nothing on top of the forgery (the checkpointer
    refuses a tree that does not extend its last signed checkpoint), and verify keeps failing."""
    _rewrite_without_key(kept, intruder, 25)
    (before,) = intruder.execute("SELECT count(*) FROM checkpoints").fetchone()
    with trailvault.open_vault(kept, create=False) as vault:
        with pytest.raises(trailvault.errors.IntegrityFailure, match="checkpoint of size 40"):
            vault.issue_checkpoint()
        vault.post("myindex", {"company": "after", "amount": 1.0})
    (after,) = intruder.execute("SELECT count(*) FROM checkpoints").fetchone()
    assert after == before
    report = _verify(kept)
    assert not report.ok and "checkpoint of size 40" in (report.problem or "")


def test_checkpoint_columns_disagreeing_with_note_is_a_finding(kept: Path, intruder: sqlite3.Connection) -> None:
    """A checkpoint row whose unsigned size column was changed (log otherwise intact) is named."""
    intruder.execute("UPDATE checkpoints SET size = 19 WHERE size = 20")
    report = _verify(kept)
    assert not report.ok and "unsigned" in (report.problem or "") and "size 20" in (report.problem or "")


def test_no_checkpoint_is_not_ok(kept: Path, intruder: sqlite3.Connection) -> None:
    """A log with entries and every checkpoint deleted fails verify."""
    intruder.execute("DELETE FROM checkpoints")
    report = _verify(kept)
    assert not report.ok and "no signed checkpoint" in (report.problem or "")
    assert report.uncovered == 40


def test_first_entries_awaiting_their_first_checkpoint_are_ok(kept: Path, intruder: sqlite3.Connection) -> None:
    """Young entries of a vault with only its size-0 checkpoint (signed when it was made) pass, counted."""
    intruder.execute("DELETE FROM checkpoints WHERE size > 0")
    report = _verify(kept)
    assert report.ok and report.uncovered == 40 and report.checkpoints == 1


def test_recent_uncovered_tail_is_counted_but_ok(kept: Path, intruder: sqlite3.Connection) -> None:
    """Entries past the newest checkpoint, received just now, are counted and pass."""
    intruder.execute("DELETE FROM checkpoints WHERE size > 20")
    report = _verify(kept)
    assert report.ok and report.uncovered == 20 and report.to_dict()["uncovered"] == 20


def test_old_uncovered_tail_fails(
    kept: Path, intruder: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uncovered tail older than the bound fails, naming its first seq and the bound; a larger bound passes."""
    import time
    from types import SimpleNamespace

    intruder.execute("DELETE FROM checkpoints WHERE size > 20")
    an_hour_later = time.time() + 3600
    monkeypatch.setattr(trailvault.workflows.vault.verify, "time", SimpleNamespace(time=lambda: an_hour_later))
    with trailvault.open_vault(kept, create=False, signing_key=kept / "not-here.key") as vault:
        report = vault.verify(jobs=_JOBS)
        assert not report.ok and report.seq == 21 and "20 entries" in (report.problem or "")
        assert vault.verify(jobs=_JOBS, max_uncovered_age=7200).ok


def test_tail_truncated_caught_by_the_vaults_own_checkpoint(kept: Path, intruder: sqlite3.Connection) -> None:
    """Rows cut off the tail with the tree rebuilt are caught by a kept checkpoint that covered them."""
    intruder.execute("DELETE FROM events WHERE seq > 30")
    intruder.execute("DELETE FROM merkle_tiles")
    from trailvault.adapters.store.sqlite.tree import backfill_tiles

    backfill_tiles(intruder)
    report = _verify(kept)
    assert not report.ok and "truncated" in (report.problem or "")


def test_cli_verify_on_a_damaged_tree_ends_without_a_traceback(kept: Path, intruder: sqlite3.Connection) -> None:
    """verify with the key at hand names the problem and exits 1; closing the vault does not crash."""
    _rewrite_without_key(kept, intruder, 5)
    intruder.execute(
        "INSERT INTO events SELECT 41, 'extra', app_key, channel_key, time, received, body, body_sha256, NULL "
        "FROM events WHERE seq = 40"
    )
    result = run_cli("verify", vault=kept)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "checkpoint of size 20" in result.stdout + result.stderr


def test_signer_refuses_a_rewritten_log_whose_checkpoints_were_deleted(
    kept: Path, intruder: sqlite3.Connection
) -> None:
    """With every checkpoint deleted too, the key holder still signs nothing over a rewritten log: the
    checkpoint it keeps beside its key is the base; verify with the key at hand names it."""
    _rewrite_without_key(kept, intruder, 5)
    intruder.execute("DELETE FROM checkpoints")
    with (
        trailvault.open_vault(kept, create=False) as vault,
        pytest.raises(trailvault.errors.IntegrityFailure, match="checkpoint of size 40"),
    ):
        vault.issue_checkpoint()
    assert intruder.execute("SELECT count(*) FROM checkpoints").fetchone() == (0,)
    result = run_cli("verify", vault=kept)
    assert result.returncode == 1 and "the signer's last checkpoint (size 40" in result.stderr


def test_truncated_tail_with_its_checkpoints_deleted_caught_by_the_signers_record(
    kept: Path, intruder: sqlite3.Connection
) -> None:
    """A tail cut off together with the checkpoints that covered it is caught where the key is at hand."""
    intruder.execute("DELETE FROM events WHERE seq > 30")
    intruder.execute("DELETE FROM checkpoints WHERE size > 30")
    intruder.execute("DELETE FROM merkle_tiles")
    from trailvault.adapters.store.sqlite.tree import backfill_tiles

    backfill_tiles(intruder)
    assert _verify(kept).ok  # without the key's folder, only a checkpoint kept elsewhere would tell
    result = run_cli("verify", vault=kept)
    assert result.returncode == 1 and "truncated" in result.stderr, result.stdout


def test_proofs_and_receipts_refused_over_a_rewritten_tree(kept: Path, intruder: sqlite3.Connection) -> None:
    """Over a forged tree no inclusion proof, receipt or consistency proof is handed out: each is checked
    against the signed root (the rewritten columns are not believed)."""
    _rewrite_without_key(kept, intruder, 5)
    with trailvault.open_vault(kept, create=False, signing_key=kept / "not-here.key") as vault:
        with pytest.raises(trailvault.errors.IntegrityFailure, match="checkpoint of size 20"):
            vault.prove_inclusion(3)
        with pytest.raises(trailvault.errors.IntegrityFailure, match="checkpoint of size 20"):
            vault.receipt(3)
        with pytest.raises(trailvault.errors.IntegrityFailure, match="checkpoint of size 40"):
            vault.prove_consistency(10, 40)


def test_proof_refused_when_the_tree_alone_was_rebuilt(kept: Path, intruder: sqlite3.Connection) -> None:
    """A rebuilt tree under untouched checkpoint rows fails the check against the signed root."""
    _rewrite_without_key(kept, intruder, 5)
    with trailvault.open_vault(kept, create=False, signing_key=kept / "not-here.key") as vault:
        for (size, note) in intruder.execute("SELECT size, note FROM checkpoints").fetchall():
            root = trailvault.core.integrity.checkpoint.open_checkpoint(
                note, trailvault.core.integrity.note.Verifier.parse(vault.verifier_key())
            ).root
            intruder.execute("UPDATE checkpoints SET root = ? WHERE size = ?", (root, size))
        with pytest.raises(trailvault.errors.IntegrityFailure, match="does not prove seq 3"):
            vault.prove_inclusion(3)


def test_an_old_tail_made_to_look_young_still_fails(
    kept: Path, intruder: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait of an unsigned tail is measured from the newest checkpoint's signed time: rewriting the
    tail's `received` (unsigned) to look new, tree rebuilt, does not pass an hour later."""
    import time
    from types import SimpleNamespace

    from trailvault.adapters.store.sqlite.tree import backfill_tiles

    intruder.execute("DELETE FROM checkpoints WHERE size > 20")
    an_hour_later = time.time() + 3600
    intruder.execute("UPDATE events SET received = ? WHERE seq > 20", (int(an_hour_later * 1_000_000),))
    intruder.execute("DELETE FROM merkle_tiles")
    backfill_tiles(intruder)
    monkeypatch.setattr(trailvault.workflows.vault.verify, "time", SimpleNamespace(time=lambda: an_hour_later))
    report = _verify(kept)
    assert not report.ok and report.seq == 21 and "20 entries from seq 21" in (report.problem or "")


def test_every_checkpoint_deleted_fails_where_the_key_is(kept: Path, intruder: sqlite3.Connection) -> None:
    """With the signer's record at hand, deleting every checkpoint (log untouched) is named as such."""
    intruder.execute("DELETE FROM checkpoints")
    result = run_cli("verify", vault=kept)
    assert result.returncode == 1 and "checkpoints were deleted" in result.stderr, result.stdout


def test_a_vault_whose_id_was_rewritten_is_not_signed_over(kept: Path, intruder: sqlite3.Connection) -> None:
    """Rewriting the vault's id (so the signer's record is not found) with every checkpoint deleted leaves
    the signer nothing to trust: it refuses the log rather than sign a forgery."""
    from trailvault.core.integrity.note import verifier_key

    _rewrite_without_key(kept, intruder, 5)
    intruder.execute("DELETE FROM checkpoints")
    new_id = "00000000-0000-4000-8000-000000000000"
    key = load_signing_key(kept / "vault.key")
    intruder.execute("UPDATE vault_meta SET value = ? WHERE key = 'vault_id'", (new_id,))
    forged_key = verifier_key(f"trailvault/{new_id}", key.public_key())
    intruder.execute("UPDATE vault_meta SET value = ? WHERE key = 'verifier_key'", (forged_key,))
    with (
        trailvault.open_vault(kept, create=False) as vault,
        pytest.raises(trailvault.errors.IntegrityFailure, match="no checkpoint signed by this key"),
    ):
        vault.issue_checkpoint()
    assert intruder.execute("SELECT count(*) FROM checkpoints").fetchone() == (0,)


def test_a_log_never_signed_is_adopted_only_when_asked(kept: Path, intruder: sqlite3.Connection) -> None:
    """A log with entries and nothing to trust (a vault made before checkpoints) is signed by
    `checkpoint sign --adopt` only; then it verifies."""
    intruder.execute("DELETE FROM checkpoints")
    for record in kept.glob("vault.key.*.checkpoint"):
        record.unlink()
    refused = run_cli("checkpoint", "sign", vault=kept)
    assert refused.returncode == 1 and "--adopt" in refused.stderr
    adopted = run_cli("checkpoint", "sign", "--adopt", "--output", "json", vault=kept)
    assert adopted.returncode == 0 and '"size": 40' in adopted.stdout, adopted.stderr
    assert run_cli("verify", vault=kept).returncode == 0


def test_a_checkpoint_is_served_from_its_signed_note(kept: Path, intruder: sqlite3.Connection) -> None:
    """A kept checkpoint whose root column was altered is not served as the latest checkpoint."""
    intruder.execute("UPDATE checkpoints SET root = zeroblob(32) WHERE size = 40")
    with trailvault.open_vault(kept, create=False, signing_key=kept / "not-here.key") as vault:
        with pytest.raises(trailvault.errors.IntegrityFailure, match="checkpoint of size 40"):
            vault.checkpoint()
        with pytest.raises(trailvault.errors.IntegrityFailure, match="checkpoint of size 40"):
            vault.checkpoint(40)
