"""What a running server holds: the vault, its options, keys, limits, verifications and metrics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from trailvault.core.event import Posted
from trailvault.edges.server.auth import Authenticator, RateLimiter
from trailvault.edges.server.limits import AppRequests
from trailvault.edges.server.metrics import Metrics
from trailvault.edges.server.verifying import Verifications
from trailvault.workflows.vault.vault import Vault

__all__ = ["ServerOptions", "ServerState"]


@dataclass(frozen=True)
class ServerOptions:
    """The server's limits and choices (settings of the same names, see docs/server.md)."""

    #: Largest request body accepted; a larger one is answered 413 before it is read whole.
    max_request_bytes: int = 16 << 20
    #: Requests a second per API key (bursts up to one second's worth); 0 turns the limit off.
    rate_limit: float = 1000.0
    #: Seconds a request may take before it is answered 503 (a post may still complete: resend by id).
    request_timeout: float = 30.0
    #: Seconds a listing's query may run before the database cancels it (503 query_timeout); 0: no limit.
    statement_timeout: float = 10.0
    #: Requests of one app (other than posts) served at once; more wait a second, then 429. 0: no limit.
    app_concurrency: int = 4
    #: Record every read answered in the app's channel ``trailvault.reads``.
    audit_reads: bool = True
    #: Origins allowed by CORS; empty: CORS off.
    cors_origins: tuple[str, ...] = ()


@dataclass
class ServerState:
    """Shared by every request of one server app."""

    vault: Vault
    options: ServerOptions
    authenticator: Authenticator = field(init=False)
    limiter: RateLimiter = field(init=False)
    app_requests: AppRequests = field(init=False)
    verifications: Verifications = field(init=False)
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        self.authenticator = Authenticator(self.vault)
        self.limiter = RateLimiter(self.options.rate_limit)
        self.app_requests = AppRequests(self.options.app_concurrency, self.options.statement_timeout)
        self.verifications = Verifications()
        self.metrics = Metrics(self.vault)

    def count_posted(self, posted: Iterable[Posted]) -> None:
        duplicates = total = 0
        for item in posted:
            total += 1
            duplicates += item.duplicate
        self.metrics.ingested.inc(total - duplicates)
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
