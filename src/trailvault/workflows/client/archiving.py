"""The archiving half of :class:`~trailvault.workflows.client.RemoteVault`: CDP's verbs, purge, holds over HTTP.

Same names and answers as :class:`trailvault.workflows.vault.archiving.Archiving`. A remote
``write_archive_batch`` streams the batch's events from the server, writes the
file locally (or to any fsspec URL), then asks the server for the proof of exactly
the events it received, so the manifest proves the file it sits beside.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import httpx
import orjson

from trailvault.core.batches import (
    ArchiveBatch,
    ArchiveFile,
    ArchiveTask,
    BatchPage,
    LegalHold,
    PurgeReport,
    TaskStatus,
    archive_file_name,
    outstanding,
)
from trailvault.core.timestamps import format_timestamp
from trailvault.errors import InvalidInput, ServerUnavailable
from trailvault.workflows.archive.files import open_destination, write_archive
from trailvault.workflows.client.wire import RemoteParts, byte_lines, error_of, segment, time_text

__all__ = ["RemoteArchiving"]

_POLL_S = 0.2


class RemoteArchiving(RemoteParts):
    """Archiving verbs of a :class:`~trailvault.workflows.client.RemoteVault`; see the module docstring."""

    def batch_events_for_archiving(
        self, from_timestamp: datetime | str, to_timestamp: datetime | str, *, wait: bool = False
    ) -> str:
        answer = self._call(
            "POST",
            "/v1/archive/batch-events-for-archiving",
            json={"fromTimestamp": time_text(from_timestamp), "toTimestamp": time_text(to_timestamp)},
        )
        task_id = str(answer["taskId"])
        while wait and self.get_batch_events_for_archiving_status(task_id).status is TaskStatus.OPEN:
            time.sleep(_POLL_S)
        return task_id

    def get_batch_events_for_archiving_status(self, task_id: str) -> ArchiveTask:
        answer = self._call("POST", "/v1/archive/get-batch-events-for-archiving-status", json={"taskId": task_id})
        return ArchiveTask.from_dict(answer, task_id, self.app)

    def list_outstanding_archive_batches(
        self,
        from_timestamp: datetime | str | None = None,
        to_timestamp: datetime | str | None = None,
        *,
        page_size: int = 100,
        starting_token: str | None = None,
    ) -> BatchPage:
        document: dict[str, Any] = {"pageSize": page_size}
        for name, value in (
            ("fromTimestamp", time_text(from_timestamp)),
            ("toTimestamp", time_text(to_timestamp)),
            ("startingToken", starting_token),
        ):
            if value is not None:
                document[name] = value
        answer = self._call("POST", "/v1/archive/list-outstanding-archive-batches", json=document)
        batches = [ArchiveBatch.from_dict(item) for item in answer["eventBatches"]]
        return BatchPage(batches, answer.get("nextPageToken"))

    def archive_batch(self, archive_id: str) -> ArchiveBatch:
        return ArchiveBatch.from_dict(
            self._call("POST", "/v1/archive/describe-archive-batch", json={"archiveId": archive_id})
        )

    def list_events_in_archive_batch(self, archive_id: str) -> Iterator[dict[str, Any]]:
        return (orjson.loads(line) for _, line in self.archive_lines(archive_id))

    def archive_lines(self, archive_id: str) -> Iterator[tuple[int, bytes]]:
        try:
            with self._http.stream(
                "POST",
                "/v1/archive/list-events-in-archive-batch",
                content=orjson.dumps({"archiveId": archive_id}),
                headers={"Content-Type": "application/json"},
                timeout=None,
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_of(response)
                # CDP's document, one event a line: leave out its first and last lines.
                for line in byte_lines(response.iter_bytes()):
                    if line.startswith(b"{") and not line.startswith(b'{"auditEvents"'):
                        event = line.removesuffix(b",")
                        yield int(orjson.loads(event)["seq"]), event
        except httpx.TransportError as exc:
            raise ServerUnavailable(
                f"server: the batch stream from {self.url} broke ({type(exc).__name__}); read it again"
            ) from None

    def write_archive_batch(
        self,
        archive_id: str,
        destination: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        dated: bool = False,
    ) -> ArchiveFile:
        batch = outstanding(self.archive_batch(archive_id))
        fs, root = open_destination(destination, storage_options)
        now = time.time_ns() // 1000
        folder = root
        if dated:
            stamp = format_timestamp(now)
            folder = f"{root.rstrip('/')}/{self.app}/{stamp[0:4]}/{stamp[5:7]}/{stamp[8:10]}"

        def proof_for(seqs: array[int]) -> dict[str, Any]:
            document = {"archiveId": archive_id, "eventCount": len(seqs), "lastSeq": seqs[-1] if seqs else None}
            answer: dict[str, Any] = self._call("POST", "/v1/archive/get-archive-batch-proof", json=document)
            return answer

        lines = self.archive_lines(archive_id)
        return write_archive(
            lines, proof_for, batch.to_dict(), fs, folder, archive_file_name(batch, now), format_timestamp(now)
        )

    def mark_archive_batches_as_successful(self, archive_ids: list[str]) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(
            "POST", "/v1/archive/mark-archive-batches-as-successful", json={"archiveIds": list(archive_ids)}
        )
        return answer

    def purge(self, *, now: datetime | str | None = None) -> PurgeReport:
        if now is not None:
            # The server purges by its own clock: a client's "now" would let it purge early.
            raise InvalidInput("now: a server purges by its own clock; leave now out", field="now")
        answer = self._call("POST", "/v1/archive/purge", json={})
        return PurgeReport(answer["purged"], dict(answer["archiveIds"]))

    def set_hold(
        self,
        name: str,
        reason: str,
        *,
        channel: str | None = None,
        time_from: datetime | str | None = None,
        time_to: datetime | str | None = None,
    ) -> LegalHold:
        document = {
            "name": name,
            "reason": reason,
            "channel": channel,
            "from": time_text(time_from),
            "to": time_text(time_to),
        }
        return LegalHold.from_dict(self._call("POST", "/v1/holds", json=document))

    def clear_hold(self, name: str) -> LegalHold:
        return LegalHold.from_dict(self._call("DELETE", f"/v1/holds/{segment(name)}"))

    def holds(self, *, include_cleared: bool = False) -> list[LegalHold]:
        answer = self._call("GET", "/v1/holds", params={"all": "true" if include_cleared else None})
        return [LegalHold.from_dict(item) for item in answer["holds"]]
