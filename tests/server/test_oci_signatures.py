"""OCI request signatures against a real ``trailvault serve``: requests signed by the real ``oci`` SDK signer.

Each test makes its key pair and OCI config file, registers the public key on a
trailvault API key over HTTP (``POST /v1/keys`` with ``oci_public_key``), and signs with
``oci.signer.Signer.from_config`` applied to a ``requests`` request, as the SDK does.
"""

from __future__ import annotations

import base64
import email.utils
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import oci
import pytest
import requests

import trailvault
from tests.conftest import ACCESS, access_event
from tests.server.conftest import Server, oci_config_file, oci_identity


@dataclass
class OciIdentity:
    """A key pair with its OCI config file, and the trailvault key its public key is registered on."""

    signer: oci.signer.Signer
    public_pem: str
    fingerprint: str
    key: dict[str, Any]


@pytest.fixture
def identity(server: Server, tmp_path: Path) -> OciIdentity:
    """A read and ingest key of app ``default`` with a registered OCI public key."""
    signer, public_pem = oci_identity(tmp_path, "reader")
    with server.admin() as admin:
        created = admin.post(
            "/v1/keys", json={"name": "oci reader", "scopes": ["read", "ingest"], "oci_public_key": public_pem}
        )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    return OciIdentity(signer, public_pem, key["oci_fingerprint"], key)


def _send(server: Server, method: str, path: str, signer: Any = None, **options: Any) -> requests.Response:
    return requests.request(method, server.url + path, auth=signer, timeout=30, **options)


def _stored(server: Server, message: str) -> int:
    """How many events of app default's channel access carry ``message``."""
    with server.admin() as admin:
        found = admin.get("/v1/events", params={"channel": "access", "filter": f'message eq "{message}"'})
    return len(found.json()["items"])


def _refused(response: requests.Response, server: Server, *secrets: str) -> str:
    """Assert a 401 in trailvault's error body that repeats no secret, here or in the server log; return its message."""
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    sent = response.request.headers.get("authorization", "")
    signature = sent.rpartition('signature="')[2].partition('"')[0]
    log = server.log.read_text()
    for secret in (sent, signature, *secrets):
        if secret:
            assert secret not in response.text
            assert secret not in log
    return str(error["message"])


def test_a_signed_get_acts_as_the_key(server: Server, identity: OciIdentity) -> None:
    """A GET signed by the oci SDK is answered as the registered key: its id, app and scopes, its read recorded."""
    current = _send(server, "GET", "/v1/keys/current", identity.signer)
    assert current.status_code == 200, current.text
    assert current.json()["id"] == identity.key["id"]
    assert current.json()["app"] == "default"
    assert current.json()["oci_fingerprint"] == identity.fingerprint
    listed = _send(server, "GET", "/v1/events?limit=2&channel=access", identity.signer)
    assert listed.status_code == 200, listed.text
    assert _send(server, "GET", "/v1/keys", identity.signer).status_code == 403  # no admin scope
    with server.admin() as admin:
        reads = admin.get(
            "/v1/events",
            params={"channel": "trailvault.reads", "filter": f'key_id eq "{identity.key["id"]}"'},
        ).json()["items"]
    assert any(read["body"]["action"] == "events.list" for read in reads)


def test_a_signed_post_stores_the_event_in_the_keys_app(server: Server, tmp_path: Path) -> None:
    """A POST with a JSON body signed by the oci SDK posts as the key, in the key's own app."""
    signer, public_pem = oci_identity(tmp_path, "billing")
    with trailvault.open_vault(server.vault, app="billing") as vault:
        vault.open("access", ACCESS)
        key, _ = vault.create_key("billing producer", ["ingest", "read"], oci_public_key=public_pem)
    event = access_event(1)
    posted = _send(server, "POST", "/v1/channels/access/events", signer, json=event)
    assert posted.status_code == 201, posted.text
    current = _send(server, "GET", "/v1/keys/current", signer).json()
    assert (current["id"], current["app"]) == (key.id, "billing")
    found = _send(server, "GET", f"/v1/events/{posted.json()['id']}", signer)
    assert found.status_code == 200 and found.json()["body"]["message"] == event["message"]
    with server.admin() as admin:  # app default does not see billing's event
        assert admin.get(f"/v1/events/{posted.json()['id']}").status_code == 404


def test_the_sdks_own_client_signs_requests_trailvault_accepts(server: Server, tmp_path: Path) -> None:
    """oci's BaseClient (what every SDK service client is), configured from its file, GETs and POSTs as the key."""
    _, public_pem = oci_identity(tmp_path, "sdk")
    with server.admin() as admin:
        created = admin.post("/v1/keys", json={"name": "sdk", "scopes": ["ingest"], "oci_public_key": public_pem})
    config = oci.config.from_file(str(oci_config_file(tmp_path, "sdk")))
    client = oci.base_client.BaseClient(
        "trailvault", config, oci.signer.Signer.from_config(config), {}, service_endpoint=server.url, base_path=""
    )
    current = client.call_api(resource_path="/v1/keys/current", method="GET", response_type="object")
    assert current.data["id"] == created.json()["key"]["id"]
    posted = client.call_api(
        resource_path="/v1/channels/{channel}/events", method="POST", path_params={"channel": "access"},
        header_params={"content-type": "application/json"}, body=access_event(4, message="by the sdk"),
        response_type="object",
    )  # fmt: skip
    assert posted.status == 201 and _stored(server, "by the sdk") == 1
    with pytest.raises(oci.exceptions.ServiceError) as refused:  # ingest only: listing is 403
        client.call_api(resource_path="/v1/events", method="GET", response_type="object")
    assert refused.value.status == 403


