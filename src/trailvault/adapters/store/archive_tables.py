"""What the SQL stores share for archiving: tasks, batches and their members, purge, legal holds.

Written once with ``?`` placeholders, mixed into :class:`~trailvault.adapters.store.relational.RelationalStore`.
A backend supplies :meth:`_bind_seqs` (a list of seqs as one parameter) and
:meth:`_purge_rows` (its sanctioned way to delete rows). See
:class:`trailvault.adapters.store.contract.archive.ArchiveStore` for each method's contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from trailvault.adapters.store.base import StoredEntry
from trailvault.core.batches import ArchiveBatch, ArchiveTask, LegalHold, TaskStatus, seqs_digest
from trailvault.core.event import PendingEvent, Posted
from trailvault.core.timestamps import format_timestamp
from trailvault.errors import Conflict, NotFound

__all__ = ["ArchiveTables"]

_BATCH_COLUMNS = (
    "b.archive_id, a.name, b.event_count, b.time_from, b.time_to, b.first_seq, b.last_seq, "
    "b.checkpoint_size, b.created, b.archived, b.purged, b.record_seq"
)
_SELECT_BATCH = (
    f"SELECT b.batch_key, {_BATCH_COLUMNS} FROM archive_batches AS b JOIN apps AS a ON a.app_key = b.app_key "
)
# The channels whose events are never batched: the records that verify needs to accept
# a removed body or row stay in the vault for good.
_KEPT_CHANNELS = ("trailvault.redactions", "trailvault.purges", "trailvault.batches")
# The events a batching step may take: the app's, in range, in no batch yet.
_UNBATCHED = """FROM events AS e
    WHERE e.app_key = ? AND e.time >= ? AND e.time < ? AND e.seq > ? AND e.seq <= ?
      AND e.channel_key NOT IN (SELECT channel_key FROM channels WHERE app_key = ? AND name IN (?, ?, ?))
      AND NOT EXISTS (SELECT 1 FROM archive_members AS m WHERE m.seq = e.seq)
    ORDER BY e.seq LIMIT ?"""
# Purgeable: in a batch marked archived, received before the cutoff, under no legal hold set.
# Ordered as the members' index is, batch by batch, so a page needs no sort.
_PURGEABLE = """SELECT {columns} FROM archive_members AS m
    JOIN archive_batches AS b ON b.batch_key = m.batch_key
    JOIN events AS e ON e.seq = m.seq
    JOIN channels AS c ON c.channel_key = e.channel_key
    WHERE b.app_key = ? AND b.archived IS NOT NULL AND b.purged < b.event_count AND e.received <= ? {restrict}
      AND NOT EXISTS (
        SELECT 1 FROM legal_holds AS h
        WHERE h.app_key = b.app_key AND h.cleared IS NULL
          AND (h.channel IS NULL OR h.channel = c.name)
          AND (h.time_from IS NULL OR e.time >= h.time_from)
          AND (h.time_to IS NULL OR e.time < h.time_to))
    ORDER BY m.batch_key, m.seq LIMIT ?"""
_SELECT_HOLD = (
    "SELECT h.name, a.name, h.reason, h.created, h.channel, h.time_from, h.time_to, h.cleared "
    "FROM legal_holds AS h JOIN apps AS a ON a.app_key = h.app_key "
)


class ArchiveTables:
    """Archiving's half of a SQL store; see the module docstring."""

    if TYPE_CHECKING:  # the host class, RelationalStore, provides these

        def _reading(self) -> AbstractContextManager[Any]: ...
        def _transaction(self) -> AbstractContextManager[Any]: ...
        def _execute(self, conn: Any, text: str, params: Sequence[Any] = ()) -> Any: ...
        def _rows(self, text: str, params: Sequence[Any] = ()) -> list[Any]: ...
        def _app_key(self, conn: Any, app: str) -> int | None: ...
        def _insert_app(self, tx: Any, app: str, created_us: int) -> int: ...
        def _append_in(self, tx: Any, batches: Sequence[Sequence[PendingEvent]]) -> list[Any]: ...
        def _lock_log(self, tx: Any) -> None: ...
        def _channel_name(self, conn: Any, key: int) -> tuple[str, str]: ...

    def _bind_seqs(self, column: str, seqs: list[int]) -> tuple[str, Any]:
        """Return a condition ``column`` is one of ``seqs``, and its one parameter."""
        raise NotImplementedError

    def _purge_rows(self, tx: Any, seqs: list[int], reason: str) -> None:
        """Delete the rows of ``seqs`` (already in purged_events) through the backend's sanctioned path."""
        raise NotImplementedError

    def _app_key_for(self, tx: Any, app: str, created_us: int) -> int:
        key = self._app_key(tx, app)
        return self._insert_app(tx, app, created_us) if key is None else key

    # -- tasks -------------------------------------------------------------------------

    def start_archive_task(
        self, app: str, task_id: str, time_from_us: int, time_to_us: int, now_us: int, stale_before_us: int
    ) -> None:
        with self._transaction() as tx:
            app_key = self._app_key_for(tx, app, now_us)
            self._expire_tasks(tx, app_key, now_us, stale_before_us)
            running = self._execute(
                tx, "SELECT task_id, heartbeat FROM archive_tasks WHERE app_key = ? AND status = 'OPEN'", (app_key,)
            ).fetchone()
            if running is not None:
                # Its process may have died (nothing here can tell): say when it stops blocking.
                abandoned = format_timestamp(int(running[1]) + now_us - stale_before_us)
                raise Conflict(
                    f"a batching task of app {app!r} is running ({running[0]}, last active "
                    f"{format_timestamp(int(running[1]))}); wait for it to finish "
                    "(get-batch-events-for-archiving-status) before starting another; if its process stopped, "
                    f"it counts as abandoned from {abandoned}",
                    field="taskId",
                )
            self._execute(
                tx,
                "INSERT INTO archive_tasks (task_id, app_key, time_from, time_to, status, created, heartbeat) "
                "VALUES (?, ?, ?, ?, 'OPEN', ?, ?)",
                (task_id, app_key, time_from_us, time_to_us, now_us, now_us),
            )

    def finish_archive_task(self, task_id: str, status: TaskStatus, error: str | None, now_us: int) -> None:
        with self._transaction() as tx:
            self._execute(
                tx,
                "UPDATE archive_tasks SET status = ?, error = ?, finished = ?, heartbeat = ? WHERE task_id = ?",
                (status.value, error, now_us, now_us, task_id),
            )

    def _expire_tasks(self, tx: Any, app_key: int, now_us: int, stale_before_us: int) -> None:
        """A task whose process stopped beating is over: it reads FAILED and no longer blocks the next one."""
        self._execute(
            tx,
            "UPDATE archive_tasks SET status = 'FAILED', finished = ?, "
            "error = 'abandoned: the process running it stopped; start a new task' "
            "WHERE app_key = ? AND status = 'OPEN' AND heartbeat < ?",
            (now_us, app_key, stale_before_us),
        )

    def archive_task(self, app: str, task_id: str, now_us: int, stale_before_us: int) -> ArchiveTask | None:
        with self._reading() as conn:
            app_key = self._app_key(conn, app)
            stale = app_key is not None and self._execute(
                conn,
                "SELECT 1 FROM archive_tasks WHERE app_key = ? AND task_id = ? AND status = 'OPEN' AND heartbeat < ?",
                (app_key, task_id, stale_before_us),
            ).fetchone()
        if stale and app_key is not None:
            with self._transaction() as tx:
                self._expire_tasks(tx, app_key, now_us, stale_before_us)
        rows = self._rows(
            "SELECT t.task_id, a.name, t.time_from, t.time_to, t.status, t.created, t.finished, t.error "
            "FROM archive_tasks AS t JOIN apps AS a ON a.app_key = t.app_key WHERE t.task_id = ? AND a.name = ?",
            (task_id, app),
        )
        if not rows:
            return None
        task_key, name, time_from, time_to, status, created, finished, error = rows[0]
        batches = tuple(
            _batch(row[1:])
            for row in self._rows(_SELECT_BATCH + "WHERE b.task_id = ? ORDER BY b.batch_key", (task_id,))
        )
        return ArchiveTask(task_key, name, time_from, time_to, TaskStatus(status), created, finished, error, batches)

    # -- batches -----------------------------------------------------------------------

    def add_archive_batch(
        self,
        app: str,
        task_id: str,
        archive_id: str,
        time_from_us: int,
        time_to_us: int,
        after_seq: int,
        checkpoint_size: int,
        max_events: int,
        now_us: int,
        make_record: Callable[[list[int], str | None], PendingEvent],
    ) -> ArchiveBatch | None:
        with self._transaction() as tx:
            self._lock_log(tx)
            app_key = self._app_key_for(tx, app, now_us)
            params = (app_key, time_from_us, time_to_us, after_seq, checkpoint_size, app_key, *_KEPT_CHANNELS)
            seqs = [int(row[0]) for row in self._execute(tx, f"SELECT e.seq {_UNBATCHED}", (*params, max_events))]
            self._execute(tx, "UPDATE archive_tasks SET heartbeat = ? WHERE task_id = ?", (now_us, task_id))
            if not seqs:
                return None
            previous = self._execute(
                tx,
                "SELECT archive_id FROM archive_batches WHERE app_key = ? ORDER BY batch_key DESC LIMIT 1",
                (app_key,),
            ).fetchone()
            # The batch's record goes into the log in the same transaction: the signed tree then
            # vouches for its count, its seqs and the batch before it (verify archive checks them).
            posted = self._append_in(tx, [[make_record(seqs, None if previous is None else str(previous[0]))]])[0][0]
            first, last, count = seqs[0], seqs[-1], len(seqs)
            batch_key = self._execute(
                tx,
                "INSERT INTO archive_batches (archive_id, app_key, task_id, time_from, time_to, event_count, "
                "first_seq, last_seq, checkpoint_size, record_seq, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING batch_key",
                (archive_id, app_key, task_id, time_from_us, time_to_us, count, first, last, checkpoint_size,
                 posted.seq, now_us),
            ).fetchone()[0]  # fmt: skip
            # The same choice again, bounded by the last seq found (inside one write transaction
            # nothing else batches these events, and appends only add seqs above checkpoint_size).
            bounded = (app_key, time_from_us, time_to_us, after_seq, last, app_key, *_KEPT_CHANNELS, count)
            self._execute(
                tx, f"INSERT INTO archive_members (seq, batch_key) SELECT e.seq, ? {_UNBATCHED}", (batch_key, *bounded)
            )
        return ArchiveBatch(
            archive_id, app, count, time_from_us, time_to_us, first, last, checkpoint_size, now_us,
            record_seq=posted.seq,
        )  # fmt: skip

    def archive_batches(
        self,
        app: str,
        *,
        outstanding: bool,
        time_from_us: int | None,
        time_to_us: int | None,
        after_archive_id: str | None,
        limit: int,
    ) -> list[ArchiveBatch]:
        clauses = ["a.name = ?"]
        params: list[Any] = [app]
        if outstanding:
            clauses.append("b.archived IS NULL")
        # A batch is listed when its range overlaps the asked one.
        if time_from_us is not None:
            clauses.append("b.time_to > ?")
            params.append(time_from_us)
        if time_to_us is not None:
            clauses.append("b.time_from < ?")
            params.append(time_to_us)
        if after_archive_id is not None:
            clauses.append("b.batch_key > (SELECT batch_key FROM archive_batches WHERE archive_id = ?)")
            params.append(after_archive_id)
        rows = self._rows(
            _SELECT_BATCH + "WHERE " + " AND ".join(clauses) + " ORDER BY b.batch_key LIMIT ?", (*params, limit)
        )
        return [_batch(row[1:]) for row in rows]

    def archive_batch(self, app: str, archive_id: str) -> ArchiveBatch | None:
        rows = self._rows(_SELECT_BATCH + "WHERE a.name = ? AND b.archive_id = ?", (app, archive_id))
        return _batch(rows[0][1:]) if rows else None

    def previous_archive_batch(self, app: str, archive_id: str) -> ArchiveBatch | None:
        rows = self._rows(
            _SELECT_BATCH + "WHERE a.name = ? AND b.batch_key < "
            "(SELECT batch_key FROM archive_batches WHERE archive_id = ?) ORDER BY b.batch_key DESC LIMIT 1",
            (app, archive_id),
        )
        return _batch(rows[0][1:]) if rows else None

    def archive_batch_entries(self, archive_id: str, after_seq: int, limit: int) -> list[StoredEntry]:
        with self._reading() as conn:
            rows = self._execute(
                conn,
                "SELECT e.seq, e.id, e.channel_key, e.time, e.received, e.body, e.body_sha256, e.fingerprint "
                "FROM archive_members AS m JOIN events AS e ON e.seq = m.seq "
                "WHERE m.batch_key = (SELECT batch_key FROM archive_batches WHERE archive_id = ?) AND m.seq > ? "
                "ORDER BY m.seq LIMIT ?",
                (archive_id, after_seq, limit),
            ).fetchall()
            found = []
            for seq, event_id, channel_key, time_us, received_us, body, body_sha256, mark in rows:
                app, channel = self._channel_name(conn, channel_key)
                found.append(
                    StoredEntry(seq, event_id, app, channel, time_us, received_us, body, bytes(body_sha256), mark)
                )
            return found

    def mark_archive_batches(self, app: str, archive_ids: Sequence[str], now_us: int) -> list[ArchiveBatch]:
        with self._transaction() as tx:
            app_key = self._app_key(tx, app)
            for archive_id in archive_ids:
                row = self._execute(
                    tx,
                    "SELECT archived FROM archive_batches WHERE archive_id = ? AND app_key = ?",
                    (archive_id, app_key),
                ).fetchone()
                if app_key is None or row is None:
                    raise NotFound(
                        f"archiveIds: no archive batch {archive_id[:64]!r} in app {app!r}; "
                        "list-outstanding-archive-batches shows them",
                        field="archiveIds",
                    )
                if row[0] is None:
                    self._execute(
                        tx, "UPDATE archive_batches SET archived = ? WHERE archive_id = ?", (now_us, archive_id)
                    )
        marked = [self.archive_batch(app, archive_id) for archive_id in archive_ids]
        return [batch for batch in marked if batch is not None]

    # -- purge -------------------------------------------------------------------------

    def purgeable(
        self, app: str, received_before_us: int, limit: int, after: tuple[int, int] = (0, 0)
    ) -> list[tuple[int, str, int]]:
        with self._reading() as conn:
            app_key = self._app_key(conn, app)
        if app_key is None:
            return []
        rows = self._rows(
            _PURGEABLE.format(
                columns="e.seq, b.archive_id, m.batch_key",
                restrict="AND (m.batch_key > ? OR (m.batch_key = ? AND m.seq > ?))",
            ),
            (app_key, received_before_us, after[0], after[0], after[1], limit),
        )
        return [(int(seq), str(archive_id), int(batch_key)) for seq, archive_id, batch_key in rows]

    def purge(
        self, app: str, archive_id: str, seqs: list[int], received_before_us: int, record: PendingEvent
    ) -> Posted:
        with self._transaction() as tx:
            self._lock_log(tx)
            app_key = self._app_key(tx, app)
            condition, bound = self._bind_seqs("e.seq", seqs)
            still = self._execute(
                tx,
                _PURGEABLE.format(columns="e.seq, m.batch_key", restrict=f"AND b.archive_id = ? AND {condition}"),
                (app_key, received_before_us, archive_id, bound, len(seqs) + 1),
            ).fetchall()
            if sorted(int(row[0]) for row in still) != seqs:
                raise Conflict("purge: a legal hold or another purge changed these events meanwhile; retry")
            batch_key = int(still[0][1])
            outcome = self._append_in(tx, [[record]])[0]
            posted: Posted = outcome[0]
            for start in range(0, len(seqs), 10_000):
                part = seqs[start : start + 10_000]
                self._insert_purged(tx, part, batch_key, posted.seq)
                self._purge_rows(tx, part, f"purge of archive batch {archive_id}")
            # The count lets later purges skip batches that are done.
            self._execute(
                tx, "UPDATE archive_batches SET purged = purged + ? WHERE batch_key = ?", (len(seqs), batch_key)
            )
        return posted

    def _insert_purged(self, tx: Any, seqs: list[int], batch_key: int, record_seq: int) -> None:
        condition, bound = self._bind_seqs("m.seq", seqs)
        self._execute(
            tx,
            f"INSERT INTO purged_events (seq, batch_key, record_seq) SELECT m.seq, m.batch_key, ? "
            f"FROM archive_members AS m WHERE {condition}",
            (record_seq, bound),
        )

    def purged_seqs(self, start: int, end: int) -> set[int]:
        return {
            int(row[0]) for row in self._rows("SELECT seq FROM purged_events WHERE seq > ? AND seq <= ?", (start, end))
        }

    def purge_records(self) -> Iterator[tuple[int, int, str]]:
        """Yield (record seq, count, seqs digest) of every purge, from purged_events (for verify)."""
        last_record: int | None = None
        seqs: list[int] = []
        after = (-1, -1)
        while True:
            rows = self._rows(
                "SELECT record_seq, seq FROM purged_events WHERE record_seq > ? OR (record_seq = ? AND seq > ?) "
                "ORDER BY record_seq, seq LIMIT 50000",
                (after[0], after[0], after[1]),
            )
            for record_seq, seq in rows:
                if record_seq != last_record:
                    if last_record is not None:
                        yield last_record, len(seqs), seqs_digest(seqs)
                    last_record, seqs = int(record_seq), []
                seqs.append(int(seq))
            if len(rows) < 50000:
                break
            after = (int(rows[-1][0]), int(rows[-1][1]))
        if last_record is not None:
            yield last_record, len(seqs), seqs_digest(seqs)

    # -- legal holds ---------------------------------------------------------------------

    def set_hold(self, hold: LegalHold) -> LegalHold:
        with self._transaction() as tx:
            # Purge holds this lock from its re-check to its commit: a hold is either seen or set after.
            self._lock_log(tx)
            app_key = self._app_key_for(tx, hold.app, hold.created_us)
            if self._execute(
                tx, "SELECT 1 FROM legal_holds WHERE app_key = ? AND name = ? AND cleared IS NULL", (app_key, hold.name)
            ).fetchone():
                raise Conflict(f"name: a legal hold named {hold.name!r} is already set; clear it first", field="name")
            self._execute(
                tx,
                "INSERT INTO legal_holds (app_key, name, channel, time_from, time_to, reason, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (app_key, hold.name, hold.channel, hold.time_from_us, hold.time_to_us, hold.reason, hold.created_us),
            )
        return hold

    def clear_hold(self, app: str, name: str, now_us: int) -> LegalHold | None:
        with self._transaction() as tx:
            app_key = self._app_key(tx, app)
            row = self._execute(
                tx,
                "SELECT hold_key FROM legal_holds WHERE app_key = ? AND name = ? AND cleared IS NULL",
                (app_key, name),
            ).fetchone()
            if app_key is None or row is None:
                return None
            self._execute(tx, "UPDATE legal_holds SET cleared = ? WHERE hold_key = ?", (now_us, row[0]))
            cleared = self._execute(tx, _SELECT_HOLD + "WHERE h.hold_key = ?", (row[0],)).fetchone()
        return _hold(cleared)

    def holds(self, app: str, *, include_cleared: bool) -> list[LegalHold]:
        clause = "" if include_cleared else " AND h.cleared IS NULL"
        return [
            _hold(row) for row in self._rows(_SELECT_HOLD + f"WHERE a.name = ?{clause} ORDER BY h.hold_key", (app,))
        ]


def _batch(row: Sequence[Any]) -> ArchiveBatch:
    archive_id, app, count, time_from, time_to, first, last, size, created, archived, purged, record_seq = row
    return ArchiveBatch(
        str(archive_id), str(app), int(count), int(time_from), int(time_to), int(first), int(last), int(size),
        int(created), None if archived is None else int(archived), int(purged), int(record_seq),
    )  # fmt: skip


def _hold(row: Sequence[Any]) -> LegalHold:
    name, app, reason, created, channel, time_from, time_to, cleared = row
    return LegalHold(str(name), str(app), str(reason), int(created), channel, time_from, time_to, cleared)
