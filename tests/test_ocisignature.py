"""OCI request signatures (:mod:`trailvault.core.ocisignature`), checked in-process against the real ``oci`` signer."""

from __future__ import annotations

import base64
import email.utils
import time
from typing import Any

import oci
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trailvault.core.ocisignature import (
    SignedRequest,
    key_fingerprint,
    parse_authorization,
    verify_request,
)
from trailvault.errors import InvalidInput, SignatureRefused

_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
URL = "http://127.0.0.1:8080/v1/events?limit=5&filter=type%20eq%20%22INFO%22"


def public_pem(private: rsa.RSAPrivateKey) -> str:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def private_pem(private: rsa.RSAPrivateKey) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def signed(method: str, url: str = URL, body: bytes | None = None, **headers: str) -> SignedRequest:
    """A request prepared by ``requests`` and signed by the ``oci`` SDK's Signer, as the server receives it."""
    signer = oci.signer.Signer(
        "ocid1.tenancy.oc1..t", "ocid1.user.oc1..u", key_fingerprint(public_pem(_PRIVATE)), None,
        private_key_content=private_pem(_PRIVATE),
    )  # fmt: skip
    prepared = requests.Request(method, url, data=body, headers=headers).prepare()
    signer(prepared)
    sent = {name.lower(): str(value) for name, value in prepared.headers.items()}
    return SignedRequest(method, prepared.path_url, sent, body or b"")


def verify(request: SignedRequest, public: str | None = None, now_us: int | None = None) -> None:
    parsed = parse_authorization(request.headers["authorization"])
    verify_request(parsed, public or public_pem(_PRIVATE), request, now_us or time.time_ns() // 1000)


def changed(request: SignedRequest, **changes: Any) -> SignedRequest:
    headers = dict(request.headers)
    headers.update(changes.pop("headers", {}))
    return SignedRequest(
        changes.get("method", request.method), changes.get("target", request.target), headers,
        changes.get("body", request.body),
    )  # fmt: skip


def test_fingerprint_is_what_oci_shows() -> None:
    """The fingerprint is the MD5 of the DER public key, colon-separated, as ``oci setup keys`` prints it."""
    import hashlib

    der = _PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = ":".join(f"{byte:02x}" for byte in hashlib.md5(der).digest())
    assert key_fingerprint(public_pem(_PRIVATE)) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not a key", "not a PEM public key"),
        (private_pem(_PRIVATE), "not a PEM public key"),
        (
            ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            "not an RSA key",
        ),
        (public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "has 1024 bits"),
    ],
)
def test_a_public_key_that_is_not_usable_is_refused_naming_the_field(text: str, says: str) -> None:
    """Text that is no PEM public key, a non-RSA key and a small RSA key are each refused naming oci_public_key."""
    with pytest.raises(InvalidInput, match=says) as refused:
        key_fingerprint(text)
    assert refused.value.field == "oci_public_key"


def test_get_and_post_signed_by_the_sdk_verify() -> None:
    """A GET (query kept as sent) and a POST with a JSON body, both signed by oci's Signer, verify."""
    verify(signed("GET"))
    verify(signed("POST", "http://127.0.0.1:8080/v1/channels/access/events", b'{"type": "INFO"}'))
    verify(signed("POST", "http://127.0.0.1:8080/v1/keys", b""))


def test_a_signature_by_another_key_is_refused() -> None:
    """The signature checked against another public key does not verify."""
    with pytest.raises(SignatureRefused, match="does not match the request"):
        verify(signed("GET"), public=public_pem(_OTHER))


def test_a_changed_target_or_host_is_refused() -> None:
    """Changing the path, the query or the host after signing breaks the signature."""
    request = signed("GET")
    for bad in (
        changed(request, target="/v1/events?limit=6&filter=type%20eq%20%22INFO%22"),
        changed(request, method="DELETE"),
        changed(request, headers={"host": "127.0.0.1:9090"}),
    ):
        with pytest.raises(SignatureRefused):
            verify(bad)


