"""Export to Parquet, CSV and JSONL.gz, and verify export: on every backend, with real files."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import trailvault
from trailvault import Vault
from trailvault.adapters.formats.rows import _drop_absent, rebuild_body
from trailvault.errors import Conflict, InvalidInput, StoreUnavailable
from trailvault.workflows.export.verify import verify_export

from .conftest import ACCESS, CLI, MYINDEX, access_event, run_cli, run_cli_process, without_pyarrow


@pytest.fixture
def filled(vault: Vault) -> Vault:
    return _fill(vault)


def _fill(vault: Vault) -> Vault:
    vault.open("access", ACCESS)
    vault.open("myindex", MYINDEX)
    vault.post_many("access", [access_event(i, occurred="2024-10-07T10:00:00+02:00") for i in range(40)])
    vault.post_many("myindex", [{"company": "A", "amount": 1.5, "taxes": [{"salestax": 1.0, "taxrate": None}, {}]}])
    vault.post("access", {**access_event(90), "message": None, "http_response": {}})
    gone = vault.post("access", access_event(91))
    vault.redact(gone.id, "erasure request")
    vault.post_many("myindex", [{"company": "B"}, {"company": "C", "taxes": []}])
    return vault


def _rewrite_manifest_sha(folder: Path, name: str) -> None:
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    for item in manifest["files"]:
        if item["name"] == name:
            item["sha256"] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from("abcd"), _JSON, max_size=4))
def test_a_body_that_sent_no_null_is_rebuilt_as_the_general_walk_rebuilds_it(read: dict[str, Any]) -> None:
    """rebuild_body's shortcut for bodies whose body_nulls is empty (most of them) drops exactly what
    the general walk, which looks up each null's path, drops when no path was sent as null."""
    assert rebuild_body(read, [], None) == _drop_absent(read, "", set())


def test_export_of_every_format_verifies(filled: Vault, tmp_path: Path) -> None:
    """Every file of every format proves against the signed checkpoint, and nothing of the query is missing."""
    manifest = filled.export(tmp_path / "out")
    report = verify_export(tmp_path / "out", filled.verifier_key(), against=filled)
    assert report.ok, report.problems
    names = sorted(item["name"] for item in manifest["files"])
    assert "access.parquet" in names and "myindex.csv" in names and "trailvault.redactions.jsonl.gz" in names
    total = len(list(filled.iter_events()))
    assert manifest["count"] == report.events == total and report.redacted == 1


def test_each_file_digest_is_the_files_content(filled: Vault, tmp_path: Path) -> None:
    """The manifest's sha256 is hashed while writing; it must match the bytes on disk, for each format."""
    manifest = filled.export(tmp_path / "out")
    formats = set()
    for item in manifest["files"]:
        content = (tmp_path / "out" / item["name"]).read_bytes()
        assert item["sha256"] == hashlib.sha256(content).hexdigest(), item["name"]
        assert item["bytes"] == len(content)
        formats.add(item["format"])
    assert formats == {"parquet", "csv", "jsonl.gz"}
    gzipped = next(item["name"] for item in manifest["files"] if item["format"] == "jsonl.gz")
    assert gzip.decompress((tmp_path / "out" / gzipped).read_bytes()).count(b"\n") >= 1


def test_parquet_is_typed_from_the_schema(filled: Vault, tmp_path: Path) -> None:
    """RECORD is a struct, REPEATED a list, TIMESTAMP timestamp[us, UTC]; the envelope is typed too."""
    filled.export(tmp_path / "out", channel="access", formats="parquet")
    table = pq.read_table(tmp_path / "out" / "access.parquet")
    body = table.schema.field("body").type
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("seq").type == pa.int64()
    assert body.field("occurred").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_struct(body.field("user").type)
    assert body.field("user").type.field("roles").type == pa.list_(pa.string())
    first = table.slice(0, 1).to_pylist()[0]
    assert first["body"]["occurred"].isoformat() == "2024-10-07T08:00:00+00:00"


def test_csv_is_flattened_with_dotted_names(filled: Vault, tmp_path: Path) -> None:
    """CSV has a column per field with a dotted name; repeated fields hold JSON text."""
    filled.export(tmp_path / "out", channel="access", formats="csv")
    table = pa_csv.read_csv(tmp_path / "out" / "access.csv")
    assert "body.user.email" in table.column_names and "body.http_response.status_code" in table.column_names
    assert orjson.loads(table.column("body.user.roles")[0].as_py()) == ["auditor"]


