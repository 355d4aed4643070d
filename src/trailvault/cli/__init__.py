"""The ``trailvault`` command: a thin shell over the Vault API with the same names.

Exit codes: 0 success, 2 usage error (from click), 1 any other error, with a
message on stderr that names the field; 1 after Ctrl-C and 143 after SIGTERM, each once
the command has undone what it half did (an export removes its files).
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, NoReturn

import click

from trailvault.client import RemoteVault, connect
from trailvault.config import load_settings, open_configured_vault
from trailvault.errors import InvalidInput, TrailvaultError
from trailvault.vault import Vault

__all__ = ["Session", "main", "read_argument", "read_file"]


@dataclass
class Session:
    """What every command shares: the resolved settings and, once opened, the vault."""

    overrides: dict[str, Any]
    config: str | None
    _vault: Vault | RemoteVault | None = field(default=None, repr=False)

    def settings(self) -> dict[str, Any]:
        return load_settings(config=self.config, overrides=self.overrides)

    def vault(self, *, create: bool = False, sign: bool = True) -> Vault | RemoteVault:
        """The vault the command acts on: the server's (``--server``) or the local one.

        ``sign=False`` opens a local vault that signs no checkpoint (``verify`` checks what it found).
        """
        if self._vault is None:
            settings = self.settings()
            if settings["server"]:
                if not settings["token"]:
                    raise InvalidInput(
                        "token: --server needs an API key; pass --token or set TRAILVAULT_TOKEN", field="token"
                    )
                self._vault = connect(settings["server"], settings["token"])
            else:
                self._vault = open_configured_vault(settings, create=create, sign=sign)
        return self._vault

    def local_vault(self, *, create: bool = False, command: str) -> Vault:
        """The local vault, for commands that only work on one (``serve``, ``migrate``)."""
        vault = self.vault(create=create)
        if not isinstance(vault, Vault):
            raise InvalidInput(f"server: {command} works on a local vault; leave out --server", field="server")
        return vault

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()


def read_argument(value: str, *, field: str) -> str:
    """Return an argument's text: the value itself, or the contents of FILE when given as ``@FILE``."""
    if not value.startswith("@"):
        return value
    return read_file(value[1:], field=field)


def read_file(path: str, *, field: str) -> str:
    """Return a text file's contents; raise InvalidInput naming ``field`` when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise InvalidInput(f"{field}: cannot read {path} ({exc.strerror}); check the path", field=field) from None


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
    from trailvault.cli import (
        archive,
        channels,
        download,
        events,
        export,
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


_register()
