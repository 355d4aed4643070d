"""The OCI face with the real ``oci`` SDK: Data Safe's audit-event listing and OCI Logging's PutLogs.

The SDK runs unchanged but for its endpoint: each client is made from an OCI config file
and key pair that the test writes, whose public key is registered on a trailvault API key,
so every request is signed by the SDK's own signer. Raw HTTP checks use bearer tokens.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import oci
import pytest

import trailvault
from tests.server.conftest import Server, oci_config_file, oci_identity, start_server
from trailvault import NewEvent
from trailvault.core.schema.builtin import BUILTIN_SCHEMAS

COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaadbsec"
MASKED_COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaamasked"
LOG = "ocid1.log.oc1.eu-frankfurt-1.amaaaaaasiem"
UNMAPPED_LOG = "ocid1.log.oc1.eu-frankfurt-1.amaaaaaanowhere"
CONFIG = f"""
[oci]
prefix = "/oci"
compartments = {{ "{COMPARTMENT}" = "dbsec", "{MASKED_COMPARTMENT}" = "dbsec/masked" }}
logs = {{ "{LOG}" = "siem/datasafe-log" }}
"""
EVENT_COUNT = 7
NO_RETRY = oci.retry.NoneRetryStrategy()


def datasafe_schema() -> dict[str, Any]:
    """The built-in ``datasafe`` schema's document (a copy: a test may mark a field sensitive)."""
    return copy.deepcopy(BUILTIN_SCHEMAS["datasafe"])


@dataclass
class Faces:
    server: Server
    reader: str  # read + unmask in app dbsec
    masked_reader: str  # read only in app dbsec
    siem: str  # ingest + read + unmask in app siem
    ids: list[str]  # the Data Safe events, oldest first
    configs: dict[str, Path]  # each key's OCI config file, by its token

    clients: list[Any] = field(default_factory=list)

    def datasafe(self, token: str | None = None, prefix: str = "") -> oci.data_safe.DataSafeClient:
        return self._kept(oci.data_safe.DataSafeClient, token or self.reader, prefix)

    def logging(self, token: str | None = None) -> oci.loggingingestion.LoggingClient:
        return self._kept(oci.loggingingestion.LoggingClient, token or self.siem, "")

    def _kept(self, kind: Any, token: str, prefix: str) -> Any:
        """An SDK client from the key's OCI config file, unchanged but for its endpoint; kept to close its session."""
        config = oci.config.from_file(str(self.configs[token]))
        client = kind(config, service_endpoint=self.server.url + prefix, retry_strategy=NO_RETRY)
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self.clients:
            client.base_client.session.close()
        self.clients.clear()

    def http(self, token: str | None = None) -> httpx.Client:
        return self.server.client(token or self.reader)


def audit_event(number: int) -> dict[str, Any]:
    """A Data Safe audit event as its REST form has it, one minute after the one before."""
    moment = datetime(2023, 1, 16, 18, 40, 26, 87000, tzinfo=UTC) + timedelta(minutes=number)
    return {
        "compartmentId": COMPARTMENT,
        "dbUserName": ["SYS", "ADMIN", "APP"][number % 3],
        "targetId": "ocid1.datasafetargetdatabase.oc1..aaaaaaaaep71pod",
        "targetName": "ep71pod",
        "databaseType": "AUTONOMOUS_DATABASE",
        "auditEventTime": moment.isoformat(),
        "operation": "LOGON" if number % 2 else "DELETE",
        "operationStatus": "SUCCESS",
        "eventName": "LOGON" if number % 2 else "DELETE",
        "clientIp": f"172.17.0.{number}",
        "commandText": f"DELETE FROM LBACSYS.OLS$POLT -- {number}",
        "extendedEventAttributes": "PROXY_SESSIONID=0::INSTANCE_ID=2",
        "auditType": "STANDARD",
        "isAlerted": number == 3,
    }


