"""HTTP server benchmarks: bulk NDJSON ingest, single-event posts, filtered listing in a large vault, noisy neighbour.

    .venv/bin/python bench/server.py           # docs figures (builds a 5-million-event vault)
    .venv/bin/python bench/server.py --quick   # script check

The server is ``trailvault serve`` in its own process, as users run it, on a fresh
embedded SQLite vault with durable posts (``durability = full``) and no rate limit.
Load comes from wrk (Debian's package; ``make bench`` installs it when missing),
whose Lua scripts post prebuilt bodies, so the client costs little CPU; listing is
timed from an httpx client, one request at a time. The baseline, measured in the
same run, is the embedded library posting the same 1,000-event batches from four
threads. The server's CPU is read from /proc for its process; the client's is
wrk's (or this process's, for listing).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import ingest
import orjson
import postgres as listing_layout

import trailvault

BATCH = 1000
CLI = Path(sys.executable).parent / "trailvault"
_TICKS = os.sysconf("SC_CLK_TCK")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Server:
    url: str
    token: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS


@contextmanager
def serve(vault: Path, **settings: Any) -> Iterator[Server]:
    """Run ``trailvault serve`` on ``vault`` until the block ends; yield its URL and an admin token."""
    with trailvault.open_vault(vault) as opened:
        opened.open("access", ingest.SCHEMA)
        token = opened.create_key("bench", ["admin"])[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAILVAULT_")}
    env.update({f"TRAILVAULT_{name.upper()}": str(value) for name, value in settings.items()})
    env["TRAILVAULT_VAULT"] = str(vault)
    process = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        yield Server(url, token, process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


@dataclass
class WrkResult:
    requests_per_second: float
    requests: int
    percentiles: dict[str, float]  # "50%" -> ms
    failed: int
    client_cpu: float  # seconds
    seconds: float


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, script: str, *, connections: int, threads: int, seconds: int) -> WrkResult:
    """Run wrk with a Lua script; parse requests/s, latency percentiles and non-2xx answers."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", handle.name, url],
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(handle.name)
    text = run.stdout
    percentiles = {
        match.group(1): float(match.group(2)) * _UNITS[match.group(3)]
        for match in re.finditer(r"^\s+(\d+%)\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    }
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    total = re.search(r"(\d+) requests in ([\d.]+)(s|m)", text)
    if total is None:
        raise SystemExit(f"cannot read wrk's output:\n{text}\n{run.stderr}")
    return WrkResult(
        float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        int(total.group(1)),
        percentiles,
        (int(failed.group(1)) if failed else 0) + (sum(int(n) for n in errors.groups()) if errors else 0),
        (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        seconds,
    )


def _lua_post(path: str, token: str, content_type: str, body: bytes) -> str:
    quoted = body.decode().replace("\\", "\\\\").replace("]]", "] ]")
    return (
        f'wrk.method = "POST"\nwrk.path = "{path}"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\nwrk.headers["Content-Type"] = "{content_type}"\n'
        f"wrk.body = [[{quoted}]]\n"
    )


def embedded_bulk(folder: Path, bodies: list[bytes], seconds: float, threads: int = 4) -> float:
    """Events/s of the library posting 1,000-event batches (raw JSON lines, as the server gets them) from threads."""
    shutil.rmtree(folder / "embedded", ignore_errors=True)
    with trailvault.open_vault(folder / "embedded") as vault:
        vault.open("access", ingest.SCHEMA)
        counts = [0] * threads
        deadline = time.perf_counter() + seconds

        def work(n: int) -> None:
            while time.perf_counter() < deadline:
                vault.post_many("access", bodies)
                counts[n] += len(bodies)

        started = time.perf_counter()
        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return sum(counts) / (time.perf_counter() - started)


def http_bulk(folder: Path, bodies: list[bytes], seconds: int) -> tuple[float, float, float, WrkResult, int]:
    """Events/s of 4 wrk connections posting 1,000-event NDJSON bodies; server and client cores; kept count."""
    shutil.rmtree(folder / "bulk", ignore_errors=True)
    with serve(folder / "bulk", rate_limit=0) as server:
        cpu_before = server.cpu_seconds()
        result = wrk(
            server.url,
            _lua_post("/v1/channels/access/events", server.token, "application/x-ndjson", b"\n".join(bodies)),
            connections=4,
            threads=2,
            seconds=seconds,
        )
        server_cores = (server.cpu_seconds() - cpu_before) / seconds
        kept = httpx.get(server.url + "/healthz").json()["log_size"]
    return result.requests_per_second * BATCH, server_cores, result.client_cpu / seconds, result, kept


def http_single(folder: Path, body: bytes, seconds: int) -> tuple[float, float, float, WrkResult]:
    """Events/s and latency of 64 wrk connections posting one event each request."""
    shutil.rmtree(folder / "single", ignore_errors=True)
    with serve(folder / "single", rate_limit=0) as server:
        cpu_before = server.cpu_seconds()
        result = wrk(
            server.url,
            _lua_post("/v1/channels/access/events", server.token, "application/json", body),
            connections=64,
            threads=2,
            seconds=seconds,
        )
        server_cores = (server.cpu_seconds() - cpu_before) / seconds
    return result.requests_per_second, server_cores, result.client_cpu / seconds, result


def http_listing(folder: Path, total: int, audit_reads: bool) -> tuple[list[float], float, float]:
    """ms of 200 first pages (limit 100) over HTTP: one channel, a 1-week window and user.email equality."""
    vault_path = folder / "listing"
    if not (vault_path / "vault.sqlite3").exists():
        progress(f"building the {total:,}-event listing vault (embedded, not timed)")
        with trailvault.open_vault(vault_path, durability="normal") as vault:
            vault.open("access", ingest.SCHEMA)
            for name in listing_layout.CHANNELS:
                vault.open(name, ingest.SCHEMA)
            listing_layout.fill(vault, total, 10_000)
    timings, sizes = [], []
    span_us = total * listing_layout.STEP_US
    window_us = min(listing_layout.WEEK_US, span_us)
    with serve(vault_path, rate_limit=0, audit_reads=str(audit_reads).lower()) as server:
        cpu_before = server.cpu_seconds()
        client_before = time.process_time()
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=120
        ) as client:
            for n in range(220):
                start = listing_layout.START_US + (n * 7919 % 1000) * (span_us - window_us) // 1000
                params = {
                    "channel": listing_layout.CHANNELS[n % len(listing_layout.CHANNELS)],
                    "from": datetime.fromtimestamp(start / 1e6, UTC).isoformat(),
                    "to": datetime.fromtimestamp((start + window_us) / 1e6, UTC).isoformat(),
                    "filter": f'user.email eq "user{n * 7919 % BATCH}@example.com"',
                    "limit": 100,
                }
                began = time.perf_counter()
                answer = client.get("/v1/events", params=params)
                elapsed = (time.perf_counter() - began) * 1000
                assert answer.status_code == 200, answer.text
                if n >= 20:  # the first requests warm the server's caches
                    timings.append(elapsed)
                    sizes.append(len(answer.json()["items"]))
        wall = sum(timings) / 1000
        server_cores = (server.cpu_seconds() - cpu_before) / max(wall, 1e-9)
        client_cores = (time.process_time() - client_before) / max(wall, 1e-9)
    assert statistics.mean(sizes) > 0
    return timings, server_cores, client_cores


def noisy_neighbour(folder: Path, events: int, requests: int) -> tuple[list[float], list[float], dict[int, int]]:
    """ms of app a's listings (first 100 of its channel), alone and while app b runs 12 slow filters and verify.

    App b's filter is 400 ``co`` terms on ``message``, which every one of its ``events``
    events must be tested against (seconds without a limit); it runs with the server's
    defaults (statement_timeout 10 s, app_concurrency 4), on 12 connections, beside one
    connection posting ``POST /v1/verify`` over and over. Returns app a's timings alone,
    under load, and the count of app b's answers by status.
    """
    vault_path = folder / "neighbours"
    shutil.rmtree(vault_path, ignore_errors=True)
    tokens = {}
    for app, count in (("a", 2_000), ("b", events)):
        with trailvault.open_vault(vault_path, app=app, durability="normal") as vault:
            vault.open("access", ingest.SCHEMA)
            for start in range(0, count, BATCH):
                vault.post_many("access", [ingest.body(i) for i in range(start, min(count, start + BATCH))])
            tokens[app] = vault.create_key("bench", ["admin"])[1]
    slow = " or ".join(f'message co "zq{index}"' for index in range(400))
    answers: dict[int, int] = {}
    with serve(vault_path, rate_limit=0, audit_reads="false") as server:

        def listings() -> list[float]:
            timings = []
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens['a']}"}) as client:
                for _ in range(requests):
                    began = time.perf_counter()
                    answer = client.get("/v1/events", params={"channel": "access", "limit": 100}, timeout=120)
                    timings.append((time.perf_counter() - began) * 1000)
                    assert answer.status_code == 200, answer.text
            return timings[5:]  # the first warm the caches

        alone = listings()
        stop = threading.Event()

        def load(path: str, method: str, params: dict[str, Any]) -> None:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens['b']}"}) as client:
                while not stop.is_set():
                    body = {} if method == "POST" else None
                    answer = client.request(method, path, params=params, json=body, timeout=120)
                    answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
                    if answer.status_code in (409, 429):
                        time.sleep(0.2)

        threads = [
            threading.Thread(target=load, args=("/v1/events", "GET", {"channel": "access", "filter": slow}))
            for _ in range(12)
        ] + [threading.Thread(target=load, args=("/v1/verify", "POST", {}))]
        for thread in threads:
            thread.start()
        time.sleep(2)  # app b's load in full swing
        loaded = listings()
        stop.set()
        for thread in threads:
            thread.join()
    return alone, loaded, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs and a small listing vault")
    parser.add_argument("--seconds", type=int, default=20, help="length of each load run")
    parser.add_argument("--listing-events", type=int, default=5_000_000, help="size of the listing vault")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (keeps the listing vault between runs)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.listing_events = 3, 50_000
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")
    scratch = args.dir or Path(tempfile.mkdtemp(prefix="trailvault-bench-server-"))
    scratch.mkdir(parents=True, exist_ok=True)
    bodies = [orjson.dumps(ingest.body(i)) for i in range(BATCH)]
    print(f"# trailvault server benchmarks, {datetime.now(UTC):%Y-%m-%d}, {ingest.machine()}")

    progress("embedded baseline: 4 threads posting 1,000-event batches")
    embedded = embedded_bulk(scratch, bodies, args.seconds)
    progress("bulk NDJSON over HTTP: 4 connections, 1,000 events a request")
    bulk, bulk_server, bulk_client, bulk_run, kept = http_bulk(scratch, bodies, args.seconds)
    progress("single-event posts over HTTP: 64 connections")
    single, single_server, single_client, single_run = http_single(scratch, bodies[0], args.seconds)
    progress("filtered listing over HTTP")
    timings, list_server, list_client = http_listing(scratch, args.listing_events, audit_reads=True)
    quiet, _, _ = http_listing(scratch, args.listing_events, audit_reads=False)
    progress("noisy neighbour: app a's listing beside app b's slow filters and verify")
    alone, loaded, neighbour = noisy_neighbour(scratch, 20_000 if args.quick else 100_000, 60 if args.quick else 205)

    def p(timings: list[float], q: int) -> float:
        return statistics.quantiles(timings, n=100)[q - 1]

    print()
    print("| measure | result | target | server CPU (cores) | client CPU (cores) |")
    print("|---|---|---|---|---|")
    print(
        f"| bulk NDJSON ingest, 1,000 events/request, 4 connections, durable | {bulk:,.0f} events/s "
        f"({bulk / embedded:.2f}x embedded) | ≥ 50,000/s and ≥ 0.5x | {bulk_server:.2f} | {bulk_client:.2f} |"
    )
    print(f"| embedded library (baseline), 1,000-event batches, 4 threads | {embedded:,.0f} events/s | | | |")
    print(
        f"| single-event posts, 64 connections, durable | {single:,.0f} events/s, "
        f"p50 {single_run.percentiles.get('50%', float('nan')):.1f} ms, "
        f"p99 {single_run.percentiles.get('99%', float('nan')):.1f} ms | ≥ 3,000/s, p99 ≤ 50 ms "
        f"| {single_server:.2f} | {single_client:.2f} |"
    )
    print(
        f"| filtered listing, first 100, 1-week window + user.email, {args.listing_events:,}-event vault, "
        f"reads recorded | p50 {statistics.median(timings):.1f} ms, p95 {p(timings, 95):.1f} ms | p95 ≤ 50 ms "
        f"| {list_server:.2f} | {list_client:.2f} |"
    )
    print(f"| the same, audit_reads = false | p50 {statistics.median(quiet):.1f} ms, p95 {p(quiet, 95):.1f} ms | | | |")
    shown = ", ".join(f"{count} × {status}" for status, count in sorted(neighbour.items()))
    print(
        f"| noisy neighbour: app a's listing (first 100) alone, then beside app b's 12 slow filters and "
        f"verify ({shown}) | alone p50 {statistics.median(alone):.1f} ms; beside b p50 "
        f"{statistics.median(loaded):.1f} ms, p95 {p(loaded, 95):.1f} ms, max {max(loaded):.0f} ms | | | |"
    )
    print()
    print(
        f"bulk: {bulk_run.requests:,} requests answered, {bulk_run.failed} failed, {kept:,} events kept "
        f"(kept ≥ answered x 1,000: {kept >= bulk_run.requests * BATCH}); single: {single_run.failed} failed; "
        f"server: trailvault serve, one process (uvicorn, uvloop, httptools); load: wrk, 2 threads"
    )


if __name__ == "__main__":
    main()
