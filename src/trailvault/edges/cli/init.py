"""``trailvault init``: create a vault."""

from __future__ import annotations

import click

from trailvault.edges.cli.output import emit_json
from trailvault.edges.cli.session import Session

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
