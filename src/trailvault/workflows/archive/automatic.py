"""Automated (push-based) archiving: batch, write, read back, mark and purge, on a schedule.

Configured by the ``[archive]`` section (see docs/archive.md). Each run, for every app
of the vault:

1. batch the app's events older than ``lag`` that are in no batch yet (when another batching
   task of the app is still open, say a crashed run's, that is a problem of the run, naming
   the task and when it counts as abandoned, and the run goes on with what is batched);
2. for each outstanding batch, oldest first: write
   ``<destination>/<app>/yyyy/MM/dd/<accountId>_<YYYYmmddTHHMM>Z_<archiveId>.json.gz``
   and its manifest, read both back and compare, and only then mark the batch archived;
   a batch already written by an earlier run that stopped before marking is found,
   read back and marked, not written twice;
3. purge what is archived and past ``retention``.

A run stopped at any point (killed between write and mark, or between mark and purge)
loses no event and purges nothing unarchived: an unmarked batch is written or found
again next run, and purge only ever takes marked batches. Each step is reported to
``on_step`` (for logs and for tests that stop the process there).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from trailvault.core.batches import ArchiveBatch, ArchiveFile, shown_location
from trailvault.core.integrity.findings import Findings
from trailvault.core.timestamps import format_timestamp
from trailvault.errors import Conflict, DestinationUnavailable, InvalidInput, TrailvaultError
from trailvault.workflows.api import VaultAPI
from trailvault.workflows.archive.files import manifest_name, open_destination, read_back

__all__ = ["ArchivePlan", "ArchiveRun", "Archiver", "archive_once", "purge_all"]

_log = logging.getLogger("trailvault.archive")


class AppVaults(Protocol):
    """What automated archiving needs of a vault: the view of each of its apps (a local Vault has them)."""

    def apps(self) -> list[str]: ...

    def for_app(self, app: str) -> VaultAPI: ...


@dataclass(frozen=True)
class ArchivePlan:
    """Where and how often automated archiving writes (the ``[archive]`` section)."""

    destination: str
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    #: Seconds between runs on a server.
    schedule: float = 3600.0
    #: Only events at least this many seconds old are batched (late arrivals get in first).
    lag: float = 600.0

    def __post_init__(self) -> None:
        if not self.destination:
            raise InvalidInput("archive.destination: give a folder or an fsspec URL such as s3://bucket/audit")
        if self.schedule <= 0:
            raise InvalidInput(f"archive.schedule: use more than 0 seconds, not {self.schedule}", field="schedule")
        if self.lag < 0:
            raise InvalidInput(f"archive.lag: use 0 or more seconds, not {self.lag}", field="lag")


@dataclass
class ArchiveRun(Findings):
    """What one run did: files written, batches marked, events purged, and problems per app."""

    written: list[dict[str, Any]] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)
    purged: int = 0

    def _counts(self) -> dict[str, Any]:
        return {"written": self.written, "marked": self.marked, "purged": self.purged}


#: Called with (step, app, archive id or None) as a run goes: "batched", "written", "marked", "purged".
OnStep = Callable[[str, str, str | None], None]


def archive_once(vault: AppVaults, plan: ArchivePlan, *, on_step: OnStep | None = None) -> ArchiveRun:
    """Run automated archiving once over every app of the vault; see the module docstring."""
    step = on_step or (lambda *_: None)
    run = ArchiveRun()
    fs, root = open_destination(plan.destination, plan.storage_options)
    for app in vault.apps():
        view = vault.for_app(app)
        try:
            _archive_app(view, plan, fs, root, run, step)
        except TrailvaultError as exc:
            run.problems.append(f"{app}: {exc.message}")
            _log.error("archiving app %s stopped: %s", app, exc.message)
    return run


def _archive_app(view: VaultAPI, plan: ArchivePlan, fs: Any, root: str, run: ArchiveRun, step: OnStep) -> None:
    until = format_timestamp(_now_us() - int(plan.lag * 1_000_000))
    try:
        view.batch_events_for_archiving("1970-01-01T00:00:00Z", until, wait=True)
        step("batched", view.app, None)
    except Conflict as exc:
        # Not a quiet success: the events of that task's range that are in no batch yet stay
        # unarchived (possibly a crashed run's, until its task counts as abandoned).
        run.problems.append(
            f"{view.app}: events older than lag that are in no batch yet were not batched: {exc.message}; "
            "a run after that batches and archives them"
        )
        _log.warning("app %s: batching not done (%s); archiving what is batched", view.app, exc.message)
    for batch in _outstanding(view):
        # A whole file from an earlier run that stopped before marking is marked, not written again;
        # one that no longer reads back as written is written anew.
        found = _find_written(fs, root, batch)
        if found is not None and read_back(fs, found) is None:
            archive = found
        else:
            archive = view.write_archive_batch(
                batch.archive_id, plan.destination, storage_options=plan.storage_options, dated=True
            )
        step("written", view.app, batch.archive_id)
        problem = read_back(fs, archive)
        if problem is not None:
            run.problems.append(f"{view.app}: {problem}; batch {batch.archive_id} stays outstanding")
            _log.error("app %s: %s", view.app, problem)
            continue
        view.mark_archive_batches_as_successful([batch.archive_id])
        step("marked", view.app, batch.archive_id)
        run.written.append(archive.to_dict())
        run.marked.append(batch.archive_id)
        _log.info(
            "app %s: archived batch %s (%d events) to %s",
            view.app, batch.archive_id, archive.event_count, shown_location(archive.path),
        )  # fmt: skip
    report = view.purge()
    step("purged", view.app, None)
    run.purged += report.purged


def _outstanding(view: VaultAPI) -> list[ArchiveBatch]:
    batches: list[ArchiveBatch] = []
    page = view.list_outstanding_archive_batches(page_size=1000)
    batches.extend(page.event_batches)
    while page.next_page_token is not None:
        page = view.list_outstanding_archive_batches(page_size=1000, starting_token=page.next_page_token)
        batches.extend(page.event_batches)
    return batches


def _find_written(fs: Any, root: str, batch: ArchiveBatch) -> ArchiveFile | None:
    """An archive of this batch that an earlier run wrote whole (manifest present), or None."""
    pattern = f"{root.rstrip('/')}/{batch.app}/*/*/*/{batch.app}_*Z_{batch.archive_id}.manifest.json"
    try:
        found = sorted(fs.glob(pattern))
    except Exception as exc:  # fsspec backends raise their own error types
        raise DestinationUnavailable(
            f"destination: cannot list {shown_location(root)} ({type(exc).__name__}); "
            "check the destination and its credentials"
        ) from None
    for manifest_path in found:
        try:
            with fs.open(manifest_path, "rb") as handle:
                manifest = orjson.loads(handle.read())
        except Exception:  # fsspec backends raise their own error types; a bad one is written again
            continue
        folder = manifest_path.rsplit("/", 1)[0]
        if manifest_name(manifest.get("file", "")) != manifest_path.rsplit("/", 1)[1]:
            continue
        return ArchiveFile(
            f"{folder}/{manifest['file']}", manifest_path, manifest["eventCount"], manifest["sha256"], manifest
        )
    return None


def purge_all(vault: AppVaults) -> int:
    """Purge every app of the vault (what a server does between runs when no destination is set)."""
    return sum(vault.for_app(app).purge().purged for app in vault.apps())


class Archiver:
    """A server's background archiving: :func:`archive_once` every ``plan.schedule`` seconds or, with no
    plan (pull-based archiving only), :func:`purge_all` every ``interval`` seconds."""

    def __init__(self, vault: AppVaults, plan: ArchivePlan | None, interval: float = 3600.0) -> None:
        self._vault = vault
        self._plan = plan
        self._interval = plan.schedule if plan is not None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trailvault-archiver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._plan is None:
                    _log.info("purge: %d events purged", purge_all(self._vault))
                else:
                    run = archive_once(self._vault, self._plan)
                    _log.info("automated archiving: %d files, %d events purged", len(run.written), run.purged)
            except Exception:  # a failed run is retried next time, never the end of the server
                _log.exception("archiving failed; retrying at the next run")
            self._stop.wait(self._interval)


def _now_us() -> int:
    return time.time_ns() // 1000
