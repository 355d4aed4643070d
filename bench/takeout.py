"""Take-out benchmarks: export to Parquet, CSV and JSONL.gz, memory of large exports, verify export.

    .venv/bin/python bench/takeout.py           # docs figures (2 million events; RSS at 1 and 5 million)
    .venv/bin/python bench/takeout.py --quick   # script check

Baselines, measured in the same run on the same vault file: the original download tool's
stack, ``pandas.read_sql`` of the events table then ``DataFrame.to_parquet`` with
fastparquet, and ``pandas.read_sql`` then ``DataFrame.to_csv``. Peak RSS is read from
/proc (VmHWM) in a fresh process per export, so each figure is that export's alone.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import ingest

import trailvault
from trailvault.export import verify_export

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


def baselines(path: Path, count: int, out: Path) -> tuple[float, float]:
    """Events/s of read_sql + fastparquet, and of read_sql + to_csv, over the first ``count`` events."""
    import pandas as pd

    rates = []
    for writer in ("parquet", "csv"):
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
        rates.append(len(frame) / (time.perf_counter() - started))
        conn.close()
        del frame
    return rates[0], rates[1]


def export_rate(path: Path, count: int, fmt: str, out: Path) -> tuple[float, float]:
    """Events/s of ``vault.export`` of the first ``count`` events in one format; then verify export's rate."""
    shutil.rmtree(out, ignore_errors=True)
    with trailvault.open_vault(path) as vault:
        started = time.perf_counter()
        manifest = vault.export(out, filter=f"seq le {count}", formats=fmt)
        rate = manifest["count"] / (time.perf_counter() - started)
        key = vault.verifier_key()
    started = time.perf_counter()
    report = verify_export(out, key)
    checked = report.events / (time.perf_counter() - started)
    assert report.ok and report.events == manifest["count"], report.problems
    return rate, checked


_RSS_CHILD = """
import sys, shutil
import trailvault
shutil.rmtree(sys.argv[2], ignore_errors=True)
with trailvault.open_vault(sys.argv[1]) as vault:
    vault.export(sys.argv[2], filter=f"seq le {sys.argv[3]}", formats=sys.argv[4])
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) // 1024)
"""


def peak_rss(path: Path, count: int, out: Path, formats: str) -> int:
    """Peak RSS (MB) of a fresh process exporting the first ``count`` events."""
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
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (keeps the vault between runs)")
    args = parser.parse_args()
    if args.quick:
        args.events, args.large, args.small = 50_000, 100_000, 20_000
    scratch = args.dir or Path(tempfile.mkdtemp(prefix="trailvault-bench-takeout-"))
    scratch.mkdir(parents=True, exist_ok=True)
    vault = scratch / "vault"
    progress(f"building a {args.large:,}-event vault (not timed)")
    build(vault, max(args.large, args.events))
    print(f"# trailvault take-out benchmarks, {datetime.now(UTC):%Y-%m-%d}, {ingest.machine()}")

    progress("baselines: pandas.read_sql + fastparquet, pandas.read_sql + to_csv")
    base_parquet, base_csv = baselines(vault, args.events, scratch)
    rates = {}
    for fmt in ("parquet", "csv", "jsonl.gz"):
        progress(f"export {fmt}")
        rates[fmt] = export_rate(vault, args.events, fmt, scratch / f"out-{fmt}")
    progress("peak RSS of exports in fresh processes")
    small = peak_rss(vault, args.small, scratch / "rss-small", "parquet,csv,jsonl.gz")
    large = peak_rss(vault, args.large, scratch / "rss-large", "parquet,csv,jsonl.gz")

    print()
    print("| measure | trailvault | baseline (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| Parquet export, {args.events:,} events | {rates['parquet'][0]:,.0f} events/s | read_sql + fastparquet: "
        f"{base_parquet:,.0f}/s | {rates['parquet'][0] / base_parquet:.2f}x | >= 1.5x |"
    )
    print(
        f"| CSV export, {args.events:,} events | {rates['csv'][0]:,.0f} events/s | read_sql + to_csv: "
        f"{base_csv:,.0f}/s | {rates['csv'][0] / base_csv:.2f}x | >= 3x |"
    )
    print(f"| JSONL.gz export, {args.events:,} events | {rates['jsonl.gz'][0]:,.0f} events/s | | | >= 70,000/s |")
    print(
        f"| peak RSS, all three formats, {args.large:,} events | {large} MB | {args.small:,} events: {small} MB "
        f"| {large / small:.2f}x | <= 400 MB and <= 1.2x |"
    )
    print(
        f"| verify export (JSONL.gz / Parquet / CSV), {args.events:,} events | "
        f"{rates['jsonl.gz'][1]:,.0f} / {rates['parquet'][1]:,.0f} / {rates['csv'][1]:,.0f} events/s | | | "
        "(for information; verify archive >= 300,000/s is for archives) |"
    )


if __name__ == "__main__":
    main()
