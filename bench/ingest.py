"""Ingest and listing benchmarks for the embedded vault, with their baselines in the same run.

    .venv/bin/python bench/ingest.py             # the figures of docs/benchmarks.md
    .venv/bin/python bench/ingest.py --quick     # a smaller run, to check the script

Prints a Markdown table: each figure, its baseline measured in this run, the ratio
and the target from the issue. Durable means synchronous=FULL: every commit is
on disk when the call returns.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import uuid_utils

import trailvault
from trailvault.adapters.store.sqlite.migrations import MIGRATIONS
from trailvault.core.event import PendingEvent
from trailvault.core.integrity.log import entry_leaf
from trailvault.core.integrity.tiles import append_leaves, partial_tiles

SCHEMA = {
    "fields": [
        {"name": "type", "type": "STRING", "mode": "REQUIRED"},
        {"name": "message", "type": "STRING"},
        {
            "name": "http_request",
            "type": "RECORD",
            "fields": [
                {"name": "method", "type": "STRING"},
                {"name": "url", "type": "STRING"},
                {"name": "user_agent", "type": "STRING"},
            ],
        },
        {
            "name": "http_response",
            "type": "RECORD",
            "fields": [{"name": "status_code", "type": "INTEGER"}, {"name": "reason", "type": "STRING"}],
        },
        {
            "name": "user",
            "type": "RECORD",
            "fields": [
                {"name": "authenticated", "type": "BOOLEAN"},
                {"name": "email", "type": "STRING", "index": True},
                {"name": "roles", "type": "STRING", "mode": "REPEATED"},
                {"name": "ip", "type": "STRING"},
                {
                    "name": "provider",
                    "type": "RECORD",
                    "fields": [{"name": "name", "type": "STRING"}, {"name": "realm", "type": "STRING"}],
                },
            ],
        },
        {
            "name": "filter",
            "type": "RECORD",
            "fields": [
                {"name": "object", "type": "STRING"},
                {
                    "name": "kwargs",
                    "type": "RECORD",
                    "fields": [{"name": "id", "type": "STRING"}, {"name": "status", "type": "STRING"}],
                },
            ],
        },
        {"name": "results", "type": "STRING", "mode": "REPEATED"},
    ]
}


def body(i: int) -> dict[str, Any]:
    """A realistic access-audit event of about 600 bytes (datapunt AuditLogger's shape)."""
    return {
        "type": "INFO",
        "message": f"Retrieve Order {i} for customer {i * 7 % 100_000} in region eu-west-1",
        "http_request": {
            "method": "GET",
            "url": f"https://api.example.com/v1/orders/{i}?include=items,customer",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
        },
        "http_response": {"status_code": 200, "reason": "OK"},
        "user": {
            "authenticated": True,
            "email": f"user{i % 5000}@example.com",
            "roles": ["auditor", "orders-read"],
            "ip": f"10.{i % 256}.{i // 256 % 256}.7",
            "provider": {"name": "keycloak", "realm": "corp"},
        },
        "filter": {"object": "Order", "kwargs": {"id": str(i), "status": "open"}},
        "results": [f"order:{i}", f"customer:{i * 7 % 100_000}"],
    }


# -- baselines -----------------------------------------------------------------------


def raw_sqlite(path: Path, bodies: list[dict[str, Any]], batch: int) -> float:
    """The same rows trailvault writes, computed beforehand, executemany'd into its own tables.

    Events go into a table with trailvault's DDL and indexes (and the same body index),
    and the Merkle tiles of each batch into its tile table: only SQLite's work is timed.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for migration in MIGRATIONS:
        for statement in migration.statements:
            if "TRIGGER" not in statement:
                conn.execute(statement)
    conn.execute(
        'CREATE INDEX body_email ON events (channel_key, json_extract(body, \'$."user"."email"\'), time) '
        'WHERE json_extract(body, \'$."user"."email"\') IS NOT NULL'
    )
    now = time.time_ns() // 1000
    batches = []
    tiles: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(bodies), batch):
        rows, leaves = [], []
        for seq, item in enumerate(bodies[start : start + batch], start + 1):
            text = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
            digest = hashlib.sha256(text).digest()
            pending = PendingEvent(str(uuid_utils.uuid7()), "default", "access", now, now, text.decode(), digest, None)
            rows.append((seq, pending.id, 1, 1, now, now, pending.body_json, digest, None))
            leaves.append(entry_leaf(pending, seq, digest))
        written = append_leaves(start, leaves, {key: tiles[key] for key in partial_tiles(start)})
        tiles.update(written)
        batches.append((rows, [(level, idx, blob) for (level, idx), blob in written.items()]))
    started = time.perf_counter()
    for rows, tile_rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany(
            "INSERT INTO merkle_tiles VALUES (?, ?, ?) ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes",
            tile_rows,
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(bodies) / elapsed


def datapunt(path: Path, count: int) -> float:
    """datapunt-audit-log's AuditLogger builder, its handler writing JSON lines to a file."""
    from audit_log.logger import AuditLogger

    class FileAuditLogger(AuditLogger):  # type: ignore[misc]
        def get_logger_name(self) -> str:
            return "audit_log_bench"

        def get_log_handler(self) -> logging.Handler:
            return logging.FileHandler(path)

    started = time.perf_counter()
    for i in range(count):
        item = body(i)
        (
            FileAuditLogger()
            .set_http_request(
                method="GET", url=item["http_request"]["url"], user_agent=item["http_request"]["user_agent"]
            )
            .set_http_response(status_code=200, reason="OK")
            .set_user(
                authenticated=True,
                provider="keycloak",
                email=item["user"]["email"],
                roles=item["user"]["roles"],
                ip=item["user"]["ip"],
                realm="corp",
            )
            .set_filter(object_name="Order", kwargs=item["filter"]["kwargs"])
            .set_results(item["results"])
            .info(item["message"])
            .send_log()
        )
    elapsed = time.perf_counter() - started
    for handler in logging.getLogger("audit_log_bench").handlers:
        handler.close()
    return count / elapsed


def fsync_rate(folder: Path, count: int = 1000) -> float:
    """How many 4 KiB write + fdatasync pairs this disk does per second (the floor of durable commits)."""
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"\0" * (1 << 20))
    os.fsync(fd)
    started = time.perf_counter()
    for i in range(count):
        os.pwrite(fd, b"x" * 4096, (i % 256) * 4096)
        os.fdatasync(fd)
    elapsed = time.perf_counter() - started
    os.close(fd)
    path.unlink()
    return count / elapsed


