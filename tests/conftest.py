"""Fixtures that start real components: SQLite vault files, PostgreSQL databases and the CLI.

PostgreSQL comes from ``make test``, which starts a throwaway server
(scripts/test-postgres) and passes its superuser URL in ``TRAILVAULT_TEST_POSTGRES``.
Without it every PostgreSQL case fails, never skips: a suite that silently ran on
one backend would prove nothing about the other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import settings

import trailvault
from trailvault import Vault

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "platform6"
CLI = Path(sys.executable).parent / "trailvault"

# Hypothesis' per-example deadline is a timed assertion: on a loaded two-core runner the first
# example (cold imports, JIT-less warm-up) can pass 200 ms and fail a correct test. Speed is
# measured in bench/, so property tests check behaviour only.
settings.register_profile("trailvault", deadline=None)
settings.load_profile("trailvault")

#: The Platform 6 BigQuery-style example schema, as a document.
MYINDEX = [
    {"name": "company", "type": "STRING", "mode": "REQUIRED", "nested": []},
    {"name": "amount", "type": "FLOAT", "mode": "NULLABLE", "nested": []},
    {
        "name": "taxes",
        "type": "RECORD",
        "mode": "REPEATED",
        "nested": [
            {"name": "salestax", "type": "FLOAT", "mode": "NULLABLE", "nested": []},
            {"name": "taxrate", "type": "FLOAT", "mode": "NULLABLE", "nested": []},
        ],
    },
]

#: A realistic audit schema (datapunt AuditLogger's shape) with an indexed field.
ACCESS = {
    "fields": [
        {"name": "type", "type": "STRING", "mode": "REQUIRED"},
        {"name": "message", "type": "STRING"},
        {"name": "occurred", "type": "TIMESTAMP"},
        {
            "name": "user",
            "type": "RECORD",
            "fields": [
                {"name": "email", "type": "STRING", "index": True},
                {"name": "authenticated", "type": "BOOLEAN"},
                {"name": "roles", "type": "STRING", "mode": "REPEATED"},
                {"name": "ip", "type": "STRING", "sensitive": True},
            ],
        },
        {
            "name": "http_response",
            "type": "RECORD",
            "fields": [{"name": "status_code", "type": "INTEGER"}, {"name": "reason", "type": "STRING"}],
        },
    ]
}


#: Every backend a vault can live on; backend-neutral tests run once per backend.
BACKENDS = ["sqlite", "postgresql"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``postgresql`` every case that needs the PostgreSQL server, so that ``-m "not postgresql"``
    (``make test-fast``) runs without one: those that request it through a fixture, and those run on it
    by a ``postgresql`` parameter of :data:`BACKENDS` (their fixture asks for the database only then)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if "postgres_server" in getattr(item, "fixturenames", ()) or any(
            isinstance(value, str) and value == "postgresql" for value in params
        ):
            item.add_marker(pytest.mark.postgresql)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The superuser URL of the test PostgreSQL server."""
    url = os.environ.get("TRAILVAULT_TEST_POSTGRES")
    if not url:
        pytest.fail(
            "TRAILVAULT_TEST_POSTGRES is not set: run the suite with `make test`, which starts a PostgreSQL "
            "server (scripts/test-postgres start; then export TRAILVAULT_TEST_POSTGRES=$(scripts/test-postgres url))"
        )
    return url


@pytest.fixture(scope="session")
def oci_cli() -> Path:
    """The real `oci` CLI, installed by `make test` in a venv of its own (it pins an older click)."""
    found = os.environ.get("TRAILVAULT_TEST_OCI_CLI")
    if not found or not Path(found).is_file():
        pytest.fail(
            "TRAILVAULT_TEST_OCI_CLI does not name the oci CLI: run the suite with `make test`, which installs it "
            "in .venv-oci (make .venv-oci/.installed; then export TRAILVAULT_TEST_OCI_CLI=$PWD/.venv-oci/bin/oci)"
        )
    return Path(found)