def test_jsonl_holds_the_bodies_as_hashed(filled: Vault, tmp_path: Path) -> None:
    """Each JSONL line is one event with its body_sha256, which the body hashes to."""
    filled.export(tmp_path / "out", channel="myindex", formats="jsonl.gz")
    text = gzip.decompress((tmp_path / "out" / "myindex.jsonl.gz").read_bytes())
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert [line["body"]["company"] for line in lines] == ["A", "B", "C"]
    assert lines[0]["body"]["taxes"] == [{"salestax": 1.0, "taxrate": None}, {}]


def test_query_filters_and_time_range_are_honoured(filled: Vault, tmp_path: Path) -> None:
    """A filtered export holds exactly the matching events and says so in its manifest."""
    manifest = filled.export(tmp_path / "out", channel="access", filter='user.email eq "USER3@example.com"')
    expected = [e.seq for e in filled.iter_events("access", filter='user.email eq "user3@example.com"', sort_by="seq")]
    assert manifest["count"] == len(expected) and manifest["range"]["first_seq"] == expected[0]
    assert manifest["query"]["filter"] == 'user.email eq "USER3@example.com"'
    assert verify_export(tmp_path / "out", filled.verifier_key(), against=filled).ok


@pytest.mark.parametrize("fmt", ["jsonl.gz", "csv", "parquet"])
def test_an_altered_body_is_named(filled: Vault, tmp_path: Path, fmt: str) -> None:
    """Changing one body in a file (and its sha256 in the manifest) is found, naming the file and seq."""
    filled.export(tmp_path / "out", channel="myindex", formats=fmt)
    path = tmp_path / "out" / f"myindex.{fmt}"
    if fmt == "jsonl.gz":
        text = gzip.decompress(path.read_bytes()).replace(b'"company":"B"', b'"company":"X"')
        path.write_bytes(gzip.compress(text))
    elif fmt == "csv":
        path.write_bytes(path.read_bytes().replace(b'"B"', b'"X"'))
    else:
        table = pq.read_table(path).to_pylist()
        table[1]["body"]["company"] = "X"
        pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(path)), path)
    _rewrite_manifest_sha(tmp_path / "out", path.name)
    report = verify_export(tmp_path / "out", filled.verifier_key())
    assert not report.ok
    assert any(path.name in problem and "body" in problem for problem in report.problems), report.problems


def _rewritten_parquet(path: Path, change: Any) -> None:
    """Rewrite a Parquet file with ``change`` applied to its table (the attacker fixes the manifest's sha256 after)."""
    pq.write_table(change(pq.read_table(path)), path)
    _rewrite_manifest_sha(path.parent, path.name)


def test_a_field_added_to_a_parquet_body_or_a_column_of_another_type_is_named(
    filled: Vault, tmp_path: Path
) -> None:
    """verify reads Parquet a column at a time: a body field the schema lacks still changes the body hashed,
    and a column Arrow cannot turn into the envelope's types is a finding, not a crash."""
    filled.export(tmp_path / "out", channel="access", formats="parquet")
    path = tmp_path / "out" / "access.parquet"
    original = pq.read_table(path)

    def with_extra_field(table: Any) -> Any:
        body = table.column("body").combine_chunks()
        extra = pa.array(["planted"] * len(table), pa.string())
        fields = [*body.type, pa.field("planted", pa.string())]
        grown = pa.StructArray.from_arrays([*body.flatten(), extra], fields=fields, mask=body.is_null())
        return table.set_column(table.schema.get_field_index("body"), "body", grown)

    _rewritten_parquet(path, with_extra_field)
    problems = verify_export(tmp_path / "out", filled.verifier_key()).problems
    assert problems and all("the body is not the one the log hashed" in problem for problem in problems), problems
    assert len(problems) == len(original) - 1  # every body but the redacted one

    def time_as_lists(table: Any) -> Any:
        index = table.schema.get_field_index("time")
        return table.set_column(index, "time", pa.array([[1]] * len(table), pa.list_(pa.int64())))

    pq.write_table(original, path)
    _rewritten_parquet(path, time_as_lists)
    problems = verify_export(tmp_path / "out", filled.verifier_key()).problems
    assert any("access.parquet: cannot be read as parquet (ValueError" in problem for problem in problems), problems


def test_a_removed_row_or_changed_file_fails(filled: Vault, tmp_path: Path) -> None:
    """Dropping a row (even with the manifest's sha256 fixed) breaks the root; an edited file breaks its sha256."""
    filled.export(tmp_path / "out", channel="access", formats="jsonl.gz")
    path = tmp_path / "out" / "access.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join(lines[:5] + lines[6:])))
    assert any("sha256" in problem for problem in verify_export(tmp_path / "out", filled.verifier_key()).problems)
    _rewrite_manifest_sha(tmp_path / "out", path.name)
    problems = verify_export(tmp_path / "out", filled.verifier_key()).problems
    assert any("events" in problem for problem in problems), problems


