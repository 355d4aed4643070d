"""OCI request signatures: HTTP Signatures (draft-cavage) as the ``oci`` SDK and CLI sign requests (no I/O).

An OCI client sends::

    Authorization: Signature version="1",keyId="<tenancy>/<user>/<fingerprint>",algorithm="rsa-sha256",
        headers="date (request-target) host[ content-length content-type x-content-sha256]",signature="<base64>"

The signature is RSA PKCS#1 v1.5 over SHA-256 of the *signing string*: one line
``name: value`` per signed header, in the order of ``headers``, joined by newlines,
where ``(request-target)`` is ``<method in lower case> <path?query as sent>``. A
request with a body (POST, PUT, PATCH) also signs ``content-length``, ``content-type``
and ``x-content-sha256`` (the base64 SHA-256 of the body). The ``fingerprint`` names the
public key: the MD5 of its DER SubjectPublicKeyInfo as colon-separated hex, what
``oci setup keys`` prints and the OCI console shows.

:func:`key_fingerprint` checks a public key when it is registered; :func:`parse_authorization`
reads the header; :func:`verify_request` checks everything but which key the
fingerprint belongs to (the caller looks that up between the two). Every refusal is
:class:`~trailvault.errors.SignatureRefused` (401), whose message names what is wrong
and never repeats the signature or the header.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from trailvault.errors import InvalidInput, SignatureRefused

__all__ = [
    "MAX_CLOCK_SKEW_US",
    "MIN_KEY_BITS",
    "ParsedSignature",
    "SignedRequest",
    "key_fingerprint",
    "parse_authorization",
    "signing_string",
    "verify_request",
]

#: How far a signed request's ``date`` may be from the server's clock, either way.
MAX_CLOCK_SKEW_US = 5 * 60 * 1_000_000
#: The smallest RSA key accepted (what OCI itself requires).
MIN_KEY_BITS = 2048
#: Headers every signature must cover, and those a request with a body must cover too.
BASE_HEADERS = ("date", "(request-target)", "host")
BODY_HEADERS = ("content-length", "content-type", "x-content-sha256")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

_PARAMETER = re.compile(r'\s*([A-Za-z]+)="([^"]*)"\s*(?:,|$)')
_FINGERPRINT = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){15}")
_KNOWN = frozenset({"version", "keyId", "algorithm", "headers", "signature"})
_FIELD = "oci_public_key"


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    """What an ``Authorization: Signature ...`` header says: who signed, which headers, the signature bytes."""

    key_id: str
    fingerprint: str
    headers: tuple[str, ...]
    signature: bytes

    def __repr__(self) -> str:  # the signature stays out of logs and tracebacks
        return f"ParsedSignature(key_id={self.key_id!r}, headers={self.headers!r})"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The parts of a received request a signature covers.

    ``target`` is the path and query exactly as sent (``/v1/events?limit=5``);
    ``headers`` maps lower-case names to values; ``body`` is the body received (b"" for none).
    """

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = b""


