"""The background sender: busy producers hand events over and never wait for the server.

::

    sender = vault.sender(spool="/var/spool/myapp")      # or Sender(url, token, spool=...)
    sender.send("access", {"type": "INFO", "message": "login"})
    ...
    sender.close()          # delivers what it can, spools the rest for the next start

How it keeps every event:

* ``send`` gives the event its id (UUIDv7) at once, so every resend is idempotent:
  the server answers an id it already kept as a duplicate, never a second copy;
* a thread batches queued events (up to ``batch_size``, waiting at most ``linger``
  seconds to fill a batch) and posts each batch as envelope NDJSON;
* the queue in memory is bounded (``max_queue``); beyond it, and whenever the
  server cannot be reached, events go to the spool folder on disk (fsynced
  segment files), which is delivered first, oldest segment first, when the server
  answers again, and on the next start after a crash or restart;
* failed posts are retried with exponential backoff and full jitter, up to
  ``max_backoff`` seconds between tries;
* an event the server refuses for good (schema violation, id conflict) cannot be
  delivered by retrying: it is written with the server's error to
  ``rejected.ndjson`` in the spool folder, and the rest of its batch is resent.

Without a spool folder, a full queue makes ``send`` raise ServerUnavailable, and
events still queued when ``close`` gives up are reported, never dropped silently.
Events only in memory are lost if the process itself dies before they are sent or
spooled; with ``spool_always=True`` every event is written to the spool first.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import uuid_utils

from trailvault.core.event import check_name
from trailvault.errors import InvalidInput, ServerUnavailable
from trailvault.workflows.client.spool import Spool, SpooledEvent

__all__ = ["Sender", "tls_verify"]

_log = logging.getLogger("trailvault.sender")
#: Answers that say "this batch will never be taken as it is" (the rest are retried).
_PERMANENT = {400, 409, 413, 422}


class Sender:
    """Deliver events to a server in the background; see the module docstring."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        spool: str | Path | None = None,
        batch_size: int = 1000,
        max_queue: int = 100_000,
        linger: float = 0.05,
        max_backoff: float = 30.0,
        timeout: float = 30.0,
        verify: bool | str = True,
        spool_always: bool = False,
    ) -> None:
        if batch_size < 1 or max_queue < batch_size:
            raise InvalidInput("batch_size: use 1 or more, and max_queue at least batch_size", field="batch_size")
        if spool_always and spool is None:
            raise InvalidInput("spool: spool_always needs a spool folder", field="spool")
        self._spool = Spool(Path(spool)) if spool is not None else None
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"trailvault/{version('trailvault')}"},
            timeout=timeout,
            verify=tls_verify(verify),
        )
        self._batch_size = batch_size
        self._max_queue = max_queue
        self._linger = linger
        self._max_backoff = max_backoff
        self._spool_always = spool_always
        self._queue: deque[SpooledEvent] = deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._stopping = False
        self._in_flight = 0
        #: The batch being posted, so close() can keep it when the post outlives it.
        self._taken: list[SpooledEvent] = []
        self._failures = 0
        self._retry_at = 0.0
        #: Counts for the producer's own metrics.
        self.delivered = 0
        self.duplicates = 0
        self.rejected = 0
        #: The last reason a post failed (None once one succeeds).
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="trailvault-sender", daemon=True)
        self._thread.start()

    # -- the producer's side -------------------------------------------------------------

    def send(
        self,
        channel: str,
        body: Mapping[str, Any],
        *,
        id: str | None = None,  # noqa: A002 - the envelope's own word
        time: datetime | str | None = None,
    ) -> str:
        """Queue one event and return its id at once; never waits for the server."""
        check_name(channel, field="channel")
        event_id = id or str(uuid_utils.uuid7())
        envelope: dict[str, Any] = {"id": event_id, "body": body}
        if time is not None:
            envelope["time"] = time.isoformat() if isinstance(time, datetime) else time
        try:
            line = orjson.dumps(envelope)
        except TypeError as exc:
            raise InvalidInput(f"body: cannot be sent as JSON ({exc})", field="body") from None
        event = SpooledEvent(channel, line)
        with self._lock:
            if self._stopping:
                raise InvalidInput("sender: it is closed; make a new one", field="sender")
            if self._spool_always or len(self._queue) >= self._max_queue:
                if self._spool is None:
                    raise ServerUnavailable(
                        f"sender: {len(self._queue):,} events wait for the server, the queue's limit; "
                        "give the sender a spool folder to keep more on disk"
                    )
                self._spool.write([event])
            else:
                self._queue.append(event)
            self._arrived.notify()
        return event_id

    @property
    def pending(self) -> int:
        """Events not yet delivered: queued in memory, being posted, or in the spool."""
        with self._lock:
            return len(self._queue) + self._in_flight + (self._spool.count() if self._spool else 0)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event sent so far is delivered (or rejected); False when ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._arrived.notify()
            while self._queue or self._in_flight or (self._spool is not None and self._spool.count() > 0):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(0.1 if remaining is None else min(remaining, 0.1))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver for up to ``timeout`` seconds, spool what is left, and stop.

        Raises ServerUnavailable when events had to be left behind without a spool
        folder to keep them (their count is in the message).
        """
        delivered = self.flush(timeout)
        with self._lock:
            self._stopping = True
            left = list(self._queue)
            self._queue.clear()
            self._arrived.notify_all()
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            # A post still waits for the server: keep its batch too (resending it later is
            # safe, its ids make a second delivery a duplicate, not a copy).
            with self._lock:
                left = list(self._taken) + left
        else:
            self._http.close()
        if self._spool is None:
            if left:
                raise ServerUnavailable(
                    f"sender: {len(left):,} events could not be delivered and there is no spool folder to keep them"
                )
            return
        self._spool.write(left)
        if not delivered:
            _log.warning("trailvault sender: %d events stay in %s for the next start", self.pending, self._spool.path)
        if not self._thread.is_alive():
            self._spool.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the delivering thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                if not self._step():
                    return
            except Exception:
                # Whatever went wrong (a disk error, a bug), the events stay where they are:
                # log it and try again later rather than stop delivering for good.
                _log.exception("trailvault sender: delivery failed; retrying")
                self._back_off()

    def _step(self) -> bool:
        """Do one piece of work; False when the sender is stopping."""
        with self._lock:
            if self._stopping:
                return False
            waiting = self._retry_at - time.monotonic()
            if waiting > 0:
                # The server is down: keep memory bounded and the events safe on disk.
                if self._spool is not None and self._queue:
                    self._spool.write(list(self._queue))
                    self._queue.clear()
                self._arrived.wait(min(waiting, 0.5))
                return True
        if self._spool is not None and self._deliver_spooled():
            return True
        batch = self._take()
        if batch:
            self._deliver_taken(batch)
        return True

    def _take(self) -> list[SpooledEvent]:
        """Wait for events, then up to linger seconds for a full batch; take up to batch_size."""
        with self._lock:
            if not self._queue:
                self._idle.notify_all()
                self._arrived.wait(0.2)
                if not self._queue:
                    return []
            deadline = time.monotonic() + self._linger
            while len(self._queue) < self._batch_size and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(remaining)
            count = min(self._batch_size, len(self._queue))
            taken = [self._queue.popleft() for _ in range(count)]
            self._in_flight = count
            self._taken = taken
            return taken

    def _deliver_taken(self, batch: list[SpooledEvent]) -> None:
        left = self._deliver(batch)
        with self._lock:
            if left:
                if self._spool is not None:
                    self._spool.write(left)
                else:
                    self._queue.extendleft(reversed(left))
            self._in_flight = 0
            self._taken = []
            self._idle.notify_all()

    def _deliver_spooled(self) -> bool:
        """Deliver the oldest spool segment; return False when there was none."""
        assert self._spool is not None
        segment = self._spool.oldest()
        if segment is None:
            return False
        events = self._spool.read(segment)
        for start in range(0, len(events), self._batch_size):
            left = self._deliver(events[start : start + self._batch_size])
            if left:
                # Keep exactly what is undelivered; what was delivered is not sent again.
                self._spool.replace(segment, left + events[start + self._batch_size :])
                return True
        self._spool.remove(segment)
        with self._lock:
            self._idle.notify_all()
        return True

    def _deliver(self, batch: list[SpooledEvent]) -> list[SpooledEvent]:
        """Post ``batch`` grouped by channel; return what is left to retry (backing off when anything is)."""
        groups: list[list[SpooledEvent]] = []
        for event in batch:
            if groups and groups[-1][0].channel == event.channel:
                groups[-1].append(event)
            else:
                groups.append([event])
        for index, group in enumerate(groups):
            if not self._post(group):
                self._back_off()
                return [event for rest in groups[index:] for event in rest]
        self._failures = 0
        self.last_error = None
        return []

    def _post(self, group: list[SpooledEvent]) -> bool:
        """Post one channel's events; True when each is kept or rejected for good, False to retry later."""
        try:
            response = self._http.post(
                f"/v1/channels/{quote(group[0].channel, safe='')}/events",
                params={"envelope": "true"},
                content=b"\n".join(event.line for event in group),
                headers={"Content-Type": "application/x-ndjson"},
            )
        except httpx.TransportError as exc:
            self.last_error = f"cannot reach the server ({type(exc).__name__})"
            return False
        if response.status_code < 300:
            answer = response.json()
            self.delivered += answer["posted"]
            self.duplicates += answer["duplicates"]
            return True
        error = _error_body(response)
        self.last_error = f"HTTP {response.status_code}: {error.get('message', '')}"
        if response.status_code == 404:
            # The channel does not exist for this key: only this channel's events wait in vain.
            self._reject([(event, error) for event in group])
            return True
        if response.status_code not in _PERMANENT:
            return False
        refused = {item["index"]: item for item in error.get("failures", []) if isinstance(item, dict)}
        if not refused and len(group) > 1:
            # One error for the whole batch (too large, an id conflict): halve it to find the culprits.
            middle = len(group) // 2
            return self._post(group[:middle]) and self._post(group[middle:])
        if not refused:
            refused = {0: error}
        self._reject([(group[index], refused[index]) for index in sorted(refused) if index < len(group)])
        rest = [event for index, event in enumerate(group) if index not in refused]
        return not rest or self._post(rest)

    def _reject(self, refused: list[tuple[SpooledEvent, dict[str, Any]]]) -> None:
        self.rejected += len(refused)
        if self._spool is not None:
            self._spool.reject(refused)
            where = f"kept in {self._spool.path / 'rejected.ndjson'}"
        else:
            where = "not kept (no spool folder)"
        first = refused[0][1]
        _log.error(
            "trailvault sender: the server refused %d events for good, %s; first: %s",
            len(refused),
            where,
            first.get("message"),
        )

    def _back_off(self) -> None:
        self._failures += 1
        ceiling = min(self._max_backoff, 0.1 * 2 ** min(self._failures, 20))
        with self._lock:
            self._retry_at = time.monotonic() + random.uniform(0, ceiling)


def tls_verify(verify: bool | str) -> bool | ssl.SSLContext:
    """Turn ``verify`` (True, False, or a CA bundle path such as a self-signed server's certificate) into httpx's."""
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        error = response.json()["error"]
        return error if isinstance(error, dict) else {}
    except (ValueError, KeyError, TypeError):
        return {}