@contextlib.contextmanager
def started_faces(vault: str, folder: Path) -> Iterator[Faces]:
    """A server on ``vault`` with the [oci] section set, app dbsec's Data Safe events and keys of dbsec and siem."""
    config = folder / "trailvault.toml"
    config.write_text(CONFIG)
    running = start_server(vault, folder / "server.log", rate_limit=0, max_request_bytes=4 << 20, config=config)
    events = [audit_event(number) for number in range(EVENT_COUNT)]
    ids = [f"ocid1.auditevent.oc1..aaaaaaaa{number:04d}" for number in range(EVENT_COUNT)]
    masked_schema = datasafe_schema()
    for item in masked_schema["fields"]:
        item["sensitive"] = item["name"] == "clientIp"
    try:
        with trailvault.open_vault(vault, app="dbsec", create=False) as dbsec:
            dbsec.open("datasafe", datasafe_schema())
            dbsec.open("masked", masked_schema)
            for channel, suffix in (("datasafe", ""), ("masked", ".masked")):  # ids are unique in an app
                posts = [NewEvent(e, i + suffix, e["auditEventTime"]) for e, i in zip(events, ids, strict=True)]
                dbsec.post_many(channel, posts)
        configs: dict[str, Path] = {}

        def signing_key(name: str, app: str, *scopes: str) -> str:
            """A key of ``app`` whose OCI public key is registered; its config file signs the SDK's requests."""
            _, public_pem = oci_identity(folder, name)
            with trailvault.open_vault(vault, app=app, create=False) as opened:
                token = opened.create_key(name, scopes, oci_public_key=public_pem)[1]
            configs[token] = oci_config_file(folder, name)
            return token

        started = Faces(
            running,
            signing_key("reader", "dbsec", "read", "unmask"),
            signing_key("masked-reader", "dbsec", "read"),
            signing_key("siem", "siem", "ingest", "read", "unmask"),
            ids,
            configs,
        )
        yield started
        started.close_clients()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faces]:
    """The OCI face on a SQLite vault (see :func:`started_faces`)."""
    folder = tmp_path_factory.mktemp("oci")
    with started_faces(str(folder / "vault"), folder) as started:
        yield started


@pytest.fixture(autouse=True)
def closed_clients(faces: Faces) -> Iterator[None]:
    """Close the SDK clients' sessions after each test (the SDK leaves them open)."""
    yield
    faces.close_clients()


def oci_error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"code", "message"} and response.headers["opc-request-id"]
    return response.status_code, body["code"], body["message"]


# -- listing -------------------------------------------------------------------------------------


def test_list_audit_events_takes_every_keyword_of_the_sdk(faces: Faces) -> None:
    """compartmentId, subtree, access level, limit, page, scimQuery, sortOrder and sortBy all act as OCI's do."""
    keywords: dict[str, Any] = {
        "compartment_id_in_subtree": False,
        "access_level": "ACCESSIBLE",
        "limit": 2,
        "scim_query": '(auditEventTime ge "2023-01-16T18:41:00.000Z") and (operation eq "logon")',
        "sort_order": "DESC",
        "sort_by": "auditEventTime",
    }
    client = faces.datasafe()
    first = client.list_audit_events(COMPARTMENT, opc_request_id="REQ-1", **keywords)
    second = client.list_audit_events(COMPARTMENT, page=first.next_page, **keywords)
    assert first.headers["opc-request-id"] == "REQ-1" and first.has_next_page
    assert [item.id for item in first.data.items + second.data.items] == [faces.ids[5], faces.ids[3], faces.ids[1]]
    assert not second.has_next_page
    item = first.data.items[0]
    assert item.compartment_id == COMPARTMENT and item.db_user_name == "APP" and item.operation == "LOGON"
    assert item.audit_event_time == datetime(2023, 1, 16, 18, 45, 26, 87000, tzinfo=UTC)
    assert item.time_collected is not None and item.time_collected > item.audit_event_time
    assert item.is_alerted is False and item.client_ip == "172.17.0.5"


def test_the_listing_answers_times_in_ocis_form(faces: Faces) -> None:
    """Times read as OCI writes them: RFC 3339 UTC to the millisecond, and the body's other fields as posted."""
    with faces.http() as http:
        response = http.get("/20181201/auditEvents", params={"compartmentId": COMPARTMENT, "limit": 1})
    (item,) = response.json()["items"]
    assert item["auditEventTime"] == "2023-01-16T18:40:26.087Z" and item["timeCollected"].endswith("Z")
    assert item["id"] == faces.ids[0] and item["dbUserName"] == "SYS" and len(response.headers["opc-request-id"]) > 8


