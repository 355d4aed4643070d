"""What every command shares: the session (settings and the vault it opened) and reading arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trailvault.edges.config import load_settings, open_configured_vault
from trailvault.errors import InvalidInput
from trailvault.workflows.api import VaultAPI
from trailvault.workflows.vault.vault import Vault

__all__ = ["Session", "read_argument", "read_file"]


@dataclass
class Session:
    """What every command shares: the resolved settings and, once opened, the vault."""

    overrides: dict[str, Any]
    config: str | None
    _vault: VaultAPI | None = field(default=None, repr=False)

    def settings(self) -> dict[str, Any]:
        return load_settings(config=self.config, overrides=self.overrides)

    def vault(self, *, create: bool = False, sign: bool = True) -> VaultAPI:
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
                # Imported here: httpx (about 50 ms) is for commands that reach a server.
                from trailvault.workflows.client import connect

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
