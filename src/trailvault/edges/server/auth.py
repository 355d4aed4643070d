"""Bearer-token authentication and the per-key rate limit of the HTTP server.

A key read from the store is kept for ``KEY_CACHE_SECONDS`` so a busy producer
does not cost a lookup per request; a key revoked through this server fails at
once, one revoked through another process within that time.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from trailvault.core.api_key import ApiKey
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

    def forget(self, key_id: str) -> None:
        """Drop a revoked key from the cache so it fails from the next request on."""
        with self._lock:
            for token in [token for token, (key, _) in self._cache.items() if key.id == key_id]:
                del self._cache[token]


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
