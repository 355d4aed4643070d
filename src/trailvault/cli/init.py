"""``trailvault init``: create a vault."""

from __future__ import annotations

import click

from trailvault.cli import Session
from trailvault.cli.output import emit_json

__all__ = ["init"]


@click.command()
@click.pass_obj
def init(session: Session) -> None:
    """Create the vault (its folder, database and signing key) if it does not exist yet.

    \b
    Example:
      trailvault --vault ./trailvault-data init
    """
    vault = session.vault(create=True)
    emit_json(
        {"vault": vault.location, "app": vault.app, "channels": len(vault.channels()), "key": vault.verifier_key()}
    )
