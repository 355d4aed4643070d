"""Automated archiving: to a folder, to S3 (moto's standalone server on loopback), from a server, and
stopped at each step: nothing is lost, nothing unarchived is purged, and the archives still verify.

moto stands in for Amazon S3, which cannot run here: it is a real HTTP server speaking S3's wire
protocol, reached through s3fs exactly as a bucket would be.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

import trailvault
from tests.conftest import ACCESS, CLI, access_event, run_cli
from tests.server.conftest import free_port, start_server
from trailvault.core.batches import ArchiveSettings
from trailvault.workflows.archive.automatic import ArchivePlan, archive_once
from trailvault.workflows.archive.verify import verify_archive

#: Stops the process (as a crash would: no cleanup) when automated archiving reaches a step.
CRASHING_RUN = """
import os, sys
from trailvault.core.batches import ArchiveSettings
from trailvault.workflows.archive.automatic import ArchivePlan, archive_once
from trailvault.workflows.vault.opening import open_vault

vault = open_vault(sys.argv[1], archive=ArchiveSettings(max_batch_events=40, retention=0))
seen = []

def step(name, app, archive_id):
    seen.append(name)
    if name == sys.argv[3] and seen.count(name) == int(sys.argv[4]):
        os._exit(9)

archive_once(vault, ArchivePlan(destination=sys.argv[2], lag=0), on_step=step)
"""

#: Killed with SIGKILL in the middle of batching: after its first batch is in, as it takes the second.
KILLED_WHILE_BATCHING = """
import os, signal, sys
from trailvault.core.batches import ArchiveSettings
from trailvault.workflows.archive.automatic import ArchivePlan, archive_once
from trailvault.workflows.vault.opening import open_vault

vault = open_vault(sys.argv[1], archive=ArchiveSettings(max_batch_events=40, retention=0))
store = vault._store
add = store.add_archive_batch
calls = []