def test_an_unsigned_request_is_401(server: Server) -> None:
    """A request with neither a token nor a signature is refused 401."""
    _refused(_send(server, "GET", "/v1/events"), server)


def test_a_wrong_signature_is_401(server: Server, identity: OciIdentity) -> None:
    """A signature altered after signing is refused 401, repeating neither it nor the header."""
    prepared = requests.Request("GET", server.url + "/v1/events").prepare()
    identity.signer(prepared)
    header = prepared.headers["authorization"]
    signature = header.rpartition('signature="')[2].partition('"')[0]
    forged = base64.b64encode(bytes(byte ^ 1 for byte in base64.b64decode(signature))).decode()
    prepared.headers["authorization"] = header.replace(signature, forged)
    with requests.Session() as session:
        response = session.send(prepared, timeout=30)
    assert "does not match" in _refused(response, server, signature)


def test_a_signature_by_an_unregistered_key_is_401(server: Server, tmp_path: Path) -> None:
    """A valid signature by a key pair no API key has registered is refused 401, telling how to register it."""
    signer, _ = oci_identity(tmp_path, "stranger")
    message = _refused(_send(server, "GET", "/v1/events", signer), server)
    assert "--oci-public-key" in message


def test_a_revoked_keys_signature_is_401(server: Server, identity: OciIdentity) -> None:
    """After its key is revoked, the key pair's signatures are refused at once."""
    assert _send(server, "GET", "/v1/events", identity.signer).status_code == 200
    with server.admin() as admin:
        assert admin.delete(f"/v1/keys/{identity.key['id']}").status_code == 200
    assert "revoked" in _refused(_send(server, "GET", "/v1/events", identity.signer), server)


def test_an_expired_date_is_401(server: Server, identity: OciIdentity) -> None:
    """A request signed with a date over 5 minutes old is refused 401 naming the date."""
    stale = email.utils.formatdate(time.time() - 6 * 60, usegmt=True)
    message = _refused(_send(server, "GET", "/v1/events", identity.signer, headers={"date": stale}), server)
    assert message.startswith("date:")


def test_a_body_whose_digest_does_not_match_is_401(server: Server, identity: OciIdentity) -> None:
    """A POST whose signed x-content-sha256 is not the body's SHA-256 is refused 401, nothing stored."""
    wrong = base64.b64encode(b"\0" * 32).decode()
    event = access_event(2, message="digest mismatch")
    response = _send(
        server, "POST", "/v1/channels/access/events", identity.signer, json=event, headers={"x-content-sha256": wrong}
    )
    assert _refused(response, server).startswith("x-content-sha256:")
    assert _stored(server, "digest mismatch") == 0


def test_a_body_changed_after_signing_is_401(server: Server, identity: OciIdentity) -> None:
    """A body replaced after signing (same length) is refused 401 by its digest, nothing stored."""
    event = access_event(3, message="changed after signing")
    prepared = requests.Request("POST", server.url + "/v1/channels/access/events", json=event).prepare()
    identity.signer(prepared)
    assert isinstance(prepared.body, bytes)
    prepared.body = prepared.body.replace(b"changed after", b"changed afte_")
    with requests.Session() as session:
        response = session.send(prepared, timeout=30)
    assert _refused(response, server).startswith("x-content-sha256:")
    assert _stored(server, "changed afte_ signing") == _stored(server, "changed after signing") == 0


def test_a_missing_signed_header_is_401(server: Server, identity: OciIdentity) -> None:
    """A request without a header its signature covers (date) is refused 401 naming it."""
    prepared = requests.Request("GET", server.url + "/v1/events").prepare()
    identity.signer(prepared)
    del prepared.headers["date"]
    with requests.Session() as session:
        response = session.send(prepared, timeout=30)
    assert "signed header date" in _refused(response, server)


def test_a_signed_body_over_the_request_limit_is_413(server: Server, identity: OciIdentity) -> None:
    """Reading the body to check its digest keeps max_request_bytes: an oversized signed post is 413."""
    big = [access_event(index, message="x" * 1000) for index in range(1200)]
    response = _send(server, "POST", "/v1/channels/access/events", identity.signer, json=big)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["field"] == "body"


def test_the_remote_client_registers_a_public_key(server: Server, tmp_path: Path) -> None:
    """RemoteVault.create_key(oci_public_key=...) registers the key as the local Vault does; its signatures work."""
    signer, public_pem = oci_identity(tmp_path, "remote")
    with trailvault.connect(server.url, token=server.admin_token) as remote:
        key, _ = remote.create_key("remote oci", ["read"], oci_public_key=public_pem)
    assert key.oci_fingerprint is not None
    assert _send(server, "GET", "/v1/keys/current", signer).json()["id"] == key.id


def test_registering_a_public_key_twice_or_a_bad_one_is_refused(server: Server, identity: OciIdentity) -> None:
    """POST /v1/keys refuses a public key another key has (409) and text that is no RSA key (400), naming it."""
    with server.admin() as admin:
        again = admin.post("/v1/keys", json={"name": "twin", "scopes": ["read"], "oci_public_key": identity.public_pem})
        bad = admin.post("/v1/keys", json={"name": "bad", "scopes": ["read"], "oci_public_key": "-----BEGIN nothing"})
        names = [key["name"] for key in admin.get("/v1/keys").json()["keys"]]
    assert again.status_code == 409 and again.json()["error"]["field"] == "oci_public_key"
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "oci_public_key"
    assert "twin" not in names and "bad" not in names
