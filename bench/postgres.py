"""PostgreSQL benchmarks: batched ingest, several writer processes at once, and listing in a large vault.

    TRAILVAULT_TEST_POSTGRES=$(scripts/test-postgres url) .venv/bin/python bench/postgres.py          # docs figures
    TRAILVAULT_TEST_POSTGRES=$(scripts/test-postgres url) .venv/bin/python bench/postgres.py --quick  # script check

TRAILVAULT_TEST_POSTGRES is a superuser URL of the server to measure (``make bench``
starts a throwaway one with scripts/test-postgres). Every vault gets a new database
of its own, dropped when its measure is done. Baselines are measured in the same run:
an embedded SQLite vault ingesting the same events the same way, and one writer
process posting what the several processes post together.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import secrets
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ingest
import orjson
import psycopg
from psycopg import sql

import trailvault

SERVER_VARIABLE = "TRAILVAULT_TEST_POSTGRES"
BATCH = 1000
#: The listing vault's layout, as bench/ingest.py's: 5 channels, two events a second.
CHANNELS = [f"channel{n}" for n in range(5)]
START_US = 1_700_000_000_000_000
STEP_US = 1_000_000 // 2
HOUR_US = 3_600_000_000
WEEK_US = 7 * 24 * HOUR_US


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def database(server: str) -> Iterator[str]:
    """A new, empty database on the server; yields its URL, then drops it (closing any connection left)."""
    name = f"trailvault_bench_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- batched ingest ----------------------------------------------------------------------


def postgres_batched(server: str, key: Path, bodies: list[dict[str, Any]]) -> float:
    """post_many of 1,000 events a call into a new PostgreSQL vault, as ingest.batched does into SQLite."""
    with database(server) as url, trailvault.open_vault(url, signing_key=key) as vault:
        vault.open("access", ingest.SCHEMA)
        started = time.perf_counter()
        for start in range(0, len(bodies), BATCH):
            vault.post_many("access", bodies[start : start + BATCH])
        return len(bodies) / (time.perf_counter() - started)


# -- writer processes --------------------------------------------------------------------


def write(url: str, key: str, first: int, count: int, barrier: Any, results: Any) -> None:
    """One writer process: open the vault, wait for the others, post ``count`` events 1,000 a call.

    Puts (started, finished) on ``results`` (``time.monotonic``, one clock for every
    process on Linux), or the traceback text when it failed.
    """
    try:
        bodies = [ingest.body(i) for i in range(first, first + count)]
        with trailvault.open_vault(url, create=False, signing_key=key) as vault:
            vault.open("access")
            barrier.wait(timeout=300)
            started = time.monotonic()
            for start in range(0, count, BATCH):
                vault.post_many("access", bodies[start : start + BATCH])
            finished = time.monotonic()
        results.put((started, finished))
    except BaseException:
        barrier.abort()
        results.put(traceback.format_exc())


class CpuSampler:
    """Samples the machine's busy CPU time (``/proc/stat``) ten times a second, to tell how
    many cores a run kept busy: client processes and PostgreSQL share this machine."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            with open("/proc/stat") as handle:
                fields = [int(value) for value in handle.readline().split()[1:]]
            idle = fields[3] + fields[4]
            self.samples.append((time.monotonic(), sum(fields) - idle, sum(fields)))
            self._stop.wait(0.1)

    def busy_cores(self, start: float, end: float) -> float:
        inside = [sample for sample in self.samples if start <= sample[0] <= end]
        if len(inside) < 2:
            return float("nan")
        (_, busy0, total0), (_, busy1, total1) = inside[0], inside[-1]
        return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)


def writers(server: str, key: Path, processes: int, per_process: int) -> tuple[float, float]:
    """Events/s of ``processes`` writer processes posting into one new vault at once, from their
    common start to the last one's finish, and the cores the machine kept busy meanwhile;
    then checks the vault (not timed)."""
    total = processes * per_process
    with database(server) as url:
        with trailvault.open_vault(url, signing_key=key) as vault:
            vault.open("access", ingest.SCHEMA)
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(processes)
        results = context.Queue()
        workers = [
            context.Process(target=write, args=(url, str(key), n * per_process, per_process, barrier, results))
            for n in range(processes)
        ]
        spans: list[Any] = []
        with CpuSampler() as cpu:
            for worker in workers:
                worker.start()
            while len(spans) < processes:
                try:
                    spans.append(results.get(timeout=5))
                except queue.Empty:
                    if not any(worker.is_alive() for worker in workers):
                        raise SystemExit("a writer process died without a report; see its output above") from None
            for worker in workers:
                worker.join()
        failures = [span for span in spans if isinstance(span, str)]
        if failures:
            raise SystemExit("a writer process failed:\n" + failures[0])
        first, last = min(started for started, _ in spans), max(finished for _, finished in spans)
        elapsed = last - first
        busy = cpu.busy_cores(first, last)
        with trailvault.open_vault(url, create=False, signing_key=key) as vault:
            report = vault.verify(jobs=2)
            size = vault._store.log_size()
        assert report.ok and report.entries == total and size == total, (report, size, total)
    return total / elapsed, busy


