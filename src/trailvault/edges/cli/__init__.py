"""The ``trailvault`` command: a thin shell over the Vault API with the same names.

Exit codes: 0 success, 2 usage error (from click), 1 any other error, with a
message on stderr that names the field; 1 after Ctrl-C and 143 after SIGTERM, each once
the command has undone what it half did (an export removes its files).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, NoReturn

import click

from trailvault.edges.cli.session import Session
from trailvault.errors import TrailvaultError

__all__ = ["main"]


def _terminated(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


class _Shell(click.Group):
    """Turn library errors into a message on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        # Python dies on SIGTERM without running finally blocks, which would leave an export's
        # half-written files, or a download's .partial ones, behind; as an exception it unwinds
        # like Ctrl-C does. (`serve` hands both signals to uvicorn, which installs its own.)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminated)
        try:
            return super().invoke(ctx)
        except TrailvaultError as exc:
            click.echo(f"trailvault: error: {exc.message}", err=True)
            ctx.exit(1)
        except BrokenPipeError:
            ctx.exit(1)


@click.group(cls=_Shell, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="trailvault")
@click.option(
    "--vault", envvar="TRAILVAULT_VAULT", help="Vault folder, .sqlite3 file, sqlite:/// URL or postgresql:// URL."
)
@click.option("--app", envvar="TRAILVAULT_APP", help="App (tenant) to write and read as.")
@click.option(
    "--config", "config", type=click.Path(dir_okay=False), envvar="TRAILVAULT_CONFIG", help="TOML config file."
)
@click.option("--server", help="A trailvault server's URL: act on it instead of a local vault (TRAILVAULT_SERVER).")
@click.option("--token", help="The API key for --server; prefer the TRAILVAULT_TOKEN variable (not in shell history).")
@click.pass_context
def main(
    ctx: click.Context, vault: str | None, app: str | None, config: str | None, server: str | None, token: str | None
) -> None:
    """trailvault: record, keep, find, take out and prove audit events.

    \b
    Example:
      trailvault init
      trailvault channels open myindex --schema myindex.json
      trailvault post myindex '{"company": "Amalto", "amount": 101.12}'
      trailvault events list --channel myindex
    """
    session = Session({"vault": vault, "app": app, "server": server, "token": token}, config)
    ctx.obj = session
    ctx.call_on_close(session.close)


def _register() -> None:
    from trailvault.edges.cli import (
        archive,
        channels,
        download,
        events,
        export,
        imports,
        init,
        integrity,
        keys,
        migrate,
        post,
        serve,
    )  # fmt: skip

    main.add_command(init.init)
    main.add_command(integrity.key)
    main.add_command(integrity.checkpoint)
    main.add_command(integrity.proof)
    main.add_command(integrity.verify)
    main.add_command(channels.channels)
    main.add_command(post.post)
    main.add_command(events.events)
    main.add_command(migrate.migrate)
    main.add_command(keys.keys)
    main.add_command(serve.serve)
    main.add_command(export.export)
    main.add_command(download.download)
    main.add_command(archive.archive)
    main.add_command(archive.hold)
    main.add_command(imports.import_)


_register()