def test_fetching_all_pages_returns_every_event_exactly_once(faces: Faces) -> None:
    """oci.pagination.list_call_get_all_results follows opc-next-page over every page to the last event."""
    client = faces.datasafe()
    everything = oci.pagination.list_call_get_all_results(client.list_audit_events, COMPARTMENT, limit=2)
    assert [item.id for item in everything.data] == faces.ids


def test_sorting_by_a_body_field_pages_in_its_order(faces: Faces) -> None:
    """sortBy a field of the body (dbUserName) orders every page by it, the log's order breaking ties."""
    client = faces.datasafe()
    everything = oci.pagination.list_call_get_all_results(
        client.list_audit_events, COMPARTMENT, limit=3, sort_by="dbUserName", sort_order="ASC"
    )
    names = [item.db_user_name for item in everything.data]
    assert names == sorted(names) and len(everything.data) == EVENT_COUNT


def test_an_app_name_is_a_compartment_and_the_prefix_serves_the_same(faces: Faces) -> None:
    """compartmentId may be the app's own name, and the face answers under [oci] prefix too."""
    client = faces.datasafe(prefix="/oci")
    listed = client.list_audit_events("dbsec", scim_query=f'id eq "{faces.ids[2]}"')
    assert [item.id for item in listed.data.items] == [faces.ids[2]]
    assert listed.data.items[0].compartment_id == COMPARTMENT  # the body's own


def test_a_key_without_unmask_reads_sensitive_fields_masked(faces: Faces) -> None:
    """Masking applies as on /v1: a sensitive clientIp reads [masked], and filtering on it is refused."""
    client = faces.datasafe(faces.masked_reader)
    listed = client.list_audit_events(MASKED_COMPARTMENT, limit=1)
    assert listed.data.items[0].client_ip == "[masked]" and listed.data.items[0].db_user_name == "SYS"
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        client.list_audit_events(MASKED_COMPARTMENT, scim_query='clientIp eq "172.17.0.1"')
    assert refused.value.status == 403 and refused.value.code == "NotAuthorized"
    assert refused.value.message.startswith("scimQuery: clientIp is or holds a sensitive field")


def test_scopes_and_channel_limits_apply_as_on_v1(faces: Faces) -> None:
    """A key without read is 403 NotAuthorized; a key limited to other channels finds the compartment's 404."""
    ingest_only = faces.server.key("ingest", app="dbsec")
    limited = faces.server.key("read", "unmask", channels=["masked"], app="dbsec")
    with faces.http(ingest_only) as http:
        unscoped = http.get("/20181201/auditEvents", params={"compartmentId": COMPARTMENT})
    with faces.http(limited) as http:
        elsewhere = http.get("/20181201/auditEvents", params={"compartmentId": COMPARTMENT})
        own = http.get("/20181201/auditEvents", params={"compartmentId": MASKED_COMPARTMENT})
    assert oci_error(unscoped)[:2] == (403, "NotAuthorized")
    assert oci_error(elsewhere)[:2] == (404, "NotAuthorizedOrNotFound")
    assert own.status_code == 200 and len(own.json()["items"]) == EVENT_COUNT


def test_a_scim_query_that_does_not_parse_raises_a_service_error_naming_the_column(faces: Faces) -> None:
    """The SDK raises ServiceError 400 InvalidParameter whose message names scimQuery and the column."""
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        faces.datasafe().list_audit_events(COMPARTMENT, scim_query='operation eq "LOGON" and')
    assert refused.value.status == 400 and refused.value.code == "InvalidParameter"
    assert refused.value.message.startswith("scimQuery: at column 25: expected an attribute")


