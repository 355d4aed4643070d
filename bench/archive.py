"""Archiving benchmarks: batching, writing JSONL.gz archive files, verify archive, purge.

    .venv/bin/python bench/archive.py           # docs figures (1 million events, batches of 250,000)
    .venv/bin/python bench/archive.py --quick   # script check

Targets (issue 6): writing archives at least 70,000 events/s; ``verify archive`` at least
300,000 events/s. Measured in the same run, as the least work each must do: gzip of the
same lines (writing), and gunzip plus one SHA-256 a line (verifying).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from takeout import build, progress

import trailvault
from trailvault.core.batches import ArchiveSettings
from trailvault.workflows.archive.verify import verify_archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script works")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=250_000, help="max_batch_events")
    args = parser.parse_args()
    total, batch_size = (20_000, 5_000) if args.quick else (args.events, args.batch)
    scratch = Path(tempfile.mkdtemp(prefix="trailvault-bench-archive-"))
    try:
        progress(f"building a vault of {total:,} events")
        build(scratch / "vault", total)
        settings = ArchiveSettings(max_batch_events=batch_size, retention=0)
        rows: list[tuple[str, float, str]] = []
        with trailvault.open_vault(scratch / "vault", archive=settings) as vault:
            started = time.perf_counter()
            task = vault.get_batch_events_for_archiving_status(
                vault.batch_events_for_archiving("2000-01-01T00:00Z", "2100-01-01T00:00Z", wait=True)
            )
            rows.append(("batch-events-for-archiving", total / (time.perf_counter() - started), ""))
            out = scratch / "archives"
            started = time.perf_counter()
            files = [vault.write_archive_batch(batch.archive_id, str(out)) for batch in task.batches]
            rows.append(("write archives (JSONL.gz + manifest)", total / (time.perf_counter() - started), ">= 70,000"))
            lines = [
                line
                for path in sorted(out.glob("*.json.gz"))
                for line in gzip.decompress(path.read_bytes()).splitlines()
            ]
            started = time.perf_counter()
            for start in range(0, len(lines), batch_size):
                gzip.compress(b"\n".join(lines[start : start + batch_size]), compresslevel=6, mtime=0)
            rows.append(("  least work: gzip of the same lines", total / (time.perf_counter() - started), "baseline"))
            key = vault.verifier_key()
            for jobs in (1, 2):
                started = time.perf_counter()
                report = verify_archive(out, key, jobs=jobs)
                elapsed = time.perf_counter() - started
                assert report.ok and report.events == total, report.problems
                rows.append(
                    (f"verify archive, {jobs} process{'es' if jobs > 1 else ''}", total / elapsed, ">= 300,000")
                )
            started = time.perf_counter()
            for path in sorted(out.glob("*.json.gz")):
                for line in gzip.decompress(path.read_bytes()).splitlines():
                    hashlib.sha256(line).digest()
            rows.append(
                ("  least work: gunzip + one SHA-256 a line", total / (time.perf_counter() - started), "baseline")
            )
            vault.mark_archive_batches_as_successful([archive.manifest["archiveId"] for archive in files])
            started = time.perf_counter()
            purged = vault.purge().purged
            rows.append(("purge", purged / (time.perf_counter() - started), ""))
            started = time.perf_counter()
            assert vault.verify().ok
            rows.append(("verify the vault after purge", total / (time.perf_counter() - started), ""))
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(f"\narchiving, {total:,} events, batches of {batch_size:,}, {os.cpu_count()} CPUs, {stamp}\n")
        print(f"| {'measure':<44} | {'events/s':>10} | {'target':<11} |")
        print(f"|{'-' * 46}|{'-' * 12}|{'-' * 13}|")
        for name, rate, target in rows:
            print(f"| {name:<44} | {rate:>10,.0f} | {target:<11} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