def handoff_rate(threads: int = 8, rounds: int = 2000) -> float:
    """Round trips/s of bare thread hand-offs: each of ``threads`` threads queues a request
    and waits until one serving thread answers it. No work at all: the floor of any
    one-request-per-call design in CPython on this machine."""
    pending: list[threading.Event | None] = []
    changed = threading.Condition()

    def serve() -> None:
        nonlocal pending
        while True:
            with changed:
                while not pending:
                    changed.wait()
                taken, pending = pending, []
            for event in taken:
                if event is None:
                    return
                event.set()

    def ask() -> None:
        for _ in range(rounds):
            answered = threading.Event()
            with changed:
                pending.append(answered)
                changed.notify()
            answered.wait()

    server = threading.Thread(target=serve)
    server.start()
    askers = [threading.Thread(target=ask) for _ in range(threads)]
    started = time.perf_counter()
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    elapsed = time.perf_counter() - started
    with changed:
        pending.append(None)
        changed.notify()
    server.join()
    return threads * rounds / elapsed


# -- trailvault ------------------------------------------------------------------------


def fresh_vault(folder: Path, name: str, **options: Any) -> trailvault.Vault:
    vault = trailvault.open_vault(folder / name, **options)
    vault.open("access", SCHEMA)
    return vault


def batched(folder: Path, bodies: list[dict[str, Any]], batch: int) -> float:
    with fresh_vault(folder, "batched") as vault:
        started = time.perf_counter()
        for start in range(0, len(bodies), batch):
            vault.post_many("access", bodies[start : start + batch])
        return len(bodies) / (time.perf_counter() - started)


