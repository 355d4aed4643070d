"""The access half of a :class:`~trailvault.workflows.vault.vault.Vault`: API keys of its app, and the record of reads.

Keys belong to the vault's app: ``create_key`` makes one for it, ``keys`` lists them,
``revoke_key`` ends one. ``authenticate`` is vault-wide (a server does not know the
app before it knows the key). ``record_read`` writes who read what into the app's
channel ``trailvault.reads``, which a server does for every read it answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from trailvault.core.api_key import ApiKey, Scope, new_token, parse_scopes, parse_token, secret_matches
from trailvault.core.channel import READS_CHANNEL
from trailvault.core.event import Event, Posted, check_name
from trailvault.core.ocisignature import SignedRequest, key_fingerprint, parse_authorization, verify_request
from trailvault.core.query import mask_filter
from trailvault.core.schema.model import MASKED
from trailvault.core.scim import parse_filter, render_filter
from trailvault.errors import InvalidInput, InvalidQuery, NotFound, SignatureRefused, Unauthorized
from trailvault.workflows.vault.parts import VaultParts

__all__ = ["READS_SCHEMA", "ApiKeys"]

#: The schema of ``trailvault.reads``: one event per read answered by a server.
READS_SCHEMA = {
    "fields": [
        {"name": "key_id", "type": "STRING", "mode": "REQUIRED", "index": True},
        {"name": "key_name", "type": "STRING", "mode": "REQUIRED"},
        {"name": "action", "type": "STRING", "mode": "REQUIRED"},
        {"name": "request", "type": "STRING", "mode": "NULLABLE"},
        {"name": "results", "type": "INTEGER", "mode": "NULLABLE"},
    ]
}
_UNKNOWN_KEY = "authorization: the API key is unknown or revoked; ask an admin of your app for a new one"


class ApiKeys(VaultParts):
    """API keys of one app, and the record of reads; mixed into :class:`~trailvault.workflows.vault.vault.Vault`."""

    def create_key(
        self,
        name: str,
        scopes: Iterable[str | Scope],
        channels: Iterable[str] | None = None,
        oci_public_key: str | None = None,
    ) -> tuple[ApiKey, str]:
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidInput("name: give the key a name of 1 to 200 characters, such as who holds it", field="name")
        chosen = parse_scopes(scopes)
        limited = None
        if channels is not None:
            limited = tuple(sorted({check_name(channel, field="channels") for channel in channels}))
            if not limited:
                raise InvalidInput("channels: list at least one channel, or leave it out for all", field="channels")
        fingerprint = None if oci_public_key is None else key_fingerprint(oci_public_key)
        key_id, token, digest = new_token()
        key = ApiKey(key_id, self.app, name.strip(), chosen, limited, time.time_ns() // 1000, None, fingerprint)
        pem = None if oci_public_key is None else oci_public_key.strip() + "\n"
        self._store.save_api_key(key, digest, pem)
        return key, token

    def keys(self) -> list[ApiKey]:
        return self._store.list_api_keys(self.app)

    def revoke_key(self, key_id: str) -> ApiKey:
        key = self._store.revoke_api_key(self.app, str(key_id), time.time_ns() // 1000)
        if key is None:
            raise NotFound(f"id: app {self.app!r} has no API key {str(key_id)[:40]!r}", field="id")
        return key

    def authenticate(self, token: str) -> ApiKey:
        """Return the live key a bearer token belongs to, of whichever app; raise Unauthorized otherwise."""
        key_id, secret = parse_token(token)
        found = self._store.api_key(key_id)
        if found is None or not secret_matches(secret, found[1]) or found[0].revoked_us is not None:
            raise Unauthorized(_UNKNOWN_KEY)
        return found[0]

    def authenticate_signed(self, authorization: str, request: SignedRequest, now_us: int | None = None) -> ApiKey:
        """Return the live key whose OCI public key signed ``request``, of whichever app; raise SignatureRefused.

        ``authorization`` is the request's ``Authorization: Signature ...`` header; the
        key is found by the fingerprint in its ``keyId`` (tenancy and user are not
        checked: the fingerprint alone names the key). ``now_us`` (default: the clock)
        is what the ``date`` header is compared with.
        """
        parsed = parse_authorization(authorization)
        found = self._store.api_key_by_fingerprint(parsed.fingerprint)
        if found is None:
            raise SignatureRefused(
                "authorization: no API key has the public key of this keyId's fingerprint; register it with "
                "`trailvault keys create NAME --oci-public-key FILE`"
            )
        key, public_key = found
        if key.revoked_us is not None:
            raise SignatureRefused(_UNKNOWN_KEY)
        verify_request(parsed, public_key, request, time.time_ns() // 1000 if now_us is None else now_us)
        return key

    def mask(self, event: Event) -> Event:
        """Return ``event`` with its ``sensitive`` fields' values masked (what a key without ``unmask`` sees).

        When the field that became the envelope's ``time`` is sensitive, ``time`` is masked too.
        """
        schema = self._channel_state(event.channel).schema
        time_masked = schema.time_is_sensitive()
        masked = event.body if event.body is None else schema.mask(event.body)
        if masked is event.body and not time_masked:
            return event
        return replace(event, body=masked, time_masked=time_masked)

    def sensitive_fields(self, channel: str | None = None) -> set[str]:
        """Return what masking hides in the app's channels (in ``channel`` only, when given).

        That is the dotted path of every ``sensitive`` field (and everything below one),
        and the envelope field ``time`` when the body field it comes from is sensitive.
        """
        found: set[str] = set()
        if channel is not None:
            schemas = [self._channel_state(channel, refresh=True).schema]
        else:
            schemas = [found_channel.schema for found_channel in self.channels()]
        for schema in schemas:
            for path in schema.sensitive_paths():
                found.add(".".join(path))
            if schema.time_is_sensitive():
                found.add("time")
        return found

    def record_read(self, key: ApiKey, action: str, request: Mapping[str, Any], results: int | None) -> Posted:
        """Record that ``key`` read something (``action`` such as ``events.list``) in ``trailvault.reads``.

        Any read key may list that channel, so what is recorded never holds a sensitive value:
        in a ``filter``, each value compared with a sensitive field (or with ``time`` when it
        is sensitive) reads ``[masked]``, and so do ``from``/``to`` when ``time`` is sensitive.
        """
        shown = {name: value for name, value in request.items() if value is not None}
        if {"filter", "from", "to"} & shown.keys():
            shown = _masked_request(shown, self.sensitive_fields())
        record = {
            "key_id": key.id,
            "key_name": key.name,
            "action": action,
            "request": orjson.dumps(shown, option=orjson.OPT_SORT_KEYS).decode() if shown else None,
            "results": results,
        }
        return self._record(READS_CHANNEL, READS_SCHEMA, record)


def _masked_request(request: dict[str, Any], sensitive: set[str]) -> dict[str, Any]:
    """``request`` with the values a recorded read must not hold replaced by :data:`MASKED`."""
    if not sensitive:
        return request
    shown = dict(request)
    if "time" in sensitive:
        shown.update({name: MASKED for name in ("from", "to") if name in shown})
    text = shown.get("filter")
    if isinstance(text, str):
        try:
            tree = parse_filter(text)
        except InvalidQuery:
            shown["filter"] = MASKED  # never parsed, so never run: nothing of it is worth keeping
        else:
            masked = mask_filter(tree, sensitive, MASKED)
            if masked != tree:
                shown["filter"] = render_filter(masked)
    return shown
