"""The OCI face against trailvault's own API, one run: listing latency and PutLogs ingest.

    .venv/bin/python bench/oci.py           # docs figures (a 5-million-event vault)
    .venv/bin/python bench/oci.py --quick   # script check (100,000 events)

The server is ``trailvault serve`` in its own process (bench/server.py's ``serve``) on an
embedded vault whose ``datasafe`` channel holds Data Safe audit events one second apart.
Listing: 200 first pages (limit 100) of one user's events in a one-day window, asked
alternately through the face (``GET /20181201/auditEvents`` with ``scimQuery``) and through
``GET /v1/events`` with the same filter: the baseline, in the same run. PutLogs: 2 client
threads push batches of 1,000 log entries with ids through
``POST /20200831/logs/{logId}/actions/push``, against the same entries posted as
envelope NDJSON to ``/v1`` (the same ids, the same client). Both use a bearer token, so
only the faces' own work differs. Targets (issue 17): listing p95 at most 1.5x, PutLogs at
least 0.8x.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

import trailvault
from server import progress, serve
from trailvault import NewEvent

START_US = 1_700_000_000_000_000
DAY_US = 86_400_000_000
USERS = 500
LOG = "ocid1.log.oc1..bench"
CONFIG = f'[oci]\nlogs = {{ "{LOG}" = "default/pushed" }}\n'


def audit_event(n: int) -> dict[str, Any]:
    """A Data Safe audit event in its REST spelling, one second after the one before."""
    return {
        "dbUserName": f"user{n * 7919 % USERS}",
        "targetId": f"ocid1.datasafetargetdatabase.oc1..target{n % 7}",
        "targetName": f"target{n % 7}",
        "databaseType": "AUTONOMOUS_DATABASE",
        "auditEventTime": _text(START_US + n * 1_000_000),
        "operation": "LOGON" if n % 3 else "DELETE",
        "operationStatus": "SUCCESS" if n % 11 else "FAILURE",
        "eventName": "LOGON",
        "clientIp": f"10.0.{n % 256}.{n * 7 % 256}",
        "commandText": f"SELECT * FROM accounts WHERE id = {n}",
        "auditType": "STANDARD",
        "isAlerted": n % 97 == 0,
    }


def _text(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def build(path: Path, total: int) -> None:
    with trailvault.open_vault(path, durability="normal") as vault:
        vault.open("datasafe", "datasafe")
        for start in range(0, total, 10_000):
            events = [audit_event(n) for n in range(start, min(total, start + 10_000))]
            vault.post_many(
                "datasafe", [NewEvent(e, f"ds-{start + i}", e["auditEventTime"]) for i, e in enumerate(events)]
            )
            if start % 500_000 == 0:
                progress(f"  {start:,} of {total:,}")


def listing(url: str, token: str, total: int) -> tuple[list[float], list[float]]:
    """ms of the face's and /v1's first pages of the same queries, asked alternately."""
    face, v1 = [], []
    span = total * 1_000_000
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        for n in range(220):
            start = START_US + (n * 7919 % 1000) * max(1, span - DAY_US) // 1000
            user = f'dbUserName eq "user{n * 31 % USERS}"'
            window = f'(auditEventTime ge "{_text(start)}") and (auditEventTime lt "{_text(start + DAY_US)}")'
            asks: list[tuple[list[float], str, dict[str, Any]]] = [
                (face, "/20181201/auditEvents", {"compartmentId": "default", "scimQuery": f"{window} and {user}",
                                                 "limit": 100, "sortBy": "auditEventTime"}),
                (v1, "/v1/events", {"channel": "datasafe", "from": _text(start), "to": _text(start + DAY_US),
                                    "filter": user, "limit": 100}),
            ]  # fmt: skip
            for timings, path, params in asks if n % 2 else reversed(asks):
                began = time.perf_counter()
                answer = client.get(path, params=params)
                elapsed = (time.perf_counter() - began) * 1000
                assert answer.status_code == 200, answer.text
                if n >= 20:  # the first requests warm the server's caches
                    timings.append(elapsed)
    return face, v1


def pushing(url: str, token: str, batches: int, prefix: str, send: Callable[..., httpx.Response]) -> float:
    """Events/s of 2 threads sending ``batches`` batches of 1,000 new entries each with ``send``."""
    threads, failures = [], []

    def worker(part: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
            for batch in range(part, batches, 2):
                first = batch * 1000
                answer = send(client, [(f"{prefix}-{first + i}", audit_event(first + i)) for i in range(1000)])
                if not answer.is_success:
                    failures.append(answer.text[:300])

    started = time.perf_counter()
    for part in range(2):
        threads.append(threading.Thread(target=worker, args=(part,)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert not failures, failures[:1]
    return batches * 1000 / elapsed


def put_logs(client: httpx.Client, entries: list[tuple[str, dict[str, Any]]]) -> httpx.Response:
    details = {
        "specversion": "1.0",
        "logEntryBatches": [{
            "entries": [{"id": id_, "data": orjson.dumps(body).decode(), "time": body["auditEventTime"]}
                        for id_, body in entries],
            "source": "bench", "type": "datasafe.audit", "defaultlogentrytime": entries[0][1]["auditEventTime"],
        }],
    }  # fmt: skip
    return client.post(f"/20200831/logs/{LOG}/actions/push", content=orjson.dumps(details),
                       headers={"content-type": "application/json"})  # fmt: skip


def v1_bulk(client: httpx.Client, entries: list[tuple[str, dict[str, Any]]]) -> httpx.Response:
    lines = b"\n".join(
        orjson.dumps({"id": id_, "time": body["auditEventTime"],
                      "body": {"data": orjson.dumps(body).decode(), "source": "bench", "type": "datasafe.audit"}})
        for id_, body in entries
    )  # fmt: skip
    return client.post("/v1/channels/pushed/events", params={"envelope": "true"}, content=lines,
                       headers={"content-type": "application/x-ndjson"})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int)
    args = parser.parse_args()
    total = args.events or (100_000 if args.quick else 5_000_000)
    batches = 20 if args.quick else 100
    folder = Path(tempfile.mkdtemp(prefix="trailvault-bench-oci-"))
    try:
        progress(f"building the {total:,}-event Data Safe vault (embedded, not timed)")
        build(folder / "vault", total)
        (folder / "trailvault.toml").write_text(CONFIG)
        with serve(folder / "vault", rate_limit=0, config=folder / "trailvault.toml") as server:
            face, v1 = listing(server.url, server.token, total)
            # The channel the log maps to, opened by a first push, then both ingest the same shape.
            progress("pushing")
            pushed = pushing(server.url, server.token, batches, "putlogs", put_logs)
            posted = pushing(server.url, server.token, batches, "v1", v1_bulk)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    p95 = [statistics.quantiles(values, n=20)[18] for values in (face, v1)]
    medians = [statistics.median(values) for values in (face, v1)]
    print(f"| measure ({total:,}-event vault) | OCI face | /v1 (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| listing, first 100 of a user's day, p95 | {p95[0]:.2f} ms | {p95[1]:.2f} ms | "
        f"**{p95[0] / p95[1]:.2f}x** | <= 1.5x: {'met' if p95[0] <= 1.5 * p95[1] else '**not met**'} |"
    )
    print(f"| listing, median | {medians[0]:.2f} ms | {medians[1]:.2f} ms | {medians[0] / medians[1]:.2f}x | |")
    print(f"| ingest, 2 threads x batches of 1,000 | PutLogs {pushed:,.0f} events/s | envelope NDJSON "
          f"{posted:,.0f} events/s | **{pushed / posted:.2f}x** | >= 0.8x: "
          f"{'met' if pushed >= 0.8 * posted else '**not met**'} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