def single(folder: Path, name: str, count: int, threads: int, **options: Any) -> tuple[float, float, float]:
    """Events/s, p99 latency (ms) and posts per transaction of one-event posts from ``threads`` threads."""
    with fresh_vault(folder, name, **options) as vault:
        bodies = [body(i) for i in range(count)]
        latencies: list[float] = []
        share = count // threads

        def work(part: int) -> None:
            mine = []
            for item in bodies[part * share : (part + 1) * share]:
                started = time.perf_counter()
                vault.post("access", item)
                mine.append(time.perf_counter() - started)
            latencies.extend(mine)

        workers = [threading.Thread(target=work, args=(part,)) for part in range(threads)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        p99 = statistics.quantiles(latencies, n=100)[98] * 1000
        committer = vault._committer
        return share * threads / elapsed, p99, committer.batches / max(committer.transactions, 1)


def listing(folder: Path, total: int, channels: int = 5) -> tuple[float, float, float]:
    """Build a ``total``-event vault over ``channels`` channels; return (build rate, median ms, p95 ms)."""
    vault = trailvault.open_vault(folder / "listing")
    names = [f"channel{n}" for n in range(channels)]
    for name in names:
        vault.open(name, SCHEMA)
    start_us = 1_700_000_000_000_000
    step_us = 1_000_000 // 2  # two events a second across the vault
    batch = 1000
    template = [body(i) for i in range(batch)]
    started = time.perf_counter()
    for offset in range(0, total, batch):
        items = [
            trailvault.NewEvent(
                template[i], time=datetime.fromtimestamp((start_us + (offset + i) * step_us) / 1e6, UTC)
            )
            for i in range(batch)
        ]
        vault.post_many(names[(offset // batch) % channels], items)
    build_rate = total / (time.perf_counter() - started)
    span_us = total * step_us
    timings = []
    for n in range(200):
        window_start = start_us + (n * 7919 % 1000) * (span_us - 3_600_000_000) // 1000
        began = time.perf_counter()
        page = vault.events(
            names[n % channels],
            time_from=datetime.fromtimestamp(window_start / 1e6, UTC),
            time_to=datetime.fromtimestamp((window_start + 3_600_000_000) / 1e6, UTC),
            limit=100,
        )
        timings.append((time.perf_counter() - began) * 1000)
        assert len(page) == 100, len(page)
    vault.close()
    return build_rate, statistics.median(timings), statistics.quantiles(timings, n=20)[18]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script works")
    parser.add_argument("--events", type=int, default=200_000, help="events for the batched ingest runs")
    parser.add_argument("--listing-events", type=int, default=5_000_000, help="size of the listing vault")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the batched runs")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    if args.quick:
        args.events, args.listing_events, args.rounds = 20_000, 100_000, 1
    single_count = 4_000 if args.quick else 20_000

    scratch = tempfile.TemporaryDirectory(dir=args.dir)
    folder = Path(scratch.name)
    bodies = [body(i) for i in range(args.events)]
    size = sum(len(orjson.dumps(item)) for item in bodies[:1000]) / 1000
    rows: list[tuple[str, str, str, str, str]] = []

    def row(name: str, value: str, baseline: str, ratio: str, target: str) -> None:
        rows.append((name, value, baseline, ratio, target))
        print(f"  {name}: {value}  [{baseline}] {ratio}", file=sys.stderr, flush=True)

    print(f"machine: {machine()}; events of {size:.0f} bytes", file=sys.stderr)
    # This VM's disk and CPU drift by up to 2x from minute to minute, so the runs
    # alternate and the medians are compared.
    raws, dps, ourss = [], [], []
    for attempt in range(args.rounds):
        round_folder = folder / f"round{attempt}"
        round_folder.mkdir()
        # os.sync() before each run: one run's dirty pages must not slow the next run's fsyncs.
        dps.append(datapunt(round_folder / "datapunt.log", min(args.events, 100_000)))
        os.sync()
        raws.append(raw_sqlite(round_folder / "raw.sqlite3", bodies, 1000))
        os.sync()
        ourss.append(batched(round_folder, bodies, 1000))
        os.sync()
        print(
            f"  round {attempt}: raw {raws[-1]:,.0f}, datapunt {dps[-1]:,.0f}, trailvault {ourss[-1]:,.0f}",
            file=sys.stderr,
        )
    raw, dp, ours = statistics.median(raws), statistics.median(dps), statistics.median(ourss)
    ratios = sorted(o / r for o, r in zip(ourss, raws, strict=True))
    row(
        f"post_many, 1,000 events a call, durable (median of {args.rounds})",
        f"{ours:,.0f} events/s",
        f"raw executemany of the same event and tile rows: {raw:,.0f} events/s",
        f"{ours / raw:.2f}x (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})",
        ">= 0.7x",
    )
    row(
        "post_many vs datapunt AuditLogger to a file",
        f"{ours:,.0f} events/s",
        f"datapunt {dp:,.0f} events/s",
        f"{ours / dp:.2f}x",
        ">= 2.5x",
    )
    floor = fsync_rate(folder)
    one, one_p99, _ = single(folder, "single1", single_count, 1)
    row(
        "post, 1 thread, durable",
        f"{one:,.0f} events/s (p99 {one_p99:.2f} ms)",
        f"disk: {floor:,.0f} fdatasync/s",
        f"{one / floor:.2f}x of the disk's sync rate",
        ">= 4,000 events/s",
    )
    eight, eight_p99, per_transaction = single(folder, "single8", single_count, 8)
    handoffs = handoff_rate()
    row(
        "post, 8 threads, durable (group commit)",
        f"{eight:,.0f} events/s (p99 {eight_p99:.2f} ms, {per_transaction:.1f} posts a transaction)",
        f"1 thread: {one:,.0f} events/s; bare 8-thread hand-offs: {handoffs:,.0f}/s",
        f"{eight / one:.2f}x of 1 thread, {eight / handoffs:.2f}x of the hand-off floor",
        ">= 15,000 events/s",
    )
    relaxed, relaxed_p99, _ = single(folder, "normal1", single_count, 1, durability="normal")
    relaxed8, _, _ = single(folder, "normal8", single_count, 8, durability="normal")
    row(
        "post, 1 thread, durability=normal",
        f"{relaxed:,.0f} events/s (p99 {relaxed_p99:.2f} ms)",
        f"durable: {one:,.0f} events/s",
        f"{relaxed / one:.2f}x",
        "(for information)",
    )
    row(
        "post, 8 threads, durability=normal",
        f"{relaxed8:,.0f} events/s",
        f"durable: {eight:,.0f} events/s",
        f"{relaxed8 / eight:.2f}x",
        "(for information: the bound without disk syncs)",
    )
    build, median, p95 = listing(folder, args.listing_events)
    row(
        f"events list, first 100 of one channel in a 1-hour window, {args.listing_events:,}-event vault",
        f"median {median:.2f} ms, p95 {p95:.2f} ms",
        f"vault built at {build:,.0f} events/s",
        "",
        "median <= 20 ms",
    )

    print(f"\nMachine: {machine()}. Date: {datetime.now(UTC):%Y-%m-%d}. Events of about {size:.0f} bytes (JSON).\n")
    print("| measure | trailvault | baseline (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    for name, value, baseline, ratio, target in rows:
        print(f"| {name} | {value} | {baseline} | {ratio} | {target} |")
    scratch.cleanup()


if __name__ == "__main__":
    main()