def test_a_scim_query_on_a_field_the_channel_lacks_is_refused(faces: Faces) -> None:
    """A filter on a field that is no field of the channel is a 400 naming scimQuery and the field."""
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        faces.datasafe().list_audit_events(COMPARTMENT, scim_query="adminUsr eq 1")
    assert refused.value.status == 400 and "scimQuery:" in refused.value.message and "adminUsr" in refused.value.message


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"sortBy": "bogus"}, "sortBy: 'bogus' is not allowed; use one of dbUserName"),
        ({"sortBy": "id"}, "sortBy: 'id' is not allowed"),
        ({"sortOrder": "UP"}, "sortOrder: 'UP' is not allowed; use one of ASC, DESC"),
        ({"accessLevel": "ALL"}, "accessLevel: 'ALL' is not allowed"),
        ({"compartmentIdInSubtree": "maybe"}, "compartmentIdInSubtree: 'maybe' is not allowed"),
        ({"limit": "0"}, "limit: 0 is out of range; use from 1 to 1000"),
        ({"limit": "1001"}, "limit: 1001 is out of range; use from 1 to 1000"),
        ({"page": "forged"}, "page: not a page token from trailvault"),
        ({"pages": "2"}, "pages: an unknown query parameter"),
    ],
)
def test_bad_listing_parameters_are_invalid_parameter_naming_them(
    faces: Faces, params: dict[str, str], named: str
) -> None:
    """Each bad parameter is a 400 InvalidParameter in OCI's shape whose message starts with its name."""
    with faces.http() as http:
        response = http.get("/20181201/auditEvents", params={"compartmentId": COMPARTMENT, **params})
    status, code, message = oci_error(response)
    assert (status, code) == (400, "InvalidParameter") and message.startswith(named)


def test_a_page_token_of_another_query_is_refused(faces: Faces) -> None:
    """A real token used with another sort is a 400 naming page, not a page of the wrong query."""
    client = faces.datasafe()
    token = client.list_audit_events(COMPARTMENT, limit=1).next_page
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        client.list_audit_events(COMPARTMENT, limit=1, page=token, sort_order="DESC")
    assert refused.value.status == 400 and refused.value.message.startswith("page: this token belongs")


def test_a_compartment_of_another_app_and_a_missing_key_are_refused_in_ocis_shape(faces: Faces) -> None:
    """Another app's compartment is 404 NotAuthorizedOrNotFound; no key is 401 NotAuthenticated."""
    with faces.http(faces.siem) as http:
        other = http.get("/20181201/auditEvents", params={"compartmentId": COMPARTMENT})
    with httpx.Client(base_url=faces.server.url) as anonymous:
        unauthenticated = anonymous.get("/20181201/auditEvents", params={"compartmentId": COMPARTMENT})
    with faces.http() as http:
        missing = http.get("/20181201/auditEvents")
    assert oci_error(other)[:2] == (404, "NotAuthorizedOrNotFound")
    assert oci_error(unauthenticated)[:2] == (401, "NotAuthenticated")
    assert oci_error(missing)[:2] == (400, "InvalidParameter") and oci_error(missing)[2].startswith(
        "compartmentId: required"
    )


def test_listing_is_recorded_as_a_read(faces: Faces) -> None:
    """A listing through the face is recorded in trailvault.reads as events.list, as on /v1."""
    faces.datasafe().list_audit_events(COMPARTMENT, scim_query='dbUserName eq "recorded"')
    with trailvault.open_vault(faces.server.vault, app="dbsec", create=False) as dbsec:
        reads = dbsec.events("trailvault.reads", sort_order="desc", limit=20)
    requests = [
        json.loads(read.body["request"]) for read in reads if read.body and read.body["action"] == "events.list"
    ]
    assert {"channel": "datasafe", "filter": 'dbUserName eq "recorded"'} in requests


def test_paths_and_methods_no_route_serves_are_answered_in_the_faces_shape(faces: Faces) -> None:
    """An OCI operation trailvault lacks is 404 and a wrong method 405, in OCI's shape; /v1 keeps its own."""
    with faces.http() as http:
        missing = http.get("/20181201/auditTrails", params={"compartmentId": COMPARTMENT})
        wrong = http.get(f"/oci/20200831/logs/{LOG}/actions/push")
        v1 = http.get("/v1/nowhere")
    assert oci_error(missing)[:2] == (404, "NotAuthorizedOrNotFound")
    assert oci_error(wrong)[:2] == (405, "MethodNotAllowed")
    assert v1.status_code == 404 and v1.json()["error"]["code"] == "not_found"


