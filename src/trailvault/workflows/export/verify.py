"""verify export: check an export folder offline with the vault's verifier key.

Every row of every file must be the log's entry at its seq, unaltered, under the signed
checkpoint of the manifest, and the files must be the manifest's (names, formats, sha256).
The manifest's ``proof.bin`` with the exported entries rebuilds the checkpoint's root
(:mod:`trailvault.core.integrity.multiproof`). Given the vault too (``against=``), it
also re-runs the query and checks that no event is missing.
"""

from __future__ import annotations

import hashlib
import heapq
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from trailvault.adapters.files import file_sha256
from trailvault.adapters.formats import (
    read_rows,
)
from trailvault.core.event import Event, canonical_body
from trailvault.core.integrity.checkpoint import open_checkpoint
from trailvault.core.integrity.findings import Findings
from trailvault.core.integrity.log import entry_leaf
from trailvault.core.integrity.multiproof import LeafIndexes, multiproof_root
from trailvault.core.integrity.note import Verifier
from trailvault.core.query import Filter
from trailvault.core.schema import Schema, parse_schema
from trailvault.core.timestamps import parse_timestamp
from trailvault.errors import InvalidInput, TrailvaultError
from trailvault.workflows.export.source import up_to
from trailvault.workflows.export.write import FORMAT

__all__ = ["EventListing", "ExportReport", "verify_export"]


class EventListing(Protocol):
    """What ``verify_export(against=...)`` reads of a vault (local or remote): its listing."""

    def iter_events(
        self,
        channel: str | None = None,
        *,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
        where: Mapping[str, Any] | None = None,
        filter: str | Filter | None = None,  # noqa: A002
        sort_by: str = "time",
        sort_order: str = "asc",
    ) -> Iterator[Event]: ...


@dataclass
class ExportReport(Findings):
    """What ``verify export`` checked, and every problem found (``ok`` when there is none)."""

    events: int = 0
    files: int = 0
    size: int = 0
    redacted: int = 0

    def _counts(self) -> dict[str, Any]:
        return {
            "events": self.events, "files": self.files, "checkpoint_size": self.size,
            "redacted_bodies": self.redacted,
        }  # fmt: skip


class _Envelope:
    __slots__ = ("app", "channel", "id", "received_us", "time_us")

    def __init__(self, row: dict[str, Any]) -> None:
        self.id = row["id"]
        self.app = row["app"]
        self.channel = row["channel"]
        # Microseconds from Parquet and CSV, RFC 3339 text from JSONL.
        time, received = row["time"], row["received"]
        self.time_us = time if type(time) is int else parse_timestamp(time, field="time")
        self.received_us = received if type(received) is int else parse_timestamp(received, field="received")


_MANIFEST_SHAPE: dict[str, type] = {
    "checkpoint": str, "size": int, "count": int, "schemas": dict, "files": list, "proof": dict, "query": dict,
}  # fmt: skip
_FILE_SHAPE: dict[str, type] = {"name": str, "format": str, "sha256": str}
_JSON_NAMES = {str: "string", int: "integer", dict: "object", list: "array"}


def _check_manifest_shape(folder: Path, manifest: dict[str, Any]) -> None:
    """Raise InvalidInput naming the first key a damaged or altered manifest lacks (or holds
    in the wrong type), instead of failing later on it."""
    where = f"export: {folder}/manifest.json"
    for name, kind in _MANIFEST_SHAPE.items():
        if not isinstance(manifest.get(name), kind):
            raise InvalidInput(
                f"{where}: {name!r} is missing or not a JSON {_JSON_NAMES[kind]}; the manifest was damaged or altered, "
                "so the export cannot be proven",
                field="export",
            )
    for index, item in enumerate(manifest["files"]):
        for name, kind in _FILE_SHAPE.items():
            if not isinstance(item, dict) or not isinstance(item.get(name), kind):
                raise InvalidInput(
                    f"{where}: files[{index}].{name} is missing or not a JSON {_JSON_NAMES[kind]}; the manifest was "
                    "damaged or altered, so the export cannot be proven",
                    field="export",
                )
    if not isinstance(manifest["proof"].get("sha256"), str):
        raise InvalidInput(f"{where}: proof.sha256 is missing; the manifest was damaged or altered", field="export")


