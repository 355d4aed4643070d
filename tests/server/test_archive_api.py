"""Pull-based archiving over HTTP against a served subprocess: CDP's verbs and JSON, scopes, remote client, CLI."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

import trailvault
from tests.conftest import ACCESS, access_event, run_cli
from tests.server.conftest import Server
from trailvault.core.timestamps import format_timestamp
from trailvault.errors import BatchArchived
from trailvault.workflows.archive.verify import verify_archive

FROM, TO = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"


def filled(own_server: Callable[..., Server], tmp_path: Path) -> Server:
    vault = str(tmp_path / "vault")
    with trailvault.open_vault(vault) as opened:
        opened.open("access", ACCESS)
        opened.post_many("access", [access_event(index) for index in range(120)])
    return own_server(vault, rate_limit=0)


def wait_for(client: object, task_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        answer = client.post("/v1/archive/get-batch-events-for-archiving-status", json={"taskId": task_id})  # type: ignore[attr-defined]
        assert answer.status_code == 200, answer.text
        status: dict[str, object] = answer.json()
        if status["status"] != "OPEN" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_the_five_verbs_with_cdp_shapes(own_server: Callable[..., Server], tmp_path: Path) -> None:
    server = filled(own_server, tmp_path)
    with server.client(server.key("archive", "unmask")) as client:
        started = client.post("/v1/archive/batch-events-for-archiving", json={"fromTimestamp": FROM, "toTimestamp": TO})
        assert started.status_code == 200 and set(started.json()) == {"taskId"}
        status = wait_for(client, started.json()["taskId"])
        assert status["status"] == "COMPLETED"
        batches = status["eventBatches"]
        assert isinstance(batches, list) and [batch["eventCount"] for batch in batches] == [120]
        outstanding = client.post("/v1/archive/list-outstanding-archive-batches", json={}).json()
        assert [batch["archiveId"] for batch in outstanding["eventBatches"]] == [batches[0]["archiveId"]]
        archive_id = batches[0]["archiveId"]
        events = client.post("/v1/archive/list-events-in-archive-batch", json={"archiveId": archive_id})
        assert events.status_code == 200
        audit_events = events.json()["auditEvents"]
        assert [event["seq"] for event in audit_events] == list(range(1, 121))
        marked = client.post("/v1/archive/mark-archive-batches-as-successful", json={"archiveIds": [archive_id]})
        assert marked.status_code == 200 and marked.json()["archiveIds"] == [archive_id]
        assert client.post("/v1/archive/list-outstanding-archive-batches", json={}).json() == {"eventBatches": []}
        # Bad input is a 4xx naming the field, before any stream starts.
        unknown = client.post("/v1/archive/list-events-in-archive-batch", json={"archiveId": "nope"})
        assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "archiveId"
        bad = client.post("/v1/archive/batch-events-for-archiving", json={"fromTimestamp": "soon", "toTimestamp": TO})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "fromTimestamp"
        half = client.post("/v1/archive/batch-events-for-archiving", json={"fromTimestamp": TO})
        assert half.status_code == 400 and half.json()["error"]["field"] == "toTimestamp"
        assert "missing" in half.json()["error"]["message"]
        typed = client.post("/v1/archive/get-batch-events-for-archiving-status", json={"taskId": 7})
        assert typed.status_code == 400 and "not 7" in typed.json()["error"]["message"]
        missing = client.post("/v1/archive/mark-archive-batches-as-successful", json={"archiveIds": "x"})
        assert missing.status_code == 400 and missing.json()["error"]["field"] == "archiveIds"


def test_scopes_apps_and_channel_limits(own_server: Callable[..., Server], tmp_path: Path) -> None:
    server = filled(own_server, tmp_path)
    body = {"fromTimestamp": FROM, "toTimestamp": TO}
    with server.client(server.key("read", "ingest")) as reader:
        assert reader.post("/v1/archive/batch-events-for-archiving", json=body).status_code == 403
    with server.client(server.key("archive", channels=["access"])) as limited:
        refused = limited.post("/v1/archive/batch-events-for-archiving", json=body)
        assert refused.status_code == 403 and refused.json()["error"]["field"] == "channels"
    with server.client(server.key("archive")) as archiver:
        task_id = archiver.post("/v1/archive/batch-events-for-archiving", json=body).json()["taskId"]
        archive_id = wait_for(archiver, task_id)["eventBatches"][0]["archiveId"]  # type: ignore[index]
        # Setting a legal hold needs admin.
        assert archiver.post("/v1/holds", json={"name": "h", "reason": "r"}).status_code == 403
    with server.client(server.key("archive", "unmask", app="other")) as other:
        # Another app's task and batch are as absent as missing ones.
        assert (
            other.post("/v1/archive/get-batch-events-for-archiving-status", json={"taskId": task_id}).status_code == 404
        )
        assert other.post("/v1/archive/list-events-in-archive-batch", json={"archiveId": archive_id}).status_code == 404
        answer = other.post("/v1/archive/mark-archive-batches-as-successful", json={"archiveIds": [archive_id]})
        assert answer.status_code == 404
    with server.admin() as admin:
        assert admin.post("/v1/holds", json={"name": "case-1", "reason": "litigation"}).status_code == 201
        assert [hold["name"] for hold in admin.get("/v1/holds").json()["holds"]] == ["case-1"]
        assert admin.delete("/v1/holds/case-1").json()["cleared"] is not None
        assert admin.delete("/v1/holds/case-1").status_code == 404


def test_the_remote_client_writes_files_that_verify_and_purge_runs_on_the_server(
    own_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = filled(own_server, tmp_path)
    token = server.key("archive", "unmask", "admin")
    with trailvault.connect(server.url, token) as remote:
        task_id = remote.batch_events_for_archiving(FROM, TO, wait=True)
        (batch,) = remote.get_batch_events_for_archiving_status(task_id).batches
        archive = remote.write_archive_batch(batch.archive_id, str(tmp_path / "archives"))
        key = remote.verifier_key()
        assert verify_archive(tmp_path / "archives", key).ok
        lines = gzip.decompress(Path(archive.path).read_bytes()).splitlines()
        assert len(lines) == 120 and orjson.loads(lines[0])["seq"] == 1
        remote.mark_archive_batches_as_successful([batch.archive_id])
        assert remote.purge().purged == 0  # the default retention (30 days) has not passed
        remote.set_hold("case-2", "kept", channel="access")
        assert [hold.name for hold in remote.holds()] == ["case-2"]
        assert remote.clear_hold("case-2").cleared_us is not None


def test_the_cli_against_a_server(own_server: Callable[..., Server], tmp_path: Path) -> None:
    server = filled(own_server, tmp_path)
    env = {"TRAILVAULT_SERVER": server.url, "TRAILVAULT_TOKEN": server.key("archive", "unmask")}
    started = run_cli("archive", "batch-events-for-archiving", "--from-timestamp", FROM, "--to-timestamp", TO, env=env)
    assert started.returncode == 0, started.stderr
    task_id = orjson.loads(started.stdout)["taskId"]
    deadline = time.monotonic() + 30
    while True:
        status = run_cli("archive", "get-batch-events-for-archiving-status", "--task-id", task_id, env=env)
        document = orjson.loads(status.stdout)
        if document["status"] != "OPEN" or time.monotonic() > deadline:
            break
    archive_id = document["eventBatches"][0]["archiveId"]
    listed = run_cli("archive", "list-events-in-archive-batch", "--archive-id", archive_id, env=env)
    assert listed.returncode == 0 and len(orjson.loads(listed.stdout)["auditEvents"]) == 120
    # Refused (a key without unmask, an unknown batch): the error and nothing on stdout, not half a document.
    masked = {**env, "TRAILVAULT_TOKEN": server.key("archive")}
    for token_env, batch in ((masked, archive_id), (env, "00000000-0000-7000-8000-000000000000")):
        refused = run_cli("archive", "list-events-in-archive-batch", "--archive-id", batch, env=token_env)
        assert refused.returncode == 1 and refused.stdout == "" and "error" in refused.stderr, refused
    written = run_cli(
        "archive",
        "list-events-in-archive-batch",
        "--archive-id",
        archive_id,
        "--output-dir",
        str(tmp_path / "a"),
        env=env,
    )
    assert written.returncode == 0, written.stderr
    key = run_cli("key", "show", vault=Path(server.vault)).stdout.strip()
    checked = run_cli("verify", "archive", str(tmp_path / "a"), "--key", key)
    assert checked.returncode == 0 and "120 events in 1 archive files" in checked.stdout
    marked = run_cli("archive", "mark-archive-batches-as-successful", "--archive-ids", archive_id, env=env)
    assert orjson.loads(marked.stdout)["archiveIds"] == [archive_id]
    wrong = run_cli("archive", "mark-archive-batches-as-successful", "--archive-ids", "nope", env=env)
    assert wrong.returncode == 1 and "archiveIds" in wrong.stderr


def test_a_marked_batch_is_refused_over_http_naming_it_and_when_it_was_archived(
    own_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Once marked, list-events-in-archive-batch (and the proof a remote write needs) is a 404 whose JSON names
    the archive id and the time it was archived; the remote client raises BatchArchived, writing nothing."""
    server = filled(own_server, tmp_path)
    token = server.key("archive", "unmask", "read")
    with trailvault.connect(server.url, token) as remote:
        task_id = remote.batch_events_for_archiving(FROM, TO, wait=True)
        (batch,) = remote.get_batch_events_for_archiving_status(task_id).batches
        assert len(list(remote.list_events_in_archive_batch(batch.archive_id))) == 120  # outstanding: listed
        remote.mark_archive_batches_as_successful([batch.archive_id])
        # When it was marked, to the millisecond, as the batch's archiveTimestamp says.
        archived_at = format_timestamp(remote.archive_batch(batch.archive_id).archived_us or 0)
        for call in (
            lambda: list(remote.list_events_in_archive_batch(batch.archive_id)),
            lambda: remote.write_archive_batch(batch.archive_id, str(tmp_path / "late")),
        ):
            with pytest.raises(BatchArchived) as refused:
                call()
            assert (refused.value.archive_id, refused.value.archived_at) == (batch.archive_id, archived_at)
            assert refused.value.status == 404 and refused.value.field == "archiveId"
    assert not (tmp_path / "late").exists()
    with server.client(token) as client:
        for verb in ("list-events-in-archive-batch", "get-archive-batch-proof"):
            answer = client.post(f"/v1/archive/{verb}", json={"archiveId": batch.archive_id})
            assert answer.status_code == 404, verb
            error = answer.json()["error"]
            assert error["code"] == "batch_archived" and error["field"] == "archiveId"
            assert (error["archiveId"], error["archivedAt"]) == (batch.archive_id, archived_at)
            assert f"marked archived at {archived_at}" in error["message"] and batch.archive_id in error["message"]
        # Describing it still works: it is the batch's record, not its events.
        described = client.post("/v1/archive/describe-archive-batch", json={"archiveId": batch.archive_id})
        assert described.status_code == 200 and described.json()["archiveTimestamp"] > 0
