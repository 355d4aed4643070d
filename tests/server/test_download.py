"""trailvault download (SAS CI360's job) against a running server."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

import trailvault
from tests.conftest import ACCESS, access_event, run_cli, run_cli_process, without_pyarrow
from tests.server.conftest import Server
from trailvault.core.event import canonical_body


def _ini(path: Path, sections: dict[str, dict[str, str]]) -> Path:
    path.write_text(
        "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for name, keys in sections.items())
    )
    return path


def credentials_ok(folder: Path, server: Server) -> Path:
    """credentials.ini holding the server's admin token."""
    return _ini(folder / "admin.ini", {"CREDENTIALS": {"staticjwt": server.admin_token}})


def _downloaded(outputdir: Path) -> list[int]:
    seqs = []
    for path in sorted(outputdir.glob("*.jsonl.gz")):
        seqs += [orjson.loads(line)["seq"] for line in gzip.decompress(path.read_bytes()).splitlines()]
    return seqs


def test_incremental_runs_have_no_duplicates_and_no_gaps(own_server: Callable[..., Server], tmp_path: Path) -> None:
    """Two runs in a row, then one after new events: every event once, in files named by UTC range."""
    server = own_server()
    with server.admin() as admin:
        admin.put("/v1/channels/access", json=ACCESS)
        admin.post("/v1/channels/access/events", json=[access_event(i) for i in range(30)])
    with trailvault.open_vault(server.vault, create=False) as vault:
        token = vault.create_key("downloader", ["read"])[1]
    config = _ini(tmp_path / "config.ini", {
        "TENANT": {"gatewayhost": server.url},
        "API": {"dataRangeStartTimeStamp": "", "dataRangeEndTimeStamp": ""},
        "PROGRAM": {"downloadparquet": "Yes", "outputformat": "JSONL,CSV", "logsdir": "logs", "outputdir": "out",
                    "logging": "true", "loglevel": "DEBUG"},
    })  # fmt: skip
    credentials = _ini(tmp_path / "credentials.ini", {"CREDENTIALS": {"apiuser": "downloader", "staticjwt": token}})
    runs = []
    for _ in range(2):
        run = run_cli("download", "--config", str(config), "--credentials", str(credentials))
        assert run.returncode == 0, run.stderr
        runs.append(orjson.loads(run.stdout))
    with server.admin() as admin:
        admin.post("/v1/channels/access/events", json=[access_event(i) for i in range(30, 40)])
    third = run_cli("download", "--config", str(config), "--credentials", str(credentials))
    assert third.returncode == 0, third.stderr
    runs.append(orjson.loads(third.stdout))
    seqs = _downloaded(tmp_path / "out")
    assert len(seqs) == len(set(seqs))
    assert sorted(seqs) == list(range(1, max(seqs) + 1))
    assert runs[0]["events"] >= 30 and runs[2]["events"] >= 10
    access = [path for path in (tmp_path / "out").glob("access_*.parquet")]
    assert sum(pq.read_metadata(path).num_rows for path in access) == 40
    stamp = r"\d{4}-\d\d-\d\dT\d{4}Z"
    named = re.compile(rf"access_(start|{stamp})_{stamp}_seq\d+-\d+\.(jsonl\.gz|csv|parquet)")
    assert all(named.fullmatch(path.name) for path in (tmp_path / "out").glob("access_*"))
    log = (tmp_path / "logs" / "trailvault-download.log").read_text()
    assert "downloading events" in log and token not in log and token.split("_", 2)[2] not in log
    # This key lacks unmask: the sensitive ip reads masked, so no body hash is claimed for it.
    lines = [orjson.loads(line) for path in (tmp_path / "out").glob("access_*.jsonl.gz")
             for line in gzip.decompress(path.read_bytes()).splitlines()]  # fmt: skip
    assert {line["body_sha256"] for line in lines} == {""} and "lacks the unmask scope" in log


def test_a_failed_run_exits_1_and_moves_nothing(own_server: Callable[..., Server], tmp_path: Path) -> None:
    """A wrong token, a wrong apiuser or a bad key fails with a clear message, no files and no watermark."""
    server = own_server()
    config = _ini(tmp_path / "config.ini", {"TENANT": {"gatewayhost": server.url}, "PROGRAM": {"outputdir": "out"}})
    bad_token = _ini(tmp_path / "bad.ini", {"CREDENTIALS": {"staticjwt": "tv_0123456789abcdef_" + "F" * 43}})
    failed = run_cli("download", "--config", str(config), "--credentials", str(bad_token))
    assert failed.returncode == 1 and "API key" in failed.stderr
    wrong_user = _ini(tmp_path / "user.ini", {"CREDENTIALS": {"apiuser": "someone", "staticjwt": server.admin_token}})
    failed = run_cli("download", "--config", str(config), "--credentials", str(wrong_user))
    assert failed.returncode == 1 and "apiuser" in failed.stderr
    typo = _ini(tmp_path / "typo.ini", {"TENANT": {"gatewayhost": server.url}, "PROGRAM": {"ouputdir": "x"}})
    failed = run_cli("download", "--config", str(typo), "--credentials", str(wrong_user))
    assert failed.returncode == 1 and "ouputdir" in failed.stderr
    assert not (tmp_path / "out" / ".trailvault-download.json").exists()
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True
    xml = _ini(tmp_path / "xml.ini", {"TENANT": {"gatewayhost": server.url}, "PROGRAM": {"outputformat": "CSV,XML"}})
    failed = run_cli("download", "--config", str(xml), "--credentials", str(credentials_ok(tmp_path, server)))
    assert failed.returncode == 1 and "outputformat: 'xml' is not one of" in failed.stderr
    (tmp_path / "afile").write_text("a file, not a folder")
    into_file = _ini(tmp_path / "file.ini", {"TENANT": {"gatewayhost": server.url}, "PROGRAM": {"outputdir": "afile"}})
    failed = run_cli("download", "--config", str(into_file), "--credentials", str(credentials_ok(tmp_path, server)))
    assert failed.returncode == 1 and "outputdir: cannot create" in failed.stderr and "Traceback" not in failed.stderr


