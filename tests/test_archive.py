"""Pull-based archiving on both backends: CDP's verbs, archive files, purge, legal holds, and verify after purge."""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
import threading
import time
from array import array
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import trailvault
from tests.conftest import ACCESS, access_event, run_cli
from trailvault.core.batches import ArchiveSettings, TaskStatus
from trailvault.core.timestamps import format_timestamp
from trailvault.errors import BatchArchived, ChannelNotFound, Conflict, InvalidInput, InvalidQuery, NotFound
from trailvault.workflows.archive.files import manifest_name
from trailvault.workflows.archive.verify import verify_archive
from trailvault.workflows.vault.vault import Vault

FROM, TO = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"


@pytest.fixture
def archiving(vault_location: str | Path) -> Iterator[Vault]:
    """A vault with small batches and no retention, holding 250 access events of app default and 40 of app other."""
    with trailvault.open_vault(vault_location, archive=ArchiveSettings(max_batch_events=100, retention=0)) as vault:
        vault.open("access", ACCESS)
        other = vault.for_app("other")
        other.open("access", ACCESS)
        for start in range(0, 250, 50):
            vault.post_many("access", [access_event(index) for index in range(start, start + 50)])
            other.post_many("access", [access_event(index) for index in range(8)])
        yield vault


def now_us() -> int:
    return time.time_ns() // 1000


def batch_all(vault: Vault) -> list[str]:
    task_id = vault.batch_events_for_archiving(FROM, TO, wait=True)
    task = vault.get_batch_events_for_archiving_status(task_id)
    assert task.status is TaskStatus.COMPLETED
    return [batch.archive_id for batch in task.batches]


def kept_seqs(vault: Vault) -> list[int]:
    return [event.seq for event in vault.iter_events("access", sort_by="seq")]


def test_batches_hold_each_event_of_the_app_once_in_seq_order_cut_at_the_maximum(archiving: Vault) -> None:
    task_id = archiving.batch_events_for_archiving(FROM, TO)
    archiving.wait_for_batching()
    task = archiving.get_batch_events_for_archiving_status(task_id)
    assert task.to_dict()["status"] == "COMPLETED"
    assert [batch.event_count for batch in task.batches] == [100, 100, 50]
    batched = [
        event["seq"] for batch in task.batches for event in archiving.list_events_in_archive_batch(batch.archive_id)
    ]
    assert batched == kept_seqs(archiving)
    assert all(batch.app == "default" for batch in task.batches)
    shape = task.to_dict()["eventBatches"][0]
    assert {"accountId", "eventCount", "archiveId", "archiveTimestamp"} <= set(shape)
    assert shape["archiveTimestamp"] == 0 and shape["accountId"] == "default"
    # Nothing is batched twice: a second task over the same range finds nothing new.
    assert batch_all(archiving) == []
    # Another app's batches are its own, and its key cannot see these.
    other = archiving.for_app("other")
    assert [len(list(other.list_events_in_archive_batch(i))) for i in batch_all(other)] == [40]
    with pytest.raises(NotFound):
        other.archive_batch(task.batches[0].archive_id)
    with pytest.raises(NotFound):
        other.get_batch_events_for_archiving_status(task_id)


def test_the_range_is_from_inclusive_to_exclusive(archiving: Vault) -> None:
    times = sorted({event.time_us for event in archiving.iter_events("access")})
    first, second = format_timestamp(times[0]), format_timestamp(times[1])
    task = archiving.get_batch_events_for_archiving_status(
        archiving.batch_events_for_archiving(first, second, wait=True)
    )
    expected = [event.seq for event in archiving.iter_events("access") if event.time_us == times[0]]
    assert [
        event["seq"] for b in task.batches for event in archiving.list_events_in_archive_batch(b.archive_id)
    ] == expected
    with pytest.raises(InvalidQuery) as refused:
        archiving.batch_events_for_archiving(second, first)
    assert refused.value.field == "toTimestamp"