# -- PutLogs -------------------------------------------------------------------------------------


def put_logs_details(entries: list[dict[str, Any]], **batch: Any) -> oci.loggingingestion.models.PutLogsDetails:
    models = oci.loggingingestion.models
    return models.PutLogsDetails(
        specversion="1.0",
        log_entry_batches=[
            models.LogEntryBatch(
                entries=[models.LogEntry(**entry) for entry in entries],
                source=batch.get("source", "DataSafe"),
                type=batch.get("type", "DataSafeLogs"),
                subject=batch.get("subject"),
                defaultlogentrytime=batch.get("defaultlogentrytime", datetime(2023, 1, 16, 12, 21, 35, 523000, UTC)),
            )
        ],
    )


def log_events(faces: Faces) -> dict[str, Any]:
    with faces.http(faces.siem) as http:
        listed = http.get("/v1/events", params={"channel": "datasafe-log", "limit": 1000}).json()["items"]
    return {event["id"]: event for event in listed}


def test_put_logs_stores_each_entry_once_with_its_id_and_time(faces: Faces) -> None:
    """put_logs answers 200 with no body; each entry is an event (its id, its time or the batch's), once."""
    entries = [
        {"data": "test", "id": "put-1", "time": datetime(2023, 1, 16, 12, 0, 0, 1000, UTC)},
        {"data": '{"k": 1}', "id": "put-2"},
    ]
    details = put_logs_details(entries, subject="TestDataSafeLogs")
    client = faces.logging()
    answered = client.put_logs(LOG, details, opc_request_id="PUT-1", opc_agent_version="")
    client.put_logs(LOG, details)  # the same entries again
    assert answered.status == 200 and answered.data is None and answered.headers["opc-request-id"] == "PUT-1"
    stored = log_events(faces)
    assert stored["put-1"]["time"] == "2023-01-16T12:00:00.001000Z"
    assert stored["put-2"]["time"] == "2023-01-16T12:21:35.523000Z"
    assert stored["put-1"]["body"] == {
        "data": "test", "source": "DataSafe", "type": "DataSafeLogs", "subject": "TestDataSafeLogs"
    }  # fmt: skip
    assert sum(1 for event_id in stored if event_id.startswith("put-")) == 2


def test_put_logs_opens_the_log_channel_with_the_log_entry_schema(faces: Faces) -> None:
    """The log's channel exists after the first push, with data, source, type and subject."""
    faces.logging().put_logs(LOG, put_logs_details([{"data": "x", "id": "schema-1"}]))
    with faces.http(faces.siem) as http:
        fields = http.get("/v1/channels/datasafe-log").json()["schema"]["fields"]
    assert [(item["name"], item["mode"]) for item in fields] == [
        ("data", "REQUIRED"), ("source", "REQUIRED"), ("type", "REQUIRED"), ("subject", "NULLABLE")
    ]  # fmt: skip


def test_put_logs_to_an_unmapped_log_is_not_authorized_or_not_found(faces: Faces) -> None:
    """A logId the config maps to no channel raises ServiceError 404 NotAuthorizedOrNotFound naming logId."""
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        faces.logging().put_logs(UNMAPPED_LOG, put_logs_details([{"data": "x", "id": "nowhere-1"}]))
    assert refused.value.status == 404 and refused.value.code == "NotAuthorizedOrNotFound"
    assert refused.value.message.startswith("logId:") and "[oci] logs" in refused.value.message