@pytest.mark.system
def test_without_the_export_extra_csv_parquet_and_databaseurl_are_refused_up_front(
    own_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Without pyarrow a run asking for CSV, Parquet or a database exits 1 naming the key and
    the extra, before any file, watermark or database exists; a JSONL run still works."""
    server = own_server()
    with server.admin() as admin:
        admin.put("/v1/channels/access", json=ACCESS)
        admin.post("/v1/channels/access/events", json=[access_event(i) for i in range(5)])
    credentials = _ini(tmp_path / "credentials.ini", {"CREDENTIALS": {"staticjwt": server.admin_token}})
    bare = without_pyarrow(tmp_path / "site")
    cases = (
        ({"outputformat": "JSONL,CSV"}, "outputformat"),
        ({"downloadparquet": "Yes", "outputformat": "JSONL"}, "outputformat"),
        ({"outputformat": "", "databaseurl": f"sqlite:///{tmp_path / 'audit.db'}"}, "databaseurl"),
    )
    for keys, field in cases:
        config = _ini(tmp_path / "config.ini", {
            "TENANT": {"gatewayhost": server.url}, "PROGRAM": {"outputdir": "out", "logging": "false", **keys},
        })  # fmt: skip
        refused = run_cli_process("download", "--config", str(config), "--credentials", str(credentials), env=bare)
        assert refused.returncode == 1, refused.stdout
        assert f"{field}:" in refused.stderr and "trailvault[export]" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        assert not (tmp_path / "out").exists() and not (tmp_path / "audit.db").exists()
    jsonl = {"outputdir": "out", "logging": "false", "outputformat": "JSONL"}
    config = _ini(tmp_path / "config.ini", {"TENANT": {"gatewayhost": server.url}, "PROGRAM": jsonl})
    run = run_cli_process("download", "--config", str(config), "--credentials", str(credentials), env=bare)
    assert run.returncode == 0, run.stderr
    assert sorted(_downloaded(tmp_path / "out")) == [1, 2, 3, 4, 5]


def test_an_explicit_range_takes_events_by_time(own_server: Callable[..., Server], tmp_path: Path) -> None:
    """With both range keys, the run takes the events whose time is in [start, end) and keeps no watermark."""
    server = own_server()
    with server.admin() as admin:
        admin.put("/v1/channels/access", json=ACCESS)
        items = [{"time": f"2024-10-0{day}T12:00:00Z", "body": access_event(day)} for day in range(1, 8)]
        admin.post("/v1/channels/access/events", params={"envelope": "true"}, json=items)
    config = _ini(tmp_path / "config.ini", {
        "TENANT": {"gatewayhost": server.url},
        "API": {"dataRangeStartTimeStamp": "2024-10-02T00:00Z", "dataRangeEndTimeStamp": "2024-10-05T00:00Z"},
        "PROGRAM": {"outputformat": "JSONL", "outputdir": "out", "logging": "false"},
    })  # fmt: skip
    reader = server.key("read", "unmask")
    credentials = _ini(tmp_path / "credentials.ini", {"CREDENTIALS": {"staticjwt": reader}})
    run = run_cli("download", "--config", str(config), "--credentials", str(credentials))
    assert run.returncode == 0, run.stderr
    (path,) = (tmp_path / "out").glob("access_*.jsonl.gz")
    times = [orjson.loads(line)["time"][:10] for line in gzip.decompress(path.read_bytes()).splitlines()]
    # A key with unmask reads the bodies as posted, whose hashes are the log's.
    with trailvault.open_vault(server.vault, create=False) as vault:
        logged = {event.seq: event.body for event in vault.iter_events("access")}
    for line in gzip.decompress(path.read_bytes()).splitlines():
        row = orjson.loads(line)
        assert row["body_sha256"] == hashlib.sha256(canonical_body(logged[row["seq"]])).hexdigest()
    assert times == ["2024-10-02", "2024-10-03", "2024-10-04"]
    assert path.name == "access_2024-10-02T0000Z_2024-10-05T0000Z.jsonl.gz"
    assert not (tmp_path / "out" / ".trailvault-download.json").exists()
    # The same range again would write the same name: refused, the first copy untouched, nothing left over.
    first = path.read_bytes()
    again = run_cli("download", "--config", str(config), "--credentials", str(credentials))
    assert again.returncode == 1 and "outputdir: " + path.name in again.stderr
    assert path.read_bytes() == first and sorted(p.name for p in (tmp_path / "out").iterdir()) == [path.name]
    assert not (tmp_path / "logs").exists()


def test_a_crash_between_watermark_and_renames_is_finished_by_the_next_run(tmp_path: Path) -> None:
    """Files a crashed run completed but did not rename are published by the next run, once."""
    from trailvault.workflows.download import WATERMARK_FILE, _finish_pending

    out = tmp_path / "out"
    out.mkdir()
    (out / "access_a_b_seq1-5.csv.partial").write_text("complete")
    (out / "access_stale.csv.partial").write_text("half")
    (out / WATERMARK_FILE).write_bytes(
        orjson.dumps({"last_seq": 5, "until_us": 1, "pending": ["access_a_b_seq1-5.csv.partial"]})
    )
    watermark = _finish_pending(out, orjson.loads((out / WATERMARK_FILE).read_bytes()))
    assert sorted(path.name for path in out.iterdir()) == [WATERMARK_FILE, "access_a_b_seq1-5.csv"]
    assert watermark == {"last_seq": 5, "until_us": 1}
    assert orjson.loads((out / WATERMARK_FILE).read_bytes()) == watermark


def test_databaseurl_loads_each_event_once_without_files(own_server: Callable[..., Server], tmp_path: Path) -> None:
    """With databaseurl and no outputformat, runs load a table per channel, keyed by seq: each event once."""
    import sqlite3

    server = own_server()
    with server.admin() as admin:
        admin.put("/v1/channels/access", json=ACCESS)
        admin.post("/v1/channels/access/events", json=[access_event(i) for i in range(25)])
    with trailvault.open_vault(server.vault, create=False) as vault:
        token = vault.create_key("loader", ["read"])[1]
    database = tmp_path / "audit.db"
    config = _ini(tmp_path / "config.ini", {
        "TENANT": {"gatewayhost": server.url},
        "PROGRAM": {"outputdir": "out", "databaseurl": "sqlite:///audit.db"},
    })  # fmt: skip
    credentials = _ini(tmp_path / "credentials.ini", {"CREDENTIALS": {"staticjwt": token}})
    # Started from another folder (as cron does), the relative file is still config.ini's neighbour.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for _ in range(2):
        run = run_cli("download", "--config", str(config), "--credentials", str(credentials), cwd=elsewhere)
        assert run.returncode == 0, run.stderr
    with server.admin() as admin:
        admin.post("/v1/channels/access/events", json=[access_event(i) for i in range(25, 30)])
    assert run_cli("download", "--config", str(config), "--credentials", str(credentials)).returncode == 0
    assert list(elsewhere.iterdir()) == []
    with sqlite3.connect(database) as conn:
        seqs = [row[0] for row in conn.execute('SELECT "seq" FROM "access" ORDER BY "seq"')]
        emails = {row[0] for row in conn.execute('SELECT "body.user.email" FROM "access"')}
    assert len(seqs) == 30 == len(set(seqs))
    assert "user1@example.com" in emails
    assert [path.name for path in (tmp_path / "out").iterdir() if not path.name.startswith(".")] == []
    # A database URL that cannot be used is a clear error naming the key, and moves nothing.
    _ini(tmp_path / "config.ini", {"TENANT": {"gatewayhost": server.url}, "PROGRAM": {"databaseurl": "mysql://x"}})
    bad = run_cli("download", "--config", str(config), "--credentials", str(credentials))
    assert bad.returncode == 1 and "databaseurl" in bad.stderr


def test_an_app_with_a_free_form_channel_downloads_every_channel(
    own_server: Callable[..., Server], tmp_path: Path
) -> None:
    """A free-form channel beside a typed one: the run succeeds and both land in Parquet and CSV, bodies intact."""
    server = own_server()
    free = [{"anything": {"goes": [1, None]}}, {"x": "y"}]
    with server.admin() as admin:
        admin.put("/v1/channels/access", json=ACCESS)
        admin.put("/v1/channels/free", json={"fields": [], "additional_fields": True})
        admin.post("/v1/channels/access/events", json=[access_event(i) for i in range(3)])
        admin.post("/v1/channels/free/events", json=free)
    config = _ini(tmp_path / "config.ini", {
        "TENANT": {"gatewayhost": server.url},
        "PROGRAM": {"outputformat": "PARQUET,CSV", "outputdir": "out"},
    })  # fmt: skip
    run = run_cli("download", "--config", str(config), "--credentials", str(credentials_ok(tmp_path, server)))
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    assert sum(pq.read_metadata(path).num_rows for path in out.glob("access_*.parquet")) == 3
    (parquet,) = out.glob("free_*.parquet")
    assert [orjson.loads(text) for text in pq.read_table(parquet).column("body").to_pylist()] == free
    (csv,) = out.glob("free_*.csv")
    assert csv.read_text().count("\n") == 3