def add_then_die(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return add(*args, **kwargs)

store.add_archive_batch = add_then_die
archive_once(vault, ArchivePlan(destination=sys.argv[2], lag=0))
"""


def fill(vault_location: str | Path, count: int = 100) -> list[str]:
    with trailvault.open_vault(vault_location) as vault:
        vault.open("access", ACCESS)
        other = vault.for_app("other")
        other.open("access", ACCESS)
        posted = vault.post_many("access", [access_event(index) for index in range(count)])
        other.post_many("access", [access_event(index) for index in range(7)])
        return [item.id for item in posted]


def archived_ids(folder: Path, app: str = "default") -> list[str]:
    """Every event id in the app's archive files under ``folder`` (duplicates kept, to be caught)."""
    return [
        orjson.loads(line)["id"]
        for path in sorted((folder / app).rglob("*.json.gz"))
        for line in gzip.decompress(path.read_bytes()).splitlines()
    ]


def kept_ids(vault_location: str | Path) -> list[str]:
    with trailvault.open_vault(vault_location) as vault:
        return [event.id for event in vault.iter_events("access")]


def test_a_run_archives_every_app_into_dated_folders_and_purges(vault_location: str | Path, tmp_path: Path) -> None:
    ids = fill(vault_location)
    out = tmp_path / "archives"
    with trailvault.open_vault(vault_location, archive=ArchiveSettings(max_batch_events=40, retention=0)) as vault:
        run = archive_once(vault, ArchivePlan(destination=str(out), lag=0))
        key = vault.verifier_key()
        assert run.ok and run.purged == 107 and len(run.marked) == 4  # 40 + 40 + 20 of default, 7 of other
        assert vault.verify().ok
        assert archive_once(vault, ArchivePlan(destination=str(out), lag=0)).written == []  # nothing new
    day = time.strftime("%Y/%m/%d", time.gmtime())
    assert len(list((out / "default" / day).glob("default_*Z_*.json.gz"))) == 3
    assert len(list((out / "other" / day).glob("other_*Z_*.json.gz"))) == 1
    assert sorted(archived_ids(out)) == sorted(ids) and kept_ids(vault_location) == []
    assert verify_archive(out, key).ok


def test_lag_keeps_recent_events_for_a_later_run(vault_location: str | Path, tmp_path: Path) -> None:
    fill(vault_location, 10)
    with trailvault.open_vault(vault_location, archive=ArchiveSettings(retention=0)) as vault:
        run = archive_once(vault, ArchivePlan(destination=str(tmp_path / "a"), lag=3600))
    assert run.written == [] and len(kept_ids(vault_location)) == 10


@pytest.mark.system
@pytest.mark.parametrize(("step", "nth"), [("batched", 1), ("written", 1), ("written", 2), ("marked", 2)])
def test_a_run_stopped_at_any_step_loses_nothing_and_the_next_one_finishes(
    vault_location: str | Path, tmp_path: Path, step: str, nth: int
) -> None:
    ids = fill(vault_location)
    out = tmp_path / "archives"
    stopped = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(vault_location), str(out), step, str(nth)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    assert stopped.returncode == 9, stopped.stderr
    # Whatever the step: every event is still in the vault or in an archive that was marked.
    with trailvault.open_vault(vault_location) as vault:
        outstanding = [
            event["id"]
            for page in [vault.list_outstanding_archive_batches(page_size=1000)]
            for batch in page.event_batches
            for event in vault.list_events_in_archive_batch(batch.archive_id)
        ]
    assert set(kept_ids(vault_location)) | set(archived_ids(out)) >= set(ids)
    assert set(outstanding) <= set(kept_ids(vault_location))  # nothing outstanding was purged
    # The next run (the CLI, from the config file) finishes the job without writing anything twice.
    config = tmp_path / "trailvault.toml"
    config.write_text(
        f'vault = "{vault_location}"\n\n[archive]\ndestination = "{out}"\n'
        "lag = 0\nretention = 0\nmax_batch_events = 40\n"
    )
    finished = run_cli("--config", str(config), "archive", "run")
    assert finished.returncode == 0, finished.stderr
    assert orjson.loads(finished.stdout)["ok"] is True
    assert sorted(archived_ids(out)) == sorted(ids)  # each event once, none lost
    assert kept_ids(vault_location) == []
    with trailvault.open_vault(vault_location) as vault:
        assert vault.verify().ok
        report = verify_archive(out, vault.verifier_key())
    assert report.ok, report.problems


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """moto's standalone S3 server on a loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [str(CLI.parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=30)


def s3_options(url: str) -> dict[str, str]:
    return {"endpoint_url": url, "key": "testing", "secret": "testing"}


def test_archiving_to_s3_writes_reads_back_marks_and_purges(s3: str, vault_dir: Path, tmp_path: Path) -> None:
    import s3fs  # type: ignore[import-untyped]

    fs = s3fs.S3FileSystem(**s3_options(s3))
    fs.mkdir("audit-archive")
    ids = fill(vault_dir, 60)
    config = tmp_path / "trailvault.toml"
    config.write_text(
        f'vault = "{vault_dir}"\n\n[archive]\ndestination = "s3://audit-archive/trail"\nlag = 0\nretention = 0\n'
        f'\n[archive.storage_options]\nendpoint_url = "{s3}"\nkey = "testing"\nsecret = "testing"\n'
    )
    run = run_cli("--config", str(config), "archive", "run")
    assert run.returncode == 0, run.stderr
    assert "testing" not in run.stdout + run.stderr
    fs.invalidate_cache()
    day = time.strftime("%Y/%m/%d", time.gmtime())
    names = fs.ls(f"audit-archive/trail/default/{day}")
    assert len([name for name in names if name.endswith(".json.gz")]) == 1
    assert len([name for name in names if name.endswith(".manifest.json")]) == 1
    local = tmp_path / "copy"
    fs.get("audit-archive/trail", str(local), recursive=True)
    assert sorted(archived_ids(local)) == sorted(ids)
    with trailvault.open_vault(vault_dir) as vault:
        assert verify_archive(local, vault.verifier_key()).ok
        assert [event.id for event in vault.iter_events("access")] == []
        assert vault.verify().ok


def test_a_destination_that_cannot_be_reached_marks_and_purges_nothing(vault_dir: Path, tmp_path: Path) -> None:
    fill(vault_dir, 10)
    with trailvault.open_vault(vault_dir, archive=ArchiveSettings(retention=0)) as vault:
        unreachable = {
            "endpoint_url": f"http://127.0.0.1:{free_port()}", "key": "k", "secret": "s",
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
        }  # fmt: skip
        run = archive_once(vault, ArchivePlan(destination="s3://nowhere/x", storage_options=unreachable, lag=0))
        assert not run.ok and run.marked == [] and run.purged == 0
        assert len(vault.list_outstanding_archive_batches().event_batches) == 1
    assert len(kept_ids(vault_dir)) == 10


@pytest.mark.system
def test_a_server_archives_on_its_schedule(tmp_path: Path) -> None:
    vault = str(tmp_path / "vault")
    ids = fill(vault, 30)
    out = tmp_path / "archives"
    config = tmp_path / "trailvault.toml"
    config.write_text(f'[archive]\ndestination = "{out}"\nschedule = "1s"\nlag = 0\nretention = 0\n')
    server = start_server(vault, tmp_path / "server.log", port=free_port(), config=str(config))
    try:
        deadline = time.monotonic() + 60
        while not out.exists() or sorted(archived_ids(out)) != sorted(ids):
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.2)
        with server.client(server.admin_token) as admin:
            while admin.get("/v1/events", params={"channel": "access"}).json()["items"]:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        server.stop()
    with trailvault.open_vault(vault) as opened:
        assert verify_archive(out, opened.verifier_key()).ok
        assert opened.verify().ok


@pytest.mark.system
def test_a_file_damaged_after_a_stopped_run_is_written_anew(vault_dir: Path, tmp_path: Path) -> None:
    ids = fill(vault_dir, 30)
    out = tmp_path / "archives"
    stopped = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(vault_dir), str(out), "written", "1"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )  # fmt: skip
    assert stopped.returncode == 9, stopped.stderr
    (damaged,) = list(out.rglob("default_*.json.gz"))
    broken = damaged.read_bytes()[:-10]
    damaged.write_bytes(broken)
    with trailvault.open_vault(vault_dir, archive=ArchiveSettings(retention=0)) as vault:
        run = archive_once(vault, ArchivePlan(destination=str(out), lag=0))
        assert run.ok, run.problems
        key = vault.verifier_key()
    # The run wrote a whole file (over the damaged one, or beside it when the minute changed).
    for path in out.rglob("default_*.json.gz"):
        if path.read_bytes() == broken:
            path.unlink()
            path.with_name(path.name.replace(".json.gz", ".manifest.json")).unlink()
    assert sorted(archived_ids(out)) == sorted(ids)
    assert verify_archive(out, key).ok


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "-5m", "soon"])
def test_a_duration_that_is_not_one_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    config = tmp_path / "trailvault.toml"
    config.write_text(f'vault = "{tmp_path / "vault"}"\n\n[archive]\nretention = "{value}"\n')
    run = run_cli("--config", str(config), "archive", "purge")
    assert run.returncode == 1 and "archive.retention" in run.stderr and "Traceback" not in run.stderr


def test_credentials_in_a_destination_never_show(vault_dir: Path, tmp_path: Path) -> None:
    from trailvault.core.batches import shown_location

    assert shown_location("https://audit:S3CRET@store.example/x?sig=abc") == "https://audit:***@store.example/x"
    assert shown_location("/srv/archive") == "/srv/archive"
    fill(vault_dir, 5)
    config = tmp_path / "trailvault.toml"
    config.write_text(
        f'vault = "{vault_dir}"\n\n[archive]\ndestination = "ftp://audit:S3CRET@127.0.0.1:{free_port()}/x"\nlag = 0\n'
    )
    run = run_cli("--config", str(config), "archive", "run")
    assert run.returncode == 1 and "S3CRET" not in run.stdout + run.stderr and "Traceback" not in run.stderr
    assert "destination" in run.stderr


@pytest.mark.system
def test_a_run_after_a_crash_mid_batching_reports_the_unbatched_events_and_a_later_run_archives_them(
    vault_location: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After SIGKILL mid-batching, archive run is not ok (exit 1, naming the open task and when it
    counts as abandoned); once it does, the next run batches and archives every event."""
    ids = fill(vault_location)
    out = tmp_path / "archives"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_BATCHING, str(vault_location), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    config = tmp_path / "trailvault.toml"
    config.write_text(
        f'vault = "{vault_location}"\n\n[archive]\ndestination = "{out}"\n'
        "lag = 0\nretention = 0\nmax_batch_events = 40\n"
    )
    after = run_cli("--config", str(config), "archive", "run")
    assert after.returncode == 1 and "counts as abandoned from" in after.stderr
    report = orjson.loads(after.stdout)
    assert report["ok"] is False
    (problem,) = report["problems"]
    assert problem.startswith("default: events older than lag that are in no batch yet were not batched")
    assert "counts as abandoned from" in problem
    assert len(kept_ids(vault_location)) == 60  # the first batch (40) was archived and purged; 60 wait
    # Once the dead task counts as abandoned (made immediate here), a run resumes batching.
    monkeypatch.setattr("trailvault.workflows.vault.archiving.STALE_TASK_S", 0)
    with trailvault.open_vault(vault_location, archive=ArchiveSettings(max_batch_events=40, retention=0)) as vault:
        resumed = archive_once(vault, ArchivePlan(destination=str(out), lag=0))
        assert resumed.ok, resumed.problems
        assert verify_archive(out, vault.verifier_key()).ok
    assert sorted(archived_ids(out)) == sorted(ids) and kept_ids(vault_location) == []