def test_a_date_over_five_minutes_away_is_refused_either_way() -> None:
    """A date more than 5 minutes before or after the server's clock is refused; 4 minutes is accepted."""
    request = signed("GET")
    sent = email.utils.parsedate_to_datetime(request.headers["date"]).timestamp()
    verify(request, now_us=int((sent + 240) * 1e6))
    for offset in (-301, 301):
        with pytest.raises(SignatureRefused, match=r"date: .* over 5 minutes"):
            verify(request, now_us=int((sent + offset) * 1e6))


def test_a_body_changed_after_signing_is_refused() -> None:
    """A body other than the one whose digest was signed is refused by its digest, before its signature."""
    request = signed("POST", "http://127.0.0.1:8080/v1/keys", b'{"name": "a"}')
    with pytest.raises(SignatureRefused, match="x-content-sha256: does not match"):
        verify(changed(request, body=b'{"name": "b"}'))
    with pytest.raises(SignatureRefused, match="content-length"):
        verify(changed(request, body=b'{"name": "ab"}'))


def test_a_signed_digest_that_does_not_match_the_body_is_refused() -> None:
    """A client that signs a wrong x-content-sha256 is refused: the header must match the body received."""
    wrong = base64.b64encode(b"\0" * 32).decode()
    request = signed("POST", "http://127.0.0.1:8080/v1/keys", b"{}", **{"x-content-sha256": wrong})
    with pytest.raises(SignatureRefused, match="x-content-sha256"):
        verify(request)


def test_a_signature_not_covering_the_body_headers_is_refused() -> None:
    """A POST signed without content-length, content-type and x-content-sha256 is refused, naming them."""
    signer = oci.signer.Signer(
        "t", "u", key_fingerprint(public_pem(_PRIVATE)), None, private_key_content=private_pem(_PRIVATE)
    )
    prepared = requests.Request("POST", URL, data=b"{}").prepare()
    signer.without_content_headers(prepared)
    sent = {name.lower(): str(value) for name, value in prepared.headers.items()}
    with pytest.raises(SignatureRefused, match="does not cover content-length, content-type, x-content-sha256"):
        verify(SignedRequest("POST", prepared.path_url, sent, b"{}"))


def test_a_signed_header_the_request_lacks_is_refused() -> None:
    """A header named in the signature but absent from the request is refused, naming it."""
    request = signed("GET")
    headers = {name: value for name, value in request.headers.items() if name != "date"}
    with pytest.raises(SignatureRefused, match="lacks the signed header date"):
        verify(SignedRequest("GET", request.target, headers))


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("Bearer tv_x", "not an OCI signature"),
        ('Signature keyId="a/b/c",headers="date",signature="AA=="', "keyId is not"),
        ('Signature keyId="a/b/' + ":".join(["00"] * 16) + '",headers="date"', "lacks its signature"),
        ('Signature keyId="a",keyId="b",headers="date",signature="AA=="', "given twice"),
        ('Signature algorithm="hmac-sha256",keyId="x",headers="date",signature="AA=="', "rsa-sha256"),
        ('Signature keyId="a/b/' + ":".join(["00"] * 16) + '",headers="date",signature="!!"', "not base64"),
        ("Signature keyId=a", 'not name="value" pairs'),
        ('Signature nonce="1",keyId="x",headers="date",signature="AA=="', "unknown signature parameter"),
    ],
)
def test_a_malformed_authorization_header_is_refused(header: str, says: str) -> None:
    """Each malformed Signature header is refused, naming what is wrong and never repeating the header."""
    with pytest.raises(SignatureRefused, match=says) as refused:
        parse_authorization(header)
    assert "AA==" not in refused.value.message


def test_a_parsed_signature_is_not_shown_in_its_repr() -> None:
    """The parsed signature's repr (what a traceback or log shows) holds no signature bytes."""
    parsed = parse_authorization(signed("GET").headers["authorization"])
    assert base64.b64encode(parsed.signature).decode() not in repr(parsed)
