"""Importing OCI Data Safe audit events: every shape people have, made by the real oci SDK where it can."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import oci  # type: ignore[import-untyped]
import orjson
import pytest

import trailvault
from trailvault import Vault
from trailvault.adapters.importers import datasafe as importer
from trailvault.adapters.importers.datasafe import DatasafeRecord, RecordProblem, read_datasafe, rest_name
from trailvault.errors import InvalidInput
from trailvault.workflows.export.verify import verify_export
from trailvault.workflows.imports import import_records

from .conftest import run_cli

COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaarsk54oz6cd4kd5pgnrgqcxiyd2ldo2n5zx6psna2hyln6vtzkgka"


def sdk_event(number: int, **changes: Any) -> Any:
    """An AuditEventSummary as the SDK builds it (the way list_audit_events returns them)."""
    values: dict[str, Any] = {
        "id": f"ocid1.datasafeauditevent.oc1..{number:04d}",
        "compartment_id": COMPARTMENT,
        "db_user_name": "SYS",
        "target_id": "ocid1.datasafetargetdatabase.oc1..target",
        "target_name": "ep71pod",
        "database_type": "AUTONOMOUS_DATABASE",
        "target_class": "DATABASE",
        "audit_event_time": datetime(2023, 1, 16, 18, 40, number % 60, 87000, tzinfo=UTC),
        "time_collected": datetime(2023, 1, 16, 18, 41, tzinfo=UTC),
        "operation": "DELETE",
        "operation_status": "SUCCESS",
        "event_name": "DELETE",
        "client_ip": "172.17.0.1",
        "command_text": "DELETE FROM LBACSYS.OLS$POLT WHERE TBL_NAME = :B2 AND OWNER = :B1 ",
        "extended_event_attributes": "PROXY_SESSIONID=0::INSTANCE_ID=2",
        "is_alerted": False,
        "audit_location": "AUDIT_TABLE",
        "audit_type": "STANDARD",
        "peer_target_database_key": 7,
        "trail_source": "TABLE",
        "freeform_tags": {"team": "dba", "cost_center": "42"},
        "defined_tags": {"Operations": {"CostCenter": "42", "reviewed": True, "note": None}},
    }
    values.update(changes)
    return oci.data_safe.models.AuditEventSummary(**values)


def snake(event: Any) -> dict[str, Any]:
    """The SDK's to_dict output: snake_case keys, every field (None for the absent ones)."""
    document: dict[str, Any] = oci.util.to_dict(event)
    return document


def rest(event: Any) -> dict[str, Any]:
    """The REST API's JSON: camelCase keys (the model's attribute_map), nulls left out."""
    return {event.attribute_map[key]: value for key, value in snake(event).items() if value is not None}


def cli(event: Any) -> dict[str, Any]:
    """The oci CLI's JSON: kebab-case keys, every field."""
    return {key.replace("_", "-"): value for key, value in snake(event).items()}


def cli_page(events: list[Any], next_page: str | None = None) -> str:
    """One page as ``oci data-safe audit-event-summary list-audit-events`` prints it."""
    document: dict[str, Any] = {"data": {"items": [cli(e) for e in events]}}
    if next_page:
        document["opc-next-page"] = next_page
    return json.dumps(document, indent=4) + "\n"


EVENTS = [sdk_event(n) for n in range(6)]
IDS = [e.id for e in EVENTS]


def read(text: str) -> list[DatasafeRecord | RecordProblem]:
    return list(read_datasafe(io.BytesIO(text.encode())))


