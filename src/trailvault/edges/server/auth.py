"""Authentication (a bearer token or an OCI request signature) and the per-key rate limit of the HTTP server.

A key read from the store for a bearer token is kept for ``KEY_CACHE_SECONDS`` so a
busy producer does not cost a lookup per request; a key revoked through this server
fails at once, one revoked through another process within that time. A signed request
is looked up each time (each signature is new), so a revoked key's signatures fail at once.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from trailvault.core.api_key import ApiKey
from trailvault.core.ocisignature import BODY_METHODS, SignedRequest
from trailvault.edges.server.http import read_body
from trailvault.errors import RateLimited, Unauthorized
from trailvault.workflows.vault.vault import Vault

__all__ = ["KEY_CACHE_SECONDS", "Authenticator", "RateLimiter"]

KEY_CACHE_SECONDS = 2.0


class Authenticator:
    """Turn an ``Authorization`` header into the live API key it names."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._cache: dict[str, tuple[ApiKey, float]] = {}
        self._lock = threading.Lock()

    def cached(self, header: str | None) -> ApiKey | None:
        """Return the key of ``Authorization: Bearer <token>`` when recently seen, else None (no I/O).

        Raises Unauthorized for a missing or malformed header, never echoing the token.
        """
        token = _token(header)
        cached = self._cache.get(token)
        if cached is not None and time.monotonic() - cached[1] < KEY_CACHE_SECONDS:
            return cached[0]
        return None

    def authenticate(self, header: str | None) -> ApiKey:
        """Return the live key of the header, reading the store; raise Unauthorized."""
        token = _token(header)
        key = self._vault.authenticate(token)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (key, time.monotonic())
        return key

    async def identify(self, request: Request, max_request_bytes: int) -> ApiKey:
        """Return the live key that made ``request``: by its bearer token or by its OCI signature.

        ``Authorization: Signature ...`` (what the ``oci`` SDK and CLI send) is verified by
        :meth:`~trailvault.workflows.vault.api_keys.ApiKeys.authenticate_signed`; for that
        the body of a POST, PUT or PATCH is read first (at most ``max_request_bytes``, else
        RequestTooLarge) and stays readable by the route. Raises Unauthorized (SignatureRefused
        for a signature), never naming the token, the signature or the header.
        """
        header = request.headers.get("authorization")
        if header is None or header.partition(" ")[0].lower() != "signature":
            key = self.cached(header)
            return key if key is not None else await run_in_threadpool(self.authenticate, header)
        body = b""
        if request.method.upper() in BODY_METHODS or "content-length" in request.headers:
            body = await read_body(request, max_request_bytes)
            # Starlette's Request replays a read body from here: the route reads it as if unread.
            request._body = body
        signed = SignedRequest(request.method, _target(request), request.headers, body)
        return await run_in_threadpool(self._vault.authenticate_signed, header, signed)

    def forget(self, key_id: str) -> None:
        """Drop a revoked key from the cache so it fails from the next request on."""
        with self._lock:
            for token in [token for token, (key, _) in self._cache.items() if key.id == key_id]:
                del self._cache[token]


def _target(request: Request) -> str:
    """The path and query exactly as the client sent them (what ``(request-target)`` signs)."""
    raw = request.scope.get("raw_path")
    # Some servers put the query in raw_path too; the ASGI query_string is the one kept.
    path = raw.decode("latin-1").split("?", 1)[0] if isinstance(raw, bytes) else request.url.path
    query = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _token(header: str | None) -> str:
    if not header:
        raise Unauthorized("authorization: send the API key as `Authorization: Bearer tv_…`")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("authorization: use the Bearer scheme, `Authorization: Bearer tv_…`")
    return token.strip()


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second, bursts up to one second's worth (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, key: ApiKey) -> None:
        """Take one request from the key's bucket; raise RateLimited with the seconds to wait."""
        if self._rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key.id)
            if bucket is None:
                bucket = self._buckets[key.id] = _Bucket(self._rate, now)
            bucket.tokens = min(self._rate, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = (1 - bucket.tokens) / self._rate
        raise RateLimited(
            f"rate_limit: key {key.id} is over {self._rate:g} requests a second; retry after {math.ceil(wait)} s",
            retry_after=wait,
        )