def test_a_second_batching_task_is_refused_while_one_runs(archiving: Vault) -> None:
    started, release = threading.Event(), threading.Event()
    store = archiving._store
    real = store.add_archive_batch

    def slow(*args: object, **kwargs: object) -> object:
        if args[0] == "default":  # the other app's task below must not wait
            started.set()
            release.wait(30)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    store.add_archive_batch = slow  # type: ignore[method-assign]
    try:
        running = archiving.batch_events_for_archiving(FROM, TO)
        assert started.wait(30)
        assert archiving.get_batch_events_for_archiving_status(running).to_dict() == {
            "status": "OPEN",
            "eventBatches": [],
        }
        with pytest.raises(Conflict) as refused:
            archiving.batch_events_for_archiving(FROM, TO)
        assert running in refused.value.message
        # Another app is not blocked by it.
        archiving.for_app("other").batch_events_for_archiving(FROM, TO, wait=True)
    finally:
        release.set()
        archiving.wait_for_batching()
        store.add_archive_batch = real  # type: ignore[method-assign]
    assert archiving.get_batch_events_for_archiving_status(running).status is TaskStatus.COMPLETED


def test_a_task_whose_process_died_does_not_block_the_next_for_ever(archiving: Vault) -> None:
    now = now_us()
    archiving._store.start_archive_task("default", "dead-task", 0, 1, now - 3600_000_000, now - 3600_000_000 - 1)
    # Its heartbeat is an hour old: the next task takes over and the dead one reads FAILED.
    assert batch_all(archiving)
    dead = archiving.get_batch_events_for_archiving_status("dead-task")
    assert dead.status is TaskStatus.FAILED and "abandoned" in (dead.error or "")


def test_outstanding_batches_page_and_marked_ones_leave_the_list(archiving: Vault) -> None:
    ids = batch_all(archiving)
    first = archiving.list_outstanding_archive_batches(page_size=2)
    assert [batch.archive_id for batch in first.event_batches] == ids[:2]
    assert first.next_page_token is not None and first.to_dict()["nextPageToken"] == first.next_page_token
    rest = archiving.list_outstanding_archive_batches(page_size=2, starting_token=first.next_page_token)
    assert [batch.archive_id for batch in rest.event_batches] == ids[2:] and rest.next_page_token is None
    answer = archiving.mark_archive_batches_as_successful([ids[0]])
    assert answer["archiveIds"] == [ids[0]] and answer["archiveTimestamp"].endswith("Z")
    assert [b.archive_id for b in archiving.list_outstanding_archive_batches().event_batches] == ids[1:]
    with pytest.raises(InvalidQuery):
        archiving.list_outstanding_archive_batches(starting_token="not-a-token")
    # All or nothing: an unknown id marks none of them.
    with pytest.raises(NotFound) as unknown:
        archiving.mark_archive_batches_as_successful([ids[1], "nope"])
    assert unknown.value.field == "archiveIds"
    assert [b.archive_id for b in archiving.list_outstanding_archive_batches().event_batches] == ids[1:]


def test_archive_files_have_cdp_names_and_verify_offline_and_chain(archiving: Vault, tmp_path: Path) -> None:
    ids = batch_all(archiving)
    archiving.post("access", access_event(999))
    ids += batch_all(archiving)  # a later task: a later checkpoint, chained by a consistency proof
    written = [archiving.write_archive_batch(archive_id, str(tmp_path / "out")) for archive_id in ids]
    key = archiving.verifier_key()
    for archive_id, archive in zip(ids, written, strict=True):
        name = Path(archive.path).name
        assert name.startswith("default_") and name.endswith(f"Z_{archive_id}.json.gz")
        lines = gzip.decompress(Path(archive.path).read_bytes()).splitlines()
        assert [orjson.loads(line) for line in lines] == list(archiving.list_events_in_archive_batch(archive_id))
    manifests = [orjson.loads(Path(archive.manifest_path).read_bytes()) for archive in written]
    assert manifests[0]["previous"] is None
    assert [m["previous"]["archiveId"] for m in manifests[1:]] == ids[:-1]
    assert manifests[3]["consistency"]  # the fourth batch was made under a bigger checkpoint
    report = verify_archive(tmp_path / "out", key)
    assert report.ok, report.problems
    assert report.events == 251 and report.files == 4
    assert verify_archive(written[1].path, key).ok  # one file on its own


