"""``trailvault migrate``: copy a vault to another store (SQLite <-> PostgreSQL) with its proofs intact."""

from __future__ import annotations

import sys

import click

from trailvault.edges.cli.output import emit_json
from trailvault.edges.cli.session import Session
from trailvault.workflows.migrate import migrate_vault

__all__ = ["migrate"]


@click.command()
@click.option("--from", "source", required=True, help="The vault to copy: a folder, .sqlite3 file or URL.")
@click.option("--to", "target", required=True, help="A new, empty vault: a folder, .sqlite3 file or URL.")
@click.pass_obj
def migrate(session: Session, source: str, target: str) -> None:
    """Copy a whole vault into a new one, then verify the copy and compare its root with the source's.

    Every entry keeps its seq, id, times and body bytes, so every checkpoint, proof and
    receipt stays valid; the copy keeps the vault id, and the signing key file is copied
    to the target's default place when it has none. The source may stay in use.

    \b
    Example:
      trailvault migrate --from ./trailvault-data --to postgresql://trailvault@db.internal/audit
    """
    settings = session.settings()

    def progress(copied: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\rcopied {copied:,} of {total:,} entries", nl=copied == total, err=True)

    report = migrate_vault(source, target, signing_key=settings.get("signing_key") or None, progress=progress)
    emit_json(report.to_dict())