def test_another_key_does_not_verify(filled: Vault, tmp_path: Path, vault_location: Any) -> None:
    """The manifest's checkpoint must be signed by the key given."""
    from trailvault.adapters.signing_key import create_signing_key
    from trailvault.core.integrity.note import verifier_key

    filled.export(tmp_path / "out", channel="myindex")
    other = verifier_key(filled.verifier_key().split("+")[0], create_signing_key(tmp_path / "other.key").public_key())
    with pytest.raises(InvalidInput):
        verify_export(tmp_path / "out", other)


def test_against_the_vault_finds_an_incomplete_export(filled: Vault, tmp_path: Path) -> None:
    """A consistent export of fewer events than its stated query is caught by --against."""
    filled.export(tmp_path / "out", channel="access", filter='user.email eq "user3@example.com"')
    manifest = orjson.loads((tmp_path / "out" / "manifest.json").read_bytes())
    manifest["query"]["filter"] = None
    (tmp_path / "out" / "manifest.json").write_bytes(orjson.dumps(manifest))
    assert verify_export(tmp_path / "out", filled.verifier_key()).ok
    report = verify_export(tmp_path / "out", filled.verifier_key(), against=filled)
    assert any("not in the export" in problem for problem in report.problems)


def test_bad_requests_leave_nothing_behind(filled: Vault, tmp_path: Path) -> None:
    """A non-empty folder, an unknown format or a bad filter are refused and leave no files."""
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("keep")
    with pytest.raises(Conflict):
        filled.export(tmp_path / "used")
    with pytest.raises(InvalidInput, match="format"):
        filled.export(tmp_path / "a", formats="xlsx")
    with pytest.raises(InvalidInput):
        filled.export(tmp_path / "b", filter="type eq")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert (tmp_path / "used" / "x").read_text() == "keep"
    with pytest.raises(InvalidInput, match="out: cannot create the folder"):
        filled.export(tmp_path / "used" / "x" / "below")  # a folder under a file


