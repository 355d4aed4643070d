"""Take-out benchmarks: export to Parquet, CSV and JSONL.gz, memory of large exports, verify export.

    .venv/bin/python bench/takeout.py           # docs figures (2 million events; RSS at 1 and 5 million)
    .venv/bin/python bench/takeout.py --quick   # script check

Baselines, measured in the same run on the same vault file: the original download tool's
stack, ``pandas.read_sql`` of the events table then ``DataFrame.to_parquet`` with
fastparquet, and ``pandas.read_sql`` then ``DataFrame.to_csv``. Each round runs a baseline
right before the export it is compared with (this VM drifts between minutes); the table
shows medians over the rounds. Peak RSS is read from
/proc (VmHWM) in a fresh process per export, so each figure is that export's alone.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import ingest

import trailvault
from trailvault.workflows.export.verify import verify_export

BATCH = 1000


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build(path: Path, total: int) -> None:
    """A vault of ``total`` access events in one channel (not timed; kept between runs)."""
    with trailvault.open_vault(path, durability="normal") as vault:
        vault.open("access", ingest.SCHEMA)
        have = vault.log_size()
        bodies = [ingest.body(i) for i in range(BATCH)]
        for done in range(have, total, BATCH):
            vault.post_many("access", bodies[: min(BATCH, total - done)])
            if (done + BATCH) % 1_000_000 == 0:
                progress(f"  {done + BATCH:,} events")


def baseline(path: Path, count: int, out: Path, writer: str) -> float:
    """Events/s of read_sql then fastparquet (``writer`` parquet) or to_csv, over the first ``count`` events."""
    import pandas as pd

    conn = sqlite3.connect(path / "vault.sqlite3")
    started = time.perf_counter()
    frame = pd.read_sql(
        "SELECT seq, id, time, received, body FROM events WHERE seq <= ? ORDER BY seq", conn, params=(count,)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if writer == "parquet":
            frame.to_parquet(out / "baseline.parquet", engine="fastparquet")
        else:
            frame.to_csv(out / "baseline.csv", index=False)
    rate = len(frame) / (time.perf_counter() - started)
    conn.close()
    return rate


def export_rate(path: Path, count: int, fmt: str, out: Path) -> float:
    """Events/s of ``vault.export`` of the first ``count`` events in one format."""
    shutil.rmtree(out, ignore_errors=True)
    with trailvault.open_vault(path) as vault:
        started = time.perf_counter()
        manifest = vault.export(out, filter=f"seq le {count}", formats=fmt)
        return float(manifest["count"] / (time.perf_counter() - started))


def verify_rate(path: Path, out: Path) -> float:
    """Events/s of verify export of the folder ``out``."""
    with trailvault.open_vault(path) as vault:
        key = vault.verifier_key()
    started = time.perf_counter()
    report = verify_export(out, key)
    assert report.ok, report.problems
    return report.events / (time.perf_counter() - started)


# The export's own peak plus its page reader's (a child process, run for long exports
# from SQLite). The reader's VmHWM is sampled while it runs: ru_maxrss of children would
# count this process's memory at the moment it started the child (Linux keeps the
# high-water mark of the memory image the child replaced with exec).
_RSS_CHILD = """
import glob, shutil, sys, threading, time
import trailvault

