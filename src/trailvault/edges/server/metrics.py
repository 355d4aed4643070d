"""The server's Prometheus metrics: requests, latency, events ingested, the commit queue.

Labels carry the route template and status, never an app, channel or key, so the
page at ``/metrics`` tells nothing about who the tenants are.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from trailvault.workflows.vault.vault import Vault

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One registry per server app (so tests can run several apps in one process)."""

    def __init__(self, vault: Vault) -> None:
        # The *_created series only repeat the start time; they double the page for nothing.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "trailvault_http_requests",
            "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "trailvault_http_request_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ingested = Counter(
            "trailvault_events_ingested",
            "Events appended (duplicates of kept events excluded).",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "trailvault_events_duplicate", "Events posted again with an id already kept.", registry=self.registry
        )
        queue = Gauge(
            "trailvault_commit_queue_depth", "Batches waiting for the group committer.", registry=self.registry
        )
        queue.set_function(lambda: vault.queue_depth)

    def render(self) -> bytes:
        """Return the Prometheus text exposition."""
        return generate_latest(self.registry)