@pytest.mark.parametrize("damage", ["files", "proof", "size", "files[0].sha256"])
def test_a_damaged_manifest_is_named_not_a_crash(filled: Vault, tmp_path: Path, damage: str) -> None:
    """A manifest missing a key it needs is refused naming that key (it failed with a KeyError)."""
    filled.export(tmp_path / "out", formats="jsonl.gz")
    manifest = orjson.loads((tmp_path / "out" / "manifest.json").read_bytes())
    if damage == "files[0].sha256":
        del manifest["files"][0]["sha256"]
    else:
        del manifest[damage]
    (tmp_path / "out" / "manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(InvalidInput, match=re.escape(damage)):
        verify_export(tmp_path / "out", filled.verifier_key())


def test_cli_export_and_verify_export(tmp_path: Path) -> None:
    """trailvault export and trailvault verify export on the command line; a changed file exits 1."""
    vault = tmp_path / "vault"
    assert run_cli("init", vault=vault).returncode == 0
    assert run_cli("channels", "open", "myindex", "--schema", "examples/platform6/myindex.json", vault=vault,
                   cwd=Path(__file__).parent.parent).returncode == 0  # fmt: skip
    run_cli("post", "myindex", "-", stdin='{"company": "A"}\n{"company": "B", "amount": 2}\n', vault=vault)
    key = run_cli("key", "show", vault=vault).stdout.strip()
    exported = run_cli("export", "--out", str(tmp_path / "out"), vault=vault)
    assert exported.returncode == 0, exported.stderr
    assert orjson.loads(exported.stdout)["count"] == 2
    checked = run_cli("verify", "export", str(tmp_path / "out"), "--key", key, "--against", vault=vault)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: 2 events")
    (tmp_path / "out" / "myindex.csv").write_text("tampered")
    failed = run_cli("verify", "export", str(tmp_path / "out"), "--key", key)
    assert failed.returncode == 1 and "myindex.csv" in failed.stderr


@pytest.mark.system
def test_without_the_export_extra_typed_formats_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    """Without pyarrow, an export asking for Parquet or CSV (the default) or --to-db exits 1
    naming the field and the extra, no traceback and no folder or database; JSONL.gz still
    exports and verifies."""
    vault = tmp_path / "vault"
    assert run_cli("init", vault=vault).returncode == 0
    assert run_cli("channels", "open", "myindex", "--schema", "examples/platform6/myindex.json", vault=vault,
                   cwd=Path(__file__).parent.parent).returncode == 0  # fmt: skip
    run_cli("post", "myindex", "-", stdin='{"company": "A"}\n{"company": "B", "amount": 2}\n', vault=vault)
    bare = without_pyarrow(tmp_path / "site")
    probe = run_cli("export", "--out", str(tmp_path / "probe"), "--format", "csv", vault=vault)
    assert probe.returncode == 0, probe.stderr  # the same command works where pyarrow is installed
    for args, field in ((["--out", str(tmp_path / "all")], "format"),
                        (["--out", str(tmp_path / "csv"), "--format", "jsonl.gz,csv"], "format"),
                        (["--to-db", f"sqlite:///{tmp_path / 'audit.db'}"], "to_db")):  # fmt: skip
        refused = run_cli_process("export", *args, vault=vault, env=bare)
        assert refused.returncode == 1, refused.stdout
        assert f"{field}:" in refused.stderr and "trailvault[export]" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert not (tmp_path / "all").exists() and not (tmp_path / "csv").exists()
    assert not (tmp_path / "audit.db").exists()
    jsonl = run_cli_process("export", "--out", str(tmp_path / "jsonl"), "--format", "jsonl.gz", vault=vault, env=bare)
    assert jsonl.returncode == 0, jsonl.stderr
    key = run_cli("key", "show", vault=vault).stdout.strip()
    checked = run_cli_process("verify", "export", str(tmp_path / "jsonl"), "--key", key, vault=vault, env=bare)
    assert checked.returncode == 0 and checked.stdout.startswith("ok: 2 events"), checked.stderr


def test_export_to_a_database_loads_each_channel_once(filled: Vault, tmp_path: Path, new_database: Any) -> None:
    """--to-db loads a table per channel into SQLite and PostgreSQL; loading again adds nothing twice."""
    import sqlite3

    import psycopg

    expected = len(list(filled.iter_events("access")))
    sqlite_url = f"sqlite:///{tmp_path / 'target.db'}"
    postgres_url = new_database()
    for url in (sqlite_url, postgres_url, sqlite_url):
        summary = filled.export(to_db=url, channel="access")
        assert summary["tables"] == [{"channel": "access", "rows": expected}]
    conn = sqlite3.connect(tmp_path / "target.db")
    assert conn.execute('SELECT count(*), count(DISTINCT seq) FROM "access"').fetchone() == (expected, expected)
    assert conn.execute('SELECT "body.user.email" FROM "access" ORDER BY seq LIMIT 1').fetchone() == (
        "user0@example.com",
    )
    with psycopg.connect(postgres_url) as pg:
        row = pg.execute('SELECT count(*), min("body.http_response.status_code") FROM "access"').fetchone()
        kinds = dict(
            pg.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'access'")
        )
    assert row == (expected, 200)
    assert kinds["time"] == "timestamp with time zone" and kinds["body.user.roles"] == "text"
    with pytest.raises(InvalidInput, match="to_db"):
        filled.export(to_db="mysql://nowhere/db")


def test_a_field_the_channel_gains_becomes_a_column_of_the_loaded_table(
    vault: Vault, tmp_path: Path, new_database: Any
) -> None:
    """A table loaded before the channel's schema gained a field gets that field's column on the
    next load (older rows null there), in SQLite and PostgreSQL; a target that cannot be opened
    is an error naming to_db."""
    import sqlite3

    import psycopg

    vault.open("myindex", MYINDEX)
    vault.post("myindex", {"company": "A"})
    urls = (f"sqlite:///{tmp_path / 'target.db'}", new_database())
    for url in urls:
        vault.export(to_db=url, channel="myindex")
    region = {"name": "region", "type": "STRING", "mode": "NULLABLE", "nested": []}
    vault.open("myindex", [*MYINDEX, region])
    vault.post("myindex", {"company": "B", "region": "eu"})
    for url in urls:
        vault.export(to_db=url, channel="myindex")
    query = 'SELECT "body.company", "body.region" FROM "myindex" ORDER BY seq'
    assert sqlite3.connect(tmp_path / "target.db").execute(query).fetchall() == [("A", None), ("B", "eu")]
    with psycopg.connect(urls[1]) as pg:
        assert pg.execute(query).fetchall() == [("A", None), ("B", "eu")]
    (tmp_path / "not.db").write_text("not a database, " * 100)
    for bad in (tmp_path / "missing" / "a.db", tmp_path / "not.db"):
        with pytest.raises(InvalidInput, match="to_db: cannot use"):
            vault.export(to_db=f"sqlite:///{bad}", channel="myindex")
    # A table the rows cannot go into (here a trigger refusing them): named, no row kept.
    strict = sqlite3.connect(tmp_path / "strict.db")
    strict.execute('CREATE TABLE "myindex" (seq INTEGER PRIMARY KEY, "body.company" TEXT)')
    strict.execute("CREATE TRIGGER refuse BEFORE INSERT ON myindex BEGIN SELECT RAISE(ABORT, 'refused'); END")
    strict.commit()
    with pytest.raises(StoreUnavailable, match="to_db: channel 'myindex': loading it into its table failed"):
        vault.export(to_db=f"sqlite:///{tmp_path / 'strict.db'}", channel="myindex")
    assert strict.execute('SELECT count(*) FROM "myindex"').fetchone() == (0,)


def test_round_trip_of_the_harder_shapes(vault: Vault, tmp_path: Path) -> None:
    """Repeated timestamps (also inside repeated records), extras at any depth and redactions
    come back exactly from every format."""
    vault.open(
        "shapes",
        {
            "fields": [
                {"name": "at", "type": "TIMESTAMP", "mode": "REPEATED"},
                {"name": "visits", "type": "RECORD", "mode": "REPEATED",
                 "fields": [{"name": "when", "type": "TIMESTAMP"}, {"name": "where", "type": "STRING"}]},
                {"name": "user", "type": "RECORD", "fields": [{"name": "name", "type": "STRING"}]},
            ],
            "additional_fields": True,
        },
    )  # fmt: skip
    vault.post_many("shapes", [
        {"at": ["2024-01-01T10:00:00+02:00", "2024-01-02T00:00:00Z"],
         "visits": [{"when": "2024-03-04T05:06:07Z", "where": "x", "note": 1}, {"where": "y"}]},
        {"user": {"name": "a", "extra": 1}, "top": {"deep": [1, None]}},
    ])  # fmt: skip
    gone = vault.post("shapes", {"user": {"name": "b"}})
    vault.redact(gone.id, "erasure")
    vault.export(tmp_path / "out", channel="shapes")
    report = verify_export(tmp_path / "out", vault.verifier_key(), against=vault)
    assert report.ok, report.problems
    assert report.redacted == 1


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl.gz"])
def test_a_free_form_channel_exports_its_body_as_json_text_and_verifies(vault: Vault, tmp_path: Path, fmt: str) -> None:
    """A channel whose schema names no field exports (the body as JSON text in Parquet and CSV) and verifies."""
    vault.open("free", {"fields": [], "additional_fields": True})
    vault.post_many("free", [{"a": 1, "b": {"c": [1, None]}}, {"x": None}, {}, {"t": "2024-01-01T10:00:00+02:00"}])
    gone = vault.post("free", {"secret": 1})
    vault.redact(gone.id, "erasure")
    vault.export(tmp_path / "out", channel="free", formats=fmt)
    report = verify_export(tmp_path / "out", vault.verifier_key(), against=vault)
    assert report.ok, report.problems
    assert (report.events, report.redacted) == (5, 1)
    if fmt == "parquet":
        table = pq.read_table(tmp_path / "out" / "free.parquet")
        assert table.schema.field("body").type == pa.string() and "body_additional" not in table.column_names
        assert orjson.loads(table.column("body")[0].as_py()) == {"a": 1, "b": {"c": [1, None]}}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_undeclared_fields_of_a_typed_channel_that_allows_them_survive_export(
    vault: Vault, tmp_path: Path, fmt: str
) -> None:
    """Fields beside the declared ones (top level, in records, holding nulls) come back in body_additional."""
    vault.open("mixed", {"fields": [{"name": "name", "type": "STRING"},
                                    {"name": "user", "type": "RECORD", "fields": [{"name": "id", "type": "INTEGER"}]}],
                         "additional_fields": True})  # fmt: skip
    bodies = [{"name": "a", "extra": {"deep": [None, 2]}}, {"user": {"id": 1, "role": None}, "n": None}, {"name": "c"}]
    vault.post_many("mixed", bodies)
    vault.export(tmp_path / "out", channel="mixed", formats=fmt)
    report = verify_export(tmp_path / "out", vault.verifier_key(), against=vault)
    assert report.ok, report.problems
    from trailvault.adapters.formats import read_rows

    rows = read_rows(fmt, tmp_path / "out" / f"mixed.{fmt}", vault.channel("mixed").schema)
    assert [row["body"] for row in rows] == bodies


def test_a_value_that_does_not_fit_its_column_is_a_clear_error(vault: Vault, tmp_path: Path) -> None:
    """A field kept as text before the schema named it INTEGER cannot go into Parquet: a clear error, no files."""
    vault.open("evolving", {"fields": [{"name": "name", "type": "STRING"}], "additional_fields": True})
    vault.post("evolving", {"name": "a", "code": "A-17"})
    vault.open("evolving", {"fields": [{"name": "name", "type": "STRING"}, {"name": "code", "type": "INTEGER"}],
                            "additional_fields": True})  # fmt: skip
    with pytest.raises(InvalidInput, match=r"jsonl\.gz"):
        vault.export(tmp_path / "out", channel="evolving", formats="parquet")
    assert not (tmp_path / "out").exists()
    vault.export(tmp_path / "ok", channel="evolving", formats="jsonl.gz")
    assert verify_export(tmp_path / "ok", vault.verifier_key()).ok


def test_csv_cells_of_lists_and_timestamps_are_exact(vault: Vault, tmp_path: Path) -> None:
    """Lists become their JSON text (Arrow builds plain ones, Python escapes the rest) and timestamps
    their UTC text, cell for cell as orjson and the canonical format give them, in pages with and without
    a value that needs escaping."""
    vault.open(
        "lists",
        {
            "fields": [
                {"name": "tags", "type": "STRING", "mode": "REPEATED"},
                {"name": "codes", "type": "INTEGER", "mode": "REPEATED"},
                {"name": "flags", "type": "BOOLEAN", "mode": "REPEATED"},
                {"name": "at", "type": "TIMESTAMP"},
            ]
        },
    )
    plain = [{"tags": ["a", "é ü", "x,y"], "codes": [1, -20, 3_000_000_000], "flags": [True, False],
              "at": "2024-05-01T12:00:00.5+02:00"},
             {"tags": [], "codes": [], "flags": []}, {}]  # fmt: skip
    odd = [{"tags": ['say "hi"', "back\\slash", "tab\there", "line\nbreak"]}, {"tags": ["ok"]}]
    vault.post_many("lists", plain)
    _check_csv_cells(vault, tmp_path / "plain", 3)  # every list built by Arrow
    vault.post_many("lists", odd)
    _check_csv_cells(vault, tmp_path / "all", 5)  # the page's tags escaped by Python


def _check_csv_cells(vault: Vault, out: Path, count: int) -> None:
    vault.export(out, channel="lists", formats="csv")
    table = pa_csv.read_csv(
        out / "lists.csv",
        convert_options=pa_csv.ConvertOptions(strings_can_be_null=True, column_types={
            name: pa.string() for name in ("time", "received", "body.tags", "body.codes", "body.flags", "body.at")
        }),
    ).to_pylist()  # fmt: skip
    events = sorted(vault.events("lists"), key=lambda e: e.seq)
    assert len(table) == len(events) == count
    for row, event in zip(table, events, strict=True):
        for name in ("tags", "codes", "flags"):
            value = event.body.get(name)
            assert row[f"body.{name}"] == (None if value is None else orjson.dumps(value).decode())
        assert row["time"] == f"{event.time:%Y-%m-%d %H:%M:%S.%f}Z"
    assert table[0]["body.at"] == "2024-05-01 10:00:00.500000Z" and table[2]["body.at"] is None
    assert verify_export(out, vault.verifier_key(), against=vault).ok


@pytest.mark.parametrize(
    ("odd", "named"),
    [({"items": [{"n": None}]}, ["items[0].n"]), ({"items": [{"n": 1}, {}]}, []), ({"tags": None}, ["tags"])],
)
def test_a_null_deep_in_an_otherwise_full_page_is_kept(
    vault: Vault, tmp_path: Path, odd: dict[str, Any], named: list[str]
) -> None:
    """Every other body of the page has every field, so the only null or empty record sits in a list:
    body_nulls still names it and verify export rebuilds each body exactly."""
    vault.open("full", {"fields": [
        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
        {"name": "items", "type": "RECORD", "mode": "REPEATED", "fields": [{"name": "n", "type": "INTEGER"}]},
    ]})  # fmt: skip
    complete = {"tags": ["x"], "items": [{"n": 1}]}
    vault.post_many("full", [complete, {**complete, **odd}, complete])
    vault.export(tmp_path / "out", channel="full", formats="parquet,csv")
    assert verify_export(tmp_path / "out", vault.verifier_key(), against=vault).ok
    nulls = pq.read_table(tmp_path / "out" / "full.parquet").column("body_nulls").to_pylist()
    assert nulls == [[], named, []]


def test_a_sqlite_url_names_a_relative_or_an_absolute_file(
    filled: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///name.db is name.db in the working folder, sqlite:////abs/name.db an absolute path (as --vault)."""
    monkeypatch.chdir(tmp_path)
    filled.export(to_db="sqlite:///relative.db", channel="myindex")
    filled.export(to_db=f"sqlite:///{tmp_path / 'absolute.db'}", channel="myindex")
    for name in ("relative.db", "absolute.db"):
        with contextlib.closing(sqlite3.connect(tmp_path / name)) as conn:
            assert conn.execute("SELECT count(*) FROM myindex").fetchone() == (3,)
    with pytest.raises(InvalidInput, match=r"sqlite:///relative/file\.db"):
        filled.export(to_db="sqlite://host/file.db")


def _files_of(folder: Path) -> dict[str, Any]:
    """Each export file's content: Parquet as its rows (the writer's metadata may differ), others as bytes."""
    return {
        path.name: pq.read_table(path).to_pylist() if path.suffix == ".parquet" else path.read_bytes()
        for path in sorted(folder.iterdir())
        if path.name != "manifest.json" and not path.name.endswith(".gz")
    } | {path.name: gzip.decompress(path.read_bytes()) for path in folder.glob("*.gz")}


def test_the_page_reader_process_exports_the_same_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long export from SQLite reads its pages in a child process (ADBC); the files are those an
    in-process read writes, redacted body, nulls, lists and all, and they verify."""
    import trailvault
    import trailvault.workflows.export.source as export_source
    from trailvault.adapters.store.sqlite import store as sqlite_store

    with trailvault.open_vault(tmp_path / "v") as vault:
        _fill(vault)
        vault.post_many("access", [access_event(i) for i in range(200, 1300)])
        # Pages of 200 events (10,000 shared by two typed formats, scaled down): the child's
        # batches of 2,500 are cut into pages, the last one short.
        monkeypatch.setattr(export_source, "PAGE_ROWS", 400)
        monkeypatch.setattr(sqlite_store, "SEPARATE_READER_FROM", 10**12)
        here = vault.export(tmp_path / "here", filter="seq gt 2")
        monkeypatch.setattr(sqlite_store, "SEPARATE_READER_FROM", 0)
        started = []
        real_popen = sqlite_store.pagereader.subprocess.Popen

        def popen(*args: Any, **kwargs: Any) -> Any:
            started.append(args[0])
            return real_popen(*args, **kwargs)

        monkeypatch.setattr(sqlite_store.pagereader.subprocess, "Popen", popen)
        apart = vault.export(tmp_path / "apart", filter="seq gt 2")
        report = verify_export(tmp_path / "apart", vault.verifier_key(), against=vault)
    assert len(started) == 1 and started[0][-1].endswith("readerprocess.py")
    assert report.ok, report.problems
    assert apart["count"] == here["count"] == report.events and report.redacted == 1
    # CSV byte for byte (gzip headers hold the time they were written; their content is compared below).
    assert [item["sha256"] for item in apart["files"] if item["format"] == "csv"] == [
        item["sha256"] for item in here["files"] if item["format"] == "csv"
    ]
    assert _files_of(tmp_path / "apart") == _files_of(tmp_path / "here")


def test_a_page_reader_that_dies_fails_the_export_and_leaves_no_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after its first page, the reader process is an error naming it; no partial export survives."""
    import trailvault
    from trailvault.adapters.store.sqlite import store as sqlite_store
    from trailvault.errors import StoreUnavailable

    real_popen = sqlite_store.pagereader.subprocess.Popen
    children: list[Any] = []

    def popen(*args: Any, **kwargs: Any) -> Any:
        children.append(real_popen(*args, **kwargs))
        return children[-1]

    real_read = sqlite_store.pagereader.read_pages

    def read_then_kill(*args: Any, **kwargs: Any) -> Any:
        pages = real_read(*args, **kwargs)
        yield next(pages)
        children[0].kill()
        yield from pages

    with trailvault.open_vault(tmp_path / "v") as vault:
        vault.open("access", ACCESS)
        # Several megabytes, more than the pipe holds: the child is still writing when killed.
        for start in range(0, 12_000, 3000):
            vault.post_many("access", [access_event(i, message="x" * 300) for i in range(start, start + 3000)])
        monkeypatch.setattr(sqlite_store, "SEPARATE_READER_FROM", 0)
        monkeypatch.setattr(sqlite_store.pagereader.subprocess, "Popen", popen)
        monkeypatch.setattr(sqlite_store.pagereader, "read_pages", read_then_kill)
        with pytest.raises(StoreUnavailable, match="reading process failed"):
            vault.export(tmp_path / "out", formats="csv")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_where_no_child_can_start_the_export_reads_in_its_own_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox that refuses to start processes still gets its export, read the ordinary way."""
    import trailvault
    from trailvault.adapters.store.sqlite import store as sqlite_store

    refused: list[Any] = []

    def no_processes(*args: Any, **kwargs: Any) -> Any:
        refused.append(args[0])
        raise PermissionError("process creation is not allowed here")

    with trailvault.open_vault(tmp_path / "v") as vault:
        _fill(vault)
        monkeypatch.setattr(sqlite_store, "SEPARATE_READER_FROM", 0)
        monkeypatch.setattr(sqlite_store.pagereader.subprocess, "Popen", no_processes)
        manifest = vault.export(tmp_path / "out", formats="csv")
        report = verify_export(tmp_path / "out", vault.verifier_key(), against=vault)
        total = len(list(vault.iter_events()))
    assert refused and report.ok, report.problems
    assert manifest["count"] == report.events == total


def test_a_reader_that_fails_before_its_first_page_gives_way_to_an_in_process_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A driver that does not load on this machine must not break every long export: the
    export reads in its own process and says so in the log."""
    import subprocess
    import sys

    import trailvault
    from trailvault.adapters.store.sqlite import store as sqlite_store

    real_popen = subprocess.Popen

    def broken_child(args: Any, **kwargs: Any) -> Any:
        code = "import sys; print('ImportError: no driver here', file=sys.stderr); sys.exit(3)"
        return real_popen([sys.executable, "-c", code], **kwargs)

    with trailvault.open_vault(tmp_path / "v") as vault:
        _fill(vault)
        monkeypatch.setattr(sqlite_store, "SEPARATE_READER_FROM", 0)
        monkeypatch.setattr(sqlite_store.pagereader.subprocess, "Popen", broken_child)
        with caplog.at_level("WARNING", logger="trailvault.store"):
            manifest = vault.export(tmp_path / "out", formats="parquet")
        report = verify_export(tmp_path / "out", vault.verifier_key(), against=vault)
    assert report.ok and manifest["count"] == report.events > 0
    assert "no driver here" in caplog.text


@pytest.fixture(scope="module")
def long_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 access events: an export long enough to stop halfway, read by the page reader process."""
    path = tmp_path_factory.mktemp("long") / "vault"
    with trailvault.open_vault(path, durability="normal") as vault:
        vault.open("access", ACCESS)
        bodies = [access_event(i) for i in range(1000)]
        for _ in range(200):
            vault.post_many("access", bodies)
    return path


@pytest.mark.system
@pytest.mark.parametrize(("stop", "code", "prepared"), [(signal.SIGTERM, 143, False), (signal.SIGINT, 1, True)])
def test_an_export_stopped_by_a_signal_removes_its_files(
    long_vault: Path, tmp_path: Path, stop: int, code: int, prepared: bool
) -> None:
    """SIGTERM (a service manager, timeout, kill) and Ctrl-C stop an export as an error does: the
    half-written files go, and the folder too unless the user had made it (then it stays, empty);
    the command exits non-zero without a traceback."""
    out = tmp_path / "out"
    if prepared:
        out.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAILVAULT_")}
    process = subprocess.Popen(
        [str(CLI), "--vault", str(long_vault), "export", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    # Stopped once the first page is on disk, well before the last (the whole export takes seconds).
    while not (out / "access.csv").exists() or (out / "access.csv").stat().st_size == 0:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.002)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert (list(out.iterdir()) == []) if prepared else not out.exists()
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("target", "field"),
    [({"out": "blocker/inside"}, "out"), ({"to_db": "bogus://x"}, "to_db")],
)
def test_an_export_wrong_twice_names_its_destination_first(
    filled: Vault, tmp_path: Path, target: dict[str, str], field: str
) -> None:
    """A destination that cannot be written is named before a bad filter or an unknown channel: the
    query is read when the first page is, after the folder is made or the database opened."""
    (tmp_path / "blocker").write_text("a file, so no folder can be made under it")
    where = {name: str(tmp_path / value) if name == "out" else value for name, value in target.items()}
    for query in ({"filter": "zz eq"}, {"channel": "nosuch"}):
        with pytest.raises(InvalidInput) as refused:
            filled.export(**where, **query)  # type: ignore[arg-type]
        assert refused.value.field == field, refused.value.message