@pytest.fixture
def new_database(postgres_server: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty PostgreSQL databases (dropped afterwards); returns each one's URL."""
    import psycopg

    created: list[str] = []

    def factory() -> str:
        name = f"tv_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # a name we made, not user input
        created.append(name)
        return postgres_server.rsplit("/", 1)[0] + "/" + name

    yield factory
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for name in created:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgres_url(new_database: Callable[[], str]) -> str:
    """The URL of a fresh PostgreSQL database for one vault."""
    return new_database()


@pytest.fixture(params=BACKENDS)
def vault_location(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str | Path:
    """Where a fresh vault lives: a SQLite folder, or a PostgreSQL database URL."""
    if request.param == "sqlite":
        return tmp_path / "vault"
    # A PostgreSQL vault's signing key goes to the configuration folder; keep it in the test's.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    """A SQLite vault folder, for tests about the embedded store or its files."""
    return tmp_path / "vault"


@pytest.fixture
def vault(vault_location: str | Path) -> Iterator[Vault]:
    with trailvault.open_vault(vault_location) as opened:
        yield opened


@pytest.fixture
def myindex(vault: Vault) -> Vault:
    vault.open("myindex", MYINDEX)
    return vault


def without_pyarrow(folder: Path) -> dict[str, str]:
    """Environment for :func:`run_cli_process` in which ``import pyarrow`` fails, as on an install
    without the ``export`` extra: a ``sitecustomize`` on PYTHONPATH marks it missing.

    Only a new interpreter honours it, so this stays a real subprocess: in this process the
    modules that import pyarrow at their top may already be loaded."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text("import sys\nsys.modules['pyarrow'] = None\n")
    return {"PYTHONPATH": str(folder)}


@dataclass(frozen=True)
class CliResult:
    """What a ``trailvault`` command did: the names of :class:`subprocess.CompletedProcess` that tests read."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *args: str,
    vault: Path | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> CliResult:
    """Run a ``trailvault`` command in this process (click's CliRunner): its exit code, stdout and stderr.

    The command sees what the installed script would: no ``TRAILVAULT_*`` variable of the test
    process, ``env`` on top, ``TRAILVAULT_VAULT`` from ``vault``, ``cwd`` as the working folder
    and ``stdin`` (else nothing) on stdin, which is no terminal. An exception the command does
    not turn into an exit code fails the test with its traceback. Afterwards the process is as
    before (SIGTERM handler, log handlers), and a thread or file the command left open fails
    the test. What needs a process of its own (signals, a terminal, the entry point, ``serve``,
    an environment read at start-up such as PYTHONPATH) uses :func:`run_cli_process`.
    """
    if env and "PYTHONPATH" in env:
        raise ValueError("PYTHONPATH acts only when an interpreter starts: use run_cli_process")
    changes: dict[str, str | None] = {key: None for key in os.environ if key.startswith("TRAILVAULT_")}
    changes.update(env or {})
    if vault is not None:
        changes["TRAILVAULT_VAULT"] = str(vault)
    from trailvault.edges.cli import main  # here, not at the top: a test of what a module loads must not find it loaded

    # Help is wrapped as the script wraps it in a pipe (COLUMNS, else 80 columns), not at CliRunner's 80.
    columns = int(changes.get("COLUMNS") or os.environ.get("COLUMNS") or 80)
    width = max(min(columns, main.context_settings.get("max_content_width", 80)) - 2, 50)
    threads, files = set(threading.enumerate()), _open_files()
    with _process_state_restored(), contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        result = CliRunner().invoke(
            main,
            list(args),
            input=stdin,
            env=changes,
            catch_exceptions=False,
            prog_name="trailvault",
            terminal_width=width,
        )
    _assert_nothing_left(args, threads, files)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def run_cli_process(
    *args: str,
    vault: Path | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``trailvault`` console script as a real subprocess (same arguments as :func:`run_cli`)."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("TRAILVAULT_")}
    full_env.update(env or {})
    if vault is not None:
        full_env["TRAILVAULT_VAULT"] = str(vault)
    return subprocess.run(
        [str(CLI), *args], input=stdin, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120
    )


@contextlib.contextmanager
def _process_state_restored() -> Iterator[None]:
    """Undo what a command changes for the whole process: the SIGTERM handler it installs
    (to unwind like Ctrl-C) and the log handlers and levels it sets (``download`` logs to a file)."""
    sigterm = signal.getsignal(signal.SIGTERM)
    loggers = [logging.getLogger(), logging.getLogger("trailvault")]
    kept = [(logger, list(logger.handlers), logger.level) for logger in loggers]
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, sigterm)
        for logger, handlers, level in kept:
            for handler in logger.handlers:
                if handler not in handlers:
                    logger.removeHandler(handler)
                    handler.close()
            logger.setLevel(level)


def _open_files() -> dict[str, str]:
    """This process's open file descriptors (Linux's /proc) and what each is: a path or a socket."""
    folder = Path("/proc/self/fd")
    if not folder.is_dir():
        return {}
    found: dict[str, str] = {}
    for fd in os.listdir(folder):
        try:
            found[fd] = os.readlink(folder / fd)
        except OSError:  # the descriptor listdir itself used, closed since
            continue
    return found


def _new_files(files: dict[str, str]) -> set[str]:
    """The files and sockets open now that were not in ``files``.

    A path the test itself holds open is left out: SQLite defers closing a file while another
    connection of the process holds locks on it (closing would drop that one's POSIX locks).
    """
    return {
        target
        for target in set(_open_files().values()) - set(files.values())
        if target.startswith(("/", "socket:")) and not target.startswith(("/dev/", "/proc/"))
    }


def _assert_nothing_left(args: tuple[str, ...], threads: set[threading.Thread], files: dict[str, str]) -> None:
    """Fail when the command left a thread running or a file or socket open (a vault not closed)."""
    started = [thread for thread in threading.enumerate() if thread not in threads]
    for thread in started:
        thread.join(timeout=10)  # a daemon helper (group commit) ends once its queue is empty
    running = [thread.name for thread in started if thread.is_alive()]
    # pyarrow's own I/O threads (not Python's) may close a file they read ahead a moment later.
    deadline = time.monotonic() + 5
    while (opened := _new_files(files)) and time.monotonic() < deadline:
        time.sleep(0.01)
    command = " ".join(["trailvault", *args])
    assert not running, f"`{command}` left threads running: {running}"
    assert not opened, f"`{command}` left files or sockets open: {sorted(opened)}"


def access_event(index: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "INFO",
        "message": f"Retrieve Order {index}",
        "user": {
            "email": f"user{index % 7}@example.com",
            "authenticated": True,
            "roles": ["auditor"],
            "ip": "10.0.0.1",
        },
        "http_response": {"status_code": 200, "reason": "OK"},
    }
    body.update(changes)
    return body