def tampered(folder: Path, archive_path: str, change: str, key: str) -> list[str]:
    path = Path(archive_path)
    lines = gzip.decompress(path.read_bytes()).splitlines()
    if change == "body":
        lines[3] = lines[3].replace(b'"type":"INFO"', b'"type":"WARN"')
    elif change == "drop":
        del lines[5]
    elif change == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    manifest_path = path.with_name(manifest_name(path.name))
    manifest = orjson.loads(manifest_path.read_bytes())
    # The attacker also fixes the manifest's sha256 and count: the proof still catches it.
    manifest["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest["eventCount"] = len(lines)
    manifest_path.write_bytes(orjson.dumps(manifest))
    return verify_archive(folder, key).problems


@pytest.mark.parametrize("change", ["body", "drop", "swap"])
def test_an_altered_archive_file_is_named(archiving: Vault, tmp_path: Path, change: str) -> None:
    ids = batch_all(archiving)
    written = [archiving.write_archive_batch(archive_id, str(tmp_path)) for archive_id in ids]
    problems = tampered(tmp_path, written[1].path, change, archiving.verifier_key())
    assert problems and all(Path(written[1].path).name in problem for problem in problems), problems


def test_an_absent_previous_archive_is_noted_and_fails_only_a_complete_check(archiving: Vault, tmp_path: Path) -> None:
    """A folder holding a later batch without the one before it: each file present verifies and the absent one
    is noted (ok), in Python and on the command line; asking for a complete chain makes it a problem."""
    ids = batch_all(archiving)
    written = [archiving.write_archive_batch(archive_id, str(tmp_path)) for archive_id in ids]
    Path(written[1].path).unlink()
    Path(written[1].manifest_path).unlink()
    key = archiving.verifier_key()
    report = verify_archive(tmp_path, key)
    assert report.ok, report.problems
    assert (report.files, report.events, report.absent_previous) == (2, 150, [ids[1]])
    (note,) = report.notes
    assert Path(written[2].path).name in note and ids[1] in note
    complete = verify_archive(tmp_path, key, complete=True)
    assert not complete.ok and complete.absent_previous == []
    assert complete.problems == [f"{note.split(';')[0]}, and a complete chain was asked for"]
    # The command line: exit 0 with the note on stderr; --complete exits 1 naming it.
    checked = run_cli("verify", "archive", str(tmp_path), "--key", key, "--jobs", "1")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: 150 events in 2 archive files")
    assert "except that 1 previous archive is absent" in checked.stdout
    assert f"note: {note}" in checked.stderr
    strict = run_cli("verify", "archive", str(tmp_path), "--key", key, "--jobs", "1", "--complete")
    assert strict.returncode == 1 and ids[1] in strict.stderr and "complete chain" in strict.stderr
    as_json = orjson.loads(run_cli("verify", "archive", str(tmp_path), "--key", key, "--output", "json").stdout)
    assert as_json["ok"] is True and as_json["absent_previous"] == [ids[1]] and as_json["notes"] == [note]


def test_an_archive_whose_data_file_is_gone_is_named(archiving: Vault, tmp_path: Path) -> None:
    """A manifest whose archive file is gone fails verify, naming the file."""
    ids = batch_all(archiving)
    written = [archiving.write_archive_batch(archive_id, str(tmp_path)) for archive_id in ids]
    Path(written[2].path).unlink()
    assert any(
        Path(written[2].path).name + ": missing" in p
        for p in verify_archive(tmp_path, archiving.verifier_key()).problems
    )


def test_purge_removes_only_marked_batches_and_the_log_still_verifies(archiving: Vault, tmp_path: Path) -> None:
    ids = batch_all(archiving)
    for archive_id in ids:
        archiving.write_archive_batch(archive_id, str(tmp_path))
    before = kept_seqs(archiving)
    assert archiving.purge().purged == 0  # nothing is marked yet
    archiving.mark_archive_batches_as_successful([ids[0], ids[2]])
    report = archiving.purge()
    assert report.purged == 150 and report.batches == {ids[0]: 100, ids[2]: 50}
    assert kept_seqs(archiving) == before[100:200]  # only the unmarked middle batch stays
    assert archiving.for_app("other").events("access", limit=100).events  # other apps untouched
    assert archiving.purge().purged == 0  # nothing left to purge
    # The purge is on record, and the whole log still verifies, purged entries included.
    records = list(archiving.iter_events("trailvault.purges"))
    assert sorted(record.body["count"] for record in records) == [50, 100]
    verified = archiving.verify()
    assert verified.ok, verified.problem
    assert verified.entries == archiving.log_size()
    # The purged events stay provable from their archive files.
    assert verify_archive(tmp_path, archiving.verifier_key()).ok
    assert archiving.archive_batch(ids[0]).purged == 100


def test_purge_waits_for_the_retention(vault_location: str | Path) -> None:
    with trailvault.open_vault(vault_location, archive=ArchiveSettings(retention=3600)) as vault:
        vault.open("access", ACCESS)
        vault.post_many("access", [access_event(index) for index in range(10)])
        ids = batch_all(vault)
        vault.mark_archive_batches_as_successful(ids)
        assert vault.purge().purged == 0
        later = format_timestamp(now_us() + 3601_000_000)
        assert vault.purge(now=later).purged == 10


def test_a_legal_hold_keeps_what_it_covers_until_cleared(archiving: Vault) -> None:
    ids = batch_all(archiving)
    archiving.mark_archive_batches_as_successful(ids)
    held = archiving.set_hold("case-17", "litigation hold LEGAL-17", channel="access")
    assert held.to_dict()["cleared"] is None
    with pytest.raises(Conflict):
        archiving.set_hold("case-17", "again")
    assert archiving.purge().purged == 0
    assert len(kept_seqs(archiving)) == 250
    # A hold on another channel or a range the events are not in keeps nothing.
    archiving.clear_hold("case-17")
    # A misspelt channel would hold nothing while purge took what was meant to be held: refused.
    with pytest.raises(ChannelNotFound, match="accesss"):
        archiving.set_hold("typo", "a misspelt channel", channel="accesss")
    archiving.open("payments", ACCESS)
    archiving.set_hold("elsewhere", "other channel", channel="payments")
    archiving.set_hold("old", "before these events", time_to="2001-01-01T00:00:00Z")
    assert archiving.purge().purged == 250
    assert [hold.name for hold in archiving.holds()] == ["elsewhere", "old"]
    assert [hold.name for hold in archiving.holds(include_cleared=True)] == ["case-17", "elsewhere", "old"]
    with pytest.raises(NotFound):
        archiving.clear_hold("case-17")  # already cleared
    with pytest.raises(InvalidInput):
        archiving.set_hold("empty", "  ")
    assert archiving.verify().ok


def test_a_hold_set_between_choosing_and_purging_wins(archiving: Vault) -> None:
    ids = batch_all(archiving)
    archiving.mark_archive_batches_as_successful(ids)
    cutoff = now_us()
    chosen = [seq for seq, archive_id, _ in archiving._store.purgeable("default", cutoff, 1000) if archive_id == ids[0]]
    assert len(chosen) == 100
    archiving.set_hold("late", "set while purge ran")
    # The purge of what was chosen before the hold is refused whole, inside its transaction.
    with pytest.raises(Conflict):
        archiving._purge_batch(ids[0], chosen, cutoff)
    assert archiving.purge().purged == 0
    assert len(kept_seqs(archiving)) == 250


def test_redacted_events_archive_and_verify(archiving: Vault, tmp_path: Path) -> None:
    target = next(iter(archiving.iter_events("access", sort_by="seq")))
    archiving.redact(target.id, "erasure request")
    ids = batch_all(archiving)
    archive = archiving.write_archive_batch(ids[0], str(tmp_path))
    first = orjson.loads(gzip.decompress(Path(archive.path).read_bytes()).splitlines()[0])
    assert first["seq"] == target.seq and first["body"] is None
    report = verify_archive(tmp_path, archiving.verifier_key())
    assert report.ok and report.redacted == 1
    # Redaction records are never batched: verify needs them to accept the removed body.
    assert all(event["channel"] == "access" for i in ids for event in archiving.list_events_in_archive_batch(i))
    archiving.mark_archive_batches_as_successful(ids)
    archiving.purge()
    assert archiving.verify().ok


def test_rows_deleted_behind_trailvaults_back_are_caught_even_when_listed_as_purged(vault_dir: Path) -> None:
    with trailvault.open_vault(vault_dir, archive=ArchiveSettings(max_batch_events=10, retention=0)) as vault:
        vault.open("access", ACCESS)
        vault.post_many("access", [access_event(index) for index in range(30)])
        ids = batch_all(vault)
        vault.mark_archive_batches_as_successful(ids[:1])
        vault.purge()
    conn = sqlite3.connect(vault_dir / "vault.sqlite3")
    # Deleting a row needs the erasure grant the triggers check; an attacker with the file can add one.
    conn.execute("INSERT INTO erasure_grants VALUES (15, 15, 'x')")
    conn.execute("DELETE FROM events WHERE seq = 15")
    conn.execute("DELETE FROM erasure_grants")
    conn.commit()
    with trailvault.open_vault(vault_dir) as vault:
        assert vault.verify().seq == 15
    # Listing it as purged under the real purge record changes that record's digest: still caught.
    batch_key = conn.execute("SELECT batch_key FROM purged_events LIMIT 1").fetchone()[0]
    record_seq = conn.execute("SELECT record_seq FROM purged_events LIMIT 1").fetchone()[0]
    conn.execute("INSERT INTO purged_events VALUES (15, ?, ?)", (batch_key, record_seq))
    conn.commit()
    conn.close()
    with trailvault.open_vault(vault_dir) as vault:
        report = vault.verify()
    assert not report.ok and report.seq == record_seq, report.problem


def test_bad_input_names_the_field(archiving: Vault) -> None:
    with pytest.raises(InvalidQuery) as bad:
        archiving.batch_events_for_archiving("yesterday", TO)
    assert bad.value.field == "fromTimestamp"
    with pytest.raises(InvalidQuery) as size:
        archiving.list_outstanding_archive_batches(page_size=0)
    assert size.value.field == "pageSize"
    with pytest.raises(InvalidInput) as empty:
        archiving.mark_archive_batches_as_successful([])
    assert empty.value.field == "archiveIds"
    with pytest.raises(NotFound):
        archiving.list_events_in_archive_batch("missing")
    with pytest.raises(InvalidInput):
        ArchiveSettings(max_batch_events=0)


def rewrite(archive_path: str, lines: list[bytes], manifest_changes: dict[str, object]) -> None:
    """Replace an archive file's lines, fixing its manifest's sha256, count and whatever else is given."""
    path = Path(archive_path)
    path.write_bytes(gzip.compress(b"".join(line + b"\n" for line in lines)))
    manifest_path = path.with_name(manifest_name(path.name))
    manifest = orjson.loads(manifest_path.read_bytes())
    manifest.update(sha256=hashlib.sha256(path.read_bytes()).hexdigest(), eventCount=len(lines), **manifest_changes)
    manifest_path.write_bytes(orjson.dumps(manifest))


def test_a_shortened_or_emptied_file_with_a_rebuilt_manifest_is_named(archiving: Vault, tmp_path: Path) -> None:
    """The manifest is not signed, so an attacker can rebuild its count, sha256 and proof for fewer events;
    the batch's record in the log still says what the file must hold."""
    ids = batch_all(archiving)
    written = [archiving.write_archive_batch(archive_id, str(tmp_path)) for archive_id in ids]
    key = archiving.verifier_key()
    lines = gzip.decompress(Path(written[1].path).read_bytes()).splitlines()
    kept = lines[:5] + lines[6:]
    seqs = array("q", [int(orjson.loads(line)["seq"]) for line in kept])
    proof = archiving.archive_proof(ids[1], seqs)["proof"]  # as valid for the shorter file as the attacker's own
    rewrite(written[1].path, kept, {"proof": proof})
    problems = verify_archive(tmp_path, key).problems
    assert any("does not hold the batch the log recorded" in problem for problem in problems), problems
    rewrite(written[1].path, [], {"proof": ""})
    problems = verify_archive(tmp_path, key).problems
    assert any("count" in problem and Path(written[1].path).name in problem for problem in problems), problems


def test_a_chain_rewired_around_a_missing_archive_is_named(archiving: Vault, tmp_path: Path) -> None:
    ids = batch_all(archiving)
    written = [archiving.write_archive_batch(archive_id, str(tmp_path)) for archive_id in ids]
    Path(written[1].path).unlink()
    Path(written[1].manifest_path).unlink()
    follower = Path(written[2].manifest_path)
    manifest = orjson.loads(follower.read_bytes())
    manifest["previous"]["archiveId"] = ids[0]  # same task, same checkpoint: the consistency proof stays empty
    follower.write_bytes(orjson.dumps(manifest))
    problems = verify_archive(tmp_path, archiving.verifier_key()).problems
    assert any("previous_archive_id" in problem for problem in problems), problems


def test_a_nulled_body_reads_as_redacted_and_a_cut_line_is_named(archiving: Vault, tmp_path: Path) -> None:
    (archive_id, *_) = batch_all(archiving)
    archive = archiving.write_archive_batch(archive_id, str(tmp_path))
    lines = gzip.decompress(Path(archive.path).read_bytes()).splitlines()
    head, key, _ = lines[3].partition(b',"body":')
    rewrite(archive.path, [*lines[:3], head + key + b"null}", *lines[4:]], {})
    report = verify_archive(tmp_path, archiving.verifier_key())
    assert report.redacted == 1  # shown, never silent: the vault's trailvault.redactions says whether it was
    rewrite(archive.path, [*lines[:3], lines[3][:-1] + b"X", *lines[4:]], {})
    problems = verify_archive(tmp_path, archiving.verifier_key()).problems
    assert any("not a whole entry" in problem for problem in problems), problems


def alterations(path: str) -> Iterator[tuple[str, list[bytes]]]:
    """An archive file's lines, whole and altered in each way verify must name."""
    lines = gzip.decompress(Path(path).read_bytes()).splitlines()
    yield "whole", lines
    head, key, _ = lines[3].partition(b',"body":')
    yield "redacted", [*lines[:3], head + key + b"null}", *lines[4:]]
    yield "body", [*lines[:3], lines[3].replace(b'"type":"INFO"', b'"type":"WARN"'), *lines[4:]]
    yield "swapped", [*lines[:6], lines[7], lines[6], *lines[8:]]
    yield "cut", [*lines[:3], lines[3][:-1] + b"X", *lines[4:]]
    yield "blank lines", [lines[0], b"", *lines[1:9], b"", lines[9][:-1] + b"X", *lines[10:]]


def test_a_file_read_a_few_lines_at_a_time_gives_the_findings_of_a_whole_read(
    archiving: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify archive unzips a few MB at a time: lines cut across pieces, and pieces smaller than a line,
    must give what one piece holding the whole file gives, line numbers included."""
    (archive_id, *_) = batch_all(archiving)
    archive = archiving.write_archive_batch(archive_id, str(tmp_path))
    key = archiving.verifier_key()
    name = Path(archive.path).name
    for change, lines in alterations(archive.path):
        rewrite(archive.path, lines, {})
        whole = verify_archive(tmp_path, key)
        for piece in (97, 1500, 5000):  # shorter than a line, a line or two, several lines
            monkeypatch.setattr("trailvault.workflows.archive.verify._CHUNK_BYTES", piece)
            pieces = verify_archive(tmp_path, key)
            monkeypatch.undo()
            assert (pieces.events, pieces.redacted, pieces.problems) == (
                whole.events, whole.redacted, whole.problems
            ), (change, piece)  # fmt: skip
        expected = {
            "whole": "", "redacted": "", "body": "the body is not the one", "swapped": "out of order",
            "cut": f"{name}: cannot be read as an archive (ValueError: line 4: not a whole entry",
            "blank lines": f"{name}: cannot be read as an archive (ValueError: line 12: not a whole entry",
        }[change]  # fmt: skip
        assert whole.ok == (not expected) and all(expected in problem for problem in whole.problems), whole.problems
        assert whole.redacted == (change == "redacted")


def _one_blob_archive(vault_dir: Path, tmp_path: Path, blob_bytes: int) -> tuple[str, str]:
    """An archive of three events, the second with a body of ``blob_bytes``; return (archive path, verifier key)."""
    settings = ArchiveSettings(retention=0)
    with trailvault.open_vault(vault_dir, archive=settings, max_event_bytes=blob_bytes + 4096) as vault:
        vault.open("blobs", {"fields": [{"name": "blob", "type": "STRING"}]})
        vault.post_many("blobs", [{"blob": "a"}, {"blob": "x" * blob_bytes}, {"blob": "b"}])
        (archive_id,) = batch_all(vault)
        return vault.write_archive_batch(archive_id, str(tmp_path / "out")).path, vault.verifier_key()


def _fix_sha256(path: str) -> None:
    """Put the file's sha256 in its manifest, as an attacker would."""
    manifest_path = Path(path).with_name(manifest_name(Path(path).name))
    manifest = orjson.loads(manifest_path.read_bytes())
    manifest["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    manifest_path.write_bytes(orjson.dumps(manifest))


def test_a_line_longer_than_many_pieces_verifies_as_a_whole_read_does(
    vault_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 2 MB line read in pieces of 97 bytes (about 22,000 of them, each once) verifies, as one piece does."""
    path, key = _one_blob_archive(vault_dir, tmp_path, 2 << 20)
    whole = verify_archive(tmp_path / "out", key)
    monkeypatch.setattr("trailvault.workflows.archive.verify._CHUNK_BYTES", 97)
    pieces = verify_archive(tmp_path / "out", key)
    assert whole.ok and (pieces.ok, pieces.events, pieces.problems) == (True, 3, [])
    lines = gzip.decompress(Path(path).read_bytes()).splitlines()
    rewrite(path, [lines[0], lines[1].replace(b"xxx", b"xyx", 1), lines[2]], {})
    assert verify_archive(tmp_path / "out", key).problems == [
        f"{Path(path).name}: seq 2: the body is not the one the log hashed"
    ]


def test_a_line_over_the_maximum_is_a_finding_naming_it_in_pieces_or_whole(
    vault_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line over MAX_LINE_BYTES is named (its number and the bound), whatever the pieces it is read in."""
    path, key = _one_blob_archive(vault_dir, tmp_path, 3000)
    monkeypatch.setattr("trailvault.workflows.archive.verify.MAX_LINE_BYTES", 2 << 20)
    expected = (
        f"{Path(path).name}: cannot be read as an archive (ValueError: line 2 is longer than 2 MB, "
        "the longest line verify reads; no entry of an archive is that long)"
    )
    lines = gzip.decompress(Path(path).read_bytes()).splitlines()
    for piece in (97, 4000, 8 << 20):
        monkeypatch.setattr("trailvault.workflows.archive.verify._CHUNK_BYTES", piece)
        rewrite(path, [lines[0], b"y" * (3 << 20), lines[2]], {})
        assert verify_archive(tmp_path / "out", key).problems == [expected], piece
        # The last line, with no newline after it, too.
        Path(path).write_bytes(gzip.compress(lines[0] + b"\n" + b"y" * (3 << 20)))
        _fix_sha256(path)
        assert verify_archive(tmp_path / "out", key).problems == [expected], piece


def test_a_small_file_that_unzips_to_one_huge_line_is_refused_at_the_bound(vault_dir: Path, tmp_path: Path) -> None:
    """A 100 KB gzip holding one 100 MB line: named as longer than 64 MB, without reading it all into memory."""
    path, key = _one_blob_archive(vault_dir, tmp_path, 10)
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as handle:
        for _ in range(100):
            handle.write(b"y" * (1 << 20))
    _fix_sha256(path)
    (problem,) = verify_archive(tmp_path / "out", key).problems
    assert "line 1 is longer than 64 MB" in problem


def test_checking_files_in_parallel_finds_what_one_process_finds(vault_dir: Path, tmp_path: Path) -> None:
    """In Python and from the command line (whose workers start from the console script), offline: one backend."""
    with trailvault.open_vault(vault_dir, archive=ArchiveSettings(max_batch_events=100, retention=0)) as vault:
        vault.open("access", ACCESS)
        vault.post_many("access", [access_event(index) for index in range(250)])
        written = [vault.write_archive_batch(archive_id, str(tmp_path / "out")) for archive_id in batch_all(vault)]
        key = vault.verifier_key()
    folder = tmp_path / "out"
    assert len(written) == 3
    for jobs in (2, 3):
        report = verify_archive(folder, key, jobs=jobs)
        assert report.ok and (report.files, report.events) == (3, 250), report.problems
    for jobs in ((), ("--jobs", "3")):  # the default is one process per CPU
        checked = run_cli("verify", "archive", str(folder), "--key", key, *jobs)
        assert checked.returncode == 0 and "250 events in 3 archive files" in checked.stdout, checked.stderr
    lines = gzip.decompress(Path(written[2].path).read_bytes()).splitlines()
    rewrite(written[2].path, [*lines[:3], lines[3].replace(b'"type":"INFO"', b'"type":"WARN"'), *lines[4:]], {})
    Path(written[0].path).unlink()
    alone = verify_archive(folder, key)
    assert len(alone.problems) >= 2
    for jobs_count in (2, 3, 8):
        apart = verify_archive(folder, key, jobs=jobs_count)
        assert (apart.files, apart.events, apart.problems) == (alone.files, alone.events, alone.problems), jobs_count
    checked = run_cli("verify", "archive", str(folder), "--key", key, "--jobs", "2", "--output", "json")
    assert checked.returncode == 1 and orjson.loads(checked.stdout)["problems"] == alone.problems


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": None},
        {"eventCount": "many"},
        {"proof": "abc"},
        {"file": "../elsewhere.json.gz"},
        {"file": 5},
        {"previous": "x"},
        {"consistency": [1]},
        {"record": None},
    ],
)
def test_a_malformed_manifest_is_a_finding_not_a_crash(
    archiving: Vault, tmp_path: Path, change: dict[str, object]
) -> None:
    ids = batch_all(archiving)
    written = [archiving.write_archive_batch(archive_id, str(tmp_path)) for archive_id in ids]
    path = Path(written[1].manifest_path)
    manifest = orjson.loads(path.read_bytes())
    manifest.update(change)
    path.write_bytes(orjson.dumps(manifest))
    report = verify_archive(tmp_path, archiving.verifier_key())
    assert any(path.name in problem and "cannot be read" in problem for problem in report.problems), report.problems
    assert report.files == 3  # the other files were still checked


def test_trailvaults_own_records_cannot_be_redacted(archiving: Vault) -> None:
    ids = batch_all(archiving)
    archiving.mark_archive_batches_as_successful(ids[:1])
    archiving.purge()
    for channel in ("trailvault.batches", "trailvault.purges"):
        record = next(iter(archiving.iter_events(channel)))
        with pytest.raises(InvalidInput) as refused:
            archiving.redact(record.id, "erasure request")
        assert channel in refused.value.message
    assert archiving.verify().ok


def test_an_abandoned_task_reads_failed_when_asked(archiving: Vault) -> None:
    now = now_us()
    archiving._store.start_archive_task("default", "gone", 0, 1, now - 900_000_000, now - 900_000_001)
    task = archiving.get_batch_events_for_archiving_status("gone")
    assert task.status is TaskStatus.FAILED and "abandoned" in (task.error or "")


def test_marking_again_keeps_and_answers_the_first_time(archiving: Vault) -> None:
    ids = batch_all(archiving)
    first = archiving.mark_archive_batches_as_successful(ids[:1])["archiveTimestamp"]
    time.sleep(0.01)
    assert archiving.mark_archive_batches_as_successful(ids[:1])["archiveTimestamp"] == first
    later = archiving.mark_archive_batches_as_successful(ids[:2])["archiveTimestamp"]
    assert later > first  # a newly marked batch: this call's time


def test_a_purged_batch_is_not_written_again_incomplete(archiving: Vault, tmp_path: Path) -> None:
    ids = batch_all(archiving)
    archiving.mark_archive_batches_as_successful(ids[:1])
    archiving.purge()
    with pytest.raises(BatchArchived) as refused:
        archiving.write_archive_batch(ids[0], str(tmp_path / "out"))
    assert refused.value.field == "archiveId"
    assert not (tmp_path / "out").exists()


def test_a_marked_batch_is_no_longer_listed_or_written_locally_or_by_the_cli(
    archiving: Vault, tmp_path: Path, vault_location: str | Path
) -> None:
    """Once marked, listing or writing the batch raises BatchArchived naming it and when (before purge too);
    the CLI says so on stderr, prints nothing on stdout and exits 1; outstanding batches still list."""
    ids = batch_all(archiving)
    archiving.mark_archive_batches_as_successful(ids[:1])
    archived_us = archiving.archive_batch(ids[0]).archived_us or 0
    archived_at = format_timestamp(archived_us - archived_us % 1000)  # to the millisecond, as archiveTimestamp
    for call in (
        lambda: archiving.list_events_in_archive_batch(ids[0]),
        lambda: archiving.archive_lines(ids[0]),
        lambda: archiving.write_archive_batch(ids[0], str(tmp_path / "late")),
    ):
        with pytest.raises(BatchArchived) as refused:
            call()
        assert refused.value.archive_id == ids[0] and refused.value.archived_at == archived_at
        assert f"batch {ids[0]!r} was marked archived at {archived_at}" in refused.value.message
    assert not (tmp_path / "late").exists()
    assert len(list(archiving.list_events_in_archive_batch(ids[1]))) == 100
    for extra in ([], ["--output-dir", str(tmp_path / "late")]):
        listed = run_cli(
            "archive", "list-events-in-archive-batch", "--archive-id", ids[0], *extra,
            env={"TRAILVAULT_VAULT": str(vault_location)},
        )  # fmt: skip
        assert listed.returncode == 1 and listed.stdout == ""
        assert f"marked archived at {archived_at}" in listed.stderr and ids[0] in listed.stderr
    assert not (tmp_path / "late").exists()