def test_put_logs_with_another_apps_key_is_not_authorized_or_not_found(faces: Faces) -> None:
    """A key of another app than the log's is answered as if the log did not exist."""
    with faces.http(faces.server.key("ingest", app="dbsec")) as http:
        response = http.post(f"/20200831/logs/{LOG}/actions/push", json={"specversion": "1.0", "logEntryBatches": []})
    assert oci_error(response)[:2] == (404, "NotAuthorizedOrNotFound")


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"logEntryBatches": []}, "specversion: required"),
        ({"specversion": "2.0", "logEntryBatches": []}, 'specversion: use "1.0"'),
        ({"specversion": "1.0"}, "logEntryBatches: required"),
        (
            {"specversion": "1.0", "logEntryBatches": [{"entries": [], "source": "s", "type": "t"}]},
            "logEntryBatches[0].defaultlogentrytime: required",
        ),
        (
            {"specversion": "1.0", "logEntryBatches": [
                {"entries": [{"id": "1"}], "source": "s", "type": "t", "defaultlogentrytime": "2023-01-16T12:21:35Z"}
            ]},
            "logEntryBatches[0].entries[0].data: required",
        ),
    ],
)  # fmt: skip
def test_put_logs_refuses_what_oci_requires_naming_the_field(
    faces: Faces, document: dict[str, Any], named: str
) -> None:
    """A PutLogsDetails without a field OCI requires is a 400 InvalidParameter naming it."""
    with faces.http(faces.siem) as http:
        response = http.post(f"/20200831/logs/{LOG}/actions/push", json=document)
    status, code, message = oci_error(response)
    assert (status, code) == (400, "InvalidParameter") and message.startswith(named)


def test_an_entry_over_one_megabyte_stores_nothing_of_the_request(faces: Faces) -> None:
    """An entry whose data is over 1 MB is a 400 naming it, and the valid entry beside it is not stored."""
    faces.logging().put_logs(LOG, put_logs_details([{"data": "before", "id": "big-0"}]))  # the channel exists
    entries = [{"data": "fine", "id": "big-1"}, {"data": "x" * 1_000_001, "id": "big-2"}]
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        faces.logging().put_logs(LOG, put_logs_details(entries))
    assert refused.value.status == 400 and refused.value.code == "InvalidParameter"
    assert refused.value.message.startswith("logEntryBatches[0].entries[1].data: 1,000,001 bytes")
    assert "big-1" not in log_events(faces)


def test_an_entry_the_vault_refuses_stores_nothing_and_names_its_place(faces: Faces) -> None:
    """An entry time without an offset is refused by the vault; the answer names its place, nothing is stored."""
    document = {
        "specversion": "1.0",
        "logEntryBatches": [
            {
                "entries": [
                    {"data": "a", "id": "zone-1"},
                    {"data": "b", "id": "zone-2", "time": "2023-01-16T12:00:00"},
                ],
                "source": "s",
                "type": "t",
                "defaultlogentrytime": "2023-01-16T12:21:35Z",
            }
        ],
    }
    with faces.http(faces.siem) as http:
        response = http.post(f"/20200831/logs/{LOG}/actions/push", json=document)
    status, code, message = oci_error(response)
    assert (status, code) == (400, "InvalidParameter") and "logEntryBatches[0].entries[1]: " in message
    assert "zone-1" not in log_events(faces)


def test_malformed_json_is_cannot_parse_request(faces: Faces) -> None:
    """A body that is not JSON is OCI's 400 CannotParseRequest."""
    with faces.http(faces.siem) as http:
        response = http.post(
            f"/20200831/logs/{LOG}/actions/push", content=b"{", headers={"content-type": "application/json"}
        )
    assert oci_error(response)[:2] == (400, "CannotParseRequest")


# -- the blog's flow -------------------------------------------------------------------------------


def test_the_blog_flow_lists_newest_events_and_ships_them_with_put_logs(faces: Faces) -> None:
    """List the newest events of one app with the SDK, push them into another app's log, read them back."""
    listed = faces.datasafe().list_audit_events(COMPARTMENT, limit=3, sort_order="DESC", sort_by="auditEventTime")
    newest = listed.data.items
    models = oci.loggingingestion.models
    details = models.PutLogsDetails(
        specversion="1.0",
        log_entry_batches=[
            models.LogEntryBatch(
                entries=[
                    models.LogEntry(
                        data=json.dumps(oci.util.to_dict(item), separators=(",", ":"), default=str),
                        id=item.id,
                        time=item.audit_event_time,
                    )
                    for item in newest
                ],
                source="DataSafe",
                type="DataSafeLogs",
                subject="TestDataSafeLogs",
                defaultlogentrytime=newest[0].audit_event_time,
            )
        ],
    )
    faces.logging().put_logs(LOG, details)
    stored = log_events(faces)
    assert [item.id for item in newest] == faces.ids[:-4:-1]
    for item in newest:
        event = stored[item.id]
        assert datetime.fromisoformat(event["time"]) == item.audit_event_time
        assert json.loads(event["body"]["data"])["db_user_name"] == item.db_user_name


