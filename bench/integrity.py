"""Integrity benchmarks: ingest with and without the tree, verify, proofs, and time to a signed checkpoint.

    .venv/bin/python bench/integrity.py            # the figures of docs/benchmarks.md
    .venv/bin/python bench/integrity.py --quick    # a smaller run, to check the script

Baselines are measured in the same run: ingest with integrity off (no leaves, no tiles,
no checkpoints) and a bare hashlib.sha256 loop over the same canonical entries.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import ingest

import trailvault
import trailvault.adapters.store.admission as admission
import trailvault.adapters.store.sqlite.store as sqlite_store
from trailvault.adapters.store.base import Store, StoredCheckpoint
from trailvault.core.event import canonical_entry
from trailvault.core.integrity.checkpoint import open_checkpoint, sign_checkpoint
from trailvault.core.integrity.merkle import verify_inclusion
from trailvault.core.integrity.note import Verifier
from trailvault.workflows.vault.checkpointer import tree_root


def ingest_rate(folder: Path, bodies: list[dict[str, object]], *, integrity: bool) -> float:
    """post_many of 1,000 events a call; with integrity off, no leaves, tiles or checkpoints are made."""
    saved = sqlite_store.grow_tree, admission.entry_leaf
    vault = trailvault.open_vault(folder)
    vault.open("access", ingest.SCHEMA)
    if not integrity:
        assert vault._checkpointer is not None
        vault._checkpointer.stop()
        sqlite_store.grow_tree = lambda *args: {}
        admission.entry_leaf = lambda *args: b""
    try:
        started = time.perf_counter()
        for start in range(0, len(bodies), 1000):
            vault.post_many("access", bodies[start : start + 1000])
        return len(bodies) / (time.perf_counter() - started)
    finally:
        sqlite_store.grow_tree, admission.entry_leaf = saved
        vault._checkpointer = None
        vault.close()


def verify_rate(folder: Path, count: int) -> dict[str, float]:
    """Entries/s of a full verify (one process, and one worker per CPU) and of two baselines.

    ``bare``: a hashlib.sha256 loop over the same canonical entries (one hash an entry).
    ``floor``: the least work a verify of these rows must do, in one process with no
    checks: read each row, hash its body, build its canonical entry, hash the leaf,
    and one inner-node hash an entry (a tree of n leaves has n - 1 inner nodes).
    """
    with trailvault.open_vault(folder) as vault:
        vault.open("access", ingest.SCHEMA)
        for start in range(0, count, 1000):
            vault.post_many("access", [ingest.body(i) for i in range(start, start + 1000)])
    rates: dict[str, list[float]] = {"one": [], "all": [], "bare": [], "floor": []}
    jobs = os.cpu_count() or 1
    with trailvault.open_vault(folder, create=False) as vault:
        store = vault._store
        entries = store.entries(0, count)
        canonical = [canonical_entry(entry, entry.seq, entry.body_sha256) for entry in entries]
        del entries
        for _ in range(3):
            started = time.perf_counter()
            for item in canonical:
                hashlib.sha256(b"\0" + item).digest()
            rates["bare"].append(count / (time.perf_counter() - started))
            started = time.perf_counter()
            _floor(store, count)
            rates["floor"].append(count / (time.perf_counter() - started))
            for name, workers in (("one", 1), ("all", jobs)):
                started = time.perf_counter()
                report = vault.verify(jobs=workers)
                rates[name].append(count / (time.perf_counter() - started))
                assert report.ok and report.entries == count, report
    return {name: statistics.median(values) for name, values in rates.items()}


def _floor(store: Store, count: int) -> None:
    sha256, previous, after = hashlib.sha256, b"", 0
    while after < count:
        chunk = store.entries(after, 4096)
        for entry in chunk:
            assert entry.body_json is not None
            sha256(entry.body_json.encode()).digest()
            leaf = sha256(b"\0" + canonical_entry(entry, entry.seq, entry.body_sha256)).digest()
            previous = sha256(b"\1" + previous[:32] + leaf).digest()
        after = chunk[-1].seq


def signing(vault: trailvault.Vault, rounds: int = 40) -> tuple[float, float]:
    """Median ms to sign a checkpoint after 1,000 more events: the signer as it is (a consistency proof
    from its last trusted checkpoint, checked before signing), and signing the stored root unchecked."""
    checkpointer = vault._checkpointer
    assert checkpointer is not None
    template = [ingest.body(i) for i in range(1000)]
    checked, unchecked = [], []
    for _ in range(rounds):
        vault.post_many("access", template)
        began = time.perf_counter()
        vault.issue_checkpoint()
        checked.append((time.perf_counter() - began) * 1000)
        vault.post_many("access", template)
        began = time.perf_counter()
        store = vault._store
        size = store.log_size()
        signed = sign_checkpoint(checkpointer.origin, size, tree_root(store, size), checkpointer._key, timestamp=1)
        store.save_checkpoint(StoredCheckpoint(size, signed.root, 1, signed.note))
        unchecked.append((time.perf_counter() - began) * 1000)
    return statistics.median(checked), statistics.median(unchecked)


def proofs(folder: Path, total: int, samples: int = 1000) -> tuple[float, float, int, int, tuple[float, float]]:
    """Median and p99 ms of generating and verifying an inclusion proof; proof bytes and the bound;
    and the signing figures of :func:`signing` on the same vault."""
    with trailvault.open_vault(folder) as vault:
        vault.open("access", ingest.SCHEMA)
        template = [ingest.body(i) for i in range(1000)]
        for _ in range(0, total, 1000):
            vault.post_many("access", template)
        size = vault._store.log_size()
        verifier = Verifier.parse(vault.verifier_key())
        checkpoint = open_checkpoint(vault.issue_checkpoint().note, verifier)
        rng = random.Random(6962)
        timings, largest = [], 0
        for _ in range(samples):
            seq = rng.randint(1, size)
            began = time.perf_counter()
            proof = vault.prove_inclusion(seq, size=size)
            assert verify_inclusion(proof.index, size, proof.leaf_hash, proof.hashes, checkpoint.root)
            timings.append((time.perf_counter() - began) * 1000)
            largest = max(largest, 32 * len(proof.hashes))
        bound = 32 * math.ceil(math.log2(size))
        signed = signing(vault)
        return statistics.median(timings), statistics.quantiles(timings, n=100)[98], largest, bound, signed


def checkpoint_latency(folder: Path, seconds: float, rate: int) -> tuple[float, float]:
    """Median and p99 ms from a post's return to the first signed checkpoint covering it, at a steady rate."""
    with trailvault.open_vault(folder) as vault:
        vault.open("access", ingest.SCHEMA)
        posted: list[tuple[int, float]] = []
        seen: list[tuple[int, float]] = []
        stop = threading.Event()

        def watch() -> None:
            last = 0
            while not stop.is_set():
                try:
                    size = vault._store.latest_checkpoint()
                except trailvault.errors.TrailvaultError:
                    size = None
                if size is not None and size.size > last:
                    last = size.size
                    seen.append((last, time.perf_counter()))
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        interval = 1 / rate
        began = time.perf_counter()
        index = 0
        while time.perf_counter() - began < seconds:
            result = vault.post("access", ingest.body(index))
            posted.append((result.seq, time.perf_counter()))
            index += 1
            time.sleep(max(0.0, began + index * interval - time.perf_counter()))
        time.sleep(1.5)
        stop.set()
        watcher.join()
    latencies = []
    for seq, at in posted:
        covered = next((when for size, when in seen if size >= seq), None)
        if covered is not None:
            latencies.append(max(0.0, covered - at) * 1000)
    assert len(latencies) == len(posted), "some posts were never covered by a checkpoint"
    return statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=200_000, help="events for the ingest and verify runs")
    parser.add_argument("--proof-events", type=int, default=5_000_000, help="size of the vault for proofs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.events, args.proof_events, args.rounds = 20_000, 50_000, 1
    scratch = tempfile.TemporaryDirectory(dir=args.dir)
    folder = Path(scratch.name)
    bodies = [ingest.body(i) for i in range(args.events)]
    rows = []
    on_rates, off_rates = [], []
    for attempt in range(args.rounds):
        os.sync()
        off_rates.append(ingest_rate(folder / f"off{attempt}", bodies, integrity=False))
        os.sync()
        on_rates.append(ingest_rate(folder / f"on{attempt}", bodies, integrity=True))
        print(f"  round {attempt}: off {off_rates[-1]:,.0f}, on {on_rates[-1]:,.0f}", file=sys.stderr)
    on, off = statistics.median(on_rates), statistics.median(off_rates)
    rows.append(
        (
            "post_many with integrity (median of rounds)",
            f"{on:,.0f} events/s",
            f"integrity off: {off:,.0f} events/s",
            f"{on / off:.2f}x",
            ">= 0.85x",
        )
    )
    verify = verify_rate(folder / "verify", args.events)
    jobs = os.cpu_count() or 1
    rows.append(
        (
            "full verify, 1 process (median of 3)",
            f"{verify['one']:,.0f} entries/s",
            f"bare sha256 loop: {verify['bare']:,.0f}/s; least work of a verify, 1 process: {verify['floor']:,.0f}/s",
            f"{verify['one'] / verify['bare']:.2f}x bare, {verify['one'] / verify['floor']:.2f}x least work",
            ">= 400,000 entries/s",
        )
    )
    rows.append(
        (
            f"full verify, --jobs {jobs} (median of 3)",
            f"{verify['all']:,.0f} entries/s",
            f"least work x {jobs} CPUs: {verify['floor'] * jobs:,.0f}/s",
            f"{verify['all'] / verify['bare']:.2f}x bare, {verify['all'] / (verify['floor'] * jobs):.2f}x least work",
            ">= 400,000 entries/s",
        )
    )
    median_ms, p99_ms = checkpoint_latency(folder / "latency", 5 if args.quick else 20, 500)
    rows.append(
        (
            "post to a signed checkpoint covering it, 500 posts/s",
            f"median {median_ms:.0f} ms, p99 {p99_ms:.0f} ms",
            "",
            "",
            "median <= 300 ms, p99 <= 1,500 ms",
        )
    )
    proof_median, proof_p99, largest, bound, (checked_ms, unchecked_ms) = proofs(folder / "proofs", args.proof_events)
    rows.append(
        (
            f"inclusion proof, generated and verified, {args.proof_events:,}-entry vault",
            f"median {proof_median:.3f} ms, p99 {proof_p99:.3f} ms; largest {largest} bytes",
            f"bound 32 x ceil(log2 n) = {bound} bytes",
            "",
            "median <= 1 ms",
        )
    )
    rows.append(
        (
            f"sign a checkpoint 1,000 entries after the last, {args.proof_events:,}-entry vault (median of 40)",
            f"{checked_ms:.2f} ms (consistency with the last trusted checkpoint checked first)",
            f"signing the stored root unchecked: {unchecked_ms:.2f} ms",
            f"{checked_ms / unchecked_ms:.2f}x",
            "(for information)",
        )
    )
    print(f"\nMachine: {ingest.machine()}. Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.\n")
    print("| measure | trailvault | baseline (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    scratch.cleanup()


if __name__ == "__main__":
    main()
