"""verify archive on one long line: time and peak memory grow with the line, never with its square.

    .venv/bin/python bench/archive_line.py           # docs figures (lines of 16 to 400 MB)
    .venv/bin/python bench/archive_line.py --quick   # script check

A gzip file a few hundred KB long can unzip to one line of hundreds of MB. Each case is
verified in its own process (so its peak memory is its own; Linux only): a real one-event archive whose file is
replaced by a gzip of one line of the given size, its manifest's sha256 rewritten to match,
so verify reads the whole line. "entry" cases are a real event of that size, which verifies.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import trailvault
from trailvault.workflows.archive.verify import verify_archive


def _archive(folder: Path, body_bytes: int) -> str:
    """A one-event archive under ``folder`` (the body a string of ``body_bytes``); return the verifier key."""
    with trailvault.open_vault(folder / "vault", max_event_bytes=body_bytes + (1 << 20)) as vault:
        vault.open("blobs", {"fields": [{"name": "blob", "type": "STRING"}]})
        vault.post("blobs", {"blob": "x" * body_bytes})
        task = vault.batch_events_for_archiving("2000-01-01T00:00Z", "2100-01-01T00:00Z", wait=True)
        (batch,) = vault.get_batch_events_for_archiving_status(task).batches
        vault.write_archive_batch(batch.archive_id, str(folder / "archives"))
        return vault.verifier_key()


def _replace_with_one_line(archives: Path, line_bytes: int) -> None:
    """Put one line of ``line_bytes`` in place of the archive file, and its sha256 in the manifest."""
    (manifest_path,) = archives.glob("*.manifest.json")
    manifest = json.loads(manifest_path.read_bytes())
    path = archives / manifest["file"]
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as handle:
        for _ in range(line_bytes >> 20):
            handle.write(b"y" * (1 << 20))
    manifest["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


def _prepare(folder: Path, kind: str, megabytes: int) -> str:
    """The archive folder of a case; return the verifier key."""
    key = _archive(folder, (megabytes << 20) if kind == "entry" else 10)
    if kind == "line":
        _replace_with_one_line(folder / "archives", megabytes << 20)
    return key


def _verify(archives: Path, key: str) -> dict[str, object]:
    """verify archive of the folder, in this process: seconds, peak memory, the first finding."""
    started = time.perf_counter()
    report = verify_archive(archives, key)
    elapsed = time.perf_counter() - started
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent that started this process.
    status = Path("/proc/self/status").read_text()
    peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) >> 10
    finding = (report.problems or [""])[0].split(": ", 1)[-1][:110]
    return {"seconds": elapsed, "peak_mb": peak, "ok": report.ok, "problem": finding}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script works")
    parser.add_argument("--verify", nargs=2, metavar=("FOLDER", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.verify:
        print(json.dumps(_verify(Path(args.verify[0]), args.verify[1])))
        return
    cases = [("entry", 1), ("line", 8)] if args.quick else [
        ("entry", 16), ("entry", 48), ("line", 100), ("line", 200), ("line", 400), ("line", 800),
    ]  # fmt: skip
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\nverify archive of one long line, {stamp}\n")
    print("| line | gzip file | seconds | peak memory | ok | finding |")
    print("|---|---|---|---|---|---|")
    for kind, megabytes in cases:
        folder = Path(tempfile.mkdtemp(prefix="trailvault-bench-line-"))
        try:
            key = _prepare(folder, kind, megabytes)
            gzipped = sum(path.stat().st_size for path in (folder / "archives").glob("*.json.gz"))
            child = subprocess.run(
                [sys.executable, __file__, "--verify", str(folder / "archives"), key],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        result = json.loads(child.stdout)
        print(
            f"| {kind} of {megabytes} MB | {gzipped >> 10:,} KB | {result['seconds']:.2f} | "
            f"{result['peak_mb']:,} MB | {result['ok']} | {result['problem']} |"
        )


if __name__ == "__main__":
    main()