# -- listing -----------------------------------------------------------------------------


def fill(vault: trailvault.Vault, total: int, batch: int) -> float:
    """Post ``total`` events laid out as bench/ingest.py's listing vault, ``batch`` a call; return events/s.

    Each run of 1,000 consecutive times goes to the next channel in turn, as there;
    each channel's runs are gathered into calls of ``batch`` events.
    """
    template = [ingest.body(i) for i in range(BATCH)]
    waiting: dict[str, list[trailvault.NewEvent]] = {name: [] for name in CHANNELS}
    started = time.perf_counter()
    for offset in range(0, total, BATCH):
        name = CHANNELS[(offset // BATCH) % len(CHANNELS)]
        times = [datetime.fromtimestamp((START_US + (offset + i) * STEP_US) / 1e6, UTC) for i in range(BATCH)]
        waiting[name].extend(trailvault.NewEvent(item, time=at) for item, at in zip(template, times, strict=True))
        if len(waiting[name]) >= batch:
            vault.post_many(name, waiting[name])
            waiting[name] = []
        posted = offset + BATCH
        if posted % 1_000_000 == 0:
            progress(f"  listing vault: {posted:,} events, {posted / (time.perf_counter() - started):,.0f}/s")
    for name, items in waiting.items():
        if items:
            vault.post_many(name, items)
    return total / (time.perf_counter() - started)


def listing(vault: trailvault.Vault, total: int, window_us: int, *, filtered: bool) -> tuple[list[float], float]:
    """ms of 200 first pages (limit 100) of one channel in a window, as bench/ingest.py picks them; mean page size.

    ``filtered`` adds ``where`` on the indexed ``user.email`` (1 event in 1,000 of a channel).
    """
    span_us = total * STEP_US
    window_us = min(window_us, span_us)
    timings, sizes = [], []
    for n in range(200):
        window_start = START_US + (n * 7919 % 1000) * (span_us - window_us) // 1000
        where = {"user.email": f"user{n * 7919 % BATCH}@example.com"} if filtered else None
        began = time.perf_counter()
        page = vault.events(
            CHANNELS[n % len(CHANNELS)],
            time_from=datetime.fromtimestamp(window_start / 1e6, UTC),
            time_to=datetime.fromtimestamp((window_start + window_us) / 1e6, UTC),
            where=where,
            limit=100,
        )
        timings.append((time.perf_counter() - began) * 1000)
        assert filtered or len(page) == 100, len(page)
        sizes.append(len(page))
    return timings, statistics.mean(sizes)


def index_scans(url: str) -> dict[str, int]:
    """Index scans of the events table so far, by index name (the server's statistics)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE relname = 'events'")
        return {str(name): int(scans) for name, scans in rows}


def busiest_index(url: str, before: dict[str, int]) -> str:
    """The index that served most scans since ``before`` (statistics reach the view within a second or two)."""
    time.sleep(2)
    after = index_scans(url)
    used = {name: scans - before.get(name, 0) for name, scans in after.items()}
    name = max(used, key=lambda item: used[item])
    return f"{name} ({used[name]} scans)" if used[name] else "no index"


def summary(timings: list[float]) -> str:
    return f"median {statistics.median(timings):.2f} ms, p95 {statistics.quantiles(timings, n=20)[18]:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script works")
    parser.add_argument("--events", type=int, default=200_000, help="events for the batched ingest runs")
    parser.add_argument("--writers", type=int, default=4, help="writer processes posting at once")
    parser.add_argument("--writer-events", type=int, default=50_000, help="events each writer process posts")
    parser.add_argument("--listing-events", type=int, default=5_000_000, help="size of the listing vault")
    parser.add_argument("--listing-batch", type=int, default=10_000, help="events a call while filling it")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the ingest and writer runs")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument(
        "--parts", default="ingest,writers,listing", help="which measures to run (comma-separated; default: all)"
    )
    args = parser.parse_args()
    args.parts = set(args.parts.split(","))
    if args.quick:
        args.events, args.writer_events, args.listing_events, args.rounds = 20_000, 5_000, 200_000, 1
    server = os.environ.get(SERVER_VARIABLE)
    if not server:
        sys.exit(
            f"bench/postgres.py: set {SERVER_VARIABLE} to a PostgreSQL superuser URL, e.g. "
            f'{SERVER_VARIABLE}="$(scripts/test-postgres url)" after `scripts/test-postgres start` '
            "(`make bench` does both)"
        )

    scratch = tempfile.TemporaryDirectory(dir=args.dir)
    folder = Path(scratch.name)
    # A PostgreSQL vault's key would otherwise go to ~/.config/trailvault/keys/.
    os.environ["XDG_CONFIG_HOME"] = str(folder / "config")
    with psycopg.connect(server, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        server_version = str(row[0]).split()[0] if row else "unknown"
    machine = f"{ingest.machine()}, PostgreSQL {server_version} on the same machine"
    bodies = [ingest.body(i) for i in range(args.events)]
    size = sum(len(orjson.dumps(item)) for item in bodies[:1000]) / 1000
    rows: list[tuple[str, str, str, str, str]] = []

    def row(name: str, value: str, baseline: str, ratio: str, target: str) -> None:
        rows.append((name, value, baseline, ratio, target))
        progress(f"  {name}: {value}  [{baseline}] {ratio}")

    progress(f"machine: {machine}")
    # The disk and CPU drift from minute to minute, so the runs alternate and the medians are compared.
    sqlites, postgreses = [], []
    for attempt in range(args.rounds if "ingest" in args.parts else 0):
        round_folder = folder / f"round{attempt}"
        round_folder.mkdir()
        os.sync()
        sqlites.append(ingest.batched(round_folder, bodies, BATCH))
        os.sync()
        postgreses.append(postgres_batched(server, round_folder / "postgres.key", bodies))
        progress(f"  round {attempt}: SQLite {sqlites[-1]:,.0f}, PostgreSQL {postgreses[-1]:,.0f}")
    if "ingest" in args.parts:
        ours, embedded = statistics.median(postgreses), statistics.median(sqlites)
        ratios = sorted(p / s for p, s in zip(postgreses, sqlites, strict=True))
        row(
            f"post_many into PostgreSQL, 1,000 events a call, durable (median of {args.rounds})",
            f"{ours:,.0f} events/s",
            f"embedded SQLite vault, the same calls: {embedded:,.0f} events/s",
            f"{ours / embedded:.2f}x (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})",
            ">= 30,000 events/s and >= 0.3x SQLite",
        )

    if "writers" in args.parts:
        total = args.writers * args.writer_events
        ones, manys, one_busy, many_busy = [], [], [], []
        for attempt in range(args.rounds):
            os.sync()
            rate, busy = writers(server, folder / f"one{attempt}.key", 1, total)
            ones.append(rate)
            one_busy.append(busy)
            os.sync()
            rate, busy = writers(server, folder / f"many{attempt}.key", args.writers, args.writer_events)
            manys.append(rate)
            many_busy.append(busy)
            progress(
                f"  round {attempt}: 1 writer {ones[-1]:,.0f} ({one_busy[-1]:.2f} cores busy), "
                f"{args.writers} writers {manys[-1]:,.0f} ({many_busy[-1]:.2f} cores busy) (verified)"
            )
        one, many = statistics.median(ones), statistics.median(manys)
        ratios = sorted(m / o for m, o in zip(manys, ones, strict=True))
        cores = os.cpu_count() or 1
        ceiling = cores / statistics.median(one_busy)
        row(
            f"{args.writers} writer processes into one PostgreSQL vault, post_many of 1,000, "
            f"{args.writers} x {args.writer_events:,} events (median of {args.rounds})",
            f"{many:,.0f} events/s (verified: ok, log size {total:,}); "
            f"{statistics.median(many_busy):.2f} of {cores} cores busy",
            f"1 writer process posting the same {total:,} events: {one:,.0f} events/s, "
            f"{statistics.median(one_busy):.2f} of {cores} cores busy, so all {cores} cores allow at most "
            f"{ceiling:.2f}x",
            f"{many / one:.2f}x (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})",
            ">= 1.5x of 1 writer",
        )

    if "listing" in args.parts:
        with database(server) as url, trailvault.open_vault(url, signing_key=folder / "listing.key") as vault:
            for name in CHANNELS:
                vault.open(name, ingest.SCHEMA)
            build = fill(vault, args.listing_events, args.listing_batch)
            built = f"vault built at {build:,.0f} events/s ({args.listing_batch:,} a call)"
            before = index_scans(url)
            timings, _ = listing(vault, args.listing_events, HOUR_US, filtered=False)
            row(
                f"events list, first 100 of one channel in a 1-hour window, {args.listing_events:,}-event PostgreSQL "
                f"vault (5 channels), 200 windows",
                summary(timings),
                f"{built}; index used: {busiest_index(url, before)}",
                "",
                "(for information: bench/ingest.py's query)",
            )
            before = index_scans(url)
            timings, page = listing(vault, args.listing_events, WEEK_US, filtered=True)
            row(
                f"events list, first 100 of one channel in a 1-week window where user.email (indexed) = one of 1,000, "
                f"{args.listing_events:,}-event PostgreSQL vault, 200 windows",
                f"{summary(timings)}; {page:.0f} events a page on average",
                f"index used: {busiest_index(url, before)}",
                "",
                "median <= 30 ms",
            )

    date = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    print(f"\nMachine: {machine}. Date: {date}. Events of about {size:.0f} bytes (JSON).\n")
    print("| measure | trailvault | baseline (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    for name, value, baseline, ratio, target in rows:
        print(f"| {name} | {value} | {baseline} | {ratio} | {target} |")
    scratch.cleanup()


if __name__ == "__main__":
    main()
