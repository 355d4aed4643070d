"""A long listing read by a separate process through ADBC's SQLite driver, as Arrow batches.

A typed export spends about half its CPU reading rows: Python's sqlite3 builds a tuple
and an object per value (about 1.9 µs an event with the conversion to columns), all
of it holding the interpreter lock the writing thread also needs. ADBC's SQLite
driver reads the same rows straight into Arrow at about 1 µs, without Python.

It runs in a child process (:mod:`~trailvault.adapters.store.sqlite.readerprocess`, run as a
script so that it imports neither trailvault nor Python's sqlite3) because
ADBC links its own SQLite: two SQLite libraries in one process break each other's
POSIX locks on a file when either closes it (SQLite's "How To Corrupt", §2.2), which
could corrupt a vault that other processes write to. In its own process it is an
ordinary second reader of the vault.

Contracts:

- :func:`read_pages` yields tables of ``seq, id, channel_key, time, received, body,
  body_sha256`` (hex), ``body`` null when redacted: the rows the statement selects, in
  its order, ``batch_rows`` at a time (the last page fewer, possibly none). The
  statement runs as one read transaction, so the pages are one snapshot of the vault.
- The request (database path, SQL, parameters) goes over stdin, pickled: only this
  process writes it, and nothing of it shows in the process list.
- The pipe's bounded buffer is the back-pressure: the child is at most a batch and a
  pipe ahead of the reader, so memory does not grow with the listing.
- Any failure of the child (an error, a crash, a kill) raises StoreUnavailable naming
  it; closing the iterator early stops the child.
- :func:`available` says whether ADBC's driver is installed (the ``export`` extra) and
  there is an interpreter to start (``sys.executable``; not in some embedded Pythons).
"""

from __future__ import annotations

import contextlib
import importlib.util
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from trailvault.errors import StoreUnavailable

__all__ = ["ENTRY_SELECT", "available", "read_pages"]

#: The entry columns as the child selects them. The driver infers each column's type
#: from a batch's values, so a batch that began with redacted (null) bodies would make
#: ``body`` an integer column: the body is never null here and ``body_gone`` says which
#: were. The digest comes as hex text, the layout an export writes.
ENTRY_SELECT = (
    "seq, id, channel_key, time, received, coalesce(body, '') AS body, body IS NULL AS body_gone, "
    "lower(hex(body_sha256)) AS body_sha256"
)

# Linux lets a pipe hold more than its default 64 KiB (up to /proc/sys/fs/pipe-max-size,
# 1 MiB unless raised): fewer switches between the two processes per batch.
_PIPE_BYTES = (4 << 20, 1 << 20)
# The child's batches: ADBC's buffers for larger ones stay resident in the child (about
# 30 MB more at 10,000 rows); the pages handed on are joined from several, without a copy.
_CHILD_BATCH_ROWS = 2500


def available() -> bool:
    """Whether a child can be started (an interpreter to run) and ADBC's SQLite driver and pyarrow are installed."""
    return bool(sys.executable) and all(
        importlib.util.find_spec(name) is not None for name in ("adbc_driver_sqlite", "pyarrow")
    )


def read_pages(database: Path, sql: str, params: Sequence[Any], batch_rows: int) -> Iterator[Any]:
    """Yield the statement's rows (:data:`ENTRY_SELECT`) as Arrow tables of ``batch_rows``, read by a child.

    Raises OSError when the child cannot be started (the caller reads in-process then),
    and StoreUnavailable when it fails after starting.
    """
    import pyarrow as pa  # type: ignore[import-untyped]

    text, number = pa.string(), pa.int64()
    wanted = {"seq": number, "id": text, "channel_key": number, "time": number, "received": number}
    wanted |= {"body": text, "body_sha256": text}
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            # -P: the script's folder (this package's modules) is not put on the child's path.
            [sys.executable, "-P", str(Path(__file__).with_name("readerprocess.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            _widen(child.stdout)
            with contextlib.suppress(BrokenPipeError):  # a child that already failed: its status says how
                request = (str(database.resolve()), sql, _parameters(params), _CHILD_BATCH_ROWS)
                child.stdin.write(pickle.dumps(request))
                child.stdin.close()
            complete = False
            try:
                with pa.ipc.open_stream(child.stdout) as stream:
                    parts: list[Any] = []
                    held = 0
                    for batch in stream:
                        parts.append(_entry_batch(batch, wanted))
                        held += batch.num_rows
                        while held >= batch_rows:  # pages of exactly batch_rows, the last fewer
                            joined = pa.Table.from_batches(parts)
                            yield joined.slice(0, batch_rows)
                            parts = joined.slice(batch_rows).to_batches()
                            held -= batch_rows
                    if parts:
                        yield pa.Table.from_batches(parts)
                complete = True
            except (pa.ArrowInvalid, OSError):  # a stream cut short: the child's status says why
                pass
            if child.wait() != 0 or not complete:
                raise _failure(child.returncode, errors)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()


def _entry_batch(batch: Any, wanted: dict[str, Any]) -> Any:
    """A batch as the child sends it, with the types wanted and a redacted body null again."""
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    # An empty listing's columns come typed by default (integers); a cast to the same type is free.
    columns = [batch.column(name).cast(kind) for name, kind in wanted.items()]
    gone = pc.not_equal(batch.column("body_gone"), 0)
    if pc.any(gone).as_py():
        columns[5] = pc.if_else(gone, pa.scalar(None, pa.string()), columns[5])
    return pa.RecordBatch.from_arrays(columns, names=list(wanted))


def _parameters(params: Sequence[Any]) -> bytes | None:
    """The statement's parameters as one Arrow IPC batch of one row, column ``i`` the ``i``-th."""
    import pyarrow as pa

    if not params:
        return None
    columns = [pa.array([value]) for value in params]
    batch = pa.RecordBatch.from_arrays(columns, names=[str(index) for index in range(len(columns))])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as stream:
        stream.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def _widen(pipe: IO[bytes]) -> None:
    try:
        import fcntl
    except ImportError:  # not a POSIX system: the default pipe works, only slower
        return

    for size in _PIPE_BYTES:
        # Not Linux, or above /proc/sys/fs/pipe-max-size: the default size works, only slower.
        with contextlib.suppress(AttributeError, OSError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, size)
            return


def _failure(status: int, errors: IO[bytes]) -> StoreUnavailable:
    errors.seek(0)
    lines = errors.read()[-2000:].decode(errors="replace").strip().splitlines()
    reason = lines[-1] if lines else (f"exit status {status}" if status > 0 else f"stopped by signal {-status}")
    return StoreUnavailable(f"export: the reading process failed ({reason[:300]})")
