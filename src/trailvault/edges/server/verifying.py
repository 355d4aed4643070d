"""Verification over HTTP: one at a time, in the background, followed through a status resource.

``POST /v1/verify`` starts a verification (or joins the running one when it asks
the same) and is answered 202 at once with the job's status; ``GET /v1/verify/{id}``
answers it again until ``status`` is ``done`` (with ``report``) or ``failed`` (with
``error``). A verification reads the whole log, so a second one with other
parameters is refused (409) while one runs: verifying cannot be used to keep the
database busy. Jobs belong to the app whose key started them; the last
:data:`KEPT_JOBS` finished ones are kept for their status.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trailvault.core.timestamps import format_timestamp
from trailvault.errors import Conflict, NotFound, TrailvaultError

__all__ = ["KEPT_JOBS", "Verifications", "VerifyJob"]

KEPT_JOBS = 16

_log = logging.getLogger("trailvault.server")


@dataclass
class VerifyJob:
    """One verification: what it was asked, and its state (``running``, ``done`` or ``failed``)."""

    id: str
    app: str
    request: dict[str, Any]
    started_us: int
    status: str = "running"
    finished_us: int | None = None
    report: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The status resource's body."""
        return {
            "id": self.id,
            "status": self.status,
            "started": format_timestamp(self.started_us),
            "finished": None if self.finished_us is None else format_timestamp(self.finished_us),
            "report": self.report,
            "error": self.error,
        }


class Verifications:
    """The server's verification jobs: at most one running, all in one background thread."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, VerifyJob] = OrderedDict()
        self._running: VerifyJob | None = None
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[VerifyJob, Callable[[], dict[str, Any]]]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None

    def start(self, app: str, request: dict[str, Any], work: Callable[[], dict[str, Any]]) -> VerifyJob:
        """Run ``work`` (returning the report's dict) in the background and return its job.

        While a job runs, the same app asking the same again gets that job; anything
        else raises Conflict.
        """
        with self._lock:
            running = self._running
            if running is not None:
                if running.app == app and running.request == request:
                    return running
                where = f" (GET /v1/verify/{running.id})" if running.app == app else ""
                raise Conflict(
                    f"verify: a verification of this vault is running since {format_timestamp(running.started_us)}"
                    f"{where}; one runs at a time, so wait for it to finish and ask again"
                )
            job = VerifyJob(secrets.token_hex(8), app, request, _now_us())
            self._running = job
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT_JOBS:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest] is job:
                    break
                del self._jobs[oldest]
            self._queue.put((job, work))
            if self._worker is None:
                # One long-lived thread runs every job: a store keeps a reader connection per
                # thread, so a thread per job would leave one connection behind for each.
                self._worker = threading.Thread(target=self._serve, name="trailvault-verify", daemon=True)
                self._worker.start()
        return job

    def _serve(self) -> None:
        while True:
            job, work = self._queue.get()
            self._run(job, work)

    def get(self, app: str, job_id: str) -> VerifyJob:
        """Return the job of ``app`` with that id; NotFound for another app's or a forgotten one."""
        job = self._jobs.get(job_id)
        if job is None or job.app != app:
            raise NotFound(
                f"id: no verification {job_id[:40]!r} of app {app!r} (the server keeps the last {KEPT_JOBS}, "
                "and none across a restart); start one with POST /v1/verify",
                field="id",
            )
        return job

    def _run(self, job: VerifyJob, work: Callable[[], dict[str, Any]]) -> None:
        report: dict[str, Any] | None = None
        error: dict[str, Any] | None = None
        try:
            report = work()
        except TrailvaultError as exc:
            error = exc.to_dict()
        except Exception:
            _log.exception("verification %s failed", job.id)
            error = {"code": "internal", "message": "internal error; the server log has details", "field": None}
        # Finished as a whole: a client that reads "done" can start the next one at once.
        with self._lock:
            job.report, job.error, job.finished_us = report, error, _now_us()
            job.status = "failed" if error is not None else "done"
            self._running = None
        job.done.set()


def _now_us() -> int:
    return time.time_ns() // 1000
