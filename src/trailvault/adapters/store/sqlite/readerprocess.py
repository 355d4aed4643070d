"""The page reader's child process (see :mod:`trailvault.adapters.store.sqlite.pagereader`), run as a script.

It reads ``(database, sql, parameters, batch_rows)`` pickled from stdin (the
parameters as one Arrow IPC batch, or None), runs the statement
through ADBC's SQLite driver in one read-only transaction, and writes its batches to
stdout as an Arrow IPC stream. On failure it prints the reason as its last stderr line
and exits 1. It imports only pyarrow and the driver: not trailvault (start-up time),
and not Python's sqlite3 (no second SQLite library beside ADBC's in this process).
"""

from __future__ import annotations

import pickle
import sys
from typing import IO


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """Run the statement and stream its batches as Arrow IPC."""
    # Nothing here converts Python values, so numpy (which pyarrow loads when it can, about
    # 13 MB) is not needed; pyarrow works without it.
    sys.modules.setdefault("numpy", None)  # type: ignore[arg-type]
    import adbc_driver_manager  # type: ignore[import-not-found, import-untyped, unused-ignore]
    import adbc_driver_sqlite  # type: ignore[import-not-found, import-untyped, unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped]

    # The parameters come as an Arrow batch: converting Python values here would make
    # pyarrow import pandas (when installed), doubling this process's memory.
    database, sql, parameters, batch_rows = pickle.load(stdin)
    # A URI, for mode=ro: the characters that mean something in one are escaped.
    uri = "file:" + database.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    with (
        adbc_driver_sqlite.connect(uri) as db,
        adbc_driver_manager.AdbcConnection(db) as conn,
        adbc_driver_manager.AdbcStatement(conn) as statement,
    ):
        statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
        statement.set_sql_query(sql)
        if parameters is not None:
            statement.bind(pa.ipc.open_stream(parameters).read_next_batch())
        handle, _ = statement.execute_query()
        with (
            pa.RecordBatchReader._import_from_c(handle.address) as reader,
            pa.ipc.new_stream(stdout, reader.schema) as stream,
        ):
            for batch in reader:
                stream.write_batch(batch)


def main() -> None:
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the parent stopped reading (an export that failed or was closed)
        sys.exit(1)
    except Exception as error:  # reported to the parent as its reason, with the type
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