def test_the_face_lists_and_pushes_on_postgresql(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paging a body-field sort, a filter and an all-or-nothing PutLogs work with PostgreSQL behind the server."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with started_faces(postgres_url, tmp_path) as on_postgres:
        client = on_postgres.datasafe()
        everything = oci.pagination.list_call_get_all_results(
            client.list_audit_events, COMPARTMENT, limit=2, sort_by="dbUserName", sort_order="DESC"
        ).data
        logons = client.list_audit_events(COMPARTMENT, scim_query='operation eq "logon"').data.items
        entries = [{"data": "fine", "id": "pg-1"}, {"data": "late", "id": "pg-2", "time": "2023-01-16T12:00:00"}]
        with on_postgres.http(on_postgres.siem) as http:
            refused = http.post(f"/20200831/logs/{LOG}/actions/push", json=raw_details(entries))
            entries[1]["time"] = "2023-01-16T12:00:00Z"
            accepted = http.post(f"/20200831/logs/{LOG}/actions/push", json=raw_details(entries))
        stored = log_events(on_postgres)
    names = [item.db_user_name for item in everything]
    assert names == sorted(names, reverse=True) and sorted(item.id for item in everything) == on_postgres.ids
    assert [item.id for item in logons] == on_postgres.ids[1::2]
    assert refused.status_code == 400 and accepted.status_code == 200 and sorted(stored) == ["pg-1", "pg-2"]


def raw_details(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A PutLogsDetails as JSON, one batch of ``entries``."""
    batch = {"entries": entries, "source": "s", "type": "t", "defaultlogentrytime": "2023-01-16T12:21:35Z"}
    return {"specversion": "1.0", "logEntryBatches": [batch]}


def test_the_oci_section_of_the_config_file_is_checked(tmp_path: Path) -> None:
    """An unknown [oci] key, a prefix inside /v1 and a log mapped to an app without a channel are refused."""
    from trailvault.edges.config import load_settings
    from trailvault.edges.faces import configured_faces
    from trailvault.errors import InvalidInput

    bad_key = tmp_path / "key.toml"
    bad_key.write_text('[oci]\nprefixe = "/oci"\n')
    with pytest.raises(InvalidInput, match=r"oci.prefixe: unknown key"):
        load_settings(config=bad_key, env={})
    inside_v1 = tmp_path / "prefix.toml"
    inside_v1.write_text('[oci]\nprefix = "/v1/oci"\n')
    with pytest.raises(InvalidInput, match=r"oci.prefix: '/v1/oci' is not a path of its own"):
        configured_faces(load_settings(config=inside_v1, env={}))
    bad_log = tmp_path / "log.toml"
    bad_log.write_text('[oci]\nlogs = { "ocid1.log.oc1..x" = "siem" }\n')
    with pytest.raises(InvalidInput, match=r"oci.logs.ocid1.log.oc1..x: 'siem' is not app/channel"):
        configured_faces(load_settings(config=bad_log, env={}))


def test_a_client_signing_with_an_unregistered_key_gets_not_authenticated(faces: Faces, tmp_path: Path) -> None:
    """The real SDK signing with a key pair registered on no trailvault key gets 401 NotAuthenticated in OCI's
    shape, naming the fingerprint's absence and not the signature."""
    oci_identity(tmp_path, "stranger")
    config = oci.config.from_file(str(oci_config_file(tmp_path, "stranger")))
    client = oci.data_safe.DataSafeClient(config, service_endpoint=faces.server.url, retry_strategy=NO_RETRY)
    faces.clients.append(client)
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        client.list_audit_events(COMPARTMENT)
    assert refused.value.status == 401 and refused.value.code == "NotAuthenticated"
    assert "signature=" not in refused.value.message.lower()