def test_the_sdk_to_dict_output_is_snake_case() -> None:
    """oci.util.to_dict gives snake_case keys and RFC 3339 text for datetimes (what the importer must read)."""
    document = snake(EVENTS[0])
    assert "db_user_name" in document and document["audit_event_time"] == "2023-01-16T18:40:00.087000+00:00"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(cli_page(EVENTS[:3], "page2") + cli_page(EVENTS[3:]), id="cli-appended-pages"),
        pytest.param(json.dumps({"data": [cli(e) for e in EVENTS]}), id="cli-data-list"),
        pytest.param(json.dumps([snake(e) for e in EVENTS]), id="sdk-list"),
        pytest.param("".join(json.dumps(snake(e)) + "\n" for e in EVENTS), id="sdk-ndjson"),
        pytest.param(json.dumps([rest(e) for e in EVENTS]), id="rest-list"),
        pytest.param(json.dumps({"items": [rest(e) for e in EVENTS]}), id="rest-collection"),
        pytest.param("".join(json.dumps(rest(e)) + "\n" for e in EVENTS), id="rest-ndjson"),
        pytest.param(json.dumps({"opc-next-page": "x", "data": {"items": [cli(e) for e in EVENTS]}}), id="key-order"),
    ],
)
def test_every_shape_reads_as_the_same_records(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI, SDK and REST shapes give the same ids and camelCase bodies, also read 5 bytes at a time."""
    expected = [(e.id, {k: v for k, v in rest(e).items() if k != "id"}) for e in EVENTS]
    assert [(r.id, r.body) for r in read(text) if isinstance(r, DatasafeRecord)] == expected
    monkeypatch.setattr(importer, "_CHUNK", 5)
    assert [(r.id, r.body) for r in read(text) if isinstance(r, DatasafeRecord)] == expected


def test_positions_name_document_item_and_line() -> None:
    """Each record is named by its document and item (1-based) and the line it starts on."""
    text = cli_page(EVENTS[:2]) + cli_page(EVENTS[2:3])
    records = read(text)
    assert [r.position.split(" (")[0] for r in records] == [
        "document 1, item 1", "document 1, item 2", "document 2, item 1",
    ]  # fmt: skip
    second_document_line = cli_page(EVENTS[:2]).count("\n") + 1
    assert records[2].position.endswith(f"(line {second_document_line + 3})")
    ndjson = read("".join(json.dumps(rest(e)) + "\n" for e in EVENTS[:2]))
    assert [r.position for r in ndjson] == ["document 1 (line 1)", "document 2 (line 2)"]


def test_keys_become_rest_spelling_but_tag_names_stay() -> None:
    """db-user-name and db_user_name become dbUserName; the user's tag names are not touched."""
    assert [rest_name(k) for k in ("db-user-name", "db_user_name", "dbUserName", "id")] == [
        "dbUserName", "dbUserName", "dbUserName", "id",
    ]  # fmt: skip
    (record,) = read(cli_page(EVENTS[:1]))
    assert isinstance(record, DatasafeRecord) and record.body["freeformTags"] == {"team": "dba", "cost_center": "42"}


def test_a_record_without_id_or_not_an_object_is_a_problem_and_broken_json_stops() -> None:
    """A record lacking id, or not an object, is named; text that is not JSON raises naming its line."""
    problems = read('[{"targetName": "x"}, 5]')
    assert problems == [
        RecordProblem("document 1, item 1 (line 1)", "id", "missing; Data Safe's id (text) becomes the event's id"),
        RecordProblem("document 1, item 2 (line 1)", None, "expected an audit event (a JSON object)"),
    ]
    with pytest.raises(InvalidInput, match="input: line 3: not JSON"):
        read('{"data": {"items": [\n{"id": "a"},\n{"id": ]}}')
    with pytest.raises(InvalidInput, match="input: line 1: the input ends inside a document"):
        read('{"data": {"items": [{"id": "a"}')
    with pytest.raises(InvalidInput, match='input: line 2: expected "," or "]" after an item'):
        read('[{"id": "a"}\n {"id": "b"}]')
    with pytest.raises(InvalidInput, match="not UTF-8 text"):
        list(read_datasafe(io.BytesIO(b'[{"id": "\xff"}]')))


def test_a_large_document_is_read_one_record_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """With small chunks, the text held stays about one chunk and one record, however long the document."""
    monkeypatch.setattr(importer, "_CHUNK", 4096)
    many = [sdk_event(n) for n in range(400)]
    text = cli_page(many)
    scanner = importer._Scanner(io.BytesIO(text.encode()))
    largest = count = 0
    for _ in scanner.records():
        count += 1
        largest = max(largest, len(scanner.text))
    assert count == 400 and len(text) > 40 * 4096 and largest < 3 * 4096


def test_import_stores_each_event_once_with_data_safe_ids_and_event_times(vault: Vault) -> None:
    """Importing twice stores once (duplicates counted); the id is Data Safe's, the time auditEventTime."""
    vault.open("audit", "datasafe")
    text = cli_page(EVENTS[:4], "p") + cli_page(EVENTS[2:])  # the appended log repeats two events
    first = import_records(vault, "audit", read(text), batch_size=3)
    assert (first.imported, first.duplicates, first.refused) == (6, 2, [])
    again = import_records(vault, "audit", read(text), batch_size=3)
    assert (again.imported, again.duplicates) == (0, 8)
    stored = vault.get(IDS[5])
    assert stored.time == datetime(2023, 1, 16, 18, 40, 5, 87000, tzinfo=UTC)
    assert stored.body["definedTags"] == {"Operations": {"CostCenter": "42", "reviewed": True, "note": None}}
    assert stored.body["timeCollected"] == "2023-01-16T18:41:00.000000Z" and "id" not in stored.body
    assert len(list(vault.iter_events(channel="audit"))) == 6


def test_refused_records_are_named_and_nothing_of_them_is_stored(vault: Vault) -> None:
    """An enum value Data Safe does not have, an unknown field or a missing REQUIRED one: named, not stored."""
    vault.open("audit", "builtin:datasafe")
    bad_type = rest(sdk_event(10))
    bad_type["databaseType"] = "MAINFRAME"
    unknown = {**rest(sdk_event(11)), "mood": "calm"}
    missing = rest(sdk_event(12))
    del missing["targetName"]
    text = json.dumps({"items": [rest(EVENTS[0]), bad_type, unknown, missing, rest(EVENTS[1])]})
    result = import_records(vault, "audit", read(text), batch_size=10)
    assert (result.imported, result.duplicates) == (2, 0)
    assert [(r.position, r.field) for r in result.refused] == [
        ("document 1, item 2 (line 1)", "databaseType"),
        ("document 1, item 3 (line 1)", "mood"),
        ("document 1, item 4 (line 1)", "targetName"),
    ]
    assert "use one of DATABASE_CLOUD_SERVICE, AUTONOMOUS_DATABASE, INSTALLED_DATABASE" in result.refused[0].message
    assert sorted(e.id for e in vault.iter_events(channel="audit")) == sorted(IDS[:2])


def test_an_id_kept_with_another_body_is_refused_by_name_and_the_rest_stored(vault: Vault) -> None:
    """Re-importing an event whose body changed is an IdConflict for that record only, not the batch."""
    vault.open("audit", "datasafe")
    import_records(vault, "audit", read(json.dumps([rest(EVENTS[0])])))
    changed = {**rest(EVENTS[0]), "dbUserName": "OTHER"}
    result = import_records(vault, "audit", read(json.dumps([rest(EVENTS[1]), changed, rest(EVENTS[0])])))
    assert (result.imported, result.duplicates) == (1, 1)
    assert [(r.position, r.field) for r in result.refused] == [("document 1, item 2 (line 1)", "id")]
    assert "is taken in this app" in result.refused[0].message
    assert vault.get(IDS[0]).body["dbUserName"] == "SYS"


def test_an_unknown_enum_value_from_the_sdk_is_refused(vault: Vault) -> None:
    """The SDK turns a value it does not know into UNKNOWN_ENUM_VALUE; the channel refuses it by name."""
    vault.open("audit", "datasafe")
    odd = sdk_event(20, audit_type="SOMETHING_NEW")
    result = import_records(vault, "audit", read(json.dumps([snake(odd)])))
    assert [(r.field, r.message.split(";")[0]) for r in result.refused] == [
        ("auditType", 'auditType: "UNKNOWN_ENUM_VALUE" is not an allowed value'),
    ]


def test_a_datasafe_channel_exports_to_every_format_and_verifies(vault: Vault, tmp_path: Path) -> None:
    """Parquet, CSV and JSONL.gz of a datasafe channel (JSON tags, enums, nulls inside tags) verify."""
    vault.open("audit", "datasafe")
    bare = {k: v for k, v in rest(sdk_event(30)).items() if k not in ("freeformTags", "definedTags")}
    empty = {**rest(sdk_event(31)), "freeformTags": {}, "definedTags": {"ns": {}}}
    items = [rest(e) for e in EVENTS] + [bare, empty]
    assert import_records(vault, "audit", read(json.dumps(items))).imported == 8
    manifest = vault.export(tmp_path / "out", channel="audit")
    assert sorted(item["name"] for item in manifest["files"]) == ["audit.csv", "audit.jsonl.gz", "audit.parquet"]
    report = verify_export(tmp_path / "out", vault.verifier_key(), against=vault)
    assert report.ok, report.problems
    assert report.events == 8


def test_cli_import_datasafe_counts_and_names_refusals(tmp_path: Path) -> None:
    """trailvault import datasafe FILE|-: opens the channel, prints the counts, names refusals, exits 1 on any."""
    vault = tmp_path / "vault"
    assert run_cli("init", vault=vault).returncode == 0
    log = tmp_path / "datasafe.log"
    log.write_text(cli_page(EVENTS[:3], "p2") + cli_page(EVENTS[3:]))
    done = run_cli("import", "datasafe", str(log), "--channel", "audit", vault=vault)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {"imported": 6, "duplicates": 0, "refused": 0}
    bad = cli(sdk_event(40))
    bad["operation-status"] = "MAYBE"
    first_page = cli_page([EVENTS[0], sdk_event(41)])
    stdin = first_page + json.dumps({"data": {"items": [bad]}})
    again = run_cli("import", "datasafe", "-", "--channel", "audit", stdin=stdin, vault=vault)
    assert again.returncode == 1
    assert orjson.loads(again.stdout) == {"imported": 1, "duplicates": 1, "refused": 1}
    line = first_page.count("\n") + 1
    assert again.stderr.startswith(
        f'trailvault: refused: document 2, item 1 (line {line}): operationStatus: "MAYBE" is not an allowed value'
    )
    with trailvault.open_vault(vault, create=False) as opened:
        assert opened.channel("audit").version == 1
        assert len(list(opened.iter_events(channel="audit"))) == 7


def test_cli_import_of_a_missing_file_or_broken_json_exits_1(tmp_path: Path) -> None:
    """A file that cannot be read, or text that is not JSON, is named on stderr with exit code 1."""
    vault = tmp_path / "vault"
    run_cli("init", vault=vault)
    missing = run_cli("import", "datasafe", str(tmp_path / "nope.json"), vault=vault)
    assert missing.returncode == 1 and "FILE: cannot read" in missing.stderr
    broken = run_cli("import", "datasafe", "-", stdin='{"data": {"items": [\n{"id": }]}}', vault=vault)
    assert broken.returncode == 1 and "input: line 2: not JSON" in broken.stderr