def key_fingerprint(public_key_pem: str | bytes) -> str:
    """Return the OCI fingerprint of an RSA public key in PEM; raise InvalidInput naming ``oci_public_key``.

    Refused: text that is not a PEM public key, a key that is not RSA, and one under
    :data:`MIN_KEY_BITS` bits.
    """
    data = public_key_pem.encode() if isinstance(public_key_pem, str) else bytes(public_key_pem)
    try:
        key = serialization.load_pem_public_key(data.strip())
    except (ValueError, TypeError):
        raise InvalidInput(
            f"{_FIELD}: not a PEM public key (-----BEGIN PUBLIC KEY-----); give the public half of the "
            "key pair the OCI client signs with, as `openssl rsa -pubout` or `oci setup keys` writes it",
            field=_FIELD,
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidInput(f"{_FIELD}: not an RSA key; OCI signs with RSA (rsa-sha256) keys", field=_FIELD)
    if key.key_size < MIN_KEY_BITS:
        raise InvalidInput(
            f"{_FIELD}: the RSA key has {key.key_size} bits; use one of at least {MIN_KEY_BITS}", field=_FIELD
        )
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()
    return ":".join(digest[index : index + 2] for index in range(0, len(digest), 2))


def parse_authorization(header: str) -> ParsedSignature:
    """Read an ``Authorization: Signature ...`` header strictly; raise SignatureRefused naming what is wrong.

    Parameters are ``name="value"`` pairs separated by commas, in any order, each once;
    ``keyId``, ``headers`` and ``signature`` are required, ``algorithm`` must be
    ``rsa-sha256`` and ``version`` ``1`` when given.
    """
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "signature":
        raise SignatureRefused("authorization: not an OCI signature (Authorization: Signature keyId=...)")
    parameters: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAMETER.match(rest, position)
        if match is None or match.end() == position:
            raise SignatureRefused('authorization: the signature\'s parameters are not name="value" pairs')
        name, value = match.group(1), match.group(2)
        if name not in _KNOWN:
            raise SignatureRefused(f"authorization: unknown signature parameter {name[:20]!r}")
        if name in parameters:
            raise SignatureRefused(f"authorization: signature parameter {name} is given twice")
        parameters[name] = value
        position = match.end()
    for required in ("keyId", "headers", "signature"):
        if not parameters.get(required):
            raise SignatureRefused(f"authorization: the signature lacks its {required}")
    if parameters.get("algorithm", "rsa-sha256").lower() != "rsa-sha256":
        raise SignatureRefused("authorization: only the rsa-sha256 algorithm is accepted")
    if parameters.get("version", "1") != "1":
        raise SignatureRefused("authorization: only signature version 1 is accepted")
    parts = parameters["keyId"].split("/")
    if len(parts) != 3 or not all(parts) or not _FINGERPRINT.fullmatch(parts[2]):
        raise SignatureRefused("authorization: keyId is not <tenancy>/<user>/<fingerprint> (aa:bb:...)")
    try:
        signature = base64.b64decode(parameters["signature"], validate=True)
    except binascii.Error:
        raise SignatureRefused("authorization: the signature is not base64") from None
    headers = tuple(parameters["headers"].lower().split())
    return ParsedSignature(parameters["keyId"], parts[2], headers, signature)


def signing_string(signed: tuple[str, ...], request: SignedRequest) -> bytes:
    """Rebuild the string the client signed; raise SignatureRefused naming a signed header the request lacks."""
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {request.target}")
            continue
        value = request.headers.get(name)
        if value is None:
            raise SignatureRefused(f"authorization: the request lacks the signed header {name[:40]}")
        lines.append(f"{name}: {value}")
    return "\n".join(lines).encode()


def verify_request(parsed: ParsedSignature, public_key_pem: str, request: SignedRequest, now_us: int) -> None:
    """Check a parsed signature of ``request`` against the registered key; raise SignatureRefused.

    Checked: every header OCI signs is signed and present; ``date`` is within
    :data:`MAX_CLOCK_SKEW_US` of ``now_us``; on a body, ``content-length`` and
    ``x-content-sha256`` match the body received; the RSA signature is valid.
    """
    method = request.method.upper()
    needed = BASE_HEADERS + (BODY_HEADERS if method in BODY_METHODS else ())
    missing = [name for name in needed if name not in parsed.headers]
    if missing:
        raise SignatureRefused(f"authorization: the signature does not cover {', '.join(missing)}; sign them")
    text = signing_string(parsed.headers, request)
    _check_date(request.headers["date"], now_us)
    if method in BODY_METHODS or "x-content-sha256" in parsed.headers:
        _check_body(request)
    key = serialization.load_pem_public_key(public_key_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)  # registered keys are checked by key_fingerprint
    try:
        key.verify(parsed.signature, text, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureRefused(
            "authorization: the signature does not match the request and the key registered for its fingerprint"
        ) from None


def _check_date(value: str, now_us: int) -> None:
    try:
        sent = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        sent = None
    if sent is None or sent.tzinfo is None:
        raise SignatureRefused("date: not an HTTP date (Fri, 04 Dec 2026 06:40:00 GMT)")
    skew = abs(int(sent.timestamp() * 1_000_000) - now_us)
    if skew > MAX_CLOCK_SKEW_US:
        raise SignatureRefused(
            f"date: {skew // 1_000_000} s from the server's clock, over {MAX_CLOCK_SKEW_US // 60_000_000} minutes; "
            "sign each request when it is sent, with a synchronised clock"
        )


def _check_body(request: SignedRequest) -> None:
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) != len(request.body):
        raise SignatureRefused("content-length: does not match the body received")
    digest = base64.b64encode(hashlib.sha256(request.body).digest()).decode()
    if not hmac.compare_digest(digest, request.headers.get("x-content-sha256", "")):
        raise SignatureRefused("x-content-sha256: does not match the SHA-256 of the body received")