def verify_export(folder: str | Path, key: str, *, against: EventListing | None = None) -> ExportReport:
    """Check an export folder offline with the vault's verifier key; see the module docstring."""
    folder = Path(folder)
    try:
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InvalidInput(f"export: {folder}/manifest.json cannot be read ({exc})", field="export") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"export: {folder}/manifest.json is not a {FORMAT} manifest", field="export")
    _check_manifest_shape(folder, manifest)
    checkpoint = open_checkpoint(manifest["checkpoint"], Verifier.parse(key))
    report = ExportReport(size=checkpoint.size)
    if manifest["size"] != checkpoint.size:
        report.problems.append(f"manifest: size {manifest['size']} is not the signed checkpoint's {checkpoint.size}")
    schemas = {name: parse_schema(document) for name, document in manifest["schemas"].items()}
    files_by_format: dict[str, list[dict[str, Any]]] = {}
    for item in manifest["files"]:
        report.files += 1
        path = folder / item["name"]
        if not path.is_file():
            report.problems.append(f"{item['name']}: missing")
            continue
        if file_sha256(path) != item["sha256"]:
            report.problems.append(f"{item['name']}: its sha256 is not the manifest's (the file was changed)")
        files_by_format.setdefault(item["format"], []).append(item)
    proof_path = folder / "proof.bin"
    if not proof_path.is_file() or file_sha256(proof_path) != manifest["proof"]["sha256"]:
        report.problems.append("proof.bin: missing or not the manifest's")
        return report
    proof = proof_path.read_bytes()
    exported: array[int] = array("q")
    for fmt, items in files_by_format.items():
        seqs, leaves = _format_leaves(folder, fmt, items, schemas, report)
        if len(seqs) != manifest["count"]:
            report.problems.append(f"{fmt}: {len(seqs)} events, the manifest says {manifest['count']}")
            continue
        hashes = iter(proof[offset : offset + 32] for offset in range(0, len(proof), 32))
        try:
            root = multiproof_root(LeafIndexes(seqs), checkpoint.size, _leaf_reader(leaves), hashes)
        except ValueError as exc:
            report.problems.append(f"{fmt}: {exc}")
            continue
        if root != checkpoint.root or next(hashes, None) is not None:
            report.problems.append(
                f"{fmt}: the events do not rebuild the signed root: an event was changed, added, removed or moved"
            )
        report.events = len(seqs)
        exported = seqs
    if against is not None and not report.problems:
        _compare_with_vault(manifest, against, exported, report)
    return report


def _leaf_reader(leaves: bytearray) -> Callable[[int], bytes]:
    return lambda position: bytes(leaves[32 * position : 32 * position + 32])


def _format_leaves(
    folder: Path, fmt: str, items: list[dict[str, Any]], schemas: dict[str, Schema], report: ExportReport
) -> tuple[array[int], bytearray]:
    """Read every file of one format, merge them in seq order, check bodies; return seqs and leaves."""

    def rows(item: dict[str, Any]) -> Iterator[tuple[int, bytes]]:
        try:
            for row in read_rows(fmt, folder / item["name"], schemas[item["channel"]]):
                body_sha256 = bytes.fromhex(row["body_sha256"])
                body = row["body"]
                if body is None:
                    redacted.add(row["seq"])
                elif hashlib.sha256(canonical_body(body)).digest() != body_sha256:
                    report.problems.append(f"{item['name']}: seq {row['seq']}: the body is not the one the log hashed")
                yield row["seq"], entry_leaf(_Envelope(row), row["seq"], body_sha256)
        except (OSError, EOFError, ValueError, KeyError, TypeError, TrailvaultError) as exc:
            # The files are outside input: one that does not read is a finding, not a crash.
            report.problems.append(f"{item['name']}: cannot be read as {fmt} ({type(exc).__name__}: {str(exc)[:200]})")

    seqs: array[int] = array("q")
    leaves = bytearray()
    redacted: set[int] = set()
    last = 0
    for seq, leaf in heapq.merge(*(rows(item) for item in items)):
        if seq <= last:
            report.problems.append(f"{fmt}: seq {seq} comes twice or out of order")
        seqs.append(seq)
        leaves += leaf
        last = seq
    # Counted in one format only: every format holds the same events.
    report.redacted = max(report.redacted, len(redacted))
    return seqs, leaves


def _compare_with_vault(
    manifest: dict[str, Any], vault: EventListing, exported: array[int], report: ExportReport
) -> None:
    query = manifest["query"]
    expected = [
        event.seq
        for event in vault.iter_events(
            query["channel"],
            time_from=query["from"],
            time_to=query["to"],
            filter=up_to(query["filter"], manifest["size"]),
            sort_by="seq",
        )
    ]
    missing = sorted(set(expected) - set(exported))
    extra = sorted(set(exported) - set(expected))
    if missing:
        report.problems.append(
            f"vault: {len(missing)} events of the query are not in the export (first seq {missing[0]})"
        )
    if extra:
        report.problems.append(f"vault: {len(extra)} exported events do not match the query (first seq {extra[0]})")