def high_water(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0

readers = {}
done = threading.Event()
def watch():
    while not done.is_set():
        for listing in glob.glob("/proc/self/task/*/children"):
            try:
                pids = open(listing).read().split()
            except OSError:  # the thread ended in between
                continue
            for pid in pids:
                readers[pid] = max(readers.get(pid, 0), high_water(pid))
        time.sleep(0.02)

watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
shutil.rmtree(sys.argv[2], ignore_errors=True)
with trailvault.open_vault(sys.argv[1]) as vault:
    vault.export(sys.argv[2], filter=f"seq le {sys.argv[3]}", formats=sys.argv[4])
done.set()
watcher.join()
print((high_water("self") + sum(readers.values())) // 1024)
"""


def peak_rss(path: Path, count: int, out: Path, formats: str) -> int:
    """Peak RSS (MB) of a fresh process exporting the first ``count`` events, its page reader's added."""
    run = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(path), str(out), str(count), formats],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script works")
    parser.add_argument("--events", type=int, default=2_000_000, help="events exported for the rates")
    parser.add_argument("--large", type=int, default=5_000_000, help="events of the large export (RSS)")
    parser.add_argument("--small", type=int, default=1_000_000, help="events of the small export (RSS)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of baseline-then-export (medians shown)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (keeps the vault between runs)")
    args = parser.parse_args()
    if args.quick:
        args.events, args.large, args.small, args.rounds = 50_000, 100_000, 20_000, 1
    scratch = args.dir or Path(tempfile.mkdtemp(prefix="trailvault-bench-takeout-"))
    scratch.mkdir(parents=True, exist_ok=True)
    vault = scratch / "vault"
    progress(f"building a {args.large:,}-event vault (not timed)")
    build(vault, max(args.large, args.events))
    print(f"# trailvault take-out benchmarks, {datetime.now(UTC):%Y-%m-%d}, {ingest.machine()}")

    # This VM's speed drifts by a third between minutes: each round runs a baseline right
    # before the export it is compared with, and the table shows each measure's median.
    measured: dict[str, list[float]] = {name: [] for name in ("fastparquet", "parquet", "to_csv", "csv", "jsonl.gz")}
    for round_number in range(1, args.rounds + 1):
        for base, fmt in (("fastparquet", "parquet"), ("to_csv", "csv"), (None, "jsonl.gz")):
            if base is not None:
                progress(f"round {round_number}: baseline {base}")
                measured[base].append(baseline(vault, args.events, scratch, fmt))
            progress(f"round {round_number}: export {fmt}")
            measured[fmt].append(export_rate(vault, args.events, fmt, scratch / f"out-{fmt}"))
    rates = {name: statistics.median(values) for name, values in measured.items()}
    base_parquet, base_csv = rates["fastparquet"], rates["to_csv"]
    progress("verify export of each format")
    checked = {fmt: verify_rate(vault, scratch / f"out-{fmt}") for fmt in ("jsonl.gz", "parquet", "csv")}
    progress("peak RSS of exports in fresh processes")
    small = peak_rss(vault, args.small, scratch / "rss-small", "parquet,csv,jsonl.gz")
    large = peak_rss(vault, args.large, scratch / "rss-large", "parquet,csv,jsonl.gz")

    print()
    print("| measure | trailvault | baseline (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| Parquet export, {args.events:,} events | {rates['parquet']:,.0f} events/s | read_sql + fastparquet: "
        f"{base_parquet:,.0f}/s | {rates['parquet'] / base_parquet:.2f}x | >= 1.5x |"
    )
    print(
        f"| CSV export, {args.events:,} events | {rates['csv']:,.0f} events/s | read_sql + to_csv: "
        f"{base_csv:,.0f}/s | {rates['csv'] / base_csv:.2f}x | >= 3x |"
    )
    print(f"| JSONL.gz export, {args.events:,} events | {rates['jsonl.gz']:,.0f} events/s | | | >= 70,000/s |")
    print(
        f"| peak RSS, all three formats, {args.large:,} events | {large} MB | {args.small:,} events: {small} MB "
        f"| {large / small:.2f}x | <= 400 MB and <= 1.2x |"
    )
    print(
        f"| verify export (JSONL.gz / Parquet / CSV), {args.events:,} events | "
        f"{checked['jsonl.gz']:,.0f} / {checked['parquet']:,.0f} / {checked['csv']:,.0f} events/s | | | "
        "(for information; verify archive >= 300,000/s is for archives) |"
    )


if __name__ == "__main__":
    main()
